"""Routing: top-down first match, `continue`, severity floors, kecamatan and camera matches."""

from __future__ import annotations

from events.config import Route
from events.model import IncidentKind, Severity
from events.routing import route
from tests.test_model import make_incident

ROUTES = [
    Route.model_validate(
        {
            "match": {"kinds": ["crowd"], "min_severity": "high"},
            "opds": ["polres"],
            "continue": True,
        }
    ),
    Route.model_validate(
        {"match": {"kinds": ["crowd"], "kecamatan": ["Kota"]}, "opds": ["satpol-pp"]}
    ),
    Route.model_validate({"match": {"kinds": ["crowd"]}, "opds": ["satpol-pp-kab"]}),
    Route.model_validate({"match": {"cameras": ["cam-9"]}, "opds": ["diskominfo"]}),
]


def test_first_match_wins() -> None:
    assert route(make_incident(kecamatan="Kota"), ROUTES) == ("satpol-pp",)
    assert route(make_incident(kecamatan="Barat"), ROUTES) == ("satpol-pp-kab",)


def test_continue_collects_later_matches() -> None:
    inc = make_incident(kecamatan="Kota", severity=Severity.CRITICAL)
    assert route(inc, ROUTES) == ("polres", "satpol-pp")


def test_no_match_routes_nowhere() -> None:
    assert route(make_incident(kind=IncidentKind.FLOOD), ROUTES) == ()
    assert route(make_incident(kind=IncidentKind.FLOOD, camera_id="cam-9"), ROUTES) == (
        "diskominfo",
    )
