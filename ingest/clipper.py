"""Clip requests: wait until the post-roll is recorded, then cut, register and announce the clip."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from events.model import ClipRef
from ingest.clips import ClipError, cut_clip
from ingest.segments import SegmentIndex

log = logging.getLogger(__name__)

ClipHandler = Callable[[ClipRef], Awaitable[None]]


class ClipService:
    def __init__(
        self,
        index: SegmentIndex,
        ffmpeg: str,
        clip_dir: Path,
        on_ready: ClipHandler,
        segment_s: float,
        poll_s: float = 0.5,
    ) -> None:
        self.index = index
        self.ffmpeg = ffmpeg
        self.clip_dir = clip_dir
        self._on_ready = on_ready
        self._segment_s = segment_s
        self._poll_s = poll_s
        self._tasks: set[asyncio.Task[ClipRef | None]] = set()

    def request(
        self,
        incident_id: str,
        camera_id: str,
        start: datetime,
        end: datetime,
        announce_as: str | None = None,
    ) -> asyncio.Task[ClipRef | None]:
        """Start making a clip; the returned task is owned (and cancelled on stop) by us.
        `incident_id` names the hold and the file; `announce_as` the incident the ClipRef is
        for (the desk's incident that the observation belongs to), default the same."""
        # Hold first: retention must not delete the pre-roll while we wait for the post-roll.
        self.index.hold(incident_id, camera_id, start, end)
        task = asyncio.create_task(
            self._make(incident_id, camera_id, start, end, announce_as or incident_id),
            name=f"clip-{incident_id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _wait_recorded(self, camera_id: str, end: datetime) -> bool:
        # A segment reaching past `end` closes at most one segment length (plus a keyframe
        # interval) after `end`; give up well after that if the camera stopped recording.
        deadline = end + timedelta(seconds=self._segment_s * 3 + 10)
        while True:
            latest = await asyncio.to_thread(self.index.latest_end, camera_id)
            if latest is not None and latest >= end:
                return True
            if datetime.now(UTC) > deadline:
                return False
            await asyncio.sleep(self._poll_s)

    async def _make(
        self, incident_id: str, camera_id: str, start: datetime, end: datetime, announce_as: str
    ) -> ClipRef | None:
        try:
            return await self._cut(incident_id, camera_id, start, end, announce_as)
        finally:
            # The clip file is a copy: once it is cut (or cannot be), retention may treat the
            # segments like any others again.
            await asyncio.to_thread(self.index.release, incident_id)

    async def _cut(
        self, incident_id: str, camera_id: str, start: datetime, end: datetime, announce_as: str
    ) -> ClipRef | None:
        complete = await self._wait_recorded(camera_id, end)
        segments = await asyncio.to_thread(self.index.overlapping, camera_id, start, end)
        if not segments:
            log.warning(
                "camera=%s incident=%s no recording covers the clip", camera_id, incident_id
            )
            return None
        if not complete:
            log.warning(
                "camera=%s incident=%s recording stopped early: clip is shorter",
                camera_id,
                incident_id,
            )
        out = self.clip_dir / f"{incident_id}.mp4"
        try:
            await asyncio.to_thread(cut_clip, self.ffmpeg, segments, start, end, out)
        except ClipError:
            log.exception("camera=%s incident=%s clip failed", camera_id, incident_id)
            return None
        clip = ClipRef(
            incident_id=announce_as,
            camera_id=camera_id,
            path=out.name,
            start_at=max(start, segments[0].start_at),
            end_at=min(end, segments[-1].end_at),
        )
        log.info(
            "camera=%s incident=%s clip ready %s (%.1f s)",
            camera_id,
            incident_id,
            out.name,
            (clip.end_at - clip.start_at).total_seconds(),
        )
        await self._on_ready(clip)
        return clip
