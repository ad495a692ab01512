"""Keyframe-only decoding of a quiet camera on a real RTSP stream of real H.264, with and
without B-frames: only keyframes come out, one per GOP, at the keyframes' stream times and at
the stream's frame numbers; asked for full rate, the kept GOP is decoded at once, so frames go
on from the keyframe without a gap in sequence numbers and without waiting for the next key."""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from events.model import CameraState
from ingest.config import CameraSource
from ingest.source import FULL, KEYFRAMES, CaptureSource
from pantau.demo_media import ffmpeg_binary
from pantau.rtsp_server import RtspTestServer
from tests.test_source import wait_for

pytestmark = pytest.mark.slow
FPS, GOP = 15, 15  # a keyframe a second


def gop_clip(people_clip: Path, folder: Path, b_frames: int) -> Path:
    """The people clip as a camera with a one-second GOP, with or without B-frames."""
    out = folder / f"gop{GOP}-bf{b_frames}.mp4"
    subprocess.run([
        ffmpeg_binary(), "-v", "error", "-y", "-i", str(people_clip), "-t", "12", "-an",
        "-r", str(FPS), "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main",
        "-pix_fmt", "yuv420p", "-g", str(GOP), "-keyint_min", str(GOP), "-sc_threshold", "0",
        "-bf", str(b_frames), str(out),
    ], check=True, stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip
    return out


@pytest.mark.parametrize("b_frames", [0, 2])
def test_keyframes_only_then_full_rate_at_once(
    rtsp_server: Callable[..., RtspTestServer], people_clip: Path, tmp_path: Path, b_frames: int
) -> None:
    server = rtsp_server({"cam": gop_clip(people_clip, tmp_path, b_frames)})
    src = CaptureSource("cam-kf", CameraSource(url=server.url("cam")))
    src.start()
    try:
        assert wait_for(lambda: src.state == CameraState.ONLINE, 15), src.last_error
        assert src.decode_mode == FULL
        time.sleep(2)  # past the burst FFmpeg buffered while probing
        assert 12 <= src.decoded_fps(2) <= 18

        src.set_full(False)
        assert wait_for(lambda: src.decode_mode == KEYFRAMES, 3)
        before = src.decoded_total
        time.sleep(4.6)
        quiet = src.decoded()[-(src.decoded_total - before) :]
        keys = [q for q in quiet if q[1]]
        assert len(keys) >= 4, quiet
        assert keys == quiet[-len(keys) :]  # after the switch: nothing but keyframes
        seqs = [k[0] for k in keys]
        assert {b - a for a, b in itertools.pairwise(seqs)} == {GOP}, seqs
        times = [k[2] for k in keys]
        assert all(t is not None for t in times), quiet
        steps = [b - a for a, b in itertools.pairwise(times)]  # type: ignore[operator]
        assert all(abs(step - GOP / FPS) < 0.01 for step in steps), times
        assert 0.7 <= src.decoded_fps(4) <= 1.3  # one a second instead of 15

        # Full rate on demand: the kept GOP is decoded at once, the sequence has no gap.
        last_key = src.decoded()[-1][0]
        src.set_full(True)
        asked = time.monotonic()
        assert wait_for(lambda: src.decode_mode == FULL, 1.5)
        assert src.catch_ups == 1
        # The current picture at once: frames past the keyframe well before the next one.
        assert wait_for(lambda: src.decoded()[-1][0] > last_key + 1, 0.5)
        assert time.monotonic() - asked < 0.6
        time.sleep(1.5)
        after = [q[0] for q in src.decoded() if q[0] >= last_key]
        assert after == list(range(last_key, last_key + len(after))), after
        assert len(after) >= FPS  # every frame again
    finally:
        src.stop(10)
