"""The event bus protocol and its in-process implementation, MemoryBus.

Semantics shared by every implementation (tests/test_bus.py runs the same suite on each):
- a *group* sees every event published after it was created, in publish order;
- the consumers of one group share its events (each event goes to one of them);
- delivery is at-least-once: an event counts as done when its consumer acknowledges it, which
  iterating to the next event does implicitly; an event a consumer held when it went away is
  delivered again to the group. Consumers are therefore idempotent by event id;
- nothing is dropped: a publisher waits while a group is full (backpressure).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import deque
from typing import Protocol

from events.model import AnyEvent

log = logging.getLogger(__name__)
_consumer_numbers = itertools.count(1)


class Subscription(Protocol):
    group: str
    consumer: str

    def __aiter__(self) -> Subscription: ...

    async def __anext__(self) -> AnyEvent: ...

    async def ack(self, event: AnyEvent) -> None:
        """Acknowledge an event before asking for the next one (e.g. before leaving a loop)."""
        ...

    async def close(self) -> None:
        """Stop consuming; an event taken but not acknowledged goes back to the group."""
        ...


class Bus(Protocol):
    async def publish(self, event: AnyEvent) -> None: ...

    async def subscribe(
        self, group: str, consumer: str | None = None, types: frozenset[str] | None = None
    ) -> Subscription:
        """`types`: the event types this group wants (None: all). The others are acknowledged
        unseen, so a consumer that also publishes never waits on events it would skip."""
        ...

    async def close(self) -> None: ...


def default_consumer_name() -> str:
    return f"{os.uname().nodename}-{os.getpid()}"


class _Group:
    def __init__(self, name: str, types: frozenset[str] | None) -> None:
        self.name = name
        self.types = types
        self.queue: deque[AnyEvent] = deque()
        self.members: set[MemorySubscription] = set()
        self.full_warned_at = -1e9  # monotonic; a sustained backlog warns once a minute
        self.full_waits = 0


class MemorySubscription:
    def __init__(self, bus: MemoryBus, group: _Group, consumer: str) -> None:
        self.group = group.name
        self.consumer = consumer
        self._bus = bus
        self._group = group
        self._inflight: AnyEvent | None = None
        self._closed = False

    def __aiter__(self) -> MemorySubscription:
        return self

    async def __anext__(self) -> AnyEvent:
        self._inflight = None  # asking for the next event acknowledges the previous one
        group, cond = self._group, self._bus._cond
        async with cond:
            await cond.wait_for(lambda: bool(group.queue) or self._closed or self._bus._closed)
            if self._closed or not group.queue:
                # A closed bus still hands out what it holds, so writers can drain it.
                raise StopAsyncIteration
            event = group.queue.popleft()
            cond.notify_all()
        self._inflight = event
        return event

    async def ack(self, event: AnyEvent) -> None:
        if self._inflight is not None and self._inflight.id == event.id:
            self._inflight = None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._bus._cond:
            if self._inflight is not None:
                self._group.queue.appendleft(self._inflight)
                self._inflight = None
            self._group.members.discard(self)
            self._bus._cond.notify_all()


class MemoryBus:
    """In-process bus: bounded per-group queues, publishers wait when a group is full."""

    def __init__(self, queue_size: int = 1024) -> None:
        self._queue_size = queue_size
        self._groups: dict[str, _Group] = {}
        self._cond = asyncio.Condition()
        self._closed = False

    async def publish(self, event: AnyEvent) -> None:
        if self._closed:
            raise RuntimeError("bus is closed")
        async with self._cond:
            for group in list(self._groups.values()):
                if group.types is not None and event.type not in group.types:
                    continue
                if len(group.queue) >= self._queue_size:
                    group.full_waits += 1
                    if time.monotonic() - group.full_warned_at >= 60:
                        log.warning("group=%s queue full, publisher waits (%d times)",
                                    group.name, group.full_waits)  # fmt: skip
                        group.full_warned_at = time.monotonic()
                    await self._cond.wait_for(
                        lambda g=group: (
                            len(g.queue) < self._queue_size  # type: ignore[misc]
                            or not g.members
                            or self._closed
                        )
                    )
                # A group nobody reads keeps its backlog for a consumer that comes back, but
                # takes no new events: in-process, waiting for it would stall every publisher.
                if group.members:
                    group.queue.append(event)
            self._cond.notify_all()

    async def subscribe(
        self, group: str, consumer: str | None = None, types: frozenset[str] | None = None
    ) -> MemorySubscription:
        if self._closed:
            raise RuntimeError("bus is closed")
        async with self._cond:
            g = self._groups.setdefault(group, _Group(group, types))
            sub = MemorySubscription(
                self, g, consumer or f"{default_consumer_name()}-{next(_consumer_numbers)}"
            )
            g.members.add(sub)
        return sub

    def depth(self, group: str) -> int:
        g = self._groups.get(group)
        return len(g.queue) if g else 0

    async def close(self) -> None:
        self._closed = True
        async with self._cond:
            self._cond.notify_all()
