"""Tamper and video-loss rule: black, covered, defocused, moved or frozen picture.

Frigate raises nothing when a camera is covered or turned away; an operator then watches a black
tile for hours. Each check compares the picture with a baseline learned from the camera's own
healthy frames, so a dark street at night is not "black" and a soft lens is not "defocused":

- black: very dark and flat;
- covered: flat and without fine texture but not black, e.g. a hand, tape, a bag;
- defocus: sharpness (variance of the Laplacian) fell far below the baseline;
- moved: the fixed scene (a median of recent frames, so passers-by drop out) shifted against
  the reference (phase correlation) or no longer resembles it;
- frozen: the decoder delivers frames but the picture is bit-for-bit still (a hung encoder).
Video loss (no frames at all) comes from the camera's health, see `OfflineState`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from analytics.config import TamperRule
from analytics.incidents import Hysteresis, Transition

WIDTH = 320
Grey = npt.NDArray[np.float32]


@dataclass(frozen=True)
class TamperMetrics:
    mean: float
    std: float
    sharpness: float  # variance of the Laplacian
    shift: float  # scene shift vs reference, as a share of the width
    similarity: float  # correlation with the reference, -1..1
    still: bool  # bit-for-bit (nearly) identical to the previous frame


def _grey(image: npt.NDArray[np.uint8]) -> Grey:
    height, width = image.shape[:2]
    small = cv2.resize(
        image, (WIDTH, max(1, round(height * WIDTH / width))), interpolation=cv2.INTER_AREA
    )
    return np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), dtype=np.float32)


class TamperState:
    """Feed every analysed frame; returns (transition, cause) when the incident changes."""

    def __init__(self, rule: TamperRule, baseline_frames: int = 5) -> None:
        self.rule = rule
        self.gate = Hysteresis(rule.for_s, rule.clear_after_s, rule.cooldown_s)
        self._baseline_frames = baseline_frames
        self._sharpness: list[float] = []
        self._reference: Grey | None = None
        self._reference_at = 0.0
        self._previous: Grey | None = None
        self._recent: deque[Grey] = deque(maxlen=7)
        self._still_since: float | None = None
        self.cause: str | None = None
        self.last: TamperMetrics | None = None

    @property
    def learning(self) -> bool:
        return self._reference is None

    def background(self, grey: Grey) -> Grey:
        """Median of the last few frames: people and cars passing by are gone from it, so the
        position check compares the fixed scene, not who happens to walk through it."""
        if self._recent and self._recent[-1].shape != grey.shape:
            self._recent.clear()
        self._recent.append(grey)
        return np.median(np.stack(self._recent), axis=0).astype(np.float32)

    def background_now(self) -> Grey:
        return np.median(np.stack(self._recent), axis=0).astype(np.float32)

    def measure(self, grey: Grey) -> TamperMetrics:
        still = self._previous is not None and float(np.abs(grey - self._previous).mean()) < 0.05
        self._previous = grey
        scene = self.background(grey)
        shift, similarity = 0.0, 1.0
        if self._reference is not None and self._reference.shape == grey.shape:
            window = cv2.createHanningWindow(grey.shape[::-1], cv2.CV_32F)
            # Copies: this OpenCV applies the window to its inputs in place.
            (dx, dy), _ = cv2.phaseCorrelate(self._reference.copy(), scene.copy(), window)
            shift = float(np.hypot(dx, dy)) / grey.shape[1]
            a, b = self._reference - self._reference.mean(), scene - scene.mean()
            denom = float(np.sqrt((a * a).sum() * (b * b).sum())) or 1.0
            similarity = float((a * b).sum() / denom)
        return TamperMetrics(
            mean=float(grey.mean()), std=float(grey.std()),
            sharpness=float(cv2.Laplacian(grey, cv2.CV_32F).var()),
            shift=shift, similarity=similarity, still=still,
        )  # fmt: skip

    def classify(self, m: TamperMetrics, now: float) -> str | None:
        if m.mean < 20 and m.std < 10:
            return "black"
        # Flat AND without fine texture: a hand or tape at the lens is out of focus. Flat alone
        # is not enough: an empty car park seen from above is flat too, but its asphalt is sharp.
        if m.std < 8 or (m.std < 15 and m.sharpness < 25):
            return "covered"
        if self._reference is None:
            return None
        baseline = float(np.median(self._sharpness))
        if m.sharpness < self.rule.defocus_ratio * baseline:
            return "defocus"
        if m.shift > self.rule.moved_shift or m.similarity < self.rule.moved_similarity:
            return "moved"
        if m.still:
            self._still_since = self._still_since if self._still_since is not None else now
            if now - self._still_since >= self.rule.frozen_s:
                return "frozen"
        else:
            self._still_since = None
        return None

    def update(self, image: npt.NDArray[np.uint8], now: float) -> tuple[Transition, str] | None:
        grey = _grey(image)
        m = self.measure(grey)
        self.last = m
        cause = self.classify(m, now)
        if cause is None and self._reference is None:
            # Learn what this camera looks like when healthy before judging sharpness/position.
            self._sharpness.append(m.sharpness)
            if len(self._sharpness) >= self._baseline_frames:
                self._reference, self._reference_at = self.background_now(), now
        elif (
            cause is None
            and not self.gate.is_open
            and now - self._reference_at >= self.rule.reference_refresh_s
        ):
            # Scenes change slowly (cars leave, night falls): follow them while healthy, so
            # only a sudden change counts as "moved".
            self._reference, self._reference_at = self.background_now(), now
            self._sharpness = [*self._sharpness[-(self._baseline_frames - 1) :], m.sharpness]
        transition = self.gate.update(cause is not None, now)
        if transition is Transition.OPENED:
            self.cause = cause
        if transition is None:
            return None
        if transition is Transition.HOLDING and cause is not None:
            self.cause = cause
        return transition, self.cause or "tamper"
