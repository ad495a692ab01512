"""Zones: bottom-centre membership, normalized vs pixel polygons, rebuild on resize."""

from __future__ import annotations

from analytics.config import Zone
from analytics.detection import Detection
from analytics.zones import ZoneSet


def person(x1: float, y1: float, x2: float, y2: float) -> Detection:
    return Detection("person", 0, 0.9, x1, y1, x2, y2)


def test_bottom_centre_decides_membership() -> None:
    lower_half = Zone(id="z", points=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)])
    shapes = ZoneSet([lower_half]).shapes(100, 100)
    tall = person(40, 10, 60, 80)  # head in the upper half, feet in the zone
    high = person(40, 0, 60, 40)  # entirely above the zone
    assert shapes["z"].members([tall, high], {"person"}) == [tall]
    assert shapes["z"].counts([tall, high, Detection("car", 2, 0.8, 0, 60, 10, 90)]) == {
        "person": 1,
        "car": 1,
    }


def test_pixel_units_and_resize() -> None:
    px = Zone(id="p", units="pixels", points=[(0, 0), (50, 0), (50, 50), (0, 50)])
    norm = Zone(id="n", points=[(0, 0), (0.5, 0), (0.5, 0.5), (0, 0.5)])
    zs = ZoneSet([px, norm])
    d = person(60, 60, 80, 90)  # anchor (70, 90)
    assert not zs.shapes(100, 100)["n"].members([d], {"person"})
    assert zs.shapes(200, 200)["n"].members([d], {"person"}) == [d]
    assert not zs.shapes(200, 200)["p"].members([d], {"person"})
