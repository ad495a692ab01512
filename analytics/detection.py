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
