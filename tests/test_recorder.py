"""Recording without re-encoding, clip cutting and the clip service, with real RTSP and ffmpeg."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from events.model import ClipRef
from ingest.clipper import ClipService
from ingest.clips import cut_clip
from ingest.config import CameraSource, RecordingConfig
from ingest.recorder import SegmentRecorder
from ingest.segments import Segment, SegmentIndex
from pantau.rtsp_server import RtspTestServer

pytestmark = pytest.mark.slow
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def probe(path: Path) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "format=duration,format_name:stream=codec_name,codec_type", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def moov_before_mdat(path: Path) -> bool:
    data = path.read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


@pytest.fixture
async def recording(
    tmp_path: Path,
    rtsp_server: Callable[..., RtspTestServer],
    builtin_clip: Path,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[tuple[SegmentRecorder, SegmentIndex]]:
    caplog.set_level(logging.INFO)
    server = rtsp_server({"cam": builtin_clip}, auth=("op", "rahasia-123"))
    index = SegmentIndex(tmp_path / "segments.db")
    recorder = SegmentRecorder(
        "cam-1",
        CameraSource(url=server.url("cam"), record=True),
        RecordingConfig(segment_s=2),
        tmp_path / "rec",
        index,
        FFMPEG,
    )
    await recorder.start()
    yield recorder, index
    await recorder.stop()
    index.close()


async def wait_segments(index: SegmentIndex, n: int, timeout: float = 40) -> list[Segment]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        segs = index.oldest_first("cam-1")
        if len(segs) >= n:
            return segs
        await asyncio.sleep(0.2)
    raise AssertionError(f"only {len(index.oldest_first('cam-1'))} segments in {timeout} s")


async def test_segments_are_recorded_without_reencoding_and_indexed(
    recording: tuple[SegmentRecorder, SegmentIndex], caplog: pytest.LogCaptureFixture
) -> None:
    recorder, index = recording
    segs = await wait_segments(index, 4)
    for seg in segs[1:4]:  # the first one also holds the burst buffered while connecting
        info = probe(seg.path)
        assert [s["codec_name"] for s in info["streams"]] == ["h264"]
        assert 1.5 <= float(info["format"]["duration"]) <= 2.6  # keyframe every 2 s
        assert 1.5 <= seg.duration_s <= 2.6
    for a, b in itertools.pairwise(segs):
        assert b.start_at == a.end_at  # back to back: no gap, no overlap in the index
    found = index.overlapping("cam-1", segs[1].start_at, segs[2].end_at)
    assert [s.path for s in found] == [s.path for s in segs[1:3]]
    logged = " ".join(
        r.getMessage() for when in ("setup", "call") for r in caplog.get_records(when)
    )  # type: ignore[arg-type]
    assert "rahasia-123" not in logged and "op:***@" in logged
    assert recorder.pid is not None


async def test_clip_across_segment_boundary_plays(
    recording: tuple[SegmentRecorder, SegmentIndex], tmp_path: Path
) -> None:
    _, index = recording
    segs = await wait_segments(index, 4)
    start = segs[1].start_at + timedelta(seconds=0.5)
    end = segs[2].start_at + timedelta(seconds=1.5)  # crosses the 1 -> 2 boundary
    covering = index.overlapping("cam-1", start, end)
    assert len(covering) == 2
    out = await asyncio.to_thread(cut_clip, FFMPEG, covering, start, end, tmp_path / "c.mp4")
    info = probe(out)
    assert [s["codec_name"] for s in info["streams"]] == ["h264"]
    assert "mp4" in info["format"]["format_name"]
    asked = (end - start).total_seconds()
    assert abs(float(info["format"]["duration"]) - asked) <= 2.0  # within one segment
    assert moov_before_mdat(out)  # faststart: a browser can play while downloading


async def test_clip_request_waits_for_the_post_roll(
    recording: tuple[SegmentRecorder, SegmentIndex], tmp_path: Path
) -> None:
    _, index = recording
    await wait_segments(index, 1)
    ready: list[ClipRef] = []

    async def on_ready(clip: ClipRef) -> None:
        ready.append(clip)

    service = ClipService(index, FFMPEG, tmp_path / "clips", on_ready, segment_s=2)
    now = datetime.now(UTC)
    start, end = now - timedelta(seconds=2), now + timedelta(seconds=4)  # end in the future
    clip = await asyncio.wait_for(service.request("inc_1", "cam-1", start, end), 30)
    assert clip is not None and ready == [clip]
    assert datetime.now(UTC) >= end  # it waited until the post-roll was on disk
    assert clip.end_at >= end - timedelta(seconds=0.5)
    duration = float(probe(tmp_path / "clips" / clip.path)["format"]["duration"])
    assert 4.5 <= duration <= 8.5
    await service.stop()


async def test_recorder_restarts_after_the_camera_drops(tmp_path: Path, builtin_clip: Path) -> None:
    server = RtspTestServer({"cam": builtin_clip}).start()
    port = server.port
    index = SegmentIndex(tmp_path / "s.db")
    recorder = SegmentRecorder(
        "cam-1",
        CameraSource(url=server.url("cam"), read_timeout_s=2, reconnect_max_s=2),
        RecordingConfig(segment_s=2),
        tmp_path / "rec",
        index,
        FFMPEG,
    )
    await recorder.start()
    revived = None
    try:
        await wait_segments(index, 2)
        server.stop()
        await asyncio.sleep(3)
        count = len(index.oldest_first("cam-1"))
        revived = RtspTestServer({"cam": builtin_clip}, port=port or 0).start()
        await wait_segments(index, count + 2, timeout=30)
        assert recorder.restarts >= 1
    finally:
        await recorder.stop()
        if revived:
            revived.stop()
        index.close()


async def test_hold_protects_segments_until_the_clip_is_cut(
    recording: tuple[SegmentRecorder, SegmentIndex], tmp_path: Path
) -> None:
    _, index = recording
    segs = await wait_segments(index, 2)

    async def on_ready(clip: ClipRef) -> None:
        assert index.is_held(segs[0])  # still protected while the clip is being made

    service = ClipService(index, FFMPEG, tmp_path / "clips", on_ready, segment_s=2)
    task = service.request("inc_h", "cam-1", segs[0].start_at, segs[1].end_at)
    assert index.is_held(segs[0]) and index.is_held(segs[1])
    assert await asyncio.wait_for(task, 30) is not None
    assert not index.is_held(segs[0])
    await service.stop()
