"""Editing one camera inside cameras.yaml keeps the rest of the file byte for byte: the
bundled, heavily commented cameras.yaml is edited as the wall's editor would, and every line
outside the edit (comments, alignment, ${VAR}s, blank lines, order) is compared."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from pantau.config import parse
from pantau.yaml_splice import SpliceError, camera_sections, edit_camera, flow

REPO = Path(__file__).resolve().parents[1]
BUNDLED = (REPO / "cameras.yaml").read_text(encoding="utf-8")
ENV = {"PANTAU_MODEL": "yolo11n.pt"}


def original(fragment: str) -> str:
    """The bundled file's one line that holds `fragment` (its comment and spacing with it)."""
    (line,) = [line for line in BUNDLED.splitlines() if fragment in line]
    return line


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm=""):
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line.startswith("-") else added).append(line[1:])
    return removed, added


def test_the_same_sections_give_the_same_bytes() -> None:
    for cam in ("alun-alun", "stasiun", "simpang-lima", "gudang-logistik"):
        assert edit_camera(BUNDLED, cam, camera_sections(BUNDLED, cam)) == BUNDLED


def test_a_threshold_changes_on_its_own_line_and_keeps_its_comment() -> None:
    sections = camera_sections(BUNDLED, "alun-alun")
    sections["rules"][0]["min_count"] = 7
    after = edit_camera(BUNDLED, "alun-alun", sections)
    removed, added = changed_lines(BUNDLED, after)
    assert removed == [
        "        min_count: 5           # persons standing (bottom of the box) inside the zone..."
    ]
    assert added == [
        "        min_count: 7           # persons standing (bottom of the box) inside the zone..."
    ]
    config = parse(after, "cameras.yaml", REPO, ENV)
    assert config.cameras[0].rules[0].min_count == 7  # type: ignore[union-attr]


def test_moved_points_added_and_deleted_zones_and_a_new_lines_section() -> None:
    sections = camera_sections(BUNDLED, "alun-alun")
    sections["zones"][0]["points"][0] = [0.1, 0.3]
    sections["zones"].append({"id": "tangga", "name": "Tangga Timur",
                              "points": [[0, 0], [0.5, 0], [0.5, 0.5]]})  # fmt: skip
    sections["lines"] = [{"id": "pintu", "points": [[0, 0.5], [1, 0.5]]}]
    after = edit_camera(BUNDLED, "alun-alun", sections)
    removed, added = changed_lines(BUNDLED, after)
    assert removed == ["        points: [[0.0, 0.25], [1.0, 0.25], [1.0, 1.0], [0.0, 1.0]]"]
    assert added == [
        "        points: [[0.1, 0.3], [1.0, 0.25], [1.0, 1.0], [0.0, 1.0]]",
        "      - {id: tangga, name: Tangga Timur, points: [[0, 0], [0.5, 0], [0.5, 0.5]]}",
        "    lines:",
        "      - {id: pintu, points: [[0, 0.5], [1, 0.5]]}",
    ]
    cam = parse(after, "cameras.yaml", REPO, ENV).cameras[0]
    assert [z.id for z in cam.zones] == ["plaza", "tangga"] and cam.lines[0].id == "pintu"
    assert camera_sections(after, "alun-alun") == sections
    # and back: the zone deleted, the lines gone, a rule removed
    sections["zones"].pop()
    sections["lines"] = []
    sections["rules"].pop()  # the tamper rule
    again = edit_camera(after, "alun-alun", sections)
    assert camera_sections(again, "alun-alun") == sections
    removed, added = changed_lines(BUNDLED, again)
    assert added == ["        points: [[0.1, 0.3], [1.0, 0.25], [1.0, 1.0], [0.0, 1.0]]"]
    assert removed[1:] == [original("- type: tamper           # black"), original("for: 5    ")]


def test_other_cameras_and_variables_are_untouched() -> None:
    text = BUNDLED.replace(
        "url: rtsp://127.0.0.1:8554/stasiun", "url: rtsp://admin:${CAM_PASS}@10.20.1.15:554/1"
    )
    sections = camera_sections(text, "simpang-lima")
    sections["rules"][0]["min_count"] += 1
    after = edit_camera(text, "simpang-lima", sections)
    removed, added = changed_lines(text, after)
    assert len(removed) == len(added) == 1 and "min_count" in added[0]
    assert "url: rtsp://admin:${CAM_PASS}@10.20.1.15:554/1" in after


def test_flow_writes_what_yaml_reads_back() -> None:
    from ruamel.yaml import YAML

    values = ["Jalan Raya", "yes", "12", "a: b", "${X}", "  pad", 1.5, 2, True, None, [1, [2.25]]]
    for value in values:
        assert YAML(typ="safe").load(f"k: {flow(value)}")["k"] == value


def test_an_unknown_camera_is_refused() -> None:
    with pytest.raises(SpliceError, match="no camera 'nope'"):
        edit_camera(BUNDLED, "nope", {"zones": []})
