"""Routing: which OPD(s) answer an incident, matched top-down like Alertmanager's route tree."""

from __future__ import annotations

from collections.abc import Sequence

from events.calendar import WorkCalendar
from events.config import CalendarConfig, Route
from events.model import Incident, Severity

_SEVERITY_ORDER = list(Severity)
_DEFAULT_CALENDAR: WorkCalendar | None = None


def default_calendar() -> WorkCalendar:
    """Monday-Friday 08:00-16:00 WIB with Indonesian holidays: for callers given none."""
    global _DEFAULT_CALENDAR
    if _DEFAULT_CALENDAR is None:
        _DEFAULT_CALENDAR = WorkCalendar(CalendarConfig(), "Asia/Jakarta")
    return _DEFAULT_CALENDAR


def _matches(route: Route, incident: Incident, calendar: WorkCalendar | None) -> bool:
    m = route.match
    if m.kinds and incident.kind not in m.kinds:
        return False
    if m.kecamatan and incident.kecamatan not in m.kecamatan:
        return False
    if m.cameras and incident.camera_id not in m.cameras:
        return False
    if m.hours is not None:
        office = (calendar or default_calendar()).in_office_hours(incident.started_at)
        if office != (m.hours == "office"):
            return False
    return _SEVERITY_ORDER.index(incident.severity) >= _SEVERITY_ORDER.index(m.min_severity)


def matching(
    incident: Incident, routes: Sequence[Route], calendar: WorkCalendar | None = None
) -> dict[str, Route]:
    """OPD id -> the first matching route that names it (its deadlines and SLA apply)."""
    found: dict[str, Route] = {}
    for candidate in routes:
        if not _matches(candidate, incident, calendar):
            continue
        for opd in candidate.opds:
            found.setdefault(opd, candidate)
        if not candidate.continue_:
            break
    return found


def route(
    incident: Incident, routes: Sequence[Route], calendar: WorkCalendar | None = None
) -> tuple[str, ...]:
    """OPD ids for an incident: first matching route wins unless it says `continue`."""
    return tuple(matching(incident, routes, calendar))


def ack_deadlines(
    incident: Incident, routes: Sequence[Route], calendar: WorkCalendar | None = None
) -> dict[str, float]:
    """OPD id -> seconds it has to acknowledge, from the first matching route naming it."""
    return {o: r.ack_deadline_s for o, r in matching(incident, routes, calendar).items()}
