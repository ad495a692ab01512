"""Zone polygons and who is in them: an object is in a zone when its bottom-centre is."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from analytics.config import Line, Zone
from analytics.detection import Detection


@dataclass(frozen=True)
class ZoneShape:
    zone: Zone
    polygon: np.ndarray  # float32 Nx2 in pixels of the frame it was built for

    @classmethod
    def for_frame(cls, zone: Zone, width: int, height: int) -> ZoneShape:
        pts = np.array(zone.points, dtype=np.float32)
        if zone.units == "normalized":
            pts = pts * np.array([width, height], dtype=np.float32)
        return cls(zone, pts.reshape(-1, 1, 2))

    def contains(self, x: float, y: float) -> bool:
        return cv2.pointPolygonTest(self.polygon, (float(x), float(y)), False) >= 0

    def members(self, detections: list[Detection], classes: set[str]) -> list[Detection]:
        return [d for d in detections if d.label in classes and self.contains(*d.anchor)]

    def counts(self, detections: list[Detection]) -> Counter[str]:
        return Counter(d.label for d in detections if self.contains(*d.anchor))


class ZoneSet:
    """A camera's zones, rebuilt in pixels whenever the frame size changes."""

    def __init__(self, zones: list[Zone]) -> None:
        self._zones = zones
        self._size: tuple[int, int] | None = None
        self._shapes: dict[str, ZoneShape] = {}

    def shapes(self, width: int, height: int) -> dict[str, ZoneShape]:
        if self._size != (width, height):
            self._size = (width, height)
            self._shapes = {z.id: ZoneShape.for_frame(z, width, height) for z in self._zones}
        return self._shapes


class LineCounter:
    """Counts tracked objects whose bottom-centre crosses a line, per direction, per minute.

    Direction "in" is crossing from the left of the line (seen from its first point towards
    its second) to its right.
    """

    def __init__(self, line: Line, window_s: float = 60.0) -> None:
        self.line = line
        self.window_s = window_s
        self._classes = set(line.classes)
        self._last: dict[int, tuple[float, float]] = {}
        self.crossings: list[tuple[float, str, int]] = []  # (time, direction, track id)
        self.total = {"in": 0, "out": 0}

    def _points(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = (np.array(p, dtype=np.float64) for p in self.line.points)
        if self.line.units == "normalized":
            scale = np.array([width, height], dtype=np.float64)
            a, b = a * scale, b * scale
        return a, b

    def update(self, detections: list[Detection], width: int, height: int, now: float) -> None:
        a, b = self._points(width, height)
        seen = set()
        for d in detections:
            if d.track_id is None or d.label not in self._classes:
                continue
            seen.add(d.track_id)
            p = np.array(d.anchor)
            q = self._last.get(d.track_id)
            self._last[d.track_id] = (float(p[0]), float(p[1]))
            if q is None:
                continue
            direction = _crossing(a, b, np.array(q), p)
            if direction is not None:
                self.crossings.append((now, direction, d.track_id))
                self.total[direction] += 1
        for gone in set(self._last) - seen:
            del self._last[gone]
        self.crossings = [c for c in self.crossings if now - c[0] <= self.window_s]

    def per_minute(self) -> dict[str, float]:
        scale = 60.0 / self.window_s
        return {
            direction: sum(1 for c in self.crossings if c[1] == direction) * scale
            for direction in ("in", "out")
        }


def _side(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    return float((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]))


def _crossing(a: np.ndarray, b: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> str | None:
    """'in' / 'out' when the step p0 -> p1 crosses segment a-b, else None."""
    s0, s1 = _side(a, b, p0), _side(a, b, p1)
    if s0 == 0 or s1 == 0 or (s0 > 0) == (s1 > 0):
        return None
    t0, t1 = _side(p0, p1, a), _side(p0, p1, b)
    if (t0 > 0) == (t1 > 0):
        return None  # crosses the infinite line but outside the segment
    return "in" if s0 < 0 < s1 else "out"
