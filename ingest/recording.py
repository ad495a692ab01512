"""Everything recorded, as one service: recorders, the segment index, clips and retention."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from events.model import ClipRequest
from ingest.clipper import ClipHandler, ClipService
from ingest.config import CameraSource, RecordingConfig
from ingest.recorder import SegmentRecorder
from ingest.retention import Retention
from ingest.segments import SegmentIndex

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 60.0


class RecordingService:
    def __init__(
        self,
        cameras: dict[str, CameraSource],
        config: RecordingConfig,
        root: Path,
        clip_dir: Path,
        on_clip: ClipHandler,
    ) -> None:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise RuntimeError("recording needs ffmpeg on PATH (apt-get install ffmpeg)")
        self.config = config
        self.root = root
        self.index = SegmentIndex(root / "segments.db")
        self._ffmpeg = ffmpeg
        self.recorders = {
            cid: SegmentRecorder(cid, src, config, root, self.index, ffmpeg)
            for cid, src in cameras.items()
            if src.record
        }
        self.clips = ClipService(self.index, ffmpeg, clip_dir, on_clip, config.segment_s)
        self.retention = Retention(
            self.index, config, root,
            {cid: src.retention_days for cid, src in cameras.items() if src.retention_days},
        )  # fmt: skip
        self._task: asyncio.Task[None] | None = None
        self._running: set[str] = set()

    def set_cameras(self, cameras: dict[str, CameraSource]) -> None:
        """A reloaded camera list: recorders for cameras that record now, none for the others.
        A camera whose recorder runs keeps it; the caller stops a camera before changing its
        stream and starts it again after."""
        for cid in list(self.recorders):
            src = cameras.get(cid)
            if cid not in self._running and (src is None or src != self.recorders[cid].source):
                del self.recorders[cid]
        for cid, src in cameras.items():
            if src.record and cid not in self.recorders:
                self.recorders[cid] = SegmentRecorder(
                    cid, src, self.config, self.root, self.index, self._ffmpeg
                )
        self.retention.retention_days = {
            cid: src.retention_days for cid, src in cameras.items() if src.retention_days
        }

    def records(self, camera_id: str) -> bool:
        """Is this camera being recorded here now (configured and held by this box)?"""
        return camera_id in self._running

    async def start(self) -> None:
        """Retention and clips; each camera's recorder starts with `start_camera`."""
        self._task = asyncio.create_task(self._retention_loop(), name="retention")

    async def start_camera(self, camera_id: str) -> None:
        recorder = self.recorders.get(camera_id)
        if recorder is not None and camera_id not in self._running:
            self._running.add(camera_id)
            await recorder.start()

    async def stop_camera(self, camera_id: str) -> None:
        if camera_id in self._running:
            self._running.discard(camera_id)
            await self.recorders[camera_id].stop()

    def request_clip(self, request: ClipRequest) -> bool:
        """Cut the clip of an ended observation, pre-roll before it and post-roll after it, if
        this box records the camera. Returns whether it took the request."""
        if not self.records(request.camera_id):
            return False
        self.clips.request(
            request.observation_id, request.camera_id,
            request.start_at - timedelta(seconds=self.config.pre_roll_s),
            request.end_at + timedelta(seconds=self.config.post_roll_s),
            announce_as=request.incident_id,
        )  # fmt: skip
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.clips.stop()
        await asyncio.gather(*(self.stop_camera(cid) for cid in list(self._running)))
        self.index.close()

    async def free_space(self) -> None:
        """Retention now (the disk is fuller than max_disk_fraction): oldest segments go."""
        await asyncio.to_thread(self.retention.run, datetime.now(UTC))

    async def _retention_loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.retention.run, datetime.now(UTC))
            except Exception:
                log.exception("retention run failed")
            await asyncio.sleep(RETENTION_EVERY_S)
