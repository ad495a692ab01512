"""Flood: how much of a ground zone no longer looks like its dry self, and whether it rises.

What the classical method sees: a floor, road or field changing colour over a large, lasting
area against the dry look learned at start (muddy water on tiles, asphalt or grass), with
global lighting changes compensated and people and vehicles (from the detector) left out.
What it cannot see: clear water that keeps the colour of what is under it, a wet surface
that looks like the dry one, anything at night under IR where colour is gone, and a zone
that was already wet when the baseline was learned. Sites that need more train their own
`water` class and list it in `classes`; the same rule then measures the zone's coverage by
those detections.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np
import numpy.typing as npt

from analytics.config import FloodRule, Zone
from analytics.detection import Detection
from analytics.incidents import Hysteresis, Transition
from analytics.state_model import StateModel

WIDTH = 160
REFRESH_DRY_S = 120.0  # follow slow lighting changes while the zone is dry


@dataclass(frozen=True)
class FloodSignal:
    transition: Transition
    fraction: float
    peak: float
    rising: bool
    started_at: datetime


def _lab(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    height, width = image.shape[:2]
    small = cv2.resize(
        image, (WIDTH, max(1, round(height * WIDTH / width))), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (5, 5), 0)
    return np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2LAB), dtype=np.float32)


class FloodState:
    def __init__(self, rule: FloodRule, zone: Zone, model: StateModel | None = None) -> None:
        self.rule = rule
        self.zone = zone
        self.use_model(model)
        self.gate = Hysteresis(rule.for_s, rule.clear_after_s, rule.cooldown_s)
        self._samples: list[npt.NDArray[np.float32]] = []
        self._first_sample: float | None = None
        self._baseline: npt.NDArray[np.float32] | None = None
        self._baseline_at = 0.0
        self._mask: npt.NDArray[np.bool_] | None = None
        self._history: deque[tuple[float, float]] = deque(maxlen=120)
        self._peak = 0.0
        self._started_at: datetime | None = None
        self.fraction = 0.0

    @property
    def learning(self) -> bool:
        return self._baseline is None and not self.rule.classes

    def _zone_mask(
        self, shape: tuple[int, int], frame_w: int, frame_h: int
    ) -> npt.NDArray[np.bool_]:
        if self._mask is None or self._mask.shape != shape:
            pts = np.array(self.zone.points, dtype=np.float64)
            if self.zone.units == "pixels":
                pts = pts / np.array([frame_w, frame_h])
            mask = np.zeros(shape, dtype=np.uint8)
            cv2.fillPoly(mask, [(pts * [shape[1], shape[0]]).round().astype(np.int32)], 1)
            self._mask = mask.astype(bool)
        return self._mask

    def _objects_mask(
        self, shape: tuple[int, int], frame_w: int, detections: list[Detection]
    ) -> npt.NDArray[np.bool_]:
        scale = shape[1] / frame_w
        mask = np.zeros(shape, dtype=np.uint8)
        for d in detections:
            cv2.rectangle(
                mask,
                (int(d.x1 * scale), int(d.y1 * scale)),
                (int(d.x2 * scale), int(d.y2 * scale)),
                1,
                -1,
            )
        return mask.astype(bool)

    def use_model(self, model: StateModel | None) -> None:
        """The camera's own trained model, when one is enabled and knows a wet state: it
        replaces the classical measure (which cannot see grey water on grey asphalt)."""
        wet = [s for s in self.rule.wet_states if model is not None and s in model.states]
        self.model, self._wet = (model, wet) if wet else (None, [])
        self.method = "model" if self.model is not None else "classical"

    def measure(
        self, image: npt.NDArray[np.uint8], detections: list[Detection], now: float
    ) -> float | None:
        """Share of the zone that is water-like now (with a trained model: its probability that
        the zone is wet); None while the dry baseline is learned."""
        frame_h, frame_w = image.shape[:2]
        if self.model is not None:
            probs = self.model.probabilities(image, self.zone)
            return float(sum(probs[s] for s in self._wet))
        if self.rule.classes:
            return self._custom_model_coverage(image.shape[:2], detections)
        lab = _lab(image)
        zone = self._zone_mask(lab.shape[:2], frame_w, frame_h)
        if self._baseline is None:
            self._first_sample = self._first_sample if self._first_sample is not None else now
            self._samples.append(lab)
            if now - self._first_sample >= self.rule.baseline_s and len(self._samples) >= 3:
                self._baseline = np.median(np.stack(self._samples), axis=0).astype(np.float32)
                self._baseline_at, self._samples = now, []
            return None
        delta = lab - self._baseline
        # Lighting: the part of the picture outside the zone tells how much brighter or darker
        # everything got; remove that from the zone's brightness change.
        outside = ~zone
        if outside.any():
            delta[..., 0] -= float(np.median(delta[..., 0][outside]))
        # Lightness counts half: shadows and lighting move L most, water changes colour too.
        delta[..., 0] *= 0.5
        distance = np.linalg.norm(delta, axis=2)
        usable = zone & ~self._objects_mask(lab.shape[:2], frame_w, detections)
        if usable.sum() < 0.2 * zone.sum():
            return self.fraction  # mostly hidden by people or cars: keep the last estimate
        fraction = float((distance[usable] > self.rule.change).mean())
        if fraction < 0.05 and now - self._baseline_at >= REFRESH_DRY_S:
            self._baseline, self._baseline_at = lab, now
        return fraction

    def _custom_model_coverage(self, shape: tuple[int, int], detections: list[Detection]) -> float:
        height, width = shape
        small = (round(height * WIDTH / width), WIDTH)
        zone = self._zone_mask(small, width, height)
        water = [d for d in detections if d.label in set(self.rule.classes)]
        covered = self._objects_mask(small, width, water) & zone
        return float(covered.sum() / max(zone.sum(), 1))

    def rising(self, window_s: float = 30.0) -> bool:
        if len(self._history) < 3:
            return False
        now = self._history[-1][0]
        points = [(t, f) for t, f in self._history if now - t <= window_s]
        if len(points) < 3:
            return False
        t, f = np.array(points).T
        slope = float(np.polyfit(t - t[0], f, 1)[0])
        return slope > 0.002  # > 0.2 % of the zone per second

    def resume(self, started_at: datetime, peak: float, now_mono: float) -> None:
        """Continue an observation another box held open (engine.CameraAnalytics.resume)."""
        self.gate.resume(now_mono)
        self._started_at = started_at
        self._peak = peak / 100

    def update(
        self,
        image: npt.NDArray[np.uint8],
        detections: list[Detection],
        now_mono: float,
        now_utc: datetime,
    ) -> FloodSignal | None:
        fraction = self.measure(image, detections, now_mono)
        if fraction is None:
            return None
        self.fraction = fraction
        self._history.append((now_mono, fraction))
        was_open = self.gate.is_open
        level = self.rule.min_probability if self.model is not None else self.rule.level
        transition = self.gate.update(fraction >= level, now_mono)
        if transition is None:
            return None
        if transition is Transition.OPENED or not was_open:
            self._peak, self._started_at = 0.0, now_utc
        self._peak = max(self._peak, fraction)
        assert self._started_at is not None
        return FloodSignal(transition, fraction, self._peak, self.rising(), self._started_at)
