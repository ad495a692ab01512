"""Scaled out with real processes: one `pantau server`, two `pantau worker`s, a real
redis-server with AOF and four loopback RTSP cameras.

- the cameras split across the workers; a pinned camera only ever runs on its box;
- kill -9 a worker: its cameras deliver frames from the other within 15 s (polled through the
  server's API, frames proxied from the new owner), and a crowd incident that was open stays
  one incident, routed once;
- the lost worker shows as lost on /api/workers, with a "worker lost" incident;
- no camera has two owners at any instant (every lease token is held by one worker);
- the wall in Chromium shows all four tiles and both workers before, and all four tiles again,
  now from the surviving worker, after.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pantau.local_fleet import REPO, LocalFleet, holders, until
from pantau.redis_server import RedisServer, free_port
from pantau.rtsp_server import RtspTestServer

pytestmark = pytest.mark.slow
PASSWORD = "scale-out-test-1"
REDIS_PASSWORD = "redis-secret-7f3a"  # from the environment, as a site sets it

CONFIG = """\
server: {{host: 127.0.0.1, port: {web_port}}}
storage: {{data_dir: {data_dir}}}
bus: {bus}
detector: {{model: {model}}}
recording: {{segment_s: 2, pre_roll_s: 1, post_roll_s: 1}}
fleet: {{lease_ttl_s: 6, claim_interval_s: 1, heartbeat_s: 1}}
ui: {{idle_refresh_s: 2}}
cameras:
{cameras}
opds:
  - {{id: satpol-pp, name: Satpol PP, contacts: [{{name: Piket, phone: "110"}}]}}
  - {{id: diskominfo, name: Diskominfo, contacts: [{{name: NOC, phone: "111"}}]}}
routing:
  - {{match: {{kinds: [crowd]}}, opds: [satpol-pp]}}
  - {{match: {{kinds: [offline, tamper]}}, opds: [diskominfo]}}
"""
CAMERA = """\
  - id: {id}
    name: Kamera {id}
    url: {url}
    kecamatan: Kota
    detect_fps: 2
    record: true
    workers: {pins}
    zones:
      - {{id: all, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: crowd, zone: all, min_count: {min_count}, for: 1, clear_after: {clear_after},
          cooldown: 0}}
"""
CAMERAS = ["cam-1", "cam-2", "cam-3", "cam-4"]
PINNED = {"cam-4": "box-b"}
CLIP_CAMERA = "cam-5"  # pinned to box-a: its clips stay on box-a when box-a dies
BOXES = ("box-a", "box-b")


@pytest.fixture
def fleet(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    model_path: Path,
    people_clip: Path,
    builtin_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
) -> Iterator[tuple[LocalFleet, RedisServer]]:
    """The site: four people cameras; with `clip_camera` (indirect param) a fifth, pinned to
    box-a, on the builtin clip whose crowd opens and closes every 24 s, so box-a cuts clips."""
    clip_camera = getattr(request, "param", {}).get("clip_camera", False)
    redis = RedisServer(tmp_path / "redis", password=REDIS_PASSWORD)
    redis.start()
    streams = {cid: people_clip for cid in CAMERAS}
    if clip_camera:
        streams[CLIP_CAMERA] = builtin_clip
    rtsp = rtsp_server(streams)
    cameras = "".join(
        CAMERA.format(id=cid, url=rtsp.url(cid), pins=[PINNED[cid]] if cid in PINNED else [],
                      min_count=2, clear_after=8)
        for cid in CAMERAS
    )  # fmt: skip
    if clip_camera:
        cameras += CAMERA.format(
            id=CLIP_CAMERA, url=rtsp.url(CLIP_CAMERA), pins=["box-a"], min_count=3, clear_after=2
        )
    web_port = free_port()
    config = tmp_path / "cameras.yaml"
    config.write_text(
        CONFIG.format(
            web_port=web_port,
            data_dir=tmp_path / "var",
            bus=f"redis://:${{REDIS_PASSWORD}}@127.0.0.1:{redis.port}/0",
            model=model_path,
            cameras=cameras,
        )
    )
    env = {"PANTAU_ADMIN_PASSWORD": PASSWORD, "REDIS_PASSWORD": REDIS_PASSWORD}
    f = LocalFleet(tmp_path, config, web_port, env)
    f.server()
    try:
        yield f, redis
    finally:
        f.stop()
        redis.stop()


async def poll(what: str, check: Callable[[], Any], timeout: float, fleet: LocalFleet) -> Any:
    try:
        return await until(what, check, timeout, fleet)
    except TimeoutError as exc:
        pytest.fail(str(exc))


async def login(http: httpx.AsyncClient, f: LocalFleet) -> None:
    async def attempt() -> str | None:
        r = await http.post("/api/login", json={"username": "admin", "password": PASSWORD})
        return r.json()["token"] if r.status_code == 200 else None

    token = await poll("server up", attempt, 90, f)
    http.headers["Authorization"] = f"Bearer {token}"


async def list_workers(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await http.get("/api/workers")
    r.raise_for_status()
    return list(r.json())


# Every tile shows its camera: a still or MJPEG that loaded, or WebRTC video that plays. With
# `since`, only pictures that arrived after the mark count (window.__fresh, set by WATCH_FRESH).
TILES_SHOWING = """({since, down}) => {
  const tiles = [...document.querySelectorAll('.grid .tile')];
  if (tiles.length !== 4) return false;
  return tiles.every((t) => {
    if (down.includes(t.dataset.camera)) return t.classList.contains('down');
    if (t.classList.contains('down')) return false;
    if (since && !(window.__fresh || new Set()).has(t.dataset.camera)) return false;
    const v = t.querySelector('video'), img = t.querySelector('img');
    if (t.dataset.mode === 'webrtc') return !v.paused && v.currentTime > 0.5 && v.videoWidth > 0;
    return img.complete && img.naturalWidth > 0 && !img.hidden;
  });
}"""
# Live video from a worker plays in a browser as it comes (default autoplay policy): the
# camera's H.264 over WebRTC, from the box that holds it.
LIVE_PLAYING = """() => [...document.querySelectorAll('.grid .tile')].some((t) => {
  const v = t.querySelector('video');
  return t.dataset.mode === 'webrtc' && !v.paused && v.currentTime > 1 && v.videoWidth === 480;
})"""
TILE_STATES = """() => [...document.querySelectorAll('.grid .tile')].map((t) => {
  const v = t.querySelector('video'), img = t.querySelector('img');
  return {camera: t.dataset.camera, mode: t.dataset.mode, cls: t.className,
          fresh: (window.__fresh || new Set()).has(t.dataset.camera), img: img.naturalWidth,
          src: img.getAttribute('src'), video: [v.paused, v.currentTime, v.videoWidth]};
})"""
WATCH_FRESH = """() => {
  window.__fresh = new Set();
  for (const t of document.querySelectorAll('.grid .tile')) {
    const id = t.dataset.camera, v = t.querySelector('video');
    t.querySelector('img').addEventListener('load', () => window.__fresh.add(id));
    v.addEventListener('timeupdate', () => { if (v.currentTime > 0.5) window.__fresh.add(id); });
  }
}"""


async def tiles_show(page: Any, since: bool, down: tuple[str, ...] = ()) -> None:
    """Every tile shows its camera (with `since`: pictures that came after WATCH_FRESH), but
    the cameras in `down`, whose tiles must say they are down."""
    try:
        arg = {"since": since, "down": list(down)}
        await page.wait_for_function(TILES_SHOWING, arg=arg, timeout=40000)
    except Exception as exc:
        raise AssertionError(f"tiles: {await page.evaluate(TILE_STATES)}") from exc


async def open_wall(browser: Any, f: LocalFleet) -> Any:
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    await page.goto(f"http://127.0.0.1:{f.web_port}/")
    await page.wait_for_selector("dialog#login[open]")
    await page.fill("#login-user", "admin")
    await page.fill("#login-pass", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("body[data-connected='1']", timeout=15000)
    return page


@pytest.mark.parametrize("fleet", [{"clip_camera": True}], indirect=True)
async def test_cameras_split_fail_over_and_stay_one_incident(
    fleet: tuple[LocalFleet, RedisServer], browser: Any, tmp_path: Path
) -> None:
    f, redis = fleet
    f.worker("box-a")
    f.worker("box-b")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{f.web_port}", timeout=10) as http:
        await login(http, f)

        async def workers() -> list[dict[str, Any]]:
            return await list_workers(http)

        async def all_running() -> dict[str, str] | None:
            held = holders(await workers())
            return held if len(held) == 5 else None

        held = await poll("all five cameras running", all_running, 120, f)
        assert held["cam-4"] == "box-b" and held[CLIP_CAMERA] == "box-a"  # pinned
        on_a = [c for c, w in held.items() if w == "box-a" and c != CLIP_CAMERA]
        assert on_a and len(on_a) < 3, held  # the free cameras split across the workers

        # The wall: all four tiles show their camera, whichever box holds it; the workers panel
        # lists both boxes with what they hold.
        page = await open_wall(browser, f)
        await tiles_show(page, since=False)
        await page.wait_for_function(LIVE_PLAYING, timeout=30000)
        for name in ("box-a", "box-b"):
            await page.wait_for_selector(
                f"#workers li[data-worker='{name}'][data-state='running']", timeout=10000
            )
        panel = await page.inner_text("#workers")
        assert "box-a" in panel and "box-b" in panel and "kamera" in panel, panel
        await page.screenshot(path=str(tmp_path / "wall-before.png"))
        await page.evaluate(WATCH_FRESH)

        # A clip cut on box-a (its pinned camera's crowd came and went) plays through the server.
        async def clip_on_a() -> str | None:
            r = await http.get("/api/incidents", params={"camera": CLIP_CAMERA, "kind": "crowd"})
            for inc in r.json():
                c = await http.get(f"/api/incidents/{inc['id']}/clip")
                if c.status_code == 200 and c.json()["worker"] == "box-a":
                    return str(inc["id"])
            return None

        clip_incident = await poll("a clip cut on box-a", clip_on_a, 120, f)
        mp4 = await http.get(f"/api/incidents/{clip_incident}/clip.mp4")
        assert mp4.status_code == 200 and mp4.content[4:8] == b"ftyp", mp4.text[:200]

        # Every camera's still comes through the server, from whichever worker holds it.
        for cid in CAMERAS:
            r = await http.get(f"/api/cameras/{cid}/frame.jpg")
            assert r.status_code == 200 and r.content[:2] == b"\xff\xd8", (cid, r.text[:200])

        async def crowd_on_a() -> dict[str, Any] | None:
            r = await http.get("/api/incidents", params={"kind": "crowd", "active": "true"})
            found = [i for i in r.json() if i["camera_id"] in on_a]
            return found[0] if found else None

        incident = await poll("a crowd incident on box-a's cameras", crowd_on_a, 90, f)
        cam = incident["camera_id"]

        f.procs["box-a"].send_signal(signal.SIGKILL)
        killed, killed_at = time.monotonic(), time.time()

        # Its recordings are on a dead box now: the clip says so at once, it does not hang.
        asked = time.monotonic()
        gone = await http.get(f"/api/incidents/{clip_incident}/clip.mp4")
        assert gone.status_code == 503 and "box-a" in gone.json()["detail"], gone.text
        assert time.monotonic() - asked < 5

        async def moved() -> dict[str, str] | None:
            held = holders(await workers())
            return held if len(held) == 4 and set(held.values()) == {"box-b"} else None

        await poll("box-a's cameras on box-b", moved, 30, f)
        failover_s = time.monotonic() - killed
        assert failover_s < 15, f"failover took {failover_s:.1f} s"

        # Recording resumed on box-b for the cameras it took over.
        def recorded_on_b() -> list[str]:
            found = []
            for cid in on_a:
                folder = f.folder / "var" / "workers" / "box-b" / "recordings" / cid
                files = folder.glob("*.mp4") if folder.is_dir() else []
                if any(p.stat().st_mtime > killed_at for p in files):
                    found.append(cid)
            return found

        async def recording_resumed() -> bool:
            return sorted(recorded_on_b()) == sorted(on_a)

        await poll("box-b recording box-a's cameras", recording_resumed, 20, f)

        # The wall follows: every tile shows new pictures (now from box-b, the focus tile's
        # WebRTC too), but the pinned camera of the dead box, whose tile (if its incident put
        # it on the wall) says it is down; the panel shows box-a lost and box-b with four.
        await tiles_show(page, since=True, down=(CLIP_CAMERA,))
        await page.wait_for_function(LIVE_PLAYING, timeout=30000)
        await page.wait_for_selector("#workers li[data-worker='box-a'][data-state='lost']")
        await page.wait_for_selector("#workers li[data-worker='box-b'][data-cameras='4']")
        await page.screenshot(path=str(tmp_path / "wall-after.png"))
        await page.locator("#workers").screenshot(path=str(tmp_path / "workers-after.png"))
        await page.close()

        # The crowd goes on: the same incident, one source (the observation box-b took over),
        # routed once; no second incident for that camera.
        await asyncio.sleep(4)
        r = await http.get("/api/incidents", params={"kind": "crowd", "camera": cam})
        crowds = r.json()
        assert [i["id"] for i in crowds] == [incident["id"]], crowds
        assert crowds[0]["active"] and len(crowds[0]["sources"]) == 1
        actions = (await http.get(f"/api/incidents/{incident['id']}/actions")).json()
        assert [a["kind"] for a in actions].count("routed") == 1, actions

        for cid in CAMERAS:  # frames now come from box-b
            r = await http.get(f"/api/cameras/{cid}/frame.jpg")
            assert r.status_code == 200, (cid, r.text[:200])

        states = {w["name"]: w["state"] for w in await workers()}
        assert states == {"box-a": "lost", "box-b": "running"}

        async def metrics() -> str | None:
            text = (await http.get("/metrics")).text
            return text if 'pantau_worker_up{worker="box-a"} 0.0' in text else None

        text = await poll("per-worker series in /metrics", metrics, 10, f)
        assert 'pantau_worker_up{worker="box-b"} 1.0' in text
        assert 'pantau_worker_cameras{worker="box-b"} 4.0' in text

        async def worker_lost() -> list[dict[str, Any]]:
            r = await http.get("/api/incidents", params={"kind": "offline"})
            return [i for i in r.json() if "box-a" in i["title"]]

        lost = await poll("a 'worker lost' incident", worker_lost, 20, f)
        assert lost[0]["routed_opds"] == ["diskominfo"]
        for url in ("/api/health", "/api/workers", "/api/cameras", "/metrics"):
            assert REDIS_PASSWORD not in (await http.get(url)).text, url

    # At no point two owners: each fencing token was given once, and each camera's lease now
    # names box-b with a token above box-a's.
    import redis as sync_redis

    r = sync_redis.Redis.from_url(redis.url)
    for cid in CAMERAS:
        owner = r.get(f"pantau:lease:{cid}")
        assert owner is not None and owner.decode().startswith("box-b:")
    fence = {cid: int(r.get(f"pantau:fence:{cid}") or 0) for cid in CAMERAS}
    assert fence["cam-4"] == 1 and all(fence[c] == 2 for c in on_a), fence
    # The Redis password came from the environment and went nowhere.
    for log in f.folder.glob("*.log"):
        assert REDIS_PASSWORD not in log.read_text(errors="replace"), log.name


async def test_capacity_and_a_paused_worker_that_comes_back(
    fleet: tuple[LocalFleet, RedisServer],
) -> None:
    """--capacity 1 never holds two cameras; SIGSTOP past the lease TTL then SIGCONT: the
    worker does not resume its camera (it stops it at once), another box runs it, and no
    camera ever has two running owners."""
    f, redis = fleet
    f.worker("box-a", "--capacity", "1")
    f.worker("box-b")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{f.web_port}", timeout=10) as http:
        await login(http, f)

        async def all_running() -> dict[str, str] | None:
            held = holders(await list_workers(http))
            return held if len(held) == 4 else None

        held = await poll("all four cameras running", all_running, 120, f)
        assert list(held.values()).count("box-a") == 1 and held["cam-4"] == "box-b", held
        paused = next(c for c, w in held.items() if w == "box-a")

        f.procs["box-a"].send_signal(signal.SIGSTOP)

        async def taken_over() -> bool:
            return holders(await list_workers(http)).get(paused) == "box-b"

        await poll(f"{paused} taken over by box-b", taken_over, 30, f)
        f.procs["box-a"].send_signal(signal.SIGCONT)
        seen_a: list[int] = []
        for _ in range(20):  # 5 s after it wakes: it must not run the camera again
            for w in await list_workers(http):
                if w["name"] == "box-a" and w["state"] == "running":
                    seen_a.append(len(w["cameras"]))
                    running = [c["camera_id"] for c in w["cameras"]]
                    assert paused not in running or w["cameras"] == [], w
            await asyncio.sleep(0.25)
        assert seen_a and seen_a[-1] == 0, seen_a
        final = holders(await list_workers(http))
        assert final.get(paused) == "box-b" and len(final) == 4, final
    log = (f.folder / "box-a.log").read_text(errors="replace")
    assert f"camera={paused} lease lost" in log
    import redis as sync_redis

    owner = sync_redis.Redis.from_url(redis.url).get(f"pantau:lease:{paused}")
    assert owner is not None and owner.decode() == "box-b:2"


def fences(redis: RedisServer) -> dict[str, tuple[str, int]]:
    """camera -> (its lease's holder "worker:token", its fencing token) as Redis has them."""
    import redis as sync_redis

    r = sync_redis.Redis.from_url(redis.url, decode_responses=True)
    return {
        cid: (str(r.get(f"pantau:lease:{cid}")), int(r.get(f"pantau:fence:{cid}") or 0))
        for cid in CAMERAS
    }


async def test_redis_restart_loses_no_accepted_event_and_starts_no_lease_storm(
    fleet: tuple[LocalFleet, RedisServer],
) -> None:
    """redis-server restarted under a running fleet (AOF, same port): OPD alerts are posted
    all along; every one answered 2xx is stored with its incident afterwards. A short restart
    (under the lease TTL) moves no camera: same holders, same tokens. An outage past the TTL
    stops the cameras (their owners can no longer prove the lease) and each is claimed again
    exactly once when Redis is back: one new token per camera, not a storm."""
    f, redis = fleet
    f.worker("box-a")
    f.worker("box-b")
    made = subprocess.run(
        [sys.executable, "-m", "pantau.cli", "apikey", "--config", str(f.config),
         "create", "satpol-pp", "--label", "test"],
        cwd=REPO, env=f.env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = made.stdout.splitlines()[1].strip()
    base = f"http://127.0.0.1:{f.web_port}"
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        httpx.AsyncClient(base_url=base, timeout=120, headers={"X-API-Key": key}) as opd,
    ):
        await login(http, f)

        async def all_running() -> dict[str, str] | None:
            held = holders(await list_workers(http))
            return held if len(held) == 4 else None

        held = await poll("all four cameras running", all_running, 120, f)
        accepted: list[dict[str, Any]] = []
        refused: list[str] = []
        sending = True

        async def post(n: int) -> None:
            alert = {"id": f"restart-{n}", "source": "opd", "kind": "fire", "severity": "high",
                     "title": f"Laporan kebakaran {n}", "kecamatan": "Kota"}  # fmt: skip
            try:
                r = await opd.post("/api/alerts", json=alert)
            except httpx.HTTPError as exc:
                refused.append(f"{n}: {exc!r}")
                return
            if r.status_code in (200, 201):
                accepted.append(r.json())
            else:
                refused.append(f"{n}: {r.status_code} {r.text[:200]}")

        async def sender() -> None:
            n, posts = 0, []
            while sending:
                posts.append(asyncio.create_task(post(n)))
                n += 1
                await asyncio.sleep(0.3)
            await asyncio.gather(*posts)

        sending_task = asyncio.create_task(sender())
        await asyncio.sleep(2)

        # A restart shorter than the lease TTL: nothing moves.
        before = fences(redis)
        redis.stop()
        await asyncio.sleep(2)
        during = await http.get("/api/incidents")  # the wall keeps serving what is stored
        assert during.status_code == 200
        redis.start()
        await asyncio.sleep(6)
        assert fences(redis) == before
        assert holders(await list_workers(http)) == held

        # Down past the TTL: each camera stops, then is claimed again once.
        redis.stop()
        await asyncio.sleep(9)
        redis.start()
        again = await poll("all four cameras running again", all_running, 30, f)
        assert again["cam-4"] == "box-b"  # still only on its pinned box
        await asyncio.sleep(3)
        after = fences(redis)
        assert {c: after[c][1] - before[c][1] for c in CAMERAS} == dict.fromkeys(CAMERAS, 1), (
            before,
            after,
        )
        assert {c: after[c][0].split(":")[0] for c in CAMERAS} == again

        sending = False
        await sending_task
        assert accepted, refused
        listed = (await http.get("/api/alerts", params={"limit": 1000})).json()
        stored = {a["id"]: a for a in listed}
        for receipt in accepted:
            assert receipt["alert_id"] in stored, receipt
            r = await http.get(f"/api/incidents/{receipt['incident_id']}")
            assert r.status_code == 200, receipt
        # Posts either got an answer or failed on their own (none here: the desk waited for
        # Redis, it did not drop them).
        assert not refused, refused
        # Redis away is not a fleet failure: no worker "lost", no camera on no worker.
        offline = (await http.get("/api/incidents", params={"kind": "offline"})).json()
        assert offline == [], offline
    logs = "\n".join((f.folder / f"{w}.log").read_text(errors="replace") for w in BOXES)
    assert "lease lost" in logs  # the long outage stopped cameras...
    assert "Traceback" not in logs  # ...cleanly
