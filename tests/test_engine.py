"""CameraAnalytics with the real detector: motion gating keeps still crowds counted, tracks
reach the incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest

from analytics.config import CrowdRule, DetectorConfig, MotionConfig, Zone
from analytics.detector import Detector
from analytics.engine import CameraAnalytics, CameraPlace, local_snapshots
from events.model import Observation, ObservationPhase
from ingest.frame import Frame

pytestmark = pytest.mark.slow
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def test_still_crowd_opens_an_incident_with_few_detector_runs(
    model_path: Path, assets: Path, tmp_path: Path
) -> None:
    image = cv2.imread(str(assets / "frames" / "pets2009_vtest_480x360_tiodh_f0170.jpg"))
    detector = Detector(DetectorConfig(model=str(model_path), confidence=0.3))
    await detector.start()
    events: list[Observation] = []

    async def publish(event: Observation) -> None:
        events.append(event)

    rule = CrowdRule.model_validate(
        {"type": "crowd", "zone": "all", "min_count": 5, "for": 1, "clear_after": 5}
    )
    engine = CameraAnalytics(
        CameraPlace("cam-1", "Kampus", "Kota", "Kauman"),
        [Zone(id="all", name="Semua", points=[(0, 0), (1, 0), (1, 1), (0, 1)])],
        [rule], detector, publish, local_snapshots(tmp_path / "snaps"), detect_fps=5,
        motion=MotionConfig(keepalive_s=2.0),
    )  # fmt: skip
    try:
        for i in range(20):  # 4 s of an unchanging picture at 5 fps
            t = i * 0.2
            await engine.on_frame(Frame("cam-1", i + 1, 100 + t, T0 + timedelta(seconds=t), image))
    finally:
        await detector.stop()
    assert engine.frames == 20 and engine.detected == 2  # t=0 and the 2 s keep-alive
    opened = [e for e in events if e.phase == ObservationPhase.OPENED]
    assert len(opened) == 1
    incident = opened[0]
    assert incident.kind == "crowd" and incident.peak_count is not None
    assert incident.peak_count >= 5 and incident.kecamatan == "Kota" and incident.desa == "Kauman"
    assert len(incident.track_ids) >= 5  # the people who caused it, by track id
    assert incident.snapshot_ref and (tmp_path / "snaps" / incident.snapshot_ref).is_file()


async def test_people_clip_counts_and_thresholds(model_path: Path, assets: Path) -> None:
    """PETS-2009: persons per frame in the expected range; a crowd incident when the threshold
    is below the peak, none when it is above."""
    from tests.test_tracking import sample

    frames = sample(assets / "video" / "pets2009_vtest_480x360_tiodh.mp4", 2, 20)
    detector = Detector(DetectorConfig(model=str(model_path), confidence=0.3))
    await detector.start()
    zone = Zone(id="all", points=[(0, 0), (1, 0), (1, 1), (0, 1)])
    try:
        results = {}
        for min_count in (4, 12):
            events: list[Observation] = []

            async def publish(event: Observation, sink: list[Observation] = events) -> None:
                sink.append(event)

            rule = CrowdRule.model_validate(
                {"type": "crowd", "zone": "all", "min_count": min_count, "for": 2}
            )
            engine = CameraAnalytics(
                CameraPlace("cam", "Kampus", None, None),
                [zone],
                [rule],
                detector,
                publish,
                None,
                detect_fps=2,
                motion=MotionConfig(enabled=False),
            )
            counts = []
            for i, (t, image) in enumerate(frames):
                await engine.on_frame(Frame("cam", i + 1, t, T0 + timedelta(seconds=t), image))
                counts.append(engine.last_zone_counts["all"].get("person", 0))
            results[min_count] = (counts, events)
    finally:
        await detector.stop()
    counts, low_events = results[4]
    assert min(counts) >= 1 and 5 <= max(counts) <= 10  # "person in every frame, up to 8"
    assert [e.phase for e in low_events][:1] == [ObservationPhase.OPENED]
    assert results[12][1] == []  # the peak never reaches 12: no incident


async def test_frames_in_flight_are_analysed_in_order(model_path: Path, assets: Path) -> None:
    """The worker hands a camera's next frame over before the last one is analysed: with every
    frame of a clip in flight at once (batched together in the detector), tracking and counts
    come out exactly as when the frames are analysed one by one."""
    import asyncio

    from tests.test_tracking import sample

    frames = sample(assets / "video" / "pets2009_vtest_480x360_tiodh.mp4", 5, 12)
    detector = Detector(DetectorConfig(model=str(model_path), confidence=0.3, max_batch=4))
    await detector.start()
    zone = Zone(id="all", points=[(0, 0), (1, 0), (1, 1), (0, 1)])
    rule = CrowdRule.model_validate({"type": "crowd", "zone": "all", "min_count": 4, "for": 1})

    async def run(concurrent: bool) -> list[tuple[int, tuple[int | None, ...]]]:
        async def publish(event: Observation) -> None:
            pass

        engine = CameraAnalytics(
            CameraPlace("cam", "Kampus", None, None), [zone], [rule], detector, publish, None,
            detect_fps=5, motion=MotionConfig(enabled=False),
        )  # fmt: skip
        seen: dict[int, tuple[int, tuple[int | None, ...]]] = {}

        async def one(i: int, t: float, image: object) -> None:
            await engine.on_frame(Frame("cam", i + 1, t, T0 + timedelta(seconds=t), image))  # type: ignore[arg-type]
            ids = tuple(sorted(d.track_id for d in engine.last_detections if d.track_id))
            seen[i] = (engine.last_zone_counts["all"].get("person", 0), ids)

        if concurrent:
            await asyncio.gather(*(one(i, t, im) for i, (t, im) in enumerate(frames)))
        else:
            for i, (t, im) in enumerate(frames):
                await one(i, t, im)
        assert engine.detected == len(frames)
        return [seen[i] for i in range(len(frames))]

    try:
        one_by_one = await run(False)
        batches_before = detector.stats.batches
        all_at_once = await run(True)
        assert detector.stats.batches - batches_before < len(frames)  # really batched together
    finally:
        await detector.stop()
    assert all_at_once == one_by_one
    assert max(count for count, _ in one_by_one) >= 4


async def test_quiet_camera_rechecks_a_still_scene_less_and_less_often(
    model_path: Path, assets: Path, tmp_path: Path
) -> None:
    """A camera on keyframes (sparse frames, one per 2 s GOP) re-checks a still scene with the
    detector after `quiet_keepalive_s`, then twice as long each time the detector finds the
    same objects again, up to `quiet_keepalive_max_s`; motion starts it over."""
    image = cv2.imread(str(assets / "frames" / "pets2009_vtest_480x360_tiodh_f0170.jpg"))
    other = cv2.imread(str(assets / "frames" / "traffic_street_cKuhn517_MIT_f0290.jpg"))
    moved = image.copy()  # something comes into a quarter of the picture for one keyframe
    h, w = image.shape[:2]
    moved[: h // 2, : w // 2] = cv2.resize(other, (w // 2, h // 2))
    detector = Detector(DetectorConfig(model=str(model_path), confidence=0.3))
    await detector.start()

    async def publish(event: Observation) -> None:
        pass

    engine = CameraAnalytics(
        CameraPlace("cam-1", "Kampus", None, None),
        [Zone(id="all", points=[(0, 0), (1, 0), (1, 1), (0, 1)])], [], detector,
        publish, local_snapshots(tmp_path / "snaps"), detect_fps=5,
        motion=MotionConfig(quiet_keepalive_s=10, quiet_keepalive_max_s=40),
    )  # fmt: skip
    runs: list[float] = []
    try:
        for i in range(100):  # 200 s of keyframes, 2 s apart; another scene at 150 s
            t = i * 2.0
            before = engine.detected
            picture = moved if t == 150 else image
            await engine.on_frame(Frame("cam-1", 1 + i * 30, 100 + t,
                                        T0 + timedelta(seconds=t), picture, True))  # fmt: skip
            if engine.detected > before:
                runs.append(t)
    finally:
        await detector.stop()
    assert len(engine.last_detections) >= 5
    # 0, +10, +20, +40, +40; the change at 150 s is motion (checked at once) and starts it over:
    # +10 finds it gone (a change), then +10, +20 again
    assert runs == [0, 10, 30, 70, 110, 150, 160, 170, 190]
