"""Motion gate on real CCTV frames: walkers are motion, a still scene is not, nor is a lighting
jump; still scenes are still re-checked at the keep-alive rate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from analytics.motion import MotionGate


@pytest.fixture(scope="module")
def pets_frames(assets: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(assets / "video" / "pets2009_vtest_480x360_tiodh.mp4"))
    frames = []
    for _ in range(40):
        ok, image = cap.read()
        assert ok
        frames.append(image)
    cap.release()
    return frames


def noisy(image: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 3, image.shape)  # sensor noise
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def test_walking_people_are_motion(pets_frames: list[np.ndarray]) -> None:
    gate = MotionGate(keepalive_s=1e9)
    results = [gate.check(f, i * 0.1) for i, f in enumerate(pets_frames)]
    assert all(r.motion for r in results[5:])  # 10 fps clip, people always walking


def test_still_scene_is_not_motion_but_gets_keepalive(pets_frames: list[np.ndarray]) -> None:
    gate = MotionGate(keepalive_s=2.0)
    still = pets_frames[0]
    results = [gate.check(noisy(still, i), i * 0.2) for i in range(30)]  # 6 s at 5 fps
    assert not any(r.motion for r in results[1:])
    detects = [i for i, r in enumerate(results) if r.detect]
    assert detects == [0, 10, 20]  # first frame, then every 2 s


def test_lighting_jump_is_not_motion(pets_frames: list[np.ndarray]) -> None:
    gate = MotionGate(keepalive_s=1e9)
    day = pets_frames[0]
    gate.check(day, 0.0)
    gate.check(day, 0.2)
    # IR switch: the camera drops colour and changes gain in one frame.
    night = cv2.cvtColor(cv2.cvtColor(day, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    night = cv2.convertScaleAbs(night, alpha=0.45, beta=10)
    jump = gate.check(night, 0.4)
    assert not jump.motion and not jump.detect
    after = gate.check(night, 0.6)  # the new look is the background now
    assert not after.motion


def test_gain_change_alone_is_not_motion(pets_frames: list[np.ndarray]) -> None:
    # Auto-exposure steps (this frame's bright facade clips beyond about +10 %).
    for alpha, beta in [(1.1, 5), (1.0, 20), (0.9, -10), (0.7, 0)]:
        gate = MotionGate(keepalive_s=1e9)
        gate.check(pets_frames[0], 0.0)
        changed = cv2.convertScaleAbs(pets_frames[0], alpha=alpha, beta=beta)
        assert not gate.check(changed, 0.2).motion, (alpha, beta)
