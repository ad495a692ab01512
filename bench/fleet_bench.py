"""Fleet benchmark (scaled out on Redis): failover time, Redis load per camera, desk throughput.

    .venv/bin/python -m bench.fleet_bench [--kills 10] [--parts failover,load,desk] [--quick]

- failover: one `pantau server` and two `pantau worker` processes on four loopback RTSP
  cameras (the PETS-2009 clip, crowd rules), the product's default fleet timings (lease TTL
  8 s, claim every 2 s, heartbeat 2 s). Each round kill -9s the worker that holds cameras,
  times, per camera it held, when its lease names another worker (Redis, polled every 50 ms)
  and when the server delivers a still of it from the new owner (GET frame.jpg through the
  server, polled every 100 ms), then restarts the killed worker (it takes no camera: none is
  free) and waits until it heartbeats before the next kill. p50/p95/max over the rounds.
- load: the same site in steady state at 2 and 4 cameras on two workers, and 4 cameras on
  one worker: Redis commands/s (INFO commandstats), bytes/s in and out (INFO stats), and the
  events on the stream by type, over a fixed window. From the three runs: the cost of one
  more camera, of one more worker box, and of the server itself, and so a 200-camera site.
- desk: the server's desk alone (one core: this process), fed by a synthetic publisher
  process with observations of 50, 200 and 1000 cameras (each camera: opened, 8 updates,
  closed, interleaved across cameras, ~10 000 per run) through RedisStreamBus with the fence
  check per observation, as `pantau server` runs it; beside the same desk on the MemoryBus in
  one process (`pantau run`), the same run. Observations/s and the desk's CPU seconds.

Prints tables and writes bench/results/fleet.json. Everything runs on 127.0.0.1 and ends by
itself; redis-server with AOF appendfsync everysec.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import resource
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis as sync_redis
import redis.asyncio as aioredis

from bench.ingest_bench import cpu_model
from bench.table import print_table
from events.bus import Bus, MemoryBus
from events.desk import IncidentDesk
from events.desk_feed import DeskFeed
from events.model import (
    IncidentKind,
    Observation,
    ObservationEvent,
    ObservationPhase,
    Severity,
    utcnow,
)
from events.redis_bus import RedisStreamBus
from events.store import Store
from pantau.demo_media import default_cache_dir, find_assets, resolve_clip
from pantau.leases import CameraLeases
from pantau.local_fleet import LocalFleet, holders, until
from pantau.redis_server import RedisServer, free_port
from pantau.rtsp_server import RtspTestServer

RESULTS = Path(__file__).parent / "results"
PASSWORD = "fleet-bench-1"
CAMERAS = [f"cam-{i}" for i in range(1, 5)]
KEYS = ("commands_s", "bytes_in_s", "bytes_out_s")  # the Redis load figures

CONFIG = """\
server: {{host: 127.0.0.1, port: {web_port}}}
storage: {{data_dir: {data_dir}}}
bus: {bus}
detector: {{model: {model}}}
cameras:
{cameras}
opds:
  - {{id: satpol-pp, name: Satpol PP, contacts: [{{name: Piket, phone: "110"}}]}}
routing:
  - {{match: {{kinds: [crowd]}}, opds: [satpol-pp]}}
"""
CAMERA = """\
  - id: {id}
    name: Kamera {id}
    url: {url}
    kecamatan: Kota
    detect_fps: 2
    zones:
      - {{id: all, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: crowd, zone: all, min_count: 3, for: 2, clear_after: 10}}
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---- a real site on this machine ----------------------------------------------------------
@dataclass
class Site:
    fleet: LocalFleet
    redis: RedisServer
    http: httpx.AsyncClient
    cameras: list[str]


async def open_site(
    folder: Path, rtsp: RtspTestServer, model: str, cameras: list[str], workers: list[str]
) -> Site:
    folder.mkdir(parents=True, exist_ok=True)
    redis = RedisServer(folder / "redis", fsync="everysec")
    redis.start()
    web_port = free_port()
    config = folder / "cameras.yaml"
    config.write_text(
        CONFIG.format(
            web_port=web_port, data_dir=folder / "var", bus=redis.url, model=model,
            cameras="".join(CAMERA.format(id=c, url=rtsp.url(c)) for c in cameras),
        )
    )  # fmt: skip
    fleet = LocalFleet(folder, config, web_port, {"PANTAU_ADMIN_PASSWORD": PASSWORD})
    fleet.server()
    for name in workers:
        fleet.worker(name)
    http = httpx.AsyncClient(base_url=fleet.base_url, timeout=10)
    site = Site(fleet, redis, http, cameras)
    token = await wait("server up", lambda: login(http), 120, site)
    http.headers["Authorization"] = f"Bearer {token}"
    await wait("every camera delivering", lambda: all_held(site), 180, site)
    return site


async def close_site(site: Site) -> None:
    await site.http.aclose()
    site.fleet.stop()
    site.redis.stop()


async def login(http: httpx.AsyncClient) -> str | None:
    r = await http.post("/api/login", json={"username": "admin", "password": PASSWORD})
    return str(r.json()["token"]) if r.status_code == 200 else None


async def held_now(site: Site) -> dict[str, str]:
    r = await site.http.get("/api/workers")
    r.raise_for_status()
    return holders(r.json())


async def all_held(site: Site) -> dict[str, str] | None:
    held = await held_now(site)
    return held if len(held) == len(site.cameras) else None


async def wait(what: str, check: Any, timeout: float, site: Site) -> Any:
    return await until(what, check, timeout, site.fleet)


# ---- failover ------------------------------------------------------------------------------
async def bench_failover(
    folder: Path, rtsp: RtspTestServer, model: str, kills: int
) -> dict[str, Any]:
    site = await open_site(folder, rtsp, model, CAMERAS, ["box-a", "box-b"])
    r = sync_redis.Redis.from_url(site.redis.url, decode_responses=True)
    rounds: list[dict[str, Any]] = []
    try:
        for n in range(kills):
            held = await wait("every camera delivering", lambda: all_held(site), 60, site)
            counts = {w: list(held.values()).count(w) for w in ("box-a", "box-b")}
            victim = max(counts, key=lambda w: counts[w])
            moved = [c for c, w in held.items() if w == victim]
            site.fleet.procs[victim].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            lease_at: dict[str, float] = {}
            frame_at: dict[str, float] = {}
            while len(frame_at) < len(moved) and time.monotonic() - killed < 60:
                for cid in moved:
                    if cid not in lease_at:
                        owner = str(r.get(f"pantau:lease:{cid}") or "")
                        if owner and not owner.startswith(f"{victim}:"):
                            lease_at[cid] = time.monotonic() - killed
                    elif cid not in frame_at:
                        got = await site.http.get(f"/api/cameras/{cid}/frame.jpg")
                        if got.status_code == 200:
                            frame_at[cid] = time.monotonic() - killed
                await asyncio.sleep(0.05)
            if len(frame_at) < len(moved):
                raise TimeoutError(f"round {n}: {victim}'s cameras not back in 60 s")
            rounds.append({
                "killed": victim, "cameras": len(moved),
                "lease_s": max(lease_at.values()), "frames_s": max(frame_at.values()),
                "per_camera_frames_s": sorted(frame_at.values()),
            })  # fmt: skip
            last = rounds[-1]
            print(f"  kill {n + 1}/{kills}: {victim} ({len(moved)} cameras): "
                  f"lease {last['lease_s']:.1f} s, frames {last['frames_s']:.1f} s")  # fmt: skip
            site.fleet.procs[victim].wait(10)
            site.fleet.worker(victim)
            await wait(f"{victim} heartbeating", lambda v=victim: asyncio.to_thread(  # type: ignore[misc]
                r.exists, f"pantau:worker:{v}"), 120, site)  # fmt: skip
    finally:
        await close_site(site)
    frames = [x["frames_s"] for x in rounds]
    leases = [x["lease_s"] for x in rounds]
    return {
        "kills": len(rounds), "rounds": rounds,
        "lease_p50_s": pct(leases, 0.5), "lease_p95_s": pct(leases, 0.95),
        "lease_max_s": max(leases),
        "frames_p50_s": pct(frames, 0.5), "frames_p95_s": pct(frames, 0.95),
        "frames_max_s": max(frames), "target_s": 15.0,
        "timings": {"lease_ttl_s": 8, "claim_interval_s": 2, "heartbeat_s": 2},
    }  # fmt: skip


# ---- Redis load ----------------------------------------------------------------------------
def redis_counters(r: sync_redis.Redis) -> dict[str, float]:
    stats = r.info("stats")
    found: dict[str, float] = {
        "bytes_in": float(stats["total_net_input_bytes"]),
        "bytes_out": float(stats["total_net_output_bytes"]),
        "commands": float(stats["total_commands_processed"]),
    }
    for name, value in r.info("commandstats").items():
        found[f"cmd:{name.removeprefix('cmdstat_')}"] = float(value["calls"])
    return found


def stream_types(r: sync_redis.Redis, start_ms: int, end_ms: int) -> dict[str, dict[str, float]]:
    """Events on the bus in the window, by type: how many and how many bytes."""
    found: dict[str, dict[str, float]] = {}
    entries: list[Any] = r.xrange("pantau:events", f"{start_ms}-0", f"{end_ms}-0")  # type: ignore[assignment]
    for _, fields in entries:
        body = fields[b"e"]
        kind = json.loads(body)["type"]
        entry = found.setdefault(kind, {"count": 0.0, "bytes": 0.0})
        entry["count"] += 1
        entry["bytes"] += len(body)
    return found


async def bench_load_one(
    folder: Path, rtsp: RtspTestServer, model: str, cameras: int, workers: int, window_s: float
) -> dict[str, Any]:
    names = [f"box-{chr(ord('a') + i)}" for i in range(workers)]
    site = await open_site(folder, rtsp, model, CAMERAS[:cameras], names)
    r = sync_redis.Redis.from_url(site.redis.url)
    try:
        await asyncio.sleep(10)  # past start-up: claims, first observations, snapshot copies
        before = redis_counters(r)
        t0 = time.time()
        await asyncio.sleep(window_s)
        after = redis_counters(r)
        t1 = time.time()
        held = await held_now(site)
    finally:
        types = stream_types(r, int(t0 * 1000), int(t1 * 1000))
        await close_site(site)
    span = t1 - t0
    rates = {k: (after[k] - before.get(k, 0.0)) / span for k in after}
    return {
        "cameras": cameras, "workers": workers, "window_s": round(span, 1),
        "all_running": len(held) == cameras,
        "commands_s": rates["commands"], "bytes_in_s": rates["bytes_in"],
        "bytes_out_s": rates["bytes_out"],
        "by_command_s": {k[4:]: v for k, v in sorted(rates.items()) if k.startswith("cmd:") and v},
        "events_s": {k: v["count"] / span for k, v in types.items()},
        "event_bytes_s": {k: v["bytes"] / span for k, v in types.items()},
    }  # fmt: skip


def load_model(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per camera: the 4-camera, 2-worker site's whole load over its 4 cameras (an upper bound:
    the server's and the workers' own share is in it). Per worker box: 4 cameras on 2 workers
    minus the same on 1. A 200-camera site on 10 boxes: 200 of the first, plus the 8 boxes
    beyond the 2 measured. The marginal camera (2 -> 4 cameras) is listed too; it is noisy,
    since observations and snapshot copies come in bursts with the people on the clip."""
    by = {(x["cameras"], x["workers"]): x for x in runs}
    c4 = by.get((4, 2))
    if c4 is None:
        return {}
    c2, w1 = by.get((2, 2)), by.get((4, 1))
    out: dict[str, Any] = {}
    for key in KEYS:
        entry = {"per_camera": c4[key] / 4}
        if c2 is not None:
            entry["marginal_camera"] = (c4[key] - c2[key]) / 2
        if w1 is not None:
            entry["per_worker"] = max(0.0, c4[key] - w1[key])
            site = 200 * entry["per_camera"] + 8 * entry["per_worker"]
            entry["site_200_cameras_10_workers"] = site
        out[key] = entry
    out["observations_s_per_camera"] = c4["events_s"].get("observation", 0.0) / 4
    return out


# ---- desk throughput -----------------------------------------------------------------------
STEPS = 10  # per camera cycle: opened, 8 updates, closed


def synthetic(cameras: int, total: int) -> list[ObservationEvent]:
    """Observations of `cameras` cameras, cycles interleaved across cameras as a site's are."""
    cycles = max(1, total // (cameras * STEPS))
    events: list[ObservationEvent] = []
    now = utcnow()
    for cycle in range(cycles):
        ids = {c: f"obs_syn_{cycle}_{c}" for c in range(cameras)}
        for step in range(STEPS):
            phase = ObservationPhase.UPDATED
            if step in (0, STEPS - 1):
                phase = ObservationPhase.OPENED if step == 0 else ObservationPhase.CLOSED
            for c in range(cameras):
                obs = Observation(
                    id=ids[c], phase=phase, camera_id=f"cam-{c}", rule="crowd-0",
                    kind=IncidentKind.CROWD, severity=Severity.MEDIUM,
                    title=f"Kerumunan di kamera {c}", zone_id="all", kecamatan="Kota",
                    started_at=now, at=utcnow(), current_count=5 + step, peak_count=5 + step,
                    threshold=5, track_ids=tuple(range(step, step + 6)),
                    worker=f"box-{c % 10}", lease_token=1,
                )  # fmt: skip
                events.append(ObservationEvent(observation=obs))
    return events


def publish_process(url: str, cameras: int, total: int) -> None:
    """The synthetic publishers: another process, as workers are, XADDs in pipelines."""
    r = sync_redis.Redis.from_url(url)
    pipe = r.pipeline(transaction=False)
    for i, event in enumerate(synthetic(cameras, total)):
        pipe.xadd("pantau:events", {"e": event.model_dump_json()}, maxlen=100_000, approximate=True)
        if i % 100 == 99:
            pipe.execute()
    pipe.execute()


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_desk(
    folder: Path, bus: Bus, cameras: int, total: int, redis_url: str | None
) -> dict[str, Any]:
    """The desk as the server runs it (redis_url: fed over Redis by another process, a fence
    check per observation) or as `pantau run` does (MemoryBus, fed in this process)."""
    store = Store(folder / "pantau.db")
    await store.open()
    desk = IncidentDesk(store, bus.publish, [])
    expected = max(1, total // (cameras * STEPS)) * cameras * STEPS
    leases: aioredis.Redis | None = None
    if redis_url is not None:
        sync_redis.Redis.from_url(redis_url).mset(
            {f"pantau:fence:cam-{c}": 1 for c in range(cameras)}
        )
        leases = aioredis.Redis.from_url(redis_url)
        desk.fence = CameraLeases(leases).fence
    feed = DeskFeed(desk, bus)
    await feed.start()
    events = [] if redis_url is not None else synthetic(cameras, total)
    cpu0, t0 = cpu_s(), time.perf_counter()
    proc = None
    if redis_url is not None:
        proc = multiprocessing.get_context("spawn").Process(
            target=publish_process, args=(redis_url, cameras, total)
        )
        proc.start()
    for event in events:
        await bus.publish(event)
    deadline = time.monotonic() + 300
    while feed.observations < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    if proc is not None:
        proc.join(30)
    if leases is not None:
        await leases.aclose()
    await bus.close()
    await feed.stop()
    incidents = len(await store.incidents(limit=100_000))
    await store.close()
    return {
        "bus": "redis" if redis_url else "memory", "cameras": cameras,
        "observations": feed.observations, "expected": expected,
        "observations_s": feed.observations / wall, "wall_s": wall, "desk_cpu_s": cpu,
        "observations_per_cpu_s": feed.observations / cpu if cpu else float("nan"),
        "stale_dropped": desk.stale_dropped, "incidents": incidents,
    }  # fmt: skip


async def bench_desk(folder: Path, sizes: list[int], total: int) -> list[dict[str, Any]]:
    rows = []
    for cameras in sizes:
        mem_dir = folder / f"desk-mem-{cameras}"
        mem_dir.mkdir(parents=True)
        rows.append(await run_desk(mem_dir, MemoryBus(), cameras, total, None))
        red_dir = folder / f"desk-redis-{cameras}"
        redis = RedisServer(red_dir / "redis", fsync="everysec")
        redis.start()
        try:
            bus = RedisStreamBus(redis.url)
            rows.append(await run_desk(red_dir, bus, cameras, total, redis.url))
        finally:
            redis.stop()
    return rows


# ---- main ----------------------------------------------------------------------------------
async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    assets = find_assets()
    model = args.model or (
        str(assets / "models/yolo11n_int8_openvino_model") if assets else "yolo11n.pt"
    )
    clip = resolve_clip("pets2009_vtest_480x360_tiodh.mp4", assets, default_cache_dir())
    parts = set(args.parts.split(","))
    out: dict[str, Any] = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        folder = Path(tmp)
        if parts & {"failover", "load"}:
            rtsp = RtspTestServer({c: clip for c in CAMERAS}).start()
            try:
                if "failover" in parts:
                    print(f"failover: {args.kills} kills")
                    out["failover"] = await bench_failover(
                        folder / "failover", rtsp, model, args.kills
                    )
                if "load" in parts:
                    shapes = [(2, 2), (4, 2)] + ([] if args.quick else [(4, 1)])
                    runs = []
                    for cams, workers in shapes:
                        print(f"load: {cams} cameras on {workers} workers")
                        runs.append(await bench_load_one(
                            folder / f"load-{cams}-{workers}", rtsp, model, cams, workers,
                            args.window,
                        ))  # fmt: skip
                    out["load"] = {"runs": runs, "model": load_model(runs)}
            finally:
                rtsp.stop()
        if "desk" in parts:
            sizes = [50, 200] if args.quick else [50, 200, 1000]
            print(f"desk: {sizes} cameras, ~{args.observations} observations each")
            out["desk"] = await bench_desk(folder, sizes, args.observations)
    return out


def memory_row(rows: list[dict[str, Any]], cameras: int) -> dict[str, Any]:
    return next(m for m in rows if m["bus"] == "memory" and m["cameras"] == cameras)


def report(out: dict[str, Any]) -> None:
    print(f"\n{out['machine']['cpu']}, {out['machine']['cores']} cores")
    if "failover" in out:
        f = out["failover"]
        print(
            f"\nFailover, {f['kills']} kills -9 (lease TTL 8 s, claim 2 s): seconds from the kill"
        )
        print_table([("until", 28), ("p50", 8), ("p95", 8), ("max", 8), ("target", 8)], [
            ("lease held by another box", f"{f['lease_p50_s']:.1f}", f"{f['lease_p95_s']:.1f}",
             f"{f['lease_max_s']:.1f}", ""),
            ("frames from the new owner", f"{f['frames_p50_s']:.1f}", f"{f['frames_p95_s']:.1f}",
             f"{f['frames_max_s']:.1f}", "15.0"),
        ])  # fmt: skip
    if "load" in out:
        print("\nRedis load in steady state")
        print_table([("site", 26), ("cmds/s", 9), ("in B/s", 10), ("out B/s", 10),
                     ("obs/s", 8), ("evalsha/s", 10), ("SET/s", 8)], [
            (f"{x['cameras']} cam, {x['workers']} workers", f"{x['commands_s']:.0f}",
             f"{x['bytes_in_s']:.0f}", f"{x['bytes_out_s']:.0f}",
             f"{x['events_s'].get('observation', 0):.2f}",
             f"{x['by_command_s'].get('evalsha', 0):.1f}",
             f"{x['by_command_s'].get('set', 0):.2f}")
            for x in out["load"]["runs"]
        ])  # fmt: skip
        m = out["load"]["model"]
        if m:
            print_table([("Redis load", 26), ("cmds/s", 9), ("in B/s", 10), ("out B/s", 10)], [
                (label, *(f"{m[k].get(part, float('nan')):.0f}" for k in KEYS))
                for label, part in (("per camera (4 cam site)", "per_camera"),
                                    ("marginal camera (2->4)", "marginal_camera"),
                                    ("one worker box", "per_worker"),
                                    ("200 cameras, 10 boxes", "site_200_cameras_10_workers"))
            ])  # fmt: skip
    if "desk" in out:
        print("\nDesk throughput (one core), synthetic observations")
        print_table([("bus", 10), ("cameras", 9), ("obs", 8), ("obs/s", 9), ("obs/cpu-s", 10),
                     ("incidents", 10), ("vs memory", 10)], [
            (x["bus"], x["cameras"], x["observations"], f"{x['observations_s']:.0f}",
             f"{x['observations_per_cpu_s']:.0f}", x["incidents"],
             f"{x['observations_s'] / mem['observations_s']:.2f}" if x["bus"] == "redis" else "")
            for x in out["desk"]
            for mem in [memory_row(out["desk"], x["cameras"])]
        ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--parts", default="failover,load,desk")
    parser.add_argument(
        "--window",
        type=float,
        default=80.0,
        help="load: seconds measured (80: one loop of the clip)",
    )
    parser.add_argument("--observations", type=int, default=10_000)
    parser.add_argument("--model", default=None)
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.kills, args.window, args.observations = min(args.kills, 2), 10.0, 2000
    out = asyncio.run(main_async(args))
    report(out)
    lost = [x for x in out.get("desk", []) if x["observations"] < x["expected"]]
    RESULTS.mkdir(exist_ok=True)
    name = "fleet_quick.json" if args.quick else "fleet.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {RESULTS / name}")
    if lost:
        raise SystemExit(f"observations lost: {lost}")


if __name__ == "__main__":
    main()
