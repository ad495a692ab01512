"""Segment recording without re-encoding: one `ffmpeg -c copy` segment muxer per camera.

Why ffmpeg and not a remux inside Python: the copy loop then runs in C in its own process, so a
slow Python process never drops recorded video and the GIL never sees the packets. Its cost is
measured in bench/ingest_bench.py (well under the 2 %-of-a-core target per camera).

ffmpeg reports each finished segment on stdout (segment list, CSV). A segment is finished when
the line arrives, so its end is "now" and its start is now minus its duration: exact enough for
cutting clips, with no reliance on the camera's own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest.config import CameraSource, RecordingConfig
from ingest.segments import Segment, SegmentIndex
from ingest.urls import mask_text, mask_url

log = logging.getLogger(__name__)

SegmentHandler = Callable[[Segment], Awaitable[None]]


def segment_command(
    ffmpeg: str, source: CameraSource, out_dir: Path, run_id: str, segment_s: float
) -> list[str]:
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
        "-rtsp_transport", source.transport,
        "-timeout", str(int(source.read_timeout_s * 1_000_000)),
        "-i", source.url,
        "-map", "0:v:0", "-c", "copy",
        "-f", "segment", "-segment_time", f"{segment_s:g}", "-segment_format", "mp4",
        "-reset_timestamps", "1",
        "-segment_list", "pipe:1", "-segment_list_type", "csv",
        str(out_dir / f"{run_id}-%06d.mp4"),
    ]  # fmt: skip


class SegmentRecorder:
    """Keeps one camera's ffmpeg recorder running: restart with backoff when it exits."""

    def __init__(
        self,
        camera_id: str,
        source: CameraSource,
        config: RecordingConfig,
        root: Path,
        index: SegmentIndex,
        ffmpeg: str,
        on_segment: SegmentHandler | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.source = source
        self.config = config
        self.dir = root / camera_id
        self.index = index
        self.ffmpeg = ffmpeg
        self._on_segment = on_segment
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.segments = 0
        self.last_error: str | None = None
        self._run_end: datetime | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._supervise(), name=f"record-{self.camera_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _supervise(self) -> None:
        backoff = 0.5
        while True:
            started = time.monotonic()
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("camera=%s recorder crashed", self.camera_id)
                # An error raised while the run was being cancelled replaces the CancelledError:
                # the stop still wins.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None
            if time.monotonic() - started > 30:
                backoff = 0.5
            self.restarts += 1
            delay = random.uniform(0.5, 1.0) * backoff
            backoff = min(backoff * 2, self.source.reconnect_max_s)
            log.warning(
                "camera=%s recorder exited (%s); restarting in %.1f s",
                self.camera_id,
                self.last_error or "stream ended",
                delay,
            )
            await asyncio.sleep(delay)

    async def _run_once(self) -> None:
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._run_end = None
        cmd = segment_command(self.ffmpeg, self.source, self.dir, run_id, self.config.segment_s)
        log.info(
            "camera=%s recording %s to %s", self.camera_id, mask_url(self.source.url), self.dir
        )
        self._proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        proc = self._proc
        assert proc.stdout is not None and proc.stderr is not None
        errors = asyncio.create_task(proc.stderr.read())
        try:
            while line := await proc.stdout.readline():
                await self._finished(line.decode(errors="replace").strip())
            await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()  # SIGTERM lets the muxer close the current segment
                try:
                    await asyncio.wait_for(proc.wait(), 3)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
                # The segment being written when we stopped is complete now but was not
                # reported: its line may still be in the pipe.
                rest = await proc.stdout.read()
                for tail in rest.decode(errors="replace").splitlines():
                    await self._finished(tail.strip())
            stderr = (await errors).decode(errors="replace").strip()
            self.last_error = mask_text(stderr.splitlines()[-1]) if stderr else None
            self._proc = None

    async def _finished(self, line: str) -> None:
        if not line:
            return
        name, _, times = line.partition(",")
        try:
            start_s, end_s = (float(v) for v in times.split(","))
        except ValueError:
            log.warning("camera=%s unexpected segment list line %r", self.camera_id, line)
            return
        path = self.dir / name
        now = datetime.now(UTC)
        duration = max(end_s - start_s, 0.0)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        # Within one ffmpeg run segments are back to back: start where the previous one ended,
        # so adjacent segments neither overlap nor leave gaps in the index.
        start = self._run_end if self._run_end is not None else now - timedelta(seconds=duration)
        self._run_end = now
        segment = Segment(self.camera_id, start, now, path, size)
        try:
            await asyncio.to_thread(self.index.add, segment)
        except (OSError, sqlite3.Error) as exc:  # a full disk: the file stays, unindexed
            log.warning("camera=%s segment %s not indexed: %s", self.camera_id, path.name, exc)
            return
        self.segments += 1
        if self._on_segment is not None:
            await self._on_segment(segment)
