"""Tracking with the real detector on real clips: stable ids, speed, stationary objects."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from analytics.config import DetectorConfig
from analytics.detection import Detection
from analytics.detector import Detector
from analytics.tracking import CameraTracker

pytestmark = pytest.mark.slow


def sample(
    path: Path, fps: float, seconds: float, start_s: float = 0
) -> list[tuple[float, np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    native = cap.get(cv2.CAP_PROP_FPS)
    step = max(1, round(native / fps))
    frames, index = [], 0
    while True:
        ok, image = cap.read()
        t = index / native
        if not ok or t > start_s + seconds:
            break
        if t >= start_s and index % step == 0:
            frames.append((t, image))
        index += 1
    cap.release()
    return frames


async def track_clip(
    model_path: Path, clip: Path, seconds: float, start_s: float = 0
) -> tuple[CameraTracker, list[list[Detection]]]:
    det = Detector(DetectorConfig(model=str(model_path), confidence=0.3))
    await det.start()
    tracker = CameraTracker(detect_fps=5)
    per_frame = []
    try:
        for t, image in sample(clip, 5, seconds, start_s):
            per_frame.append(tracker.update(await det.detect("cam", image), t))
    finally:
        await det.stop()
    return tracker, per_frame


async def test_people_keep_their_ids(model_path: Path, assets: Path) -> None:
    tracker, frames = await track_clip(
        model_path, assets / "video" / "pets2009_vtest_480x360_tiodh.mp4", 12
    )
    persons = [[d for d in f if d.label == "person"] for f in frames]
    tracked = [d for f in persons for d in f if d.track_id is not None]
    assert len(tracked) >= 0.8 * sum(len(f) for f in persons)  # nearly all get an id
    ids = Counter(d.track_id for d in tracked)
    most_per_frame = max(len(f) for f in persons)
    # ~60 frames of up to 8 people: without tracking every detection would be "new".
    assert len(ids) <= 2.5 * most_per_frame
    assert max(ids.values()) >= 40  # someone is followed for most of the 12 s
    walkers = [i for i in tracker.tracks.values() if i.label == "person" and i.age_s > 3]
    assert walkers and max(i.speed_px_s for i in walkers) > 5  # pedestrians move


async def test_parked_cars_are_stationary(model_path: Path, assets: Path) -> None:
    tracker, _ = await track_clip(
        model_path, assets / "video" / "traffic_street_cKuhn517_MIT.mp4", 10
    )
    cars = [i for i in tracker.tracks.values() if i.label == "car" and i.age_s > 5]
    assert cars, "no car tracked for 5 s"
    assert any(i.stationary for i in cars)  # the street has parked cars


def test_no_detections_keeps_tracker_alive() -> None:
    tracker = CameraTracker(detect_fps=5)
    assert tracker.update([], 0.0) == []
    one = Detection("person", 0, 0.9, 10, 10, 50, 150)
    ids = [tracker.update([one], t / 5)[0].track_id for t in range(1, 6)]
    assert ids[-1] is not None and len(set(ids[1:])) == 1


def test_removed_tracks_do_not_pile_up() -> None:
    """Hundreds of objects that come and go: the tracker keeps a bounded tail of removed tracks
    (not ultralytics' 1000 per camera), and an object that stays keeps its id throughout."""
    tracker = CameraTracker(detect_fps=5, lost_after_s=0.4)
    stay = Detection(label="person", class_id=0, confidence=0.9, x1=10, y1=10, x2=50, y2=110)
    ids = set()
    for i in range(400):
        x = 200 + (i % 7) * 60  # a new passer-by every frame, in a different place each time
        passer = Detection(label="person", class_id=0, confidence=0.9,
                           x1=x, y1=300 + i % 3 * 5, x2=x + 40, y2=400)  # fmt: skip
        out = tracker.update([stay, passer] if i % 2 == 0 else [stay], i / 5)
        ids.add(out[0].track_id)
    assert len(ids - {None}) == 1
    assert len(tracker._tracker.removed_stracks) <= 64
