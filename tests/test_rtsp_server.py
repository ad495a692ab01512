"""The loopback RTSP server streams real H.264 that FFmpeg can read, several viewers at once."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pantau.rtsp_server import RtspServerError, RtspTestServer

pytestmark = pytest.mark.slow


def probe(ffprobe: str, url: str) -> dict[str, object]:
    out = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "json",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    streams = json.loads(out.stdout)["streams"]
    assert len(streams) == 1
    return dict(streams[0])


def test_streams_h264_to_two_viewers(
    rtsp_server: Callable[..., RtspTestServer], builtin_clip: Path, ffprobe: str
) -> None:
    server = rtsp_server({"cam-a": builtin_clip, "cam-b": builtin_clip})
    assert server.port and server.port > 0
    for path in ("cam-a", "cam-b"):
        assert probe(ffprobe, server.url(path)) == {
            "codec_name": "h264",
            "width": 960,
            "height": 540,
        }


def test_auth_required_when_configured(
    rtsp_server: Callable[..., RtspTestServer], builtin_clip: Path, ffprobe: str
) -> None:
    server = rtsp_server({"cam": builtin_clip}, auth=("operator", "rahasia"))
    assert probe(ffprobe, server.url("cam"))["codec_name"] == "h264"
    denied = subprocess.run(
        [ffprobe, "-v", "error", "-rtsp_transport", "tcp", server.url("cam", with_auth=False)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert denied.returncode != 0 and "401" in denied.stderr


def test_bad_file_or_busy_port_fails_clearly(builtin_clip: Path) -> None:
    with RtspTestServer({"cam": builtin_clip}) as first:
        assert first.port is not None
        with pytest.raises(RtspServerError, match="cannot listen"):
            RtspTestServer({"cam": builtin_clip}, port=first.port).start()
