"""RedisStreamBus: the bus on Redis Streams, for Pantau processes spread over machines.

One stream holds every event (`XADD ... MAXLEN ~ n`); a bus group is a Redis consumer group.
Delivery is at-least-once: entries stay in the group's pending list until XACK, a consumer that
comes back first re-reads its own pending entries, and live consumers take over (XAUTOCLAIM) what
a dead one left pending for longer than `claim_idle_s`.

Trimming must never eat what a group has not read: before the stream nears `maxlen` the
publisher checks every group's lag and waits (backpressure) instead of trimming unread entries.
Connection loss (a Redis restart) is retried with backoff on both sides; with AOF
`appendfsync always` an XADD that returned is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from events.bus import default_consumer_name
from events.model import AnyEvent, parse_event

log = logging.getLogger(__name__)

_TRANSIENT = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)
_FIELD = b"e"


async def retrying(
    what: str, call: Any, for_s: float = 60.0, given_up: Callable[[], bool] = lambda: False
) -> Any:
    """Run `call()` until Redis answers or `for_s` is up: a Redis restart is a pause, not an
    error, for whoever must not lose what it is doing (the bus, the desk's fence checks)."""
    deadline = time.monotonic() + for_s
    delay = 0.05
    while True:
        try:
            return await call()
        except _TRANSIENT as exc:
            if given_up() or time.monotonic() > deadline:
                raise
            log.warning("redis %s failed (%s), retrying in %.2fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


class RedisStreamBus:
    def __init__(
        self,
        url: str,
        *,
        stream: str = "pantau:events",
        maxlen: int = 100_000,
        claim_idle_s: float = 30.0,
        block_ms: int = 1000,
        batch: int = 64,
        retry_for_s: float = 60.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.dead_stream = f"{stream}:dead"
        self.maxlen = maxlen
        self.claim_idle_s = claim_idle_s
        self.block_ms = block_ms
        self.batch = batch
        self.retry_for_s = retry_for_s
        self.redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, health_check_interval=5
        )
        self._closed = False
        self._since_lag_check = 0
        self._subs: set[RedisSubscription] = set()

    async def retrying(self, what: str, call: Any) -> Any:
        """Run `call()` until Redis answers (a restart is a pause, not an error) or time is up."""
        return await retrying(what, call, self.retry_for_s, lambda: self._closed)

    async def publish(self, event: AnyEvent) -> None:
        if self._closed:
            raise RuntimeError("bus is closed")
        await self._wait_for_room()
        data = event.model_dump_json().encode()
        await self.retrying(
            "XADD",
            lambda: self.redis.xadd(
                self.stream, {_FIELD: data}, maxlen=self.maxlen, approximate=True
            ),
        )

    async def _wait_for_room(self) -> None:
        # Checking lag costs a round trip: do it every 1/8 of maxlen events, or always when
        # the last check found a group close to the limit.
        self._since_lag_check += 1
        if self._since_lag_check < max(1, self.maxlen // 8):
            return
        limit = self.maxlen * 3 // 4
        warned = False
        while not self._closed:
            lag = await self._max_lag()
            if lag < limit:
                self._since_lag_check = 0 if lag < self.maxlen // 2 else self.maxlen // 8
                return
            if not warned:
                log.warning("stream=%s a group lags %d entries, publisher waits", self.stream, lag)
                warned = True
            await asyncio.sleep(0.05)

    async def _max_lag(self) -> int:
        try:
            groups = await self.retrying("XINFO", lambda: self.redis.xinfo_groups(self.stream))
        except ResponseError:  # no stream yet
            return 0
        lags = [g.get("lag") for g in groups]
        # Redis reports lag None when it cannot tell (after deletions): count it as full.
        return max((self.maxlen if v is None else int(v) for v in lags), default=0)

    async def subscribe(
        self, group: str, consumer: str | None = None, types: frozenset[str] | None = None
    ) -> RedisSubscription:
        if self._closed:
            raise RuntimeError("bus is closed")
        sub = RedisSubscription(self, group, consumer or default_consumer_name(), types)
        await sub.create_group()
        self._subs.add(sub)
        return sub

    async def close(self) -> None:
        for sub in list(self._subs):
            await sub.close()
        self._closed = True
        await self.redis.aclose()


class RedisSubscription:
    def __init__(
        self,
        bus: RedisStreamBus,
        group: str,
        consumer: str,
        types: frozenset[str] | None = None,
    ) -> None:
        self.group = group
        self.types = types
        self.consumer = consumer
        self._bus = bus
        self._buffer: deque[tuple[bytes, AnyEvent]] = deque()
        self._inflight: tuple[bytes, str] | None = None  # (entry id, event id)
        self._own_pending = True  # after a start or reconnect, re-read our own pending first
        self._last_claim = 0.0
        self._closed = False

    async def create_group(self) -> None:
        try:
            await self._bus.retrying(
                "XGROUP CREATE",
                lambda: self._bus.redis.xgroup_create(
                    self._bus.stream, self.group, id="$", mkstream=True
                ),
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def __aiter__(self) -> RedisSubscription:
        return self

    async def __anext__(self) -> AnyEvent:
        if self._inflight is not None:
            await self._xack(self._inflight[0])
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            await self._fill()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A cancel that raced the blocking read's own timeout can be swallowed inside
                # the Redis client (seen on Python 3.11): honour it here, or shutdown hangs.
                raise asyncio.CancelledError
        entry_id, event = self._buffer.popleft()
        self._inflight = (entry_id, event.id)
        return event

    async def ack(self, event: AnyEvent) -> None:
        if self._inflight is not None and self._inflight[1] == event.id:
            await self._xack(self._inflight[0])

    async def _xack(self, entry_id: bytes) -> None:
        bus = self._bus
        await bus.retrying("XACK", lambda: bus.redis.xack(bus.stream, self.group, entry_id))
        self._inflight = None

    async def _fill(self) -> None:
        bus = self._bus
        try:
            if self._own_pending:
                entries = await self._read("0", block=None)
                self._own_pending = bool(entries)
            elif time.monotonic() - self._last_claim >= max(bus.claim_idle_s / 2, 0.1):
                self._last_claim = time.monotonic()
                entries = await self._claim()
                if not entries:
                    entries = await self._read(">", block=bus.block_ms)
            else:
                entries = await self._read(">", block=bus.block_ms)
        except _TRANSIENT as exc:
            if self._closed or bus._closed:
                return
            log.warning(
                "group=%s consumer=%s redis read failed: %s", self.group, self.consumer, exc
            )
            self._own_pending = True
            await asyncio.sleep(0.2)
            return
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis came back without our group (no persistence): make it again.
            await self.create_group()
            return
        skipped: list[bytes] = []
        for entry_id, fields in entries:
            if not await self._accept(entry_id, fields):
                skipped.append(entry_id)
        if skipped:  # events this group does not want: done without being seen
            await bus.retrying("XACK", lambda: bus.redis.xack(bus.stream, self.group, *skipped))

    async def _read(self, start: str, block: int | None) -> list[tuple[bytes, dict[bytes, bytes]]]:
        bus = self._bus
        reply = await bus.redis.xreadgroup(
            self.group, self.consumer, {bus.stream: start}, count=bus.batch, block=block
        )
        streams = cast(list[Any], reply or [])  # RESP2: [[stream, [(entry id, fields)]]]
        return [(eid, fields) for _, items in streams for eid, fields in items if fields]

    async def _claim(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        bus = self._bus
        reply = await bus.redis.xautoclaim(
            bus.stream, self.group, self.consumer,
            min_idle_time=int(bus.claim_idle_s * 1000), start_id="0-0", count=bus.batch,
        )  # fmt: skip
        claimed = [(eid, fields) for eid, fields in reply[1] if fields]
        if claimed:
            log.info("group=%s consumer=%s reclaimed %d pending entries from a dead consumer",
                     self.group, self.consumer, len(claimed))  # fmt: skip
        return claimed

    async def _accept(self, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
        """Buffer the entry's event; False when this group does not want its type."""
        try:
            event = parse_event(fields[_FIELD])
            if self.types is not None and event.type not in self.types:
                return False
            self._buffer.append((entry_id, event))
            return True
        except (KeyError, ValidationError, ValueError) as exc:
            # A poison entry must not wedge the group: park it in the dead stream, then ack.
            bus = self._bus
            log.error("group=%s entry=%s is not an event (%s): moved to %s",
                      self.group, entry_id, exc, bus.dead_stream)  # fmt: skip
            dead: dict[Any, Any] = {b"entry": entry_id, **fields}
            await bus.redis.xadd(bus.dead_stream, dead, maxlen=10_000)
            await bus.redis.xack(bus.stream, self.group, entry_id)
            return True

    async def close(self) -> None:
        # What we hold unacknowledged stays pending in Redis: this consumer re-reads it when it
        # comes back, or another takes it over after claim_idle_s.
        self._closed = True
        self._bus._subs.discard(self)
        held: list[Any] = [eid for eid, _ in self._buffer]
        if self._inflight is not None:
            held.insert(0, self._inflight[0])
        self._buffer.clear()
        self._inflight = None
        if held and not self._bus._closed:
            # A clean close hands them over now: marked idle, the next XAUTOCLAIM takes them.
            bus = self._bus
            try:
                await bus.redis.xclaim(
                    bus.stream, self.group, self.consumer, 0, held,
                    idle=int(bus.claim_idle_s * 1000) + 1, justid=True,
                )  # fmt: skip
            except (*_TRANSIENT, ResponseError) as exc:
                log.warning("group=%s consumer=%s could not hand back %d entries: %s",
                            self.group, self.consumer, len(held), exc)  # fmt: skip
