"""The desk's side of the bus: what cameras and workers publish, taken in and kept.

Analytics never calls the desk; it publishes observations, and this consumer (one bus group,
"desk") hands them to the incident desk, the only writer of incidents. It also keeps the camera
status changes and the clips workers announce, so every table has one writer, and it asks the
box that records a camera for the clip of each observation that ended.

The same code runs in one process (MemoryBus) and on Redis (the server role), where the bus's
at-least-once delivery means an observation may come twice: the desk is idempotent by
observation id and the store by event id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from events.bus import Bus, Subscription
from events.desk import IncidentDesk
from events.model import (
    AnyEvent,
    CameraStatusEvent,
    ClipReadyEvent,
    ClipRequest,
    ClipRequestEvent,
    EventType,
    Observation,
    ObservationEvent,
)
from events.store import StoreFull

log = logging.getLogger(__name__)

FULL_RETRY_S = 2.0  # a full disk: how often the desk tries again
FEED_TYPES = frozenset({EventType.OBSERVATION, EventType.CAMERA_STATUS, EventType.CLIP_READY})
# Called before an observation reaches the desk, e.g. to fetch its snapshot from the worker.
Prepare = Callable[[Observation], Awaitable[None]]


class DeskFeed:
    def __init__(self, desk: IncidentDesk, bus: Bus, prepare: Prepare | None = None) -> None:
        self.desk = desk
        self.bus = bus
        self._prepare = prepare
        self._task: asyncio.Task[None] | None = None
        self.observations = 0  # taken in (stale ones included): the desk's throughput

    async def start(self, group: str = "desk") -> None:
        sub = await self.bus.subscribe(group, types=FEED_TYPES)
        self._task = asyncio.create_task(self._run(sub), name="desk-feed")

    async def stop(self) -> None:
        """Ends after the bus is closed and drained (the memory bus hands out what it holds)."""
        if self._task is not None:
            _, pending = await asyncio.wait({self._task}, timeout=2)
            if pending:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, sub: Subscription) -> None:
        try:
            async for event in sub:
                await self._take(event)
        finally:
            await sub.close()

    async def _take(self, event: AnyEvent) -> None:
        waited = 0.0
        while True:
            try:
                await self.handle(event)
                return
            except StoreFull as exc:
                # An event accepted is an event stored: hold it (and, the bus being bounded,
                # those behind it) until the disk has room, then store it.
                if waited == 0.0 or waited >= 60:
                    log.error("event=%s type=%s waits for disk space: %s", event.id, event.type,
                              exc)  # fmt: skip
                    waited = 0.0
                await asyncio.sleep(FULL_RETRY_S)
                waited += FULL_RETRY_S
            except Exception:
                # One bad event must not stop the desk; it is logged with its id.
                log.exception("event=%s type=%s: desk could not take it", event.id, event.type)
                return

    async def handle(self, event: AnyEvent) -> None:
        if isinstance(event, ObservationEvent):
            self.observations += 1
            obs = event.observation
            if self._prepare is not None:
                await self._prepare(obs)
            incident = await self.desk.observe(obs)
            if incident is not None and not obs.active and obs.camera_id:
                request = ClipRequest(
                    observation_id=obs.id, incident_id=incident.id, camera_id=obs.camera_id,
                    start_at=obs.started_at, end_at=obs.at,
                )  # fmt: skip
                await self.bus.publish(ClipRequestEvent(request=request))
        elif isinstance(event, CameraStatusEvent | ClipReadyEvent):
            await self.desk.store.append(event)
