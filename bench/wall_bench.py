"""Wall fan-out benchmark: how fast an incident reaches 10, 50 and 200 wall screens.

    .venv/bin/python -m bench.wall_bench [--quick]

A wallboard server runs in its own process (store, desk, bus, hub, FastAPI on loopback, as in
`pantau run` minus the cameras). This process opens N logged-in WebSocket clients, then sends
incidents the way an OPD system does (POST /api/alerts: stored, correlated, routed, published)
and times each one from the POST to its arrival at every client: p50/p99 over all deliveries.
Baseline, in the same run: the wall a user might write instead, every screen polling
GET /api/incidents once a second. Reports the server's CPU for both. Prints a table and writes
bench/results/wall.json. Target: 50 clients p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

from bench.table import print_table
from pantau.redis_server import free_port

RESULTS = Path(__file__).parent / "results"
PASSWORD = "bench-password-1"


async def serve(port: int, db: Path) -> None:
    import uvicorn

    from events.api_keys import ApiKeys
    from events.bus import MemoryBus
    from events.config import Route, RouteMatch
    from events.desk import IncidentDesk
    from events.store import Store
    from wallboard.app import CameraInfo, WallboardDeps, create_app
    from wallboard.auth import Accounts, Role
    from wallboard.config import UiConfig, Wall
    from wallboard.hub import Hub
    from wallboard.live import LiveFrames

    class NoFrames:
        def latest_image(self, camera_id: str) -> None:
            return None

        def watched(self, camera_id: str) -> None:
            return None

    store = Store(db)
    await store.open()
    bus = MemoryBus()
    desk = IncidentDesk(store, bus.publish, [Route(match=RouteMatch(), opds=["bpbd"])])
    accounts = Accounts(store)
    await accounts.add("wall", PASSWORD, Role.VIEWER)
    keys = ApiKeys(store)
    _, key = await keys.create("bpbd")
    (db.parent / "key").write_text(key)

    async def open_incidents() -> list[Any]:
        return await store.incidents(active=True, limit=100)

    hub = Hub(open_incidents, {}, client_queue=1024)
    hub.start(await bus.subscribe("wallboard"))
    persist = await bus.subscribe("store")

    async def writer() -> None:
        async for event in persist:
            await store.append(event)

    task = asyncio.create_task(writer())
    deps = WallboardDeps(
        store=store, hub=hub, live=LiveFrames(NoFrames()),
        cameras=[CameraInfo(id="cam-1", name="Satu", url_masked="rtsp://h/x")],
        walls=[Wall(id="utama")], ui=UiConfig(), snapshot_dir=None, clip_dir=None,
        health=lambda: {}, accounts=accounts, desk=desk, api_keys=keys,
    )  # fmt: skip
    config = uvicorn.Config(create_app(deps), host="127.0.0.1", port=port, log_config=None,
                            ws_max_queue=64)  # fmt: skip
    await uvicorn.Server(config).serve()
    task.cancel()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else 0


async def run_push(base: str, token: str, key: str, clients: int, incidents: int) -> dict[str, Any]:
    sent: dict[str, float] = {}
    latencies: list[float] = []
    ready = 0

    async def screen() -> None:
        nonlocal ready
        headers = {"Cookie": f"pantau_session={token}"}
        async with websockets.connect(f"ws://{base}/ws", additional_headers=headers,
                                      max_size=None) as ws:  # fmt: skip
            await ws.recv()  # snapshot
            ready += 1
            got = 0
            while got < incidents:
                msg = json.loads(await ws.recv())
                if msg.get("type") == "incident.opened":
                    title = msg["event"]["incident"]["title"]
                    latencies.append(time.perf_counter() - sent[title])
                    got += 1

    tasks = [asyncio.create_task(screen()) for _ in range(clients)]
    while ready < clients:
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=f"http://{base}", timeout=30) as http:
        for i in range(incidents):
            title = f"bench {clients}-{i}"
            body = {"kind": "fire", "title": title, "kecamatan": f"K{clients}-{i}",
                    "severity": "high"}  # fmt: skip
            sent[title] = time.perf_counter()
            r = await http.post("/api/alerts", json=body, headers={"X-API-Key": key})
            r.raise_for_status()
            await asyncio.sleep(0.1)  # a busy command center: ten new incidents a second
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return {"deliveries": len(latencies), "p50_ms": pct(latencies, 0.5),
            "p99_ms": pct(latencies, 0.99), "max_ms": pct(latencies, 1.0)}  # fmt: skip


async def run_poll(base: str, token: str, key: str, clients: int, seconds: float) -> dict[str, Any]:
    """Each screen GETs /api/incidents every second; latency = send -> first poll that shows it."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def screen(offset: float) -> None:
        seen: set[str] = set()
        cookies = {"pantau_session": token}
        async with httpx.AsyncClient(base_url=f"http://{base}", cookies=cookies, timeout=30) as h:
            await asyncio.sleep(offset)
            while time.perf_counter() < stop + 1.5:
                for inc in (await h.get("/api/incidents?limit=50")).json():
                    t = inc["title"]
                    if t in sent and t not in seen:
                        seen.add(t)
                        latencies.append(time.perf_counter() - sent[t])
                await asyncio.sleep(1.0)

    tasks = [asyncio.create_task(screen(i / clients)) for i in range(clients)]
    async with httpx.AsyncClient(base_url=f"http://{base}", timeout=30) as http:
        i = 0
        while time.perf_counter() < stop:
            title = f"poll {clients}-{i}"
            sent[title] = time.perf_counter()
            body = {"kind": "fire", "title": title, "kecamatan": f"P{clients}-{i}"}
            await http.post("/api/alerts", json=body, headers={"X-API-Key": key})
            i += 1
            await asyncio.sleep(0.5)
    await asyncio.gather(*tasks)
    return {"deliveries": len(latencies), "p50_ms": pct(latencies, 0.5),
            "p99_ms": pct(latencies, 0.99), "max_ms": pct(latencies, 1.0)}  # fmt: skip


def cpu_of(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        db = Path(tmp) / "wall.db"
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.wall_bench", "--serve", str(port), str(db)],
            env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"127.0.0.1:{port}"
            for _ in range(200):
                if (Path(tmp) / "key").exists():
                    break
                await asyncio.sleep(0.1)
            key = (Path(tmp) / "key").read_text()
            async with httpx.AsyncClient(base_url=f"http://{base}", timeout=10) as http:
                for _ in range(100):
                    try:
                        r = await http.post(
                            "/api/login", json={"username": "wall", "password": PASSWORD}
                        )
                        break
                    except httpx.ConnectError:
                        await asyncio.sleep(0.1)
                token = r.json()["token"]
            proc = psutil.Process(server.pid)
            counts = [10, 50] if args.quick else [10, 50, 200]
            n_inc = 10 if args.quick else 30
            for clients in counts:
                c0, t0 = cpu_of(proc), time.perf_counter()
                result = await run_push(base, token, key, clients, n_inc)
                cpu = (cpu_of(proc) - c0) / (time.perf_counter() - t0) * 100
                rows.append({"wall": "WebSocket push (Pantau)", "clients": clients, **result,
                             "server_cpu_pct": round(cpu, 1)})  # fmt: skip
            clients = 50
            c0, t0 = cpu_of(proc), time.perf_counter()
            result = await run_poll(base, token, key, clients, 6 if args.quick else 15)
            cpu = (cpu_of(proc) - c0) / (time.perf_counter() - t0) * 100
            rows.append({"wall": "poll /api/incidents 1/s", "clients": clients, **result,
                         "server_cpu_pct": round(cpu, 1)})  # fmt: skip
        finally:
            server.terminate()
            server.wait(10)
    push50 = next(x for x in rows if x["clients"] == 50 and x["wall"].startswith("WebSocket"))
    report = {
        "machine": {"cores": psutil.cpu_count(), "python": platform.python_version()},
        "rows": rows,
        "target_50_clients_p99_ms_below_100": push50["p99_ms"] < 100,
    }
    cols = [("wall", 26), ("clients", 8), ("deliveries", 11), ("p50 ms", 9), ("p99 ms", 9),
            ("max ms", 9), ("server CPU %", 13)]  # fmt: skip
    print_table(cols, [
        [row["wall"], row["clients"], row["deliveries"], row["p50_ms"], row["p99_ms"],
         row["max_ms"], row["server_cpu_pct"]]
        for row in rows
    ])  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "wall.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DB"), help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.serve:
        asyncio.run(serve(int(a.serve[0]), Path(a.serve[1])))
    else:
        asyncio.run(main(a))
