"""Traffic: congestion levels from counts and tracked speeds; counting lines; real clips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics.config import DetectorConfig, Line, MotionConfig, TrafficRule, Zone
from analytics.detection import Detection
from analytics.detector import Detector
from analytics.engine import CameraAnalytics, CameraPlace
from analytics.incidents import Transition
from analytics.rules.traffic import TrafficState
from analytics.tracking import TrackInfo
from analytics.zones import LineCounter
from events.model import Observation, ObservationPhase
from ingest.frame import Frame
from tests.test_tracking import sample

T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
ALL = Zone(id="jalan", name="Jalan", points=[(0, 0), (1, 0), (1, 1), (0, 1)])


def rule(**kw: object) -> TrafficRule:
    return TrafficRule.model_validate(
        {"type": "traffic", "zone": "jalan", "for": 2, "clear_after": 2, "cooldown": 0, **kw}
    )


def car(track_id: int, x: float) -> Detection:
    return Detection("car", 2, 0.9, x, 100, x + 80, 160, track_id)  # 60 px tall


def tracks_moving(speed_heights_per_s: float, ids: range) -> dict[int, TrackInfo]:
    out = {}
    for i in ids:
        info = TrackInfo(i, "car", 0.0, 2.0)
        for t in (0.0, 2.0):
            info.path.append((t, 100 + speed_heights_per_s * 60 * t, 160.0, 60.0))
        out[i] = info
    return out


@pytest.mark.parametrize(("speed", "level"), [(2.0, "lancar"), (0.4, "padat"), (0.05, "macet")])
def test_levels_from_speed(speed: float, level: str) -> None:
    state = TrafficState(rule(min_count=3))
    members = [car(i, 100 * i) for i in range(4)]
    assert state.level(4, state.median_speed(members, tracks_moving(speed, range(4)))) == level
    assert state.level(2, 0.01) == "lancar"  # too few vehicles is never a jam


def test_jam_opens_after_dwell_and_clears() -> None:
    state = TrafficState(rule(min_count=3))
    jammed = [car(i, 100 * i) for i in range(4)]
    slow = tracks_moving(0.05, range(4))
    out = []
    for step in range(30):
        t = step * 0.5
        members = jammed if t < 8 else []
        sig = state.update(members, slow, t, T0 + timedelta(seconds=t))
        if sig is not None and sig.transition is not Transition.HOLDING:
            out.append((t, sig.transition, sig.peak_level))
    assert out == [(2.0, Transition.OPENED, "macet"), (10.0, Transition.CLOSED, "macet")]


def test_line_counts_crossings_by_direction() -> None:
    counter = LineCounter(Line(id="garis", units="pixels", points=((200, 0), (200, 400))))
    for step, x in enumerate([100, 150, 190, 230, 260]):  # track 1 moves right
        counter.update([car(1, x - 40)], 640, 360, step * 0.2)
    for step, x in enumerate([300, 250, 180]):  # track 2 moves left
        counter.update([car(2, x - 40)], 640, 360, 1 + step * 0.2)
    assert sorted(counter.total.values()) == [1, 1]
    assert counter.per_minute() == {"in": 1.0, "out": 1.0}


async def run_clip(
    model_path: Path,
    clip: Path,
    traffic: TrafficRule,
    seconds: float,
    lines: list[Line] | None = None,
) -> tuple[list[Observation], CameraAnalytics]:
    detector = Detector(DetectorConfig(model=str(model_path), confidence=0.3))
    await detector.start()
    events: list[Observation] = []

    async def publish(event: Observation) -> None:
        events.append(event)

    engine = CameraAnalytics(
        CameraPlace("simpang", "Simpang", "Barat", None), [ALL], [traffic], detector, publish,
        None, detect_fps=5, motion=MotionConfig(enabled=False), lines=lines,
    )  # fmt: skip
    try:
        for i, (t, image) in enumerate(sample(clip, 5, seconds)):
            await engine.on_frame(Frame("simpang", i + 1, t, T0 + timedelta(seconds=t), image))
    finally:
        await detector.stop()
    return events, engine


@pytest.mark.slow
async def test_street_clip_congestion_only_when_thresholds_say_so(
    model_path: Path, assets: Path
) -> None:
    street = assets / "video" / "traffic_street_cKuhn517_MIT.mp4"
    low, engine = await run_clip(model_path, street, rule(min_count=4, slow_speed=0.6), 12)
    opened = [e for e in low if e.phase == ObservationPhase.OPENED]
    assert len(opened) == 1  # parked and crawling cars: a dense street
    assert opened[0].kind == "traffic" and opened[0].level in ("padat", "macet")
    assert opened[0].peak_count is not None and opened[0].peak_count >= 4
    assert engine.last_zone_counts["jalan"].get("car", 0) >= 4
    high, _ = await run_clip(model_path, street, rule(min_count=20), 12)
    assert [e for e in high if e.phase == ObservationPhase.OPENED] == []


@pytest.mark.slow
async def test_no_congestion_on_the_top_down_car_park(model_path: Path, assets: Path) -> None:
    park = assets / "video" / "intel_car-detection.mp4"
    events, engine = await run_clip(model_path, park, rule(min_count=1), 10)
    assert events == []  # YOLO sees no cars from straight above
    assert engine.last_zone_counts["jalan"].get("car", 0) == 0


@pytest.mark.slow
async def test_counting_line_on_the_street(model_path: Path, assets: Path) -> None:
    street = assets / "video" / "traffic_street_cKuhn517_MIT.mp4"
    line = Line(id="tengah", points=((0.5, 0.0), (0.5, 1.0)))
    _, engine = await run_clip(model_path, street, rule(min_count=50), 25, lines=[line])
    assert sum(engine.lines[0].total.values()) >= 1  # moving cars cross the middle
