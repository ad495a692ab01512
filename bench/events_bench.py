"""Events benchmark: bus throughput and latency, beside raw Redis in the same run; store inserts.

    .venv/bin/python -m bench.events_bench [--events 20000] [--quick]

For MemoryBus and RedisStreamBus with 1 and 4 consumers in one group: events/s from the first
publish to the last event consumed, and p50/p99 publish -> consume latency, with ~1 KB events
published one at a time (as the desk does). The baseline is what a user would write against
Redis directly: one awaited XADD per event and consumers doing XREADGROUP (COUNT 64) + XACK per
entry, on the same server with the same payload bytes. Every run checks that every event
arrived (lost must be 0). Store: SQLite inserts/s, one transaction per event (synchronous=FULL,
what the desk does per change) and 100 per transaction.
Prints a table and writes bench/results/events.json. redis-server runs on this machine with AOF
appendfsync everysec (the Redis default for AOF).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import redis.asyncio as aioredis

from bench.table import print_table
from events.bus import Bus, MemoryBus
from events.model import EventType, Incident, IncidentEvent, IncidentKind, Severity, utcnow
from events.redis_bus import RedisStreamBus
from events.store import Store
from pantau.redis_server import RedisServer

RESULTS = Path(__file__).parent / "results"


def make_event(n: int) -> IncidentEvent:
    now = utcnow()
    inc = Incident(
        kind=IncidentKind.CROWD, severity=Severity.MEDIUM, title="Kerumunan " + "x" * 560,
        camera_id=f"cam-{n % 16}", zone_id="plaza", kecamatan="Kota", desa="Kauman",
        started_at=now, updated_at=now, current_count=n % 40, peak_count=40,
        track_ids=tuple(range(20)),
    )  # fmt: skip
    return IncidentEvent(type=EventType.INCIDENT_OPENED, incident=inc)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run_bus(bus: Bus, events: list[IncidentEvent], consumers: int) -> dict[str, Any]:
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    seen: dict[str, int] = {}
    done = asyncio.Event()
    subs = [await bus.subscribe("bench", f"c{i}") for i in range(consumers)]

    async def consume(sub: Any) -> None:
        async for event in sub:
            now = time.perf_counter()
            seen[event.id] = seen.get(event.id, 0) + 1
            latencies.append(now - sent_at[event.id])
            if len(seen) == len(events):
                await sub.ack(event)
                done.set()

    tasks = [asyncio.create_task(consume(s)) for s in subs]
    t0 = time.perf_counter()
    for e in events:
        sent_at[e.id] = time.perf_counter()
        await bus.publish(e)
    try:
        await asyncio.wait_for(done.wait(), 120)
    except TimeoutError:
        pass
    elapsed = time.perf_counter() - t0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for s in subs:
        await s.close()
    return {
        "events_per_s": round(len(seen) / elapsed),
        "p50_ms": round(pct(latencies, 0.5) * 1000, 2),
        "p99_ms": round(pct(latencies, 0.99) * 1000, 2),
        "lost": len(events) - len(seen),
        "duplicates": sum(c - 1 for c in seen.values()),
    }


async def run_raw(url: str, payloads: list[bytes], consumers: int) -> dict[str, Any]:
    r = aioredis.Redis.from_url(url)
    stream = f"raw:{uuid.uuid4().hex}"
    await r.xgroup_create(stream, "g", id="$", mkstream=True)
    sent_at: dict[bytes, float] = {}
    latencies: list[float] = []
    got = 0
    done = asyncio.Event()

    async def consume(name: str) -> None:
        nonlocal got
        while not done.is_set():
            reply: Any = await r.xreadgroup("g", name, {stream: ">"}, count=64, block=200)
            for _, items in reply or []:
                for eid, fields in items:
                    latencies.append(time.perf_counter() - sent_at[fields[b"i"]])
                    await r.xack(stream, "g", eid)
                    got += 1
                    if got == len(payloads):
                        done.set()

    tasks = [asyncio.create_task(consume(f"c{i}")) for i in range(consumers)]
    t0 = time.perf_counter()
    for i, body in enumerate(payloads):
        key = str(i).encode()
        sent_at[key] = time.perf_counter()
        await r.xadd(stream, {b"i": key, b"e": body}, maxlen=100_000, approximate=True)
    try:
        await asyncio.wait_for(done.wait(), 120)
    except TimeoutError:
        pass
    elapsed = time.perf_counter() - t0
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await r.delete(stream)
    await r.aclose()
    return {
        "events_per_s": round(got / elapsed),
        "p50_ms": round(pct(latencies, 0.5) * 1000, 2),
        "p99_ms": round(pct(latencies, 0.99) * 1000, 2),
        "lost": len(payloads) - got,
        "duplicates": 0,
    }


async def run_store(folder: Path, n: int) -> dict[str, Any]:
    store = Store(folder / "bench.db")
    await store.open()
    events = [make_event(i) for i in range(n)]
    t0 = time.perf_counter()
    for e in events[: n // 2]:
        await store.append(e)
    single = (n // 2) / (time.perf_counter() - t0)
    rest = events[n // 2 :]
    t0 = time.perf_counter()
    for i in range(0, len(rest), 100):
        await store.commit(list(rest[i : i + 100]))
    batched = len(rest) / (time.perf_counter() - t0)
    stored = await store.count_events()
    await store.close()
    return {"one_per_tx_per_s": round(single), "batch_100_per_s": round(batched), "stored": stored}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    n = 3000 if args.quick else args.events
    events = [make_event(i) for i in range(n)]
    size = len(events[0].model_dump_json())
    payloads = [e.model_dump_json().encode() for e in events]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", fsync="everysec")
        server.start()
        try:
            for consumers in (1, 4):
                mem = await run_bus(MemoryBus(queue_size=1024), events, consumers)
                rows.append({"bus": "MemoryBus", "consumers": consumers, **mem})
                raw = await run_raw(server.url, payloads, consumers)
                rows.append({"bus": "raw redis XADD/XREADGROUP", "consumers": consumers, **raw})
                fresh = [make_event(i) for i in range(n)]  # new ids: a new stream, no dedup
                bus = RedisStreamBus(server.url, stream=f"bench:{uuid.uuid4().hex}")
                red = await run_bus(bus, fresh, consumers)
                await bus.close()
                red["vs_raw"] = round(red["events_per_s"] / raw["events_per_s"], 2)
                rows.append({"bus": "RedisStreamBus", "consumers": consumers, **red})
        finally:
            server.stop()
        store = await run_store(Path(tmp), 2000 if args.quick else 10_000)
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": psutil.cpu_count(),
            "python": platform.python_version(),
        },
        "event_bytes": size,
        "events_per_run": n,
        "buses": rows,
        "store": store,
        "redis_vs_raw": {r["consumers"]: r["vs_raw"] for r in rows if "vs_raw" in r},
        "lost_total": sum(r["lost"] for r in rows),
    }
    print(f"\n{n} events of {size} bytes per run; redis-server on loopback (AOF everysec)\n")
    cols = [("bus", 28), ("consumers", 10), ("events/s", 11), ("p50 ms", 9), ("p99 ms", 9),
            ("lost", 6), ("dup", 5), ("vs raw", 8)]  # fmt: skip
    print_table(cols, [
        [r["bus"], r["consumers"], r["events_per_s"], r["p50_ms"], r["p99_ms"], r["lost"],
         r["duplicates"], r.get("vs_raw", "")]
        for r in rows
    ])  # fmt: skip
    one, batch = store["one_per_tx_per_s"], store["batch_100_per_s"]
    print(f"\nstore: {one} inserts/s one per transaction, {batch} inserts/s 100 per transaction")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "events.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true")
    report = asyncio.run(main(parser.parse_args()))
    raise SystemExit(1 if report["lost_total"] else 0)
