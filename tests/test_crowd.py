"""Crowd rule thresholds: a head count, or persons per m2 for a zone with a measured area."""

from __future__ import annotations

from datetime import UTC, datetime

from analytics.config import CrowdRule
from analytics.detection import Detection
from analytics.incidents import Transition
from analytics.rules.crowd import CrowdState

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def people(n: int) -> list[Detection]:
    return [Detection("person", 0, 0.9, 10.0 * i, 10.0, 10.0 * i + 8, 40.0) for i in range(n)]


def rule(**kw: object) -> CrowdRule:
    return CrowdRule.model_validate({"type": "crowd", "zone": "z", "for": 2, **kw})


def test_density_turns_into_a_head_count_for_the_zone_area() -> None:
    # 2 persons/m2 on a 3.2 m2 patch of pavement: 6.4 -> 7 persons open it.
    state = CrowdState(rule(min_density=2.0), area_m2=3.2)
    assert state.threshold == 7
    assert state.update(people(6), 0.0, NOW) is None
    assert state.update(people(6), 5.0, NOW) is None  # 6 for 5 s: below the density
    assert state.update(people(7), 6.0, NOW) is None  # dwell starts
    opened = state.update(people(7), 8.5, NOW)
    assert opened is not None and opened.transition is Transition.OPENED and opened.count == 7


def test_whichever_threshold_comes_first() -> None:
    assert rule(min_count=10, min_density=1.0).threshold(area_m2=4.0) == 4
    assert rule(min_count=3, min_density=1.0).threshold(area_m2=400.0) == 3
    assert rule(min_count=5, min_density=1.0).threshold(area_m2=None) == 5
