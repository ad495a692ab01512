"""Traffic congestion: many vehicles in a lane zone moving slowly, for a dwell time.

Levels follow how Dishub reports roads: lancar (flowing), padat (dense), macet (jammed).
The incident holds the worst level seen (peak) and the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from analytics.config import TrafficRule
from analytics.detection import Detection
from analytics.incidents import Hysteresis, Transition
from analytics.tracking import TrackInfo

LEVELS = ("lancar", "padat", "macet")


@dataclass(frozen=True)
class TrafficSignal:
    transition: Transition
    count: int
    peak: int
    level: str
    peak_level: str
    median_speed: float  # box heights per second
    track_ids: tuple[int, ...]
    started_at: datetime


class TrafficState:
    def __init__(self, rule: TrafficRule) -> None:
        self.rule = rule
        self.gate = Hysteresis(rule.for_s, rule.clear_after_s, rule.cooldown_s, rule.grace_s)
        self._peak = 0
        self._peak_level = LEVELS[0]
        self._started_at: datetime | None = None
        self.last_count, self.last_speed = 0, float("inf")  # the last frame's (a replay's chart)

    def level(self, count: int, speed: float) -> str:
        if count < self.rule.min_count or speed >= self.rule.slow_speed:
            return "lancar"
        return "macet" if speed < self.rule.jam_speed else "padat"

    @staticmethod
    def median_speed(members: list[Detection], tracks: dict[int, TrackInfo]) -> float:
        speeds = []
        for d in members:
            info = tracks.get(d.track_id) if d.track_id is not None else None
            if info is None or info.age_s < 1.0:
                continue  # a new track has no speed yet
            speeds.append(info.speed_px_s / max(d.y2 - d.y1, 1.0))
        return float(np.median(speeds)) if speeds else float("inf")

    def resume(self, started_at: datetime, peak: float, now_mono: float) -> None:
        """Continue an observation another box held open (engine.CameraAnalytics.resume)."""
        self.gate.resume(now_mono)
        self._started_at = started_at
        self._peak = int(peak)

    def update(
        self,
        members: list[Detection],
        tracks: dict[int, TrackInfo],
        now_mono: float,
        now_utc: datetime,
    ) -> TrafficSignal | None:
        count = len(members)
        speed = self.median_speed(members, tracks)
        self.last_count, self.last_speed = count, speed
        level = self.level(count, speed)
        was_open = self.gate.is_open
        transition = self.gate.update(level != "lancar", now_mono)
        if transition is None:
            return None
        if transition is Transition.OPENED or not was_open:
            self._peak, self._peak_level, self._started_at = 0, LEVELS[0], now_utc
        self._peak = max(self._peak, count)
        if LEVELS.index(level) > LEVELS.index(self._peak_level):
            self._peak_level = level
        assert self._started_at is not None
        return TrafficSignal(
            transition=transition, count=count, peak=self._peak, level=level,
            peak_level=self._peak_level, median_speed=speed,
            track_ids=tuple(sorted(d.track_id for d in members if d.track_id is not None)),
            started_at=self._started_at,
        )  # fmt: skip
