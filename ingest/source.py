"""Capture thread per camera: OpenCV's FFmpeg backend, timeouts, reconnect with backoff.

Decoding is blocking C code, so it lives on its own thread. The thread keeps only the newest
frame in a one-slot mailbox: a slow consumer sees fresh frames and old ones are dropped, never
queued. The slot counts what it overwrote, which is the camera's skipped-frames figure.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import cv2
import numpy as np

from events.model import CameraState
from ingest.config import CameraSource
from ingest.frame import Frame
from ingest.probe import diagnose
from ingest.urls import mask_text, mask_url

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5


def _fourcc_name(value: float) -> str | None:
    code = int(value)
    if code <= 0:
        return None
    name = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ").lower()
    return name or None


class CaptureSource:
    """Owns one camera's decode thread. `start()` / `stop()` from any thread."""

    def __init__(
        self,
        camera_id: str,
        source: CameraSource,
        on_frame: Callable[[], None] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.source = source
        self.url_masked = mask_url(source.url)
        self._on_frame = on_frame
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._decoded_times: deque[float] = deque(maxlen=256)
        self._state = CameraState.STARTING
        self.reconnects = 0
        self.attempts = 0
        self.last_error: str | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.codec: str | None = None
        self.last_frame_mono: float | None = None
        self._down_since: float | None = None  # when a camera that was online went down

    # ---- consumer side -------------------------------------------------------------------
    def latest(self) -> Frame | None:
        with self._lock:
            return self._latest

    @property
    def state(self) -> CameraState:
        """The camera's state as the rest of the system should see it.

        FFmpeg may retry a hung read several times before giving up, so an online camera whose
        newest frame is older than the read timeout is reported as reconnecting at once, even
        while the decode thread is still blocked inside OpenCV.
        """
        state = self._state
        if state == CameraState.ONLINE and self.last_frame_mono is not None:
            if time.monotonic() - self.last_frame_mono > self.source.read_timeout_s:
                return CameraState.RECONNECTING
        return state

    @property
    def stalled(self) -> bool:
        return self._state == CameraState.ONLINE and self.state != CameraState.ONLINE

    def input_fps(self, window_s: float = 5.0) -> float:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._decoded_times if now - t <= window_s]
        if len(recent) < 2:
            return 0.0
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"capture-{self.camera_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- capture thread ------------------------------------------------------------------
    def _open(self) -> cv2.VideoCapture:
        # Process-wide FFmpeg option; OpenCV reads it at open time. TCP avoids UDP loss on
        # bad links, which is what CCTV over rented lines mostly has.
        os.environ.setdefault(
            "OPENCV_FFMPEG_CAPTURE_OPTIONS", f"rtsp_transport;{self.source.transport}"
        )
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.source.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.source.read_timeout_s * 1000),
        ]
        return cv2.VideoCapture(self.source.url, cv2.CAP_FFMPEG, params)

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stop.is_set():
            self.attempts += 1
            cap = self._open()
            if not cap.isOpened():
                cap.release()
                reason = diagnose(self.source.url, min(self.source.open_timeout_s, 3.0))
                self._set_state(self._down_state(), f"cannot open: {reason}")
            else:
                self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or None
                self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None
                self.codec = _fourcc_name(cap.get(cv2.CAP_PROP_FOURCC))
                got_any = self._read_loop(cap)
                if not self._stop.is_set():
                    if got_any:
                        backoff = BACKOFF_START_S
                        self._down_since = time.monotonic()
                    self.reconnects += 1
                    # Report before release(): closing a session with a hung server can itself
                    # take a timeout's worth of time.
                    self._set_state(
                        self._down_state(), "stream ended or no frame within read timeout"
                    )
                cap.release()
                if self._stop.is_set():
                    break
            # Full jitter keeps 200 cameras behind one dead switch from reconnecting in lockstep.
            delay = random.uniform(0.5, 1.0) * backoff
            backoff = min(backoff * 2, self.source.reconnect_max_s)
            self._stop.wait(delay)
        self._set_state(CameraState.STOPPED, None)

    def _down_state(self) -> CameraState:
        """Never seen: offline at once. Was online: reconnecting, offline after a while."""
        if self._down_since is None:
            return CameraState.OFFLINE
        down_for = time.monotonic() - self._down_since
        return (
            CameraState.RECONNECTING
            if down_for < self.source.offline_after_s
            else CameraState.OFFLINE
        )

    def _read_loop(self, cap: cv2.VideoCapture) -> bool:
        got_any = False
        while not self._stop.is_set():
            ok, image = cap.read()
            if not ok or image is None:
                return got_any
            now_mono = time.monotonic()
            frame = Frame(
                camera_id=self.camera_id,
                seq=self._seq + 1,
                captured_mono=now_mono,
                captured_at=datetime.now(UTC),
                image=np.asarray(image, dtype=np.uint8),
            )
            with self._lock:
                self._seq += 1
                self._latest = frame
                self._decoded_times.append(now_mono)
                self.last_frame_mono = now_mono
            if not got_any:
                got_any = True
                self.width, self.height = frame.width, frame.height
                self._set_state(CameraState.ONLINE, None)
            if self._on_frame is not None:
                self._on_frame()
        return got_any

    def _set_state(self, state: CameraState, error: str | None) -> None:
        if error is not None:
            error = mask_text(error)
        if state != self._state or error != self.last_error:
            level = (
                logging.WARNING
                if state in (CameraState.OFFLINE, CameraState.RECONNECTING)
                else logging.INFO
            )
            log.log(
                level,
                "camera=%s state=%s url=%s%s",
                self.camera_id,
                state,
                self.url_masked,
                f" error={error}" if error else "",
            )
        self._state = state
        self.last_error = error
