"""Capture from a real RTSP stream: stamped frames, latest-frame slot, clear state when down."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from events.model import CameraState, CameraStatus
from ingest.config import CameraSource
from ingest.frame import Frame
from ingest.source import CaptureSource
from ingest.worker import CameraWorker
from pantau.redis_server import free_port
from pantau.rtsp_server import RtspTestServer

pytestmark = pytest.mark.slow


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_frames_are_stamped_and_latest_wins(
    rtsp_server: Callable[..., RtspTestServer], builtin_clip: Path
) -> None:
    server = rtsp_server({"cam": builtin_clip})
    src = CaptureSource("cam-1", CameraSource(url=server.url("cam")))
    src.start()
    try:
        assert wait_for(lambda: src.state == CameraState.ONLINE, 15), src.last_error
        first = src.latest()
        assert first is not None and first.camera_id == "cam-1"
        assert (first.width, first.height) == (960, 540)
        assert wait_for(lambda: (f := src.latest()) is not None and f.seq >= first.seq + 10, 5)
        later = src.latest()
        assert later is not None and later.captured_mono > first.captured_mono
        assert later.captured_at > first.captured_at
        time.sleep(3)  # past the burst of frames FFmpeg buffered while probing the stream
        assert 7 <= src.input_fps(window_s=2) <= 13  # the clip is 10 fps
    finally:
        src.stop(10)
    assert not src.is_alive() and src.state == CameraState.STOPPED


def test_rates_can_be_read_from_any_thread_while_frames_decode(
    rtsp_server: Callable[..., RtspTestServer], builtin_clip: Path
) -> None:
    # Health, /metrics and the status loop read the rates from other threads than the capture
    # thread that appends to their logs; a reader must never see "deque mutated".
    server = rtsp_server({"cam": builtin_clip})
    src = CaptureSource("cam-rates", CameraSource(url=server.url("cam")))
    src.start()
    try:
        assert wait_for(lambda: src.state == CameraState.ONLINE, 15), src.last_error
        reads, deadline = 0, time.monotonic() + 3
        while time.monotonic() < deadline:
            assert src.decoded_fps(10.0) >= 0 and src.input_fps(10.0) >= 0
            reads += 1
        assert reads > 1000 and src.decoded_fps(2.0) > 5
    finally:
        src.stop(10)


def test_refused_port_reports_offline_without_busy_loop(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/nothing"
    src = CaptureSource("dead", CameraSource(url=url, open_timeout_s=2, read_timeout_s=2))
    src.start()
    try:
        assert wait_for(lambda: src.state == CameraState.OFFLINE, 10)
        time.sleep(3)
    finally:
        src.stop(10)
    # Backoff starts at 0.5 s and doubles: a few attempts in ~4 s, never a spin.
    assert 1 <= src.attempts <= 6
    assert "hunter2" not in caplog.text
    assert "rtsp://admin:***@127.0.0.1" in caplog.text


async def test_worker_samples_at_detect_fps(
    rtsp_server: Callable[..., RtspTestServer], builtin_clip: Path
) -> None:
    server = rtsp_server({"cam": builtin_clip})
    frames: list[Frame] = []
    statuses: list[CameraStatus] = []

    async def on_frame(frame: Frame) -> None:
        frames.append(frame)

    async def on_status(status: CameraStatus) -> None:
        statuses.append(status)

    worker = CameraWorker(
        "cam-1", CameraSource(url=server.url("cam"), detect_fps=2), on_frame, on_status
    )
    await worker.start()
    try:
        for _ in range(200):
            if len(frames) >= 6:
                break
            await asyncio.sleep(0.1)
        assert len(frames) >= 6
        span = frames[-1].captured_mono - frames[0].captured_mono
        assert 1.5 <= (len(frames) - 1) / span <= 2.6  # ~2 fps sampled out of 10 fps decoded
        status = worker.status()
        assert status.state == CameraState.ONLINE and status.dropped_fps > 3
        assert (status.codec, status.width, status.height) == ("h264", 960, 540)
        assert status.last_frame_age_s is not None and status.last_frame_age_s < 1
        states = [s.state for s in statuses]
        assert states[0] == CameraState.STARTING and states[-1] == CameraState.ONLINE
    finally:
        await worker.stop()


class FrameWatch:
    """Samples a source's sequence number to prove it kept delivering the whole time."""

    def __init__(self, src: CaptureSource) -> None:
        self.src = src
        self.stalls = 0
        self._last = -1
        self._last_change = time.monotonic()

    def poll(self) -> None:
        frame = self.src.latest()
        seq = frame.seq if frame else -1
        now = time.monotonic()
        if seq != self._last:
            self._last, self._last_change = seq, now
        elif now - self._last_change > 1.0:
            self.stalls += 1
            self._last_change = now


def test_server_killed_mid_stream_reconnects_and_others_keep_going(
    rtsp_server: Callable[..., RtspTestServer], builtin_clip: Path
) -> None:
    victim = RtspTestServer({"cam": builtin_clip}).start()
    other = rtsp_server({"cam": builtin_clip})
    src_a = CaptureSource("cam-a", CameraSource(url=victim.url("cam"), read_timeout_s=2))
    src_b = CaptureSource("cam-b", CameraSource(url=other.url("cam"), read_timeout_s=2))
    watch = FrameWatch(src_b)
    port = victim.port
    revived: RtspTestServer | None = None
    src_a.start()
    src_b.start()
    try:
        assert wait_for(lambda: src_a.state == src_b.state == CameraState.ONLINE, 20)
        victim.stop()
        killed = time.monotonic()
        assert wait_for(lambda: src_a.state == CameraState.RECONNECTING, 2 + 1)
        assert time.monotonic() - killed <= 3
        end = time.monotonic() + 4  # the server stays down a while
        while time.monotonic() < end:
            watch.poll()
            time.sleep(0.1)
        revived = RtspTestServer({"cam": builtin_clip}, port=port or 0).start()
        back = time.monotonic()
        while src_a.state != CameraState.ONLINE and time.monotonic() - back < 10:
            watch.poll()
            time.sleep(0.1)
        assert src_a.state == CameraState.ONLINE, src_a.last_error
        assert src_a.reconnects >= 1
        assert watch.stalls == 0  # camera B never stopped while A was down
    finally:
        src_a.stop(10)
        src_b.stop(10)
        if revived is not None:
            revived.stop()


def test_frozen_server_hits_the_read_timeout(
    rtsp_server: Callable[..., RtspTestServer], builtin_clip: Path
) -> None:
    server = rtsp_server({"cam": builtin_clip})
    src = CaptureSource("cam", CameraSource(url=server.url("cam"), read_timeout_s=2))
    src.start()
    try:
        assert wait_for(lambda: src.state == CameraState.ONLINE, 20)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)  # TCP stays open, no data flows
        try:
            # Frames already in the socket buffers still arrive for a moment; the clock that
            # matters starts at the last frame.
            assert wait_for(lambda: src.state == CameraState.RECONNECTING, 20)
            noticed = time.monotonic()
            assert src.last_frame_mono is not None
            assert noticed - src.last_frame_mono <= 2 + 0.5
            assert src.stalled or "read timeout" in (src.last_error or "")
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert wait_for(lambda: src.state == CameraState.ONLINE, 15)
    finally:
        src.stop(10)


@pytest.mark.parametrize(
    ("make_url", "reason"),
    [
        (lambda s: s.url("no-such-path"), "RTSP 404"),
        (lambda s: f"rtsp://127.0.0.1:{free_port()}/cam", "connection refused"),
        (lambda s: s.url("cam", with_auth=False), "RTSP 401"),
    ],
    ids=["wrong-path", "refused-port", "no-credentials"],
)
def test_bad_urls_give_a_clear_reason(
    rtsp_server: Callable[..., RtspTestServer],
    builtin_clip: Path,
    make_url: Callable[[RtspTestServer], str],
    reason: str,
) -> None:
    server = rtsp_server({"cam": builtin_clip}, auth=("op", "pw"))
    src = CaptureSource("bad", CameraSource(url=make_url(server), open_timeout_s=3))
    src.start()
    try:
        assert wait_for(lambda: src.last_error is not None, 15)
        assert src.state == CameraState.OFFLINE
        assert reason in (src.last_error or ""), src.last_error
    finally:
        src.stop(10)


def test_a_hung_camera_does_not_delay_the_others(
    rtsp_server: Callable[..., RtspTestServer], builtin_clip: Path
) -> None:
    hung = rtsp_server({"cam": builtin_clip})
    good = rtsp_server({"cam": builtin_clip})
    assert hung.pid is not None
    os.kill(hung.pid, signal.SIGSTOP)  # accepts TCP, never answers RTSP: open hangs 10 s
    a = CaptureSource("hung", CameraSource(url=hung.url("cam"), open_timeout_s=10))
    b = CaptureSource("good", CameraSource(url=good.url("cam")))
    try:
        a.start()
        time.sleep(0.5)  # the hung camera is inside its open now
        started = time.monotonic()
        b.start()
        assert wait_for(lambda: b.latest() is not None, 8)
        assert time.monotonic() - started < 8  # not queued behind the hung open (10 s)
        assert a.state in (CameraState.STARTING, CameraState.OFFLINE)
    finally:
        os.kill(hung.pid, signal.SIGCONT)
        a.stop(15)
        b.stop(15)
