"""The data directory's disk: free space watched, recordings freed first, and a full disk
said out loud (health, /metrics, the wall, an incident for whoever runs the servers).

Every few seconds:
- past the recordings' `max_disk_fraction`, retention runs now (oldest segments go first, not
  a minute later);
- free space under `storage.warn_free_mb` opens a "disk almost full" incident (kind system,
  routed like any other, e.g. to Diskominfo) while there is still room to store it; it closes
  when the space is back above the mark (with a margin, so it does not flap);
- `full` is true while the store cannot write (SQLite said the disk is full) or nothing is free:
  intake answers 503 then, and what the desk could not store waits and is stored when space
  returns.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from events.model import (
    AnyEvent,
    IncidentKind,
    Observation,
    ObservationEvent,
    ObservationPhase,
    Severity,
    utcnow,
)
from events.store import Store

log = logging.getLogger(__name__)

MB = 1024 * 1024
CLEAR_MARGIN = 1.2  # the incident closes when free space is 20 % above the warning mark


class DiskWatch:
    def __init__(
        self,
        folder: Path,
        store: Store,
        warn_free_mb: float,
        publish: Callable[[AnyEvent], Awaitable[None]],
        free_recordings: Callable[[], Awaitable[None]] | None = None,
        max_used_fraction: float = 0.85,
        every_s: float = 5.0,
    ) -> None:
        self.folder = folder
        self.store = store
        self.warn_bytes = warn_free_mb * MB
        self._publish = publish
        self._free_recordings = free_recordings
        self.max_used_fraction = max_used_fraction
        self.every_s = every_s
        self.free_bytes = 0
        self.total_bytes = 0
        self._open: Observation | None = None
        self._task: asyncio.Task[None] | None = None
        self.on_change: Callable[[dict[str, object]], None] | None = None
        self._last_state: dict[str, object] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def full(self) -> bool:
        return self.store.full or (self.total_bytes > 0 and self.free_bytes < MB)

    def state(self) -> dict[str, object]:
        return {
            "free_mb": round(self.free_bytes / MB, 1),
            "total_mb": round(self.total_bytes / MB, 1),
            "full": self.full,
            "store_full": self.store.full,
            "low": self._open is not None,
        }

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="disk-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("disk watch round failed")
            await asyncio.sleep(self.every_s)

    async def check(self) -> None:
        usage = await asyncio.to_thread(shutil.disk_usage, self.folder)
        self.free_bytes, self.total_bytes = usage.free, usage.total
        used = 1 - usage.free / usage.total if usage.total else 0.0
        if self._free_recordings is not None and used > self.max_used_fraction:
            await self._free_recordings()
            usage = await asyncio.to_thread(shutil.disk_usage, self.folder)
            self.free_bytes = usage.free
        if self._open is None and self.free_bytes < self.warn_bytes:
            await self._opened()
        elif self._open is not None and self.free_bytes > self.warn_bytes * CLEAR_MARGIN:
            await self._closed()
        state = self.state()
        if state != self._last_state:
            self._last_state = state
            if self.on_change is not None:
                self.on_change(state)
            if state["full"]:
                log.error("disk of %s is full (%.1f MB free): intake answers 503 until space "
                          "is back", self.folder, self.free_bytes / MB)  # fmt: skip

    async def _opened(self) -> None:
        at = utcnow()
        free = self.free_bytes / MB
        self._open = Observation(
            phase=ObservationPhase.OPENED, camera_id=None, rule="disk", kind=IncidentKind.SYSTEM,
            severity=Severity.HIGH,
            title=f"Disk server hampir penuh: {free:.0f} MB tersisa ({self.folder})",
            started_at=at, at=at, current_count=round(free), cause="disk_low", worker="server",
        )  # fmt: skip
        log.warning("disk of %s low: %.0f MB free", self.folder, free)
        # Published in the background: while the disk is full the desk holds it until it
        # can be stored, and this watch must go on measuring meanwhile.
        self._spawn(ObservationEvent(observation=self._open))

    async def _closed(self) -> None:
        assert self._open is not None
        done = self._open.model_copy(update={"phase": ObservationPhase.CLOSED, "at": utcnow()})
        self._open = None
        log.info("disk of %s has room again: %.0f MB free", self.folder, self.free_bytes / MB)
        self._spawn(ObservationEvent(observation=done))

    def _spawn(self, event: AnyEvent) -> None:
        async def publish() -> None:
            await self._publish(event)

        task = asyncio.create_task(publish(), name="disk-watch-publish")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
