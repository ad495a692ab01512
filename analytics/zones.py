"""Zone polygons and who is in them: an object is in a zone when its bottom-centre is."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from analytics.config import Zone
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
