"""MemoryBus: every subscriber sees every event in order; a full subscriber slows, never loses."""

from __future__ import annotations

import asyncio

from events.bus import MemoryBus
from events.model import CameraState, CameraStatus, CameraStatusEvent, utcnow


def status_event(n: int) -> CameraStatusEvent:
    return CameraStatusEvent(
        status=CameraStatus(
            camera_id=f"cam-{n}", state=CameraState.ONLINE, url_masked="rtsp://h/x", at=utcnow()
        )
    )


async def collect(sub: object, n: int) -> list[str]:
    out: list[str] = []
    async for event in sub:  # type: ignore[attr-defined]
        out.append(event.id)
        if len(out) == n:
            break
    return out


async def test_fan_out_in_publish_order() -> None:
    bus = MemoryBus()
    a, b = bus.subscribe("a"), bus.subscribe("b")
    events = [status_event(i) for i in range(50)]
    for e in events:
        await bus.publish(e)
    ids = [e.id for e in events]
    assert await collect(a, 50) == ids
    assert await collect(b, 50) == ids


async def test_full_subscriber_applies_backpressure_without_loss() -> None:
    bus = MemoryBus(queue_size=4)
    slow = bus.subscribe("slow")
    events = [status_event(i) for i in range(20)]

    async def produce() -> None:
        for e in events:
            await bus.publish(e)

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.05)
    assert not producer.done()  # blocked on the full queue, not dropping
    got = await collect(slow, 20)
    await producer
    assert got == [e.id for e in events]


async def test_close_ends_subscribers() -> None:
    bus = MemoryBus()
    sub = bus.subscribe("x")
    await bus.close()
    assert await collect(sub, 1) == []
