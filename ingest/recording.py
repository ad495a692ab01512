"""Everything recorded, as one service: recorders, the segment index, clips and retention."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

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

    def records(self, camera_id: str) -> bool:
        return camera_id in self.recorders

    async def start(self) -> None:
        for recorder in self.recorders.values():
            await recorder.start()
        self._task = asyncio.create_task(self._retention_loop(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.clips.stop()
        await asyncio.gather(*(r.stop() for r in self.recorders.values()))
        self.index.close()

    async def _retention_loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.retention.run, datetime.now(UTC))
            except Exception:
                log.exception("retention run failed")
            await asyncio.sleep(RETENTION_EVERY_S)
