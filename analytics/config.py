"""The cameras.yaml sections that analytics owns: detector settings, zones and rules."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from shapely.geometry import Polygon

from events.model import IncidentKind, Severity

ZoneId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DetectorConfig(Strict):
    # A name ultralytics resolves (downloads on a machine with internet) or a path to weights:
    # .pt, .onnx, .tflite or an *_openvino_model directory; the backend follows the file.
    model: str = "yolo11n.pt"
    imgsz: int = Field(default=640, ge=160, le=1920, multiple_of=32)
    device: str = "cpu"
    confidence: float = Field(default=0.35, gt=0, lt=1)
    class_confidence: dict[str, Annotated[float, Field(gt=0, lt=1)]] = {}
    max_batch: int = Field(default=8, ge=1, le=64)
    max_wait_ms: float = Field(default=15, ge=0, le=500)


class MotionConfig(Strict):
    """The motion gate in front of the detector."""

    enabled: bool = True
    min_fraction: float = Field(default=0.003, gt=0, lt=1)  # share of the picture that moved
    keepalive_s: float = Field(default=2.0, gt=0, le=60)  # still scenes are re-checked this often
    # ... and a quiet camera (decoding keyframes only: nothing moved for a while) this often
    quiet_keepalive_s: float = Field(default=10.0, gt=0, le=300)
    # ... and, when re-checks keep finding the same objects in the same places, half as often
    # each time up to this: what comes or goes moves the gate (and resets it to
    # quiet_keepalive_s), so the re-check only catches what is too small to, such as a lone
    # figure far off, which no crowd or traffic rule counts on its own.
    quiet_keepalive_max_s: float = Field(default=60.0, gt=0, le=600)
    # Detect only the moving regions (packed with other cameras' into the model input), with
    # the whole frame every `full_frame_s` so what stands still stays counted.
    regions: bool = True
    full_frame_s: float = Field(default=3.0, gt=0, le=60)


class Zone(Strict):
    id: ZoneId
    name: str = ""
    # normalized: 0..1 of the frame width/height (survives a resolution change); pixels: as is.
    units: Literal["normalized", "pixels"] = "normalized"
    points: list[tuple[float, float]]
    # The ground area the polygon covers, measured on site: crowd rules can then use density.
    area_m2: float | None = Field(default=None, gt=0, le=10_000_000)

    @field_validator("points")
    @classmethod
    def _polygon(
        cls, points: list[tuple[float, float]], info: ValidationInfo
    ) -> list[tuple[float, float]]:
        if len(points) < 3:
            raise ValueError("a polygon needs at least 3 points")
        if len(set(points)) < 3:
            raise ValueError("a polygon needs at least 3 distinct points")
        if info.data.get("units", "normalized") == "normalized":
            for x, y in points:
                if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    raise ValueError(
                        f"point ({x:g}, {y:g}) is outside 0..1; normalized points are fractions "
                        "of the frame (write units: pixels for pixel coordinates)"
                    )
        if not Polygon(points).is_valid:
            raise ValueError(
                "the outline crosses itself (a bow tie): order the points around the zone"
            )
        return points


class CrowdRule(Strict):
    """Persons in a zone at or above `min_count`, or at or above `min_density` persons per m2
    where the zone has an `area_m2`, for `for` seconds opens a crowd incident (whichever of the
    two is reached first)."""

    type: Literal["crowd"]
    zone: ZoneId
    min_count: int | None = Field(default=None, ge=1, le=10000)
    # Crowd safety guidance: about 2 persons/m2 is dense, 4 and more is dangerous.
    min_density: float | None = Field(default=None, gt=0, le=10)
    for_s: float = Field(default=5.0, ge=0, le=3600, alias="for")
    clear_after_s: float = Field(default=10.0, ge=0, le=3600, alias="clear_after")
    cooldown_s: float = Field(default=60.0, ge=0, le=86400, alias="cooldown")
    # A dip shorter than this (the detector missing someone for a few frames) does not restart
    # the dwell time.
    grace_s: float = Field(default=1.0, ge=0, le=60, alias="grace")
    severity: Severity = Severity.MEDIUM
    classes: list[str] = Field(default=["person"], min_length=1)

    @model_validator(mode="after")
    def _a_threshold(self) -> CrowdRule:
        if self.min_count is None and self.min_density is None:
            raise ValueError("a crowd rule needs min_count, min_density (persons/m2) or both")
        return self

    def threshold(self, area_m2: float | None) -> int:
        """The head count that opens the incident in a zone of this area."""
        counts = [self.min_count] if self.min_count is not None else []
        if self.min_density is not None and area_m2:
            counts.append(max(1, math.ceil(self.min_density * area_m2)))
        return min(counts) if counts else 10**9  # density without an area: config rejects it


class TamperRule(Strict):
    """Camera tampering and video loss: black, covered, defocused, moved, frozen, no frames."""

    type: Literal["tamper"]
    for_s: float = Field(default=5.0, ge=0, le=3600, alias="for")
    clear_after_s: float = Field(default=5.0, ge=0, le=3600, alias="clear_after")
    cooldown_s: float = Field(default=60.0, ge=0, le=86400, alias="cooldown")
    severity: Severity = Severity.HIGH
    defocus_ratio: float = Field(default=0.25, gt=0, lt=1)  # sharpness below this x baseline
    moved_shift: float = Field(default=0.08, gt=0, lt=1)  # scene shift as a share of width
    moved_similarity: float = Field(default=0.3, gt=-1, lt=1)  # correlation with the reference
    frozen_s: float = Field(default=20.0, gt=0, le=3600)  # identical picture for this long
    reference_refresh_s: float = Field(default=60.0, gt=0, le=86400)  # follow slow scene changes
    offline_s: float = Field(default=15.0, ge=0, le=3600)  # no frames for this long


VEHICLES = ["car", "motorcycle", "bus", "truck"]


class TrafficRule(Strict):
    """Congestion: at least `min_count` vehicles in a lane zone whose median tracked speed is low.

    Speeds are in box heights per second (scale-free: a car far away and one close by moving at
    the same real speed have about the same value), from the tracker.
    """

    type: Literal["traffic"]
    zone: ZoneId
    min_count: int = Field(ge=1, le=1000)
    slow_speed: float = Field(default=0.6, gt=0, le=20)  # below: padat (dense)
    jam_speed: float = Field(default=0.15, ge=0, le=20)  # below: macet (jammed)
    for_s: float = Field(default=20.0, ge=0, le=3600, alias="for")
    clear_after_s: float = Field(default=30.0, ge=0, le=3600, alias="clear_after")
    cooldown_s: float = Field(default=120.0, ge=0, le=86400, alias="cooldown")
    # A dip shorter than this (the detector missing someone for a few frames) does not restart
    # the dwell time.
    grace_s: float = Field(default=1.0, ge=0, le=60, alias="grace")
    severity: Severity = Severity.MEDIUM
    classes: list[str] = Field(default=VEHICLES, min_length=1)


class FloodRule(Strict):
    """Water covering a ground zone: share of the zone that no longer looks like its dry self.

    COCO has no water class, so by default this is classical vision against a learned dry
    baseline. A site with its own weights that know `water`/`flood` lists them in `classes` and
    the zone's coverage by those detections is used instead.
    """

    type: Literal["flood"]
    zone: ZoneId
    level: float = Field(default=0.3, gt=0, le=1)  # share of the zone under water to open
    for_s: float = Field(default=10.0, ge=0, le=3600, alias="for")
    clear_after_s: float = Field(default=60.0, ge=0, le=3600, alias="clear_after")
    cooldown_s: float = Field(default=300.0, ge=0, le=86400, alias="cooldown")
    severity: Severity = Severity.HIGH
    classes: list[str] = []  # custom-model classes, e.g. [water, flood]
    change: float = Field(default=20.0, gt=0, le=200)  # colour distance (Lab, L at half weight)
    baseline_s: float = Field(default=5.0, ge=0, le=3600)  # dry look learned over this long
    # With a state model trained for this camera and zone and enabled (`pantau train
    # --enable`), the rule opens on its probability of these states (>= min_probability)
    # instead of the classical measure.
    wet_states: list[str] = ["banjir", "tergenang"]
    min_probability: float = Field(default=0.8, gt=0, le=1)


class StateRule(Strict):
    """A zone in a learned state: "zone Z is `state` with probability >= `min_probability`
    for `for` seconds", from the camera's own trained model (see analytics/state_model.py).
    Without an enabled model the rule waits and says so in health."""

    type: Literal["state"]
    zone: ZoneId
    state: str = Field(min_length=1)  # e.g. banjir
    min_probability: float = Field(default=0.8, gt=0, le=1)
    for_s: float = Field(default=10.0, ge=0, le=3600, alias="for")
    clear_after_s: float = Field(default=60.0, ge=0, le=3600, alias="clear_after")
    cooldown_s: float = Field(default=300.0, ge=0, le=86400, alias="cooldown")
    kind: IncidentKind = IncidentKind.FLOOD
    severity: Severity = Severity.HIGH
    check_every_s: float = Field(default=1.0, ge=0.1, le=60)


class Line(Strict):
    """A counting line: objects whose bottom-centre crosses it are counted per direction."""

    id: ZoneId
    name: str = ""
    units: Literal["normalized", "pixels"] = "normalized"
    points: tuple[tuple[float, float], tuple[float, float]]
    classes: list[str] = Field(default=VEHICLES, min_length=1)


Rule = Annotated[
    CrowdRule | TamperRule | TrafficRule | FloodRule | StateRule, Field(discriminator="type")
]
