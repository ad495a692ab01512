"""The async side of one camera: samples the capture slot at detect_fps and reports health.

The worker never waits on the decoder: it peeks at the latest-frame slot on a timer, so a dead
or slow camera cannot stall the event loop or any other camera. It does not wait for a frame's
analysis either: up to `max_in_flight` frames are handled at once (the handler keeps them in
order), so the next frame is prepared while the previous one is in the detector, and one slow
inference does not make the camera miss its next tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from events.model import CameraStatus, utcnow
from ingest.config import CameraSource
from ingest.frame import Frame
from ingest.source import CaptureSource

log = logging.getLogger(__name__)

FrameHandler = Callable[[Frame], Awaitable[None]]
StatusHandler = Callable[[CameraStatus], Awaitable[None]]

STATUS_INTERVAL_S = 1.0


class CameraWorker:
    def __init__(
        self,
        camera_id: str,
        source: CameraSource,
        on_frame: FrameHandler,
        on_status: StatusHandler,
        max_in_flight: int = 3,
    ) -> None:
        self.camera_id = camera_id
        self.source = source
        self.capture = CaptureSource(camera_id, source)
        self._on_frame = on_frame
        self._on_status = on_status
        self._tasks: list[asyncio.Task[None]] = []
        self._max_in_flight = max_in_flight
        self._in_flight: set[asyncio.Task[None]] = set()
        self._last_seq = 0
        self._last_decoded = 0
        self._skipped_total = 0
        self._skip_window: list[tuple[float, int]] = []

    def set_frame_handler(self, on_frame: FrameHandler) -> None:
        """Frames from now on go to `on_frame` (a reload's new analytics); those in flight
        finish where they went."""
        self._on_frame = on_frame

    async def start(self) -> None:
        self.capture.start()
        self._tasks = [
            asyncio.create_task(self._sample_loop(), name=f"sample-{self.camera_id}"),
            asyncio.create_task(self._status_loop(), name=f"status-{self.camera_id}"),
        ]

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._in_flight]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self._in_flight.clear()
        # Joining the decode thread is blocking: do it off the loop. The read timeout bounds it.
        await asyncio.to_thread(self.capture.stop, self.source.read_timeout_s + 1)

    def latest(self) -> Frame | None:
        return self.capture.latest()

    async def _sample_loop(self) -> None:
        period = 1.0 / self.source.detect_fps
        next_at = time.monotonic()
        while True:
            if len(self._in_flight) >= self._max_in_flight:
                # Wait for a slot, not for the next tick: a tick missed while the detector was
                # busy is taken as soon as a frame is done, so the detector never idles for it.
                await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -period:  # more than a tick behind: skip ahead, never burst to catch up
                next_at = time.monotonic()
            next_at += period
            frame = None
            if self.capture.latest_seq > self._last_seq:
                frame = await asyncio.to_thread(self.capture.latest)  # converts: off the loop
            if frame is not None and frame.seq > self._last_seq:
                # Skipped: decoded but never analysed (keyframe mode decodes few on purpose).
                decoded = self.capture.decoded_total
                skipped = decoded - self._last_decoded - 1 if self._last_seq else 0
                self._skipped_total += max(skipped, 0)
                self._last_seq, self._last_decoded = frame.seq, decoded
                task = asyncio.create_task(self._handle(frame), name=f"frame-{self.camera_id}")
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)

    async def _handle(self, frame: Frame) -> None:
        try:
            await self._on_frame(frame)
        except Exception:
            log.exception("camera=%s frame handler failed", self.camera_id)

    def status(self) -> CameraStatus:
        cap = self.capture
        now = time.monotonic()
        self._skip_window.append((now, self._skipped_total))
        self._skip_window = [(t, n) for t, n in self._skip_window if now - t <= 5.0]
        t0, n0 = self._skip_window[0]
        dropped_fps = (self._skipped_total - n0) / (now - t0) if now > t0 else 0.0
        return CameraStatus(
            camera_id=self.camera_id,
            state=cap.state,
            url_masked=cap.url_masked,
            at=utcnow(),
            input_fps=round(cap.input_fps(), 2),
            decoded_fps=round(cap.decoded_fps(10.0), 2),
            decode_mode=cap.decode_mode,
            dropped_fps=round(dropped_fps, 2),
            last_frame_age_s=round(now - cap.last_frame_mono, 3) if cap.last_frame_mono else None,
            reconnects=cap.reconnects,
            width=cap.width,
            height=cap.height,
            codec=cap.codec,
            error=cap.last_error,
        )

    async def _status_loop(self) -> None:
        # Every tick, not only on change: health-driven rules (video loss) need the clock.
        while True:
            try:
                await self._on_status(self.status())
            except Exception:
                log.exception("camera=%s status handler failed", self.camera_id)
            await asyncio.sleep(STATUS_INTERVAL_S)
