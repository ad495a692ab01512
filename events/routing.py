"""Routing: which OPD(s) answer an incident, matched top-down like Alertmanager's route tree."""

from __future__ import annotations

from collections.abc import Sequence

from events.config import Route
from events.model import Incident, Severity

_SEVERITY_ORDER = list(Severity)


def _matches(route: Route, incident: Incident) -> bool:
    m = route.match
    if m.kinds and incident.kind not in m.kinds:
        return False
    if m.kecamatan and incident.kecamatan not in m.kecamatan:
        return False
    if m.cameras and incident.camera_id not in m.cameras:
        return False
    return _SEVERITY_ORDER.index(incident.severity) >= _SEVERITY_ORDER.index(m.min_severity)


def route(incident: Incident, routes: Sequence[Route]) -> tuple[str, ...]:
    """OPD ids for an incident: first matching route wins unless it says `continue`."""
    return tuple(ack_deadlines(incident, routes))


def ack_deadlines(incident: Incident, routes: Sequence[Route]) -> dict[str, float]:
    """OPD id -> seconds it has to acknowledge, from the first matching route naming it."""
    deadlines: dict[str, float] = {}
    for candidate in routes:
        if not _matches(candidate, incident):
            continue
        for opd in candidate.opds:
            deadlines.setdefault(opd, candidate.ack_deadline_s)
        if not candidate.continue_:
            break
    return deadlines
