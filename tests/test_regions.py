"""Detect only where things move: motion regions become padded, merged crops at the frame's
own model scale; on the real PETS-2009 clip with the real model, the crops (with what stands
still carried over) find the same people as full frames, so counts and a crowd rule's
incidents do not change."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from analytics.config import CrowdRule, DetectorConfig
from analytics.detection import Detection
from analytics.detector import Detector
from analytics.incidents import Hysteresis, Transition
from analytics.motion import MotionGate
from analytics.regions import MIN_MODEL_PX, Crop, merge, plan, shift


def test_crops_are_padded_merged_and_at_least_the_models_useful_size() -> None:
    # 1280x720 at 640: half a model pixel per frame pixel
    crops = plan([(0.50, 0.50, 0.52, 0.56)], 1280, 720, 640)
    assert crops is not None and len(crops) == 1
    (c,) = crops
    assert c.x1 - c.x0 >= MIN_MODEL_PX * 2 and c.y1 - c.y0 >= MIN_MODEL_PX * 2
    assert c.x0 < 640 and c.x1 > 665 and c.y0 < 360 and c.y1 > 403  # the blob, with room
    two = plan([(0.10, 0.10, 0.15, 0.20), (0.14, 0.12, 0.20, 0.25), (0.8, 0.8, 0.85, 0.9)],
               1280, 720, 640)  # fmt: skip
    assert two is not None and len(two) == 2  # the touching pair is one crop
    assert not two[0].overlaps(two[1])
    for c in two:
        assert 0 <= c.x0 < c.x1 <= 1280 and 0 <= c.y0 < c.y1 <= 720
    edge = plan([(0.0, 0.0, 0.01, 0.01)], 1280, 720, 640)
    assert edge is not None and edge[0].x0 == 0 and edge[0].y0 == 0  # kept inside the frame
    assert plan([(0.0, 0.0, 0.9, 0.9)], 1280, 720, 640) is None  # most of it: the whole frame
    assert plan([], 1280, 720, 640) is None
    # a walker whose legs made the blob: the crop holds the whole person seen last frame
    walker = Detection("person", 0, 0.9, 600, 200, 680, 420)
    (held,) = plan([(0.49, 0.52, 0.52, 0.58)], 1280, 720, 640, [walker]) or []
    assert held.x0 <= 600 and held.y0 <= 200 and held.x1 >= 680 and held.y1 >= 420


def test_merging_keeps_what_stands_still_outside_the_crops() -> None:
    def person(x: float, y: float) -> Detection:
        return Detection("person", 0, 0.9, x, y, x + 40, y + 100)

    crops = [Crop(100, 100, 300, 300)]
    found = shift([person(10, 10)], crops[0])  # in crop pixels -> frame pixels
    assert (found[0].x1, found[0].y1) == (110, 110)
    before = [person(120, 120), person(600, 100)]  # one inside the crop (it moved), one not
    out = merge(found, crops, before)
    assert [(d.x1, d.y1) for d in out] == [(110, 110), (600, 100)]


def _matches(ref: list[Detection], got: list[Detection], iou: float = 0.5) -> int:
    free = list(got)
    n = 0
    for r in sorted(ref, key=lambda d: -d.confidence):
        best = max(free, key=r.iou, default=None)
        if best is not None and r.iou(best) >= iou:
            free.remove(best)
            n += 1
    return n


@pytest.mark.slow
async def test_region_crops_find_the_people_full_frames_find(
    model_path: Path, assets: Path
) -> None:
    detector = Detector(DetectorConfig(model=str(model_path)))
    await detector.start()
    try:
        cap = cv2.VideoCapture(str(assets / "video" / "pets2009_vtest_480x360_tiodh.mp4"))
        fps = cap.get(cv2.CAP_PROP_FPS)
        gate = MotionGate()
        frames, index = [], 0
        while len(frames) < 150:  # 30 s at 5 fps
            ok, image = cap.read()
            if not ok:
                break
            if index % round(fps / 5) == 0:
                frames.append(np.asarray(image, np.uint8))
            index += 1
        size, full_every = 640, 15  # a full frame every 3 s at 5 fps, as the engine does
        carried: list[Detection] = []
        ref_total = got_total = matched_ref = matched_got = crop_frames = 0
        area = 0.0
        counts: list[tuple[int, int]] = []  # persons per frame: (full frames, crops)
        for i, image in enumerate(frames):
            height, width = image.shape[:2]
            result = gate.check(image, i / 5)
            full = [d for d in await detector.detect("ref", image, size) if d.label == "person"]
            crops = None
            if result.motion and i % full_every:
                crops = plan(result.regions, width, height, size, carried)
            if not crops:
                carried = full
                counts.append((len(full), len(full)))
                continue
            scale = size / max(width, height)
            found: list[Detection] = []
            for c in crops:
                part = np.ascontiguousarray(image[c.y0 : c.y1, c.x0 : c.x1])
                side = round(max(c.x1 - c.x0, c.y1 - c.y0) * scale)
                found += shift(await detector.detect("crops", part, side), c)
            ours = [d for d in merge(found, crops, carried) if d.label == "person"]
            carried = ours
            counts.append((len(full), len(ours)))
            crop_frames += 1
            area += sum(c.area for c in crops) / (width * height)
            ref_total += len(full)
            got_total += len(ours)
            matched_ref += _matches(full, ours)
            matched_got += _matches(ours, full)
    finally:
        await detector.stop()
    assert crop_frames >= 60, crop_frames  # most frames went as crops: people walk throughout
    recall, precision = matched_ref / ref_total, matched_got / got_total
    logging.getLogger(__name__).info(
        "crops: %d frames, recall %.3f precision %.3f (%d vs %d persons), area %.2f",
        crop_frames, recall, precision, ref_total, got_total, area / crop_frames)  # fmt: skip
    assert recall >= 0.9 and precision >= 0.9, (recall, precision, ref_total, got_total)
    assert area / crop_frames < 0.6  # and the crops were a part of the picture
    # What the rules see: the person count per frame, and a crowd rule's incidents on it (a
    # level the scene crosses, 3 s dwell, cleared after 5 s) open at the same moments.
    off = [abs(a - b) for a, b in counts]
    assert sum(off) / len(off) <= 0.5 and sum(d <= 1 for d in off) / len(off) >= 0.9, counts
    level = sorted(a for a, _ in counts)[len(counts) * 3 // 4]

    def opened(which: int) -> list[float]:
        gate, out = Hysteresis(3.0, 5.0, 0.0, CrowdRule.model_fields["grace_s"].default), []
        for i, pair in enumerate(counts):
            if gate.update(pair[which] >= level, i / 5) is Transition.OPENED:
                out.append(i / 5)
        return out

    ref_open, our_open = opened(0), opened(1)
    logging.getLogger(__name__).info("crowd >= %d: full frames open at %s, crops at %s",
                                     level, ref_open, our_open)  # fmt: skip
    assert ref_open, counts  # the level was crossed for the dwell time at least once
    assert len(our_open) == len(ref_open), (ref_open, our_open)
    assert all(abs(a - b) <= 1.0 for a, b in zip(ref_open, our_open, strict=True))
