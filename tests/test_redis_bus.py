"""RedisStreamBus under faults, with real processes: a consumer killed mid-batch, Redis killed.

- A consumer process SIGKILLed in the middle of its batch: a live consumer of the group takes
  over its pending entries, and an idempotent side effect happens exactly once per event.
- redis-server SIGKILLed and restarted (AOF, appendfsync always) while events flow: every event
  whose publish returned reaches the consumer.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import uuid
from pathlib import Path

import pytest

from events.model import CameraState, CameraStatus, CameraStatusEvent, utcnow
from events.redis_bus import RedisStreamBus
from pantau.redis_server import RedisServer

REPO = Path(__file__).resolve().parents[1]

VICTIM = """
import asyncio, os, signal, sqlite3, sys
from events.redis_bus import RedisStreamBus

url, stream, db, die_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

async def main() -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    bus = RedisStreamBus(url, stream=stream, batch=64, block_ms=200)
    sub = await bus.subscribe("effects", "victim")
    n = 0
    async for event in sub:
        n += 1
        conn.execute("INSERT INTO attempts(event_id, consumer) VALUES (?, 'victim')", (event.id,))
        if n == die_at:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-batch, before the side effect
        conn.execute("INSERT OR IGNORE INTO effects(event_id) VALUES (?)", (event.id,))

asyncio.run(main())
"""


def status_event(n: int) -> CameraStatusEvent:
    return CameraStatusEvent(
        status=CameraStatus(
            camera_id=f"cam-{n}", state=CameraState.ONLINE, url_masked="rtsp://h/x", at=utcnow()
        )
    )


def effects_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE effects(event_id TEXT PRIMARY KEY)")
    conn.execute("CREATE TABLE attempts(event_id TEXT, consumer TEXT)")
    return conn


async def test_a_consumer_killed_mid_batch_is_taken_over_and_effects_happen_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    stream = f"test:{uuid.uuid4().hex}"
    bus = RedisStreamBus(redis_server.url, stream=stream, claim_idle_s=0.5, block_ms=100)
    rescuer = await bus.subscribe("effects", "rescuer")  # creates the group before publishing
    events = [status_event(i) for i in range(100)]
    for e in events:
        await bus.publish(e)
    db = tmp_path / "effects.db"
    conn = effects_db(db)

    victim = await asyncio.create_subprocess_exec(
        sys.executable, "-c", VICTIM, redis_server.url, stream, str(db), "30",
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert await asyncio.wait_for(victim.wait(), 30) == -9
    victim_done = {r[0] for r in conn.execute("SELECT event_id FROM effects")}
    assert len(victim_done) == 29  # the 30th was taken, not done; the rest of its batch waits

    rescued: list[str] = []
    async with asyncio.timeout(20):
        async for event in rescuer:
            conn.execute(
                "INSERT INTO attempts(event_id, consumer) VALUES (?, 'rescuer')", (event.id,)
            )
            conn.execute("INSERT OR IGNORE INTO effects(event_id) VALUES (?)", (event.id,))
            rescued.append(event.id)
            if len(victim_done) + len(rescued) == len(events):
                await rescuer.ack(event)
                break
    await bus.close()

    done = [r[0] for r in conn.execute("SELECT event_id FROM effects")]
    assert sorted(done) == sorted(e.id for e in events)  # no loss, each effect once
    assert not set(rescued) & victim_done  # the rescuer redid none of the finished ones
    attempts = conn.execute(
        "SELECT event_id, COUNT(*) FROM attempts GROUP BY 1 HAVING COUNT(*) > 1"
    )
    assert [r[0] for r in attempts] == [events[29].id]  # only the one it died on ran twice
    pending = await asyncio.to_thread(pending_count, redis_server.url, stream)
    assert pending == 0


def pending_count(url: str, stream: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.xpending(stream, "effects")["pending"])
    finally:
        client.close()


@pytest.mark.slow
async def test_no_accepted_event_is_lost_when_redis_is_killed_and_restarted(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis", fsync="always")
    server.start()
    try:
        bus = RedisStreamBus(server.url, claim_idle_s=1, block_ms=100, retry_for_s=30)
        sub = await bus.subscribe("store")
        events = [status_event(i) for i in range(300)]
        published: list[str] = []
        received: list[str] = []

        async def produce() -> None:
            for e in events:
                await bus.publish(e)
                published.append(e.id)  # publish returned: the event was accepted
                await asyncio.sleep(0.002)

        async def consume() -> None:
            async for event in sub:
                received.append(event.id)
                if set(received) >= {e.id for e in events}:
                    await sub.ack(event)
                    return

        producer = asyncio.create_task(produce())
        consumer = asyncio.create_task(consume())
        while len(published) < 100:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(0.5)  # publisher and consumer now retry against a dead port
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(producer, 60)
        await asyncio.wait_for(consumer, 60)
        await bus.close()
        assert set(received) == set(published) == {e.id for e in events}
    finally:
        server.stop()
