"""Correlation: does a new detection or alert describe an incident we already have?

Same kind, a nearby place and overlapping time make one incident with every source listed:
- place: the same camera (and zone, when both name one), the same desa, within `distance_m` of
  each other, or the same kecamatan when one side only knows its kecamatan (a CAP warning or a
  citizen report for a whole kecamatan);
- time: the incident is not closed by an operator, and its condition still holds or ended less
  than `window_s` ago.
Real and exercise (CAP Test/Exercise) reports never merge with each other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from events.model import Alert, Incident, IncidentKind, Severity, SourceKind

_SEVERITIES = list(Severity)


class CorrelationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    window_s: float = Field(default=1800, ge=0)
    distance_m: float = Field(default=300, ge=0)


@dataclass(frozen=True)
class Place:
    camera_id: str | None = None
    zone_id: str | None = None
    kecamatan: str | None = None
    desa: str | None = None
    lat: float | None = None
    lon: float | None = None

    @property
    def fine(self) -> bool:
        """Known more precisely than a kecamatan."""
        return bool(self.camera_id or self.desa or self.lat is not None)


def place_of(item: Incident | Alert) -> Place:
    return Place(
        camera_id=item.camera_id,
        zone_id=getattr(item, "zone_id", None),
        kecamatan=_norm(item.kecamatan),
        desa=_norm(item.desa),
        lat=item.lat,
        lon=item.lon,
    )


def _norm(name: str | None) -> str | None:
    return " ".join(name.lower().split()) if name else None


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def same_place(a: Place, b: Place, max_m: float) -> str | None:
    """Why a and b are the same place, or None."""
    if a.camera_id and b.camera_id and a.camera_id == b.camera_id:
        if a.zone_id and b.zone_id and a.zone_id != b.zone_id:
            return None  # two zones of one camera are configured apart on purpose
        return f"kamera {a.camera_id}"
    if a.kecamatan and b.kecamatan and a.kecamatan != b.kecamatan:
        return None
    if a.desa and b.desa and a.desa == b.desa:
        return f"desa {a.desa}"
    if None not in (a.lat, a.lon, b.lat, b.lon):
        d = distance_m(a.lat, a.lon, b.lat, b.lon)  # type: ignore[arg-type]
        if d <= max_m:
            return f"{d:.0f} m"
    if a.kecamatan and a.kecamatan == b.kecamatan and not (a.fine and b.fine):
        return f"kecamatan {a.kecamatan}"
    return None


def find_match(
    kind: IncidentKind,
    place: Place,
    at: datetime,
    exercise: bool,
    candidates: Iterable[Incident],
    config: CorrelationConfig,
    until: datetime | None = None,
) -> tuple[Incident, str] | None:
    """The open incident this report belongs to (the oldest that fits), with the reason.

    The report covers `at` .. `until` (a warning is valid until it expires); the incident covers
    its start .. its end (or now), widened by the window on both sides.
    """
    window = timedelta(seconds=config.window_s)
    until = max(until or at, at)
    best: tuple[Incident, str] | None = None
    for inc in candidates:
        if inc.kind != kind or inc.exercise != exercise or inc.state.closed:
            continue
        if not inc.active and inc.ended_at is not None and at - inc.ended_at > window:
            continue
        if inc.started_at - window > until:
            continue
        reason = same_place(place_of(inc), place, config.distance_m)
        if reason and (best is None or inc.started_at < best[0].started_at):
            best = (inc, reason)
    return best


def raise_one(severity: Severity) -> Severity:
    return _SEVERITIES[min(_SEVERITIES.index(severity) + 1, len(_SEVERITIES) - 1)]


def max_severity(*levels: Severity) -> Severity:
    return max(levels, key=_SEVERITIES.index)


def merged_severity(incident: Incident, source: SourceKind, severity: Severity) -> Severity:
    """A warning from outside (CAP) that confirms what a camera sees raises the incident a level;
    any other report never lowers it."""
    has_camera = any(s.kind == SourceKind.CAMERA for s in incident.sources)
    has_cap = any(s.kind == SourceKind.CAP for s in incident.sources)
    if source == SourceKind.CAP and has_camera and not has_cap:
        return max_severity(raise_one(incident.severity), severity)
    if source == SourceKind.CAMERA and has_cap and not has_camera:
        return max_severity(raise_one(severity), incident.severity)
    return max_severity(incident.severity, severity)
