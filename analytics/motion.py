"""Motion gate: don't run YOLO on a still scene, but never forget a still crowd.

A frame is worth detection when enough of a small, blurred, brightness-normalised grey copy
changed against a slowly adapting background, or when the keep-alive interval has passed
(stopped traffic and a standing crowd do not move, yet must stay counted). A change over most
of the picture at once is a lighting jump (day/night IR switch, headlights, clouds): the
background is reset and it does not count as motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

WIDTH = 160


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as shares (0..1) of the picture


@dataclass
class MotionResult:
    fraction: float  # share of the picture that changed
    motion: bool
    lighting_jump: bool
    detect: bool  # the frame should go to the detector
    regions: list[Box] = field(default_factory=list)  # where it changed (with motion only)


class MotionGate:
    def __init__(
        self,
        min_fraction: float = 0.003,
        keepalive_s: float = 2.0,
        lighting_fraction: float = 0.6,
        pixel_threshold: int = 18,
        adapt: float = 0.08,
    ) -> None:
        self.min_fraction = min_fraction
        self.keepalive_s = keepalive_s
        self.lighting_fraction = lighting_fraction
        self.pixel_threshold = pixel_threshold
        self.adapt = adapt
        self._background: npt.NDArray[np.float32] | None = None
        self._last_detect: float | None = None

    @staticmethod
    def _small(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        height, width = image.shape[:2]
        small = cv2.resize(
            image, (WIDTH, max(1, round(height * WIDTH / width))), interpolation=cv2.INTER_AREA
        )
        grey = np.asarray(
            cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0), dtype=np.float32
        )
        # Normalise brightness and contrast (to a standard deviation of 40 grey levels) so a
        # global gain or offset change (auto exposure) is not motion.
        return (grey - float(grey.mean())) * (40.0 / (float(grey.std()) + 1e-3))

    def check(
        self, image: npt.NDArray[np.uint8], now: float, keepalive_s: float | None = None
    ) -> MotionResult:
        """`keepalive_s`: this frame's re-check interval, if not the gate's own."""
        grey = self._small(image)
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey
            self._last_detect = now
            # Nothing to compare with yet: detect (so a standing crowd is seen at once), but do
            # not call it motion (a quiet camera's first frame would make its tile go live).
            return MotionResult(0.0, False, False, True)
        changed = np.abs(grey - self._background) > self.pixel_threshold
        fraction = float(changed.mean())
        lighting = fraction >= self.lighting_fraction
        if lighting:
            self._background = grey  # a new look of the same scene: start over from it
        else:
            cv2.accumulateWeighted(grey, self._background, self.adapt)
        motion = not lighting and fraction >= self.min_fraction
        every = self.keepalive_s if keepalive_s is None else keepalive_s
        keepalive = self._last_detect is None or now - self._last_detect >= every
        detect = motion or keepalive
        if detect:
            self._last_detect = now
        regions = _regions(changed) if motion else []
        return MotionResult(fraction, motion, lighting, detect, regions)


def _regions(changed: npt.NDArray[np.bool_]) -> list[Box]:
    """The changed blobs' boxes: the mask closed first, so one walker (or a car) whose parts
    changed apart is one blob; specks of a few pixels (noise, leaves) are left out."""
    height, width = changed.shape
    mask = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out: list[Box] = []
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area >= 4:
            out.append((x / width, y / height, (x + w) / width, (y + h) / height))
    return out
