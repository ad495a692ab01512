"""Live reload of cameras.yaml with real parts: loopback RTSP cameras (real H.264), the real
YOLO export, SQLite, the control socket used by `pantau reload` (run as a real subprocess),
SIGHUP on a real `pantau run`, and scaled out a real server and worker on redis-server.

- one camera's changed rule rebuilds that camera's analytics only: the other cameras keep
  their capture, recorder and engine, and every camera's packets keep flowing without a gap;
  the open incident of the unchanged rule on the rebuilt camera stays open, the same incident;
- an invalid file is refused with the validator's file:line errors (CLI and API), and the
  running config stays; a changed storage section is reported as needing a restart;
- cameras added and removed start and stop; the wall's API and pages hear of it;
- scaled out, the server's reload reaches the worker through Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from events.model import IncidentKind
from pantau.config import load
from pantau.config_diff import LIVE_SECTIONS, RESTART_SECTIONS, diff
from pantau.local_fleet import REPO, LocalFleet, holders, until
from pantau.redis_server import RedisServer, free_port
from pantau.reloader import ConfigSource
from pantau.rtsp_server import RtspTestServer
from pantau.runtime import Runtime
from tests.conftest import TEST_PASSWORD, bearer, staff_token, wall_page

CONFIG = """\
# Kabupaten test site: comments and order are the administrator's
server: {{host: 127.0.0.1, port: {port}}}
storage: {{data_dir: {data_dir}}}
detector: {{model: {model}}}
recording: {{segment_s: 2}}
cameras:
  - id: plaza
    name: Plaza
    url: {plaza}
    kecamatan: Kota
    detect_fps: 2
    zones:
      - {{id: all, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: crowd, zone: all, min_count: 2, for: 1, clear_after: 30}}
      - {{type: crowd, zone: all, min_count: {plaza_big}, for: 1, clear_after: 5}}
  - id: lobby
    name: Lobby
    url: {lobby}
    detect_fps: 2
    record: true
    zones:
      - {{id: all, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: crowd, zone: all, min_count: 3, for: 1, clear_after: 2}}
{extra}opds:
  - {{id: satpol-pp, name: Satpol PP, contacts: [{{name: Piket, phone: "110"}}]}}
routing:
  - {{match: {{kinds: [crowd]}}, opds: [satpol-pp]}}
walls:
  - {{id: utama, layout: 2x2, cameras: [plaza, lobby]}}
"""
GATE = """\
  - id: gate
    name: Gerbang
    url: {gate}
    detect_fps: 2
"""


def write(path: Path, **kw: Any) -> None:
    values = {"plaza_big": 50, "extra": "", **kw}
    path.write_text(CONFIG.format(**values), encoding="utf-8")


def pantau_reload(
    path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pantau.cli", "reload", str(path)], cwd=REPO, text=True,
        capture_output=True, timeout=120, env={**os.environ, "YOLO_OFFLINE": "1"},
    )  # fmt: skip


class PacketClock:
    """Arrival times of one camera's packets, as WebRTC viewers get them (capture thread)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, data: bytes, keyframe: bool) -> None:
        self.times.append(time.monotonic())

    def max_gap(self, start: float, end: float) -> float:
        seen = [t for t in self.times if start <= t <= end]
        edges = [start, *seen, end]
        return max(b - a for a, b in itertools.pairwise(edges))


@pytest.fixture
async def site(
    tmp_path: Path,
    model_path: Path,
    people_clip: Path,
    builtin_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
) -> AsyncIterator[tuple[Runtime, Path, dict[str, str]]]:
    rtsp = rtsp_server({"plaza": people_clip, "lobby": builtin_clip, "gate": builtin_clip})
    urls = {name: rtsp.url(name) for name in ("plaza", "lobby", "gate")}
    path = tmp_path / "cameras.yaml"
    kw = {"port": 0, "data_dir": tmp_path / "var", "model": model_path, **urls}
    write(path, **kw)
    runtime = Runtime(load(path), tmp_path, source=ConfigSource(path))
    await runtime.start()
    try:
        yield runtime, path, {k: str(v) for k, v in kw.items()}
    finally:
        await runtime.stop()


def test_every_section_is_either_live_or_needs_a_restart() -> None:
    from pantau.config import PantauConfig

    sections = set(PantauConfig.model_fields) - {"cameras"}
    assert sections == set(LIVE_SECTIONS) | set(RESTART_SECTIONS)
    assert not set(LIVE_SECTIONS) & set(RESTART_SECTIONS)


async def open_incident(runtime: Runtime, camera: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for inc in await runtime.store.incidents(active=True):
            if inc.camera_id == camera and inc.kind == IncidentKind.CROWD:
                return inc
        await asyncio.sleep(0.5)
    pytest.fail(f"no open crowd incident on {camera} in {timeout} s")


@pytest.mark.slow
async def test_a_changed_rule_rebuilds_only_its_camera_and_nothing_stops(
    site: tuple[Runtime, Path, dict[str, str]],
) -> None:
    runtime, path, kw = site
    host = runtime.host
    assert host is not None
    incident = await open_incident(runtime, "plaza", 60)  # rule 0 of plaza (2 persons)
    before = {cid: (r.worker, r.worker.capture, r.analytics) for cid, r in host.running.items()}
    reconnects = {cid: r.worker.capture.reconnects for cid, r in host.running.items()}
    recorder = host.recording.recorders["lobby"] if host.recording else None
    assert recorder is not None and recorder._proc is not None
    ffmpeg_pid = recorder._proc.pid
    clocks = {cid: PacketClock() for cid in host.running}
    for cid, clock in clocks.items():
        host.add_packet_listener(cid, clock)
    token = await staff_token(runtime, "viewer")
    ws_url = f"ws://127.0.0.1:{runtime.web_port}/ws"
    async with websockets.connect(ws_url, additional_headers=bearer(token)) as ws:
        assert json.loads(await ws.recv())["type"] == "snapshot"
        await asyncio.sleep(3)
        start = time.monotonic()
        write(path, plaza_big=40, **kw)  # plaza's second rule changes, its first does not
        done = await asyncio.to_thread(pantau_reload, path)
        assert done.returncode == 0, done.stderr
        assert "cameras reanalysed: plaza" in done.stdout, done.stdout
        seen: list[dict[str, Any]] = []
        while not any(m["type"] == "config.changed" for m in seen):
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        changed = next(m for m in seen if m["type"] == "config.changed")
        assert changed["event"]["cameras"] == ["plaza"]
        await asyncio.sleep(4)
        end = time.monotonic()
    for cid, clock in clocks.items():
        host.remove_packet_listener(cid, clock)
        gap = clock.max_gap(start, end)
        assert gap < 1.0, f"{cid}: {gap:.2f} s without a packet across the reload"
    lobby, plaza = host.running["lobby"], host.running["plaza"]
    assert (lobby.worker, lobby.worker.capture, lobby.analytics) == before["lobby"]
    assert recorder._proc is not None and recorder._proc.pid == ffmpeg_pid  # never restarted
    # plaza: same capture, new analytics that kept the unchanged rule and its incident
    assert (plaza.worker, plaza.worker.capture) == before["plaza"][:2]
    assert plaza.analytics is not before["plaza"][2]
    assert plaza.analytics._crowd[0] is before["plaza"][2]._crowd[0]
    assert plaza.analytics._crowd[1].rule.min_count == 40
    still = await runtime.store.incident(incident.id)
    assert still is not None and not still.state.closed, "the unchanged rule's incident closed"
    assert {cid: r.worker.capture.reconnects for cid, r in host.running.items()} == reconnects
    assert runtime.config.cameras[0].rules[1].min_count == 40
    # the same answer over the API, audited; nothing changed the second time
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.web_port}") as http:
        admin = await staff_token(runtime, "admin")
        r = await http.post("/api/config/reload", headers=bearer(admin))
        assert r.status_code == 200 and r.json()["ok"] and r.json()["changed"] == {}
        r = await http.post("/api/config/reload", headers=bearer(token))
        assert r.status_code == 403
        audit = (await http.get("/api/audit", headers=bearer(admin))).json()
        assert any(a["action"] == "config.reload" for a in audit)


@pytest.mark.slow
async def test_invalid_file_is_refused_and_cameras_come_and_go(
    site: tuple[Runtime, Path, dict[str, str]],
) -> None:
    runtime, path, kw = site
    host = runtime.host
    assert host is not None
    running_config = runtime.config
    text = path.read_text()
    bad = text.replace("[[0, 0], [1, 0], [1, 1], [0, 1]]", "[[0, 0], [1, 0]]", 1)
    path.write_text(bad)
    done = await asyncio.to_thread(pantau_reload, path)
    assert done.returncode == 2
    line = next(i for i, t in enumerate(bad.splitlines(), 1) if "[[0, 0], [1, 0]]}" in t)
    assert f"cameras.yaml:{line}: cameras[0].zones[0].points" in done.stderr, done.stderr
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.web_port}") as http:
        admin = await staff_token(runtime, "admin")
        r = await http.post("/api/config/reload", headers=bearer(admin))
        assert r.status_code == 422
        assert any(f"cameras.yaml:{line}:" in e["msg"] for e in r.json()["errors"]), r.json()
        assert runtime.config is running_config
        assert runtime.last_reload is not None and not runtime.last_reload.ok

        # a camera added, storage moved (needs a restart: reported, not applied)
        write(path, extra=GATE.format(gate=kw["gate"]), **{**kw, "data_dir": kw["data_dir"] + "2"})
        r = await http.post("/api/config/reload", headers=bearer(admin))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["restart_needed"] == ["storage"]
        assert body["changed"]["cameras_added"] == ["gate"]
        assert runtime.config.storage == running_config.storage
        assert "gate" in host.running
        cams = (await http.get("/api/cameras", headers=bearer(admin))).json()
        assert [c["id"] for c in cams] == ["plaza", "lobby", "gate"]

        async def gate_frames() -> bool:
            r = await http.get("/api/cameras/gate/frame.jpg", headers=bearer(admin))
            return r.status_code == 200 and r.content[:2] == b"\xff\xd8"

        deadline = time.monotonic() + 30
        while not await gate_frames():
            assert time.monotonic() < deadline, "the added camera sent no picture"
            await asyncio.sleep(0.5)

        # and removed again; plaza's rule untouched all along
        plaza = host.running["plaza"].analytics
        write(path, **kw)
        r = await http.post("/api/config/reload", headers=bearer(admin))
        assert r.json()["changed"]["cameras_removed"] == ["gate"]
        assert "gate" not in host.running and host.running["plaza"].analytics is plaza
        r = await http.get("/api/cameras/gate/frame.jpg", headers=bearer(admin))
        assert r.status_code == 404


@pytest.mark.slow
async def test_sighup_reloads_a_running_pantau(
    tmp_path: Path, model_path: Path, builtin_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
) -> None:  # fmt: skip
    rtsp = rtsp_server({"plaza": builtin_clip, "lobby": builtin_clip})
    port = free_port()
    path = tmp_path / "cameras.yaml"
    kw = {"port": port, "data_dir": tmp_path / "var", "model": model_path,
          "plaza": rtsp.url("plaza"), "lobby": rtsp.url("lobby")}  # fmt: skip
    write(path, **kw)
    env = {**os.environ, "YOLO_OFFLINE": "1", "PANTAU_ADMIN_PASSWORD": TEST_PASSWORD}
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        argv = [sys.executable, "-m", "pantau.cli", "run", str(path)]
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 90
            token = None
            while token is None:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                try:
                    creds = {"username": "admin", "password": TEST_PASSWORD}
                    r = await http.post("/api/login", json=creds)
                    token = r.json()["token"] if r.status_code == 200 else None
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
            http.headers["Authorization"] = f"Bearer {token}"
            path.write_text(path.read_text().replace("name: Lobby", "name: Lobi Utama"))
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 20
            while True:
                names = {c["id"]: c["name"] for c in (await http.get("/api/cameras")).json()}
                if names["lobby"] == "Lobi Utama":
                    break
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(30)
    text = log.read_text()
    assert "reload by SIGHUP: cameras reanalysed: lobby" in text, text[-3000:]
    assert text.count("camera=plaza started") == 1 and text.count("camera=lobby started") == 1


def test_diff_sorts_changes_by_how_they_apply(tmp_path: Path, model_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    urls = {"plaza": "rtsp://127.0.0.1:1/plaza", "lobby": "rtsp://127.0.0.1:1/lobby"}
    kw = {"port": 8080, "data_dir": tmp_path / "var", "model": model_path, **urls}
    write(path, **kw)
    old = load(path)
    write(path, **{**kw, "lobby": "rtsp://127.0.0.1:2/lobby", "port": 8081}, plaza_big=9)
    new = load(path)
    change = diff(old, new)
    assert change.cameras_restarted == ["lobby"] and change.cameras_reanalysed == ["plaza"]
    assert change.restart_needed == ["server"] and change.sections == []
    same = ConfigSource(path, port=8080).read()[1]  # --port given at start: not a change
    assert diff(old, same).restart_needed == []


# ---- scaled out ---------------------------------------------------------------------------
FLEET = """\
server: {{host: 127.0.0.1, port: {port}}}
storage: {{data_dir: {data_dir}}}
bus: redis://127.0.0.1:{redis}/0
detector: {{model: {model}}}
recording: {{segment_s: 2, pre_roll_s: 2, post_roll_s: 2}}
fleet: {{lease_ttl_s: 6, claim_interval_s: 1, heartbeat_s: 1}}
cameras:
{cameras}"""
FLEET_CAMERA = """\
  - id: {id}
    name: Kamera {id}
    url: {url}
    detect_fps: 2
    record: true
    zones:
      - {{id: all, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: crowd, zone: all, min_count: {min_count}, for: 1, clear_after: 2}}
"""


@pytest.mark.slow
async def test_scaled_out_the_servers_reload_reaches_the_worker(
    tmp_path: Path, model_path: Path, builtin_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
) -> None:  # fmt: skip
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    rtsp = rtsp_server({c: builtin_clip for c in ("cam-1", "cam-2", "cam-3")})
    port = free_port()
    path = tmp_path / "cameras.yaml"

    def write_fleet(cams: list[tuple[str, int]]) -> None:
        cameras = "".join(FLEET_CAMERA.format(id=c, url=rtsp.url(c), min_count=n) for c, n in cams)
        path.write_text(FLEET.format(port=port, data_dir=tmp_path / "var", redis=redis.port,
                                     model=model_path, cameras=cameras))  # fmt: skip

    write_fleet([("cam-1", 3), ("cam-2", 3)])
    f = LocalFleet(tmp_path, path, port, {"PANTAU_ADMIN_PASSWORD": TEST_PASSWORD})
    f.server()
    f.worker("box-a")
    try:
        async with httpx.AsyncClient(base_url=f.base_url, timeout=10) as http:

            async def login() -> str | None:
                creds = {"username": "admin", "password": TEST_PASSWORD}
                r = await http.post("/api/login", json=creds)
                return r.json()["token"] if r.status_code == 200 else None

            http.headers["Authorization"] = f"Bearer {await until('login', login, 90, f)}"

            def held(expected: set[str]) -> Callable[[], Any]:
                async def check() -> bool:
                    got = holders((await http.get("/api/workers")).json())
                    return set(got) == expected and set(got.values()) == {"box-a"}

                return check

            await until("both cameras on box-a", held({"cam-1", "cam-2"}), 60, f)
            write_fleet([("cam-1", 3), ("cam-2", 4), ("cam-3", 3)])
            done = await asyncio.to_thread(pantau_reload, path)
            assert done.returncode == 0, done.stderr + f.logs()
            assert "cameras added: cam-3" in done.stdout and "reanalysed: cam-2" in done.stdout
            await until("cam-3 on box-a", held({"cam-1", "cam-2", "cam-3"}), 30, f)
            names = [c["id"] for c in (await http.get("/api/cameras")).json()]
            assert names == ["cam-1", "cam-2", "cam-3"]

            write_fleet([("cam-1", 3), ("cam-3", 3)])
            done = await asyncio.to_thread(pantau_reload, path)
            assert done.returncode == 0 and "cameras removed: cam-2" in done.stdout
            await until("cam-2 released", held({"cam-1", "cam-3"}), 30, f)

            # a rule test on an incident's clip: fetched from box-a, replayed on the server
            async def clipped() -> str | None:
                for inc in (await http.get("/api/incidents?limit=50")).json():
                    r = await http.get(f"/api/incidents/{inc['id']}/clip")
                    if r.status_code == 200 and inc["camera_id"] == "cam-1":
                        return str(inc["id"])
                return None

            incident_id = await until("a clip of cam-1", clipped, 90, f)
            r = await http.post("/api/replays", json={"camera_id": "cam-1"})
            assert r.status_code == 409 and "workers" in r.json()["detail"]
            r = await http.post("/api/replays", json={"incident_id": incident_id})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]

            async def replayed() -> dict[str, Any] | None:
                job = (await http.get(f"/api/replays/{job_id}")).json()
                return job if job["state"] != "running" else None

            job = await until("the rule test", replayed, 120, f)
            assert job["state"] == "done", job
            assert job["source"].endswith("(from box-a)") and job["rules"][0]["incidents"], job
    finally:
        f.stop()
        redis.stop()
    worker_log = (tmp_path / "box-a.log").read_text()
    assert "took cameras.yaml (by pantau reload" in worker_log, worker_log[-3000:]
    assert "analytics rebuilt" in worker_log  # cam-2's rule, in place
    assert worker_log.count("camera=cam-1 started") == 1  # never restarted


@pytest.mark.slow
async def test_the_wall_page_follows_a_reload_without_restarting_its_tiles(
    site: tuple[Runtime, Path, dict[str, str]], browser: Any, tmp_path: Path
) -> None:

    runtime, path, kw = site
    page = await wall_page(browser, runtime, "operator", 1920, 1080)
    tile = "document.querySelector('.tile[data-camera=plaza]')"
    await page.wait_for_function(
        f"() => {{ const t = {tile}; const v = t && t.querySelector('video');"
        " return t && t.dataset.mode === 'webrtc' && v.currentTime > 1 }", timeout=40000,
    )  # fmt: skip
    stream = f"{tile}.querySelector('video').srcObject"
    await page.evaluate(f"() => {{ window.__tile = {tile}; window.__stream = {stream}; }}")
    walls = "  - {id: utama, layout: 2x2, cameras: [plaza, lobby]}"
    text = CONFIG.format(plaza_big=50, extra=GATE.format(gate=kw["gate"]), **kw)
    text = text.replace("name: Lobby", "name: Lobi Utama").replace(
        walls, "  - {id: utama, layout: 2x2, cameras: [plaza, lobby, gate]}"
    )
    path.write_text(text)
    result = await runtime.reload("test")
    assert result.ok and result.changed["cameras_added"] == ["gate"], result
    await page.wait_for_function(
        "() => { const t = document.querySelector('.tile[data-camera=lobby] .cam-name');"
        " const g = document.querySelector('.tile[data-camera=gate]');"
        " return t && t.textContent.startsWith('Lobi Utama') && g"
        " && g.querySelector('.cam-name').textContent.startsWith('Gerbang') }",
        timeout=15000,
    )
    same = await page.evaluate(f"() => window.__tile === {tile} && {stream} === window.__stream")
    assert same, "the plaza tile was rebuilt or its live stream restarted by the reload"
    # PANTAU_TEST_PNG=<folder> keeps the picture for a person to look at
    await page.screenshot(
        path=str(Path(os.environ.get("PANTAU_TEST_PNG", tmp_path)) / "reload.png")
    )
