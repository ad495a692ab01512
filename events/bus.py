"""The event bus: one protocol, an in-process implementation (Redis Streams comes next).

Events are never dropped: each subscriber has a bounded queue, and a publisher waits while a
subscriber's queue is full (backpressure) instead of discarding. Subscribers that fall behind
for long are an operational problem to see, not data to lose.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Protocol, cast

from events.model import AnyEvent

log = logging.getLogger(__name__)

_CLOSED = object()


class Subscription(Protocol):
    name: str

    def __aiter__(self) -> AsyncIterator[AnyEvent]: ...

    async def close(self) -> None: ...


class Bus(Protocol):
    async def publish(self, event: AnyEvent) -> None: ...

    def subscribe(self, name: str) -> Subscription: ...

    async def close(self) -> None: ...


class MemorySubscription:
    def __init__(self, bus: MemoryBus, name: str, maxsize: int) -> None:
        self.name = name
        self._bus = bus
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize)

    async def _put(self, event: AnyEvent) -> None:
        await self._queue.put(event)

    def _end(self) -> None:
        # Wake an idle reader; a reader with a full queue is cancelled by its owner instead.
        try:
            self._queue.put_nowait(_CLOSED)
        except asyncio.QueueFull:
            pass

    def __aiter__(self) -> MemorySubscription:
        return self

    async def __anext__(self) -> AnyEvent:
        item = await self._queue.get()
        if item is _CLOSED:
            raise StopAsyncIteration
        return cast(AnyEvent, item)

    def qsize(self) -> int:
        return self._queue.qsize()

    async def close(self) -> None:
        self._bus._unsubscribe(self)
        self._end()


class MemoryBus:
    """In-process fan-out bus: every subscription sees every event, in publish order."""

    def __init__(self, queue_size: int = 1024) -> None:
        self._queue_size = queue_size
        self._subs: list[MemorySubscription] = []
        self._closed = False

    async def publish(self, event: AnyEvent) -> None:
        if self._closed:
            raise RuntimeError("bus is closed")
        for sub in list(self._subs):
            if sub.qsize() >= self._queue_size:
                log.warning("subscriber=%s queue full, publisher waits", sub.name)
            await sub._put(event)

    def subscribe(self, name: str) -> MemorySubscription:
        sub = MemorySubscription(self, name, self._queue_size)
        self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: MemorySubscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    async def close(self) -> None:
        self._closed = True
        for sub in list(self._subs):
            sub._end()
        self._subs.clear()
