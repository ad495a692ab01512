"""The SAME bus suite on MemoryBus and on RedisStreamBus (against a real redis-server).

Groups see every event in order, consumers of a group share its events, an event a consumer
held when it went away is delivered again, a full group slows the publisher and loses nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from events.bus import Bus, MemoryBus, Subscription
from events.model import CameraState, CameraStatus, CameraStatusEvent, utcnow
from events.redis_bus import RedisStreamBus
from pantau.redis_server import RedisServer

BusFactory = Callable[..., Awaitable[Bus]]


def status_event(n: int) -> CameraStatusEvent:
    return CameraStatusEvent(
        status=CameraStatus(
            camera_id=f"cam-{n}", state=CameraState.ONLINE, url_masked="rtsp://h/x", at=utcnow()
        )
    )


async def take(sub: Subscription, n: int, timeout: float = 10.0) -> list[str]:
    out: list[str] = []

    async def run() -> None:
        async for event in sub:
            out.append(event.id)
            if len(out) == n:
                await sub.ack(event)
                return

    await asyncio.wait_for(run(), timeout)
    return out


@pytest.fixture(params=["memory", "redis"])
async def make_bus(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[BusFactory]:
    made: list[Bus] = []

    async def factory(**kw: Any) -> Bus:
        bus: Bus
        if request.param == "memory":
            bus = MemoryBus(queue_size=kw.get("capacity", 1024))
        else:
            bus = RedisStreamBus(
                redis_server.url,
                stream=f"test:{uuid.uuid4().hex}",
                maxlen=kw.get("capacity", 10_000),
                claim_idle_s=0.3,
                block_ms=100,
                batch=kw.get("batch", 16),
            )
        made.append(bus)
        return bus

    yield factory
    for bus in made:
        await bus.close()


async def test_each_group_sees_every_event_in_publish_order(make_bus: BusFactory) -> None:
    bus = await make_bus()
    a, b = await bus.subscribe("store"), await bus.subscribe("wall")
    events = [status_event(i) for i in range(50)]
    for e in events:
        await bus.publish(e)
    ids = [e.id for e in events]
    assert await take(a, 50) == ids
    assert await take(b, 50) == ids


async def test_events_round_trip_unchanged(make_bus: BusFactory) -> None:
    bus = await make_bus()
    sub = await bus.subscribe("g")
    event = status_event(7)
    await bus.publish(event)
    got = await asyncio.wait_for(anext(sub), 5)
    assert got == event and isinstance(got, CameraStatusEvent)


async def test_consumers_of_one_group_share_its_events(make_bus: BusFactory) -> None:
    bus = await make_bus(batch=4)
    one = await bus.subscribe("notifier", "one")
    two = await bus.subscribe("notifier", "two")
    events = [status_event(i) for i in range(40)]
    seen: dict[str, list[str]] = {"one": [], "two": []}

    async def consume(sub: Subscription) -> None:
        async for event in sub:
            seen[sub.consumer].append(event.id)
            await asyncio.sleep(0.002)  # work takes time, so both get some

    tasks = [asyncio.create_task(consume(s)) for s in (one, two)]
    for e in events:
        await bus.publish(e)
    async with asyncio.timeout(10):
        while len(seen["one"]) + len(seen["two"]) < 40:
            await asyncio.sleep(0.02)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(seen["one"] + seen["two"]) == sorted(e.id for e in events)  # each once
    assert seen["one"] and seen["two"]


async def test_an_event_held_by_a_consumer_that_leaves_is_delivered_again(
    make_bus: BusFactory,
) -> None:
    bus = await make_bus()
    quitter = await bus.subscribe("clips", "quitter")
    events = [status_event(i) for i in range(10)]
    for e in events:
        await bus.publish(e)
    got = await take(quitter, 3)  # acknowledges the third before leaving
    held = await asyncio.wait_for(anext(quitter), 5)  # takes the 4th, never acknowledges it
    await quitter.close()
    heir = await bus.subscribe("clips", "heir")
    rest = await take(heir, 7)
    assert got == [e.id for e in events[:3]]
    assert rest[0] == held.id
    assert sorted(got + rest) == sorted(e.id for e in events)


async def test_a_full_group_slows_the_publisher_and_loses_nothing(make_bus: BusFactory) -> None:
    bus = await make_bus(capacity=16)
    slow = await bus.subscribe("slow")
    events = [status_event(i) for i in range(120)]

    async def produce() -> None:
        for e in events:
            await bus.publish(e)

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.5)
    assert not producer.done()  # waiting for the reader, not trimming or dropping
    got = await take(slow, 120, timeout=20)
    await asyncio.wait_for(producer, 10)
    assert got == [e.id for e in events]


async def test_a_new_group_starts_at_new_events(make_bus: BusFactory) -> None:
    bus = await make_bus()
    first = await bus.subscribe("first")
    early = status_event(1)
    await bus.publish(early)
    late_group = await bus.subscribe("late")
    later = status_event(2)
    await bus.publish(later)
    assert await take(first, 2) == [early.id, later.id]
    assert await take(late_group, 1) == [later.id]


async def test_publishing_on_a_closed_bus_is_an_error(make_bus: BusFactory) -> None:
    bus = await make_bus()
    await bus.close()
    with pytest.raises(RuntimeError, match="closed"):
        await bus.publish(status_event(1))


async def test_memory_bus_close_lets_readers_drain_then_ends_them() -> None:
    bus = MemoryBus()
    sub = await bus.subscribe("store")
    events = [status_event(i) for i in range(5)]
    for e in events:
        await bus.publish(e)
    await bus.close()
    got = [e.id async for e in sub]
    assert got == [e.id for e in events]
