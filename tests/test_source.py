"""Capture from a real RTSP stream: stamped frames, latest-frame slot, clear state when down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from events.model import CameraState, CameraStatus
from ingest.config import CameraSource
from ingest.frame import Frame
from ingest.source import CaptureSource
from ingest.worker import CameraWorker
from pantau.rtsp_server import RtspTestServer
from tests.conftest import free_port

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
        assert [s.state for s in statuses][:2] == [CameraState.STARTING, CameraState.ONLINE]
    finally:
        await worker.stop()
