"""RTSP credentials are masked in URLs and in free text."""

from __future__ import annotations

from ingest.urls import mask_text, mask_url


def test_mask_url() -> None:
    assert mask_url("rtsp://admin:hunter2@10.0.0.5:554/Streaming/101") == (
        "rtsp://admin:***@10.0.0.5:554/Streaming/101"
    )
    assert mask_url("rtsp://10.0.0.5/live") == "rtsp://10.0.0.5/live"
    assert "p@ss" not in mask_url("rtsp://u:p@ss@host/x")


def test_mask_text() -> None:
    text = "failed to open rtsp://admin:hunter2@10.0.0.5/x and rtsps://op:pw@cam/y"
    masked = mask_text(text)
    assert "hunter2" not in masked and ":pw@" not in masked
    assert "rtsp://admin:***@10.0.0.5/x" in masked
