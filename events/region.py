"""Which of the regency's kecamatan a CAP area means.

CAP (BMKG, BNPB) says where in three ways; they are tried in this order, and the first one an
area carries decides for that area:
1. geocodes: Kemendagri codes (kode wilayah, 52.03.07 or 520307; a desa's code names its
   kecamatan, the kabupaten's own code the whole regency);
2. polygons and circles: the kecamatan of every camera with coordinates inside;
3. the areaDesc text, split into its list of names ("Selong, Sakra, Masbagik - Lombok Timur"):
   a kecamatan matches only by its exact name, never by a word inside another name, so the
   kabupaten "Lombok Timur" never matches a kecamatan "Timur".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from shapely.geometry import Point, Polygon

_CODE = re.compile(r"^(\d{2})(?:\.?(\d{2}))?(?:\.?(\d{2}))?(?:\.?(\d{4}))?$")
_PREFIX = re.compile(r"^(kecamatan|kec\.?|kabupaten|kab\.?|desa|kelurahan|kel\.?)\s+")
_SEPARATORS = re.compile(r"\s*(?:,|;|/|\s-\s|\s–\s|\bdan\b|\n)\s*")


def normalize_code(value: str) -> str | None:
    """A Kemendagri code as dotted text ("52.03.07"), or None when it is not one."""
    found = _CODE.match(value.strip())
    if found is None:
        return None
    return ".".join(part for part in found.groups() if part)


def normalize_name(value: str) -> str:
    low = " ".join(value.lower().split())
    return _PREFIX.sub("", low).strip(" .")


@dataclass(frozen=True)
class Kecamatan:
    name: str
    code: str | None = None  # "52.03.07"


@dataclass(frozen=True)
class CameraPoint:
    kecamatan: str
    lat: float
    lon: float


@dataclass(frozen=True)
class CapArea:
    desc: str = ""
    geocodes: tuple[str, ...] = ()  # the values, as sent
    polygons: tuple[str, ...] = ()  # "lat,lon lat,lon ..."
    circles: tuple[str, ...] = ()  # "lat,lon radius_km"


@dataclass
class AreaMatch:
    kecamatan: list[str] = field(default_factory=list)  # in the region's order
    regency: bool = False  # the whole kabupaten (by its code or its name)


@dataclass(frozen=True)
class Region:
    kecamatan: tuple[Kecamatan, ...]
    kabupaten_name: str | None = None
    kabupaten_code: str | None = None  # "52.03"
    cameras: tuple[CameraPoint, ...] = ()

    @classmethod
    def from_names(cls, names: Iterable[str]) -> Region:
        return cls(tuple(Kecamatan(n) for n in names))

    @property
    def names(self) -> list[str]:
        return [k.name for k in self.kecamatan]

    def match(self, areas: Iterable[CapArea]) -> AreaMatch:
        found: set[str] = set()
        regency = False
        for area in areas:
            names, whole = self._area(area)
            found |= names
            regency = regency or whole
        return AreaMatch([k.name for k in self.kecamatan if k.name in found], regency)

    def _area(self, area: CapArea) -> tuple[set[str], bool]:
        codes = [c for c in (normalize_code(v) for v in area.geocodes) if c]
        if codes:
            return self._by_codes(codes)
        if area.polygons or area.circles:
            return self._by_shape(area), False
        return self._by_names(area.desc)

    def _by_codes(self, codes: list[str]) -> tuple[set[str], bool]:
        names: set[str] = set()
        regency = False
        for code in codes:
            if self.kabupaten_code and code == self.kabupaten_code:
                regency = True
            for kec in self.kecamatan:
                if kec.code and (code == kec.code or code.startswith(kec.code + ".")):
                    names.add(kec.name)
        return names, regency

    def _by_shape(self, area: CapArea) -> set[str]:
        inside: set[str] = set()
        shapes = [p for p in (_polygon(text) for text in area.polygons) if p is not None]
        circles = [c for c in (_circle(text) for text in area.circles) if c is not None]
        for cam in self.cameras:
            point = Point(cam.lon, cam.lat)
            if any(shape.covers(point) for shape in shapes) or any(
                _km(cam.lat, cam.lon, lat, lon) <= radius for lat, lon, radius in circles
            ):
                inside.add(cam.kecamatan)
        return inside

    def _by_names(self, desc: str) -> tuple[set[str], bool]:
        tokens = {normalize_name(t) for t in _SEPARATORS.split(desc) if t.strip()}
        names = {k.name for k in self.kecamatan if normalize_name(k.name) in tokens}
        regency = bool(self.kabupaten_name) and normalize_name(self.kabupaten_name or "") in tokens
        return names, regency and not names


def _pairs(text: str) -> list[tuple[float, float]]:
    found = []
    for pair in text.split():
        lat, _, lon = pair.partition(",")
        found.append((float(lat), float(lon)))
    return found


def _polygon(text: str) -> Polygon | None:
    """CAP: space-separated "lat,lon" pairs, first = last; shapely wants (x=lon, y=lat)."""
    try:
        points = _pairs(text)
    except ValueError:
        return None
    if len(points) < 3:
        return None
    shape = Polygon([(lon, lat) for lat, lon in points])
    return shape if shape.is_valid else shape.buffer(0)


def _circle(text: str) -> tuple[float, float, float] | None:
    """CAP: "lat,lon radius" with the radius in kilometres."""
    try:
        centre, radius = text.split()
        lat, lon = (float(v) for v in centre.split(","))
        return lat, lon, float(radius)
    except ValueError:
        return None


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))
