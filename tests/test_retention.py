"""Retention by age and by disk budget: oldest first, never a segment held by a clip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest.config import RecordingConfig
from ingest.retention import Retention
from ingest.segments import Segment, SegmentIndex

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def fill(
    tmp_path: Path, index: SegmentIndex, camera: str, count: int, start: datetime
) -> list[Segment]:
    segs = []
    for i in range(count):
        path = tmp_path / camera / f"{i:04d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 1000)
        seg = Segment(
            camera,
            start + timedelta(seconds=10 * i),
            start + timedelta(seconds=10 * (i + 1)),
            path,
            1000,
        )
        index.add(seg)
        segs.append(seg)
    return segs


def test_budget_deletes_oldest_unheld_first(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "s.db")
    segs = fill(tmp_path, index, "cam-1", 10, NOW - timedelta(hours=1))
    index.hold("inc_a", "cam-1", segs[0].start_at + timedelta(seconds=1), segs[1].end_at)
    retention = Retention(index, RecordingConfig(max_bytes=6000), tmp_path, usage=lambda _: (0, 1))
    report = retention.run(NOW)
    left = index.oldest_first()
    assert index.total_bytes() <= 6000
    assert report.deleted == 4
    assert [s.path.name for s in left] == [
        "0000.mp4",
        "0001.mp4",
        "0006.mp4",
        "0007.mp4",
        "0008.mp4",
        "0009.mp4",
    ]
    assert not segs[2].path.exists() and segs[0].path.exists()
    index.release("inc_a")  # the clip was deleted: its segments are ordinary again
    Retention(index, RecordingConfig(max_bytes=3000), tmp_path, usage=lambda _: (0, 1)).run(NOW)
    assert [s.path.name for s in index.oldest_first()] == ["0007.mp4", "0008.mp4", "0009.mp4"]


def test_age_limit_per_camera(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "s.db")
    fill(tmp_path, index, "old-cam", 3, NOW - timedelta(days=3))
    fill(tmp_path, index, "new-cam", 3, NOW - timedelta(days=3))
    held = fill(tmp_path, index, "kept", 1, NOW - timedelta(days=30))
    index.hold("inc_k", "kept", held[0].start_at, held[0].end_at)
    retention = Retention(
        index,
        RecordingConfig(retention_days=7),
        tmp_path,
        retention_days={"old-cam": 1},
        usage=lambda _: (0, 1),
    )
    report = retention.run(NOW)
    cams = sorted({s.camera_id for s in index.oldest_first()})
    assert cams == ["kept", "new-cam"] and report.deleted == 3 and report.kept_held == 1


def test_disk_fraction(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "s.db")
    fill(tmp_path, index, "cam", 10, NOW - timedelta(hours=1))
    # A disk of 100 kB where everything except our segments uses 80 kB: 0.85 allows 5 kB more.
    retention = Retention(
        index,
        RecordingConfig(max_disk_fraction=0.85),
        tmp_path,
        usage=lambda _: (80_000 + index.total_bytes(), 100_000),
    )
    retention.run(NOW)
    assert index.total_bytes() == 5000
