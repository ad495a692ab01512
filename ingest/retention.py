"""Retention: delete the oldest recorded segments by age and by disk use, never held ones."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ingest.config import RecordingConfig
from ingest.segments import Segment, SegmentIndex

log = logging.getLogger(__name__)

DiskUsage = Callable[[Path], tuple[int, int]]  # (used, total) bytes of the filesystem


def disk_usage(path: Path) -> tuple[int, int]:
    usage = shutil.disk_usage(path)
    return usage.used, usage.total


@dataclass
class RetentionReport:
    deleted: int = 0
    freed_bytes: int = 0
    kept_held: int = 0


class Retention:
    def __init__(
        self,
        index: SegmentIndex,
        config: RecordingConfig,
        root: Path,
        retention_days: dict[str, float] | None = None,
        usage: DiskUsage = disk_usage,
    ) -> None:
        self.index = index
        self.config = config
        self.root = root
        self.retention_days = retention_days or {}
        self._usage = usage

    def _delete(self, segment: Segment, report: RetentionReport) -> None:
        segment.path.unlink(missing_ok=True)
        self.index.remove(segment)
        report.deleted += 1
        report.freed_bytes += segment.size

    def _over_budget(self) -> bool:
        if self.config.max_bytes is not None and self.index.total_bytes() > self.config.max_bytes:
            return True
        used, total = self._usage(self.root)  # unlink frees at once: re-read, don't subtract
        return total > 0 and used / total > self.config.max_disk_fraction

    def run(self, now: datetime) -> RetentionReport:
        """Blocking (file deletes, SQLite): call from a thread."""
        report = RetentionReport()
        for segment in self.index.oldest_first(limit=100_000):
            days = self.retention_days.get(segment.camera_id, self.config.retention_days)
            if segment.end_at >= now - timedelta(days=days):
                continue
            if self.index.is_held(segment):
                report.kept_held += 1
                continue
            self._delete(segment, report)
        while self._over_budget():
            victims = [s for s in self.index.oldest_first(limit=200) if not self.index.is_held(s)]
            if not victims:
                log.error("recordings over budget but every remaining segment is held by a clip")
                break
            for segment in victims:
                self._delete(segment, report)
                if not self._over_budget():
                    break
        if report.deleted:
            log.info(
                "retention deleted %d segments (%.1f MB), kept %d held",
                report.deleted,
                report.freed_bytes / 1e6,
                report.kept_held,
            )
        return report
