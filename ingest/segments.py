"""The index of recorded segments: (camera, start, end, path, size), and holds that protect them.

Kept in its own SQLite file beside the recordings and touched by one thread only, so lookups
of a time range are an index scan, never a walk over the disk.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    path TEXT PRIMARY KEY,
    camera_id TEXT NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_camera_time ON segments(camera_id, start_at);
CREATE TABLE IF NOT EXISTS holds (
    id TEXT PRIMARY KEY,
    camera_id TEXT NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Segment:
    camera_id: str
    start_at: datetime
    end_at: datetime
    path: Path
    size: int

    @property
    def duration_s(self) -> float:
        return (self.end_at - self.start_at).total_seconds()


def _ts(value: datetime) -> str:
    """Fixed-width UTC text, so SQL string order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _row(row: tuple[str, str, str, str, int]) -> Segment:
    path, camera_id, start, end, size = row
    return Segment(
        camera_id, datetime.fromisoformat(start), datetime.fromisoformat(end), Path(path), size
    )


class SegmentIndex:
    """Thread-safe; each call is short. Stamps are stored as UTC ISO strings (sortable)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # Small rows, read by time range: a few index pages are hot. SQLite's default 2 MB
            # cache would fill for hours with pages of old segments (RSS growth in a soak).
            self._conn.execute("PRAGMA cache_size=-256")
            self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, segment: Segment) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO segments VALUES (?, ?, ?, ?, ?)",
                (
                    str(segment.path),
                    segment.camera_id,
                    _ts(segment.start_at),
                    _ts(segment.end_at),
                    segment.size,
                ),
            )

    def remove(self, segment: Segment) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM segments WHERE path = ?", (str(segment.path),))

    def overlapping(self, camera_id: str, start: datetime, end: datetime) -> list[Segment]:
        """Segments of a camera that overlap [start, end), oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT path, camera_id, start_at, end_at, size FROM segments "
                "WHERE camera_id = ? AND start_at < ? AND end_at > ? ORDER BY start_at",
                (camera_id, _ts(end), _ts(start)),
            ).fetchall()
        return [_row(r) for r in rows]

    def latest_end(self, camera_id: str) -> datetime | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT MAX(end_at) FROM segments WHERE camera_id = ?", (camera_id,)
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def oldest_first(self, camera_id: str | None = None, limit: int = 500) -> list[Segment]:
        sql = "SELECT path, camera_id, start_at, end_at, size FROM segments"
        params: tuple[object, ...] = ()
        if camera_id is not None:
            sql += " WHERE camera_id = ?"
            params = (camera_id,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY start_at LIMIT ?", (*params, limit))
            return [_row(r) for r in rows.fetchall()]

    def total_bytes(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT COALESCE(SUM(size), 0) FROM segments").fetchone()
        return int(row[0])

    # ---- holds: time ranges whose segments retention must keep --------------------------
    def hold(self, hold_id: str, camera_id: str, start: datetime, end: datetime) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO holds VALUES (?, ?, ?, ?)",
                (hold_id, camera_id, _ts(start), _ts(end)),
            )

    def release(self, hold_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM holds WHERE id = ?", (hold_id,))

    def is_held(self, segment: Segment) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM holds WHERE camera_id = ? AND start_at < ? AND end_at > ? LIMIT 1",
                (segment.camera_id, _ts(segment.end_at), _ts(segment.start_at)),
            ).fetchone()
        return row is not None
