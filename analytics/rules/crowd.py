"""Crowd rule: persons in a zone at or above a count (or a density, for a zone with an area)
for a dwell time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from analytics.config import CrowdRule
from analytics.detection import Detection
from analytics.incidents import Hysteresis, Transition


@dataclass(frozen=True)
class CrowdSignal:
    """What the rule concluded for one frame; the engine turns it into incident events."""

    transition: Transition
    count: int
    peak: int
    track_ids: tuple[int, ...]
    started_at: datetime


class CrowdState:
    def __init__(self, rule: CrowdRule, area_m2: float | None = None) -> None:
        self.rule = rule
        self.threshold = rule.threshold(area_m2)
        self.gate = Hysteresis(rule.for_s, rule.clear_after_s, rule.cooldown_s, rule.grace_s)
        self._peak = 0
        self._started_at: datetime | None = None
        self.last_count = 0  # what the last frame measured (a replay charts it)

    def resume(self, started_at: datetime, peak: float, now_mono: float) -> None:
        """Continue an observation another box held open (engine.CameraAnalytics.resume)."""
        self.gate.resume(now_mono)
        self._started_at = started_at
        self._peak = int(peak)

    def update(
        self, members: list[Detection], now_mono: float, now_utc: datetime
    ) -> CrowdSignal | None:
        count = len(members)
        self.last_count = count
        was_open = self.gate.is_open
        transition = self.gate.update(count >= self.threshold, now_mono)
        if transition is None:
            return None
        if transition is Transition.OPENED or not was_open:
            self._peak = 0
            self._started_at = now_utc
        self._peak = max(self._peak, count)
        assert self._started_at is not None
        return CrowdSignal(
            transition=transition,
            count=count,
            peak=self._peak,
            track_ids=tuple(sorted(d.track_id for d in members if d.track_id is not None)),
            started_at=self._started_at,
        )
