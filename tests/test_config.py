"""cameras.yaml loading: the bundled example is valid; broken files name file, line and field."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pantau.config import ConfigError, load
from tests.conftest import REPO

GOOD = """\
ui:
  title: Uji
cameras:
  - id: cam-1
    name: Kamera Satu
    url: rtsp://user:${CAM_PASS}@127.0.0.1:8554/one
    kecamatan: Kota
    zones:
      - id: plaza
        points: [[0, 0], [1, 0], [1, 1]]
    rules:
      - type: crowd
        zone: plaza
        min_count: 3
opds:
  - id: satpol-pp
    name: Satpol PP
    contacts:
      - {name: Piket, phone: "+62 811 1"}
routing:
  - match: {kinds: [crowd]}
    opds: [satpol-pp]
walls:
  - id: utama
    layout: 2x2
    cameras: [cam-1]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text), env if env is not None else {"CAM_PASS": "s3cret"})
    return caught.value.problems


def test_bundled_example_is_valid() -> None:
    config = load(REPO / "cameras.yaml", {})
    assert config.detector.model == "yolo11n.pt"  # ${PANTAU_MODEL:-yolo11n.pt} default
    assert [c.id for c in config.cameras][:2] == ["alun-alun", "stasiun"]
    assert config.demo is not None and len(config.demo.streams) == len(config.cameras)
    assert all(c.zones for c in config.cameras if c.rules)


def test_good_config_expands_secrets(tmp_path: Path) -> None:
    config = load(write(tmp_path, GOOD), {"CAM_PASS": "s3cret"})
    assert config.cameras[0].url == "rtsp://user:s3cret@127.0.0.1:8554/one"
    assert config.cameras[0].rules[0].for_s == 5.0
    assert config.routing[0].opds == ["satpol-pp"]


# Each case: (what to replace in GOOD, replacement, the exact problem reported)
BROKEN = [
    pytest.param(
        "        points: [[0, 0], [1, 0], [1, 1]]",
        "        points: [[0, 0], [1, 0]]",
        "cameras.yaml:10: cameras[0].zones[0].points: a polygon needs at least 3 points",
        id="polygon-too-short",
    ),
    pytest.param(
        "    kecamatan: Kota",
        "    kecamtan: Kota",
        "cameras.yaml:7: cameras[0].kecamtan: unknown key (check its spelling; unknown keys "
        "are errors)",
        id="typo-unknown-key",
    ),
    pytest.param(
        "    name: Kamera Satu\n",
        "",
        "cameras.yaml:4: cameras[0].name: required field is missing",
        id="missing-name",
    ),
    pytest.param(
        "url: rtsp://user",
        "url: http://user",
        "cameras.yaml:6: cameras[0].url: must be an rtsp:// or rtsps:// URL",
        id="not-rtsp",
    ),
    pytest.param(
        "        zone: plaza",
        "        zone: plaza-x",
        "cameras.yaml:13: cameras[0].rules[0].zone: zone 'plaza-x' is not defined on camera "
        "'cam-1' (its zones: plaza)",
        id="rule-unknown-zone",
    ),
    pytest.param(
        "        min_count: 3",
        "        min_density: 2.5",
        "cameras.yaml:14: cameras[0].rules[0].min_density: zone 'plaza' has no area_m2: persons "
        "per m2 need the ground area the zone covers",
        id="density-without-area",
    ),
    pytest.param(
        "        min_count: 3\n",
        "",
        "cameras.yaml:12: cameras[0].rules[0]: a crowd rule needs min_count, "
        "min_density (persons/m2) or both",
        id="crowd-without-threshold",
    ),
    pytest.param(
        "        min_count: 3",
        "        min_count: 0",
        "cameras.yaml:14: cameras[0].rules[0].min_count: Input should be greater than or equal "
        "to 1",
        id="min-count-zero",
    ),
    pytest.param(
        "      - type: crowd",
        "      - type: crowed",
        "cameras.yaml:12: cameras[0].rules[0]: unknown rule type 'crowed' "
        "(known: crowd, tamper, traffic, flood, state)",
        id="unknown-rule-type",
    ),
    pytest.param(
        "    opds: [satpol-pp]",
        "    opds: [damkar]",
        "cameras.yaml:22: routing[0].opds[0]: OPD 'damkar' is not defined in opds",
        id="route-unknown-opd",
    ),
    pytest.param(
        "    cameras: [cam-1]",
        "    cameras: [cam-9]",
        "cameras.yaml:26: walls[0].cameras[0]: camera 'cam-9' is not defined",
        id="wall-unknown-camera",
    ),
    pytest.param(
        "    layout: 2x2",
        "    layout: 5x5",
        "cameras.yaml:25: walls[0].layout: Input should be '1x1', '2x2', '3x3' or '4x4'",
        id="bad-layout",
    ),
    pytest.param(
        "  - id: cam-1",
        "  - id: Cam 1",
        "cameras.yaml:4: cameras[0].id: String should match pattern '^[a-z0-9][a-z0-9-]{0,47}$'",
        id="id-not-slug",
    ),
    pytest.param(
        "        points: [[0, 0], [1, 0], [1, 1]]",
        "        points: [[0, 0], [1, 0], [640, 360]]",
        "cameras.yaml:10: cameras[0].zones[0].points: point (640, 360) is outside 0..1; "
        "normalized points are fractions of the frame (write units: pixels for pixel "
        "coordinates)",
        id="pixels-without-units",
    ),
    pytest.param(
        '{name: Piket, phone: "+62 811 1"}',
        '{name: Piket, phone: "call me"}',
        "cameras.yaml:19: opds[0].contacts[0].phone: not a phone number (digits, optional "
        "leading +)",
        id="bad-phone",
    ),
    pytest.param(
        "    cameras: [cam-1]\n",
        "    cameras: [cam-1]\n    presets:\n      - {id: banjir, cameras: [cam-1]}\n"
        "    on_incident:\n      - {kinds: [flood], preset: banjr}\n",
        "cameras.yaml:30: walls[0].on_incident[0].preset: preset 'banjr' is not defined on wall "
        "'utama' (its presets: banjir)",
        id="trigger-unknown-preset",
    ),
    pytest.param(
        "    cameras: [cam-1]\n",
        "    cameras: [cam-1]\n    presets:\n"
        "      - {id: banjir, layout: 2x2, cameras: [cam-1, cam-7]}\n",
        "cameras.yaml:28: walls[0].presets[0].cameras[1]: camera 'cam-7' is not defined",
        id="preset-unknown-camera",
    ),
    pytest.param(
        "ui:\n  title: Uji\n",
        "ui:\n  title: Uji\n  timezone: Asia/Bangkok\n",
        "cameras.yaml:3: ui.timezone: Input should be 'Asia/Jakarta', 'Asia/Makassar' or "
        "'Asia/Jayapura'",
        id="timezone-not-indonesian",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), BROKEN)
def test_broken_config_names_file_line_field(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    assert problems(tmp_path, GOOD.replace(old, new, 1)) == [expected]


def test_missing_secret_is_reported(tmp_path: Path) -> None:
    assert problems(tmp_path, GOOD, env={}) == [
        "cameras.yaml:6: cameras[0].url: environment variable CAM_PASS is not set"
    ]


def test_duplicate_camera_id(tmp_path: Path) -> None:
    text = GOOD.replace(
        "walls:",
        textwrap.dedent("""\
        walls:"""),
    ).replace("opds:\n", "  - id: cam-1\n    name: Dua\n    url: rtsp://h/x\nopds:\n", 1)
    assert problems(tmp_path, text) == ["cameras.yaml:15: cameras[1].id: id 'cam-1' is used twice"]


def test_invalid_yaml_syntax(tmp_path: Path) -> None:
    result = problems(tmp_path, "cameras:\n  - id: [unclosed\n")
    assert len(result) == 1 and result[0].startswith("cameras.yaml:3: not valid YAML:")


def test_empty_and_non_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["cameras.yaml:1: the file is empty"]
    assert problems(tmp_path, "- a\n- b\n") == [
        "cameras.yaml:1: the top level must be a mapping of sections"
    ]


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    text = GOOD.replace("    kecamatan: Kota", "    kecamtan: Kota").replace(
        "        min_count: 3", "        min_count: -1"
    )
    assert problems(tmp_path, text) == [
        "cameras.yaml:7: cameras[0].kecamtan: unknown key (check its spelling; unknown keys "
        "are errors)",
        "cameras.yaml:14: cameras[0].rules[0].min_count: Input should be greater than or equal "
        "to 1",
    ]


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pantau.cli", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CAM_PASS": "x"},
    )


def test_check_command_exit_codes(tmp_path: Path) -> None:
    ok = _check(write(tmp_path, GOOD))
    assert ok.returncode == 0, ok.stderr
    assert "OK (1 cameras" in ok.stdout
    bad = _check(write(tmp_path, GOOD.replace("layout: 2x2", "layout: 9x9")))
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "cameras.yaml:25: walls[0].layout: Input should be '1x1', '2x2', '3x3' or '4x4'"
    )
    assert "Traceback" not in bad.stderr


def test_events_sections_are_checked(tmp_path: Path) -> None:
    text = (REPO / "cameras.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "  silences: []                 # maintenance windows, e.g.",
        "  silences:\n"
        "    - {id: x, author: sari, starts_at: '2026-12-01T08:00:00+08:00',"
        " ends_at: '2026-12-01T07:00:00+08:00'}",
    ).replace("bus: memory ", "bus: rabbit ")
    path = tmp_path / "cameras.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(path)
    problems = err.value.problems
    assert any(": bus: must be `memory` or a Redis URL" in p for p in problems), problems
    assert any("notify.silences[0]: ends_at must be after starts_at" in p for p in problems), (
        problems
    )


def test_tls_files_must_exist(tmp_path: Path) -> None:
    (tmp_path / "pantau.crt").write_text("x")
    text = GOOD.replace("ui:\n", "server:\n  tls: {cert: pantau.crt, key: keys/pantau.key}\nui:\n")
    expected = "cameras.yaml:2: server.tls.key: no such file: keys/pantau.key"
    assert problems(tmp_path, text) == [expected]
