"""What the detector reports for one object in one frame (analytics-internal type)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    class_id: int
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float
    track_id: int | None = None

    @property
    def anchor(self) -> tuple[float, float]:
        """Bottom-centre: where a person stands or a vehicle touches the road."""
        return ((self.x1 + self.x2) / 2.0, self.y2)

    def iou(self, other: Detection) -> float:
        """Intersection over union of the two boxes (0 when they do not touch)."""
        w = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        h = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        union = (
            (self.x2 - self.x1) * (self.y2 - self.y1)
            + (other.x2 - other.x1) * (other.y2 - other.y1)
            - w * h
        )
        return w * h / union if union > 0 else 0.0
