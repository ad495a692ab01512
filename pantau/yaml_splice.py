"""Edit one camera's zones, lines and rules inside cameras.yaml as text, so that everything
the edit does not touch stays byte for byte: comments, blank lines, order, alignment, ${VAR}s.

A YAML library re-emits the whole document on save and normalises what it re-emits
(indentation, spacing, line width), so it is used here only to find where things are
(ruamel's line and column marks). The change itself is a splice of the file's lines, at the
finest level that changed: one value on its line (its comment kept), one list item, one
section. Items are matched by position, as the editor sends its lists in file order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

SECTIONS = ("zones", "lines", "rules")
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/ ]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "~", ""}


class SpliceError(ValueError):
    """The camera or its structure is not what an editor can change in place."""


@dataclass
class _Edit:
    start: int  # first line replaced (0-based)
    end: int  # first line kept after it
    lines: list[str]


def plain(node: Any) -> Any:
    """ruamel's nodes as plain Python (what the editor sends back)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [plain(v) for v in node]
    return node


def flow(value: Any) -> str:
    """One value in YAML flow style, as a person would write it on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(round(value, 6))
        return text if "e" not in text else f"{value:.6f}"
    if isinstance(value, str):
        bare = _PLAIN.match(value) and value.lower() not in _RESERVED and value == value.strip()
        number = re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value)
        return value if bare and not number else json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    raise SpliceError(f"cannot write a {type(value).__name__} into cameras.yaml")


def read_camera(text: str, camera_id: str) -> tuple[str, dict[str, list[Any]]]:
    """The camera's name and its zones, lines and rules as written in the file (no ${VAR}
    expanded; the rest of the file need not be valid)."""
    cam = _camera(YAML(typ="rt").load(text), camera_id)[0]
    return str(cam.get("name") or camera_id), {key: plain(cam.get(key) or []) for key in SECTIONS}


def camera_sections(text: str, camera_id: str) -> dict[str, list[Any]]:
    return read_camera(text, camera_id)[1]


def camera_index(text: str, camera_id: str) -> int:
    """Its position in the cameras list (the validator's messages name cameras by index)."""
    doc = YAML(typ="rt").load(text)
    _camera(doc, camera_id)
    return [str(c.get("id")) for c in doc["cameras"]].index(camera_id)


def edit_camera(text: str, camera_id: str, sections: dict[str, list[Any]]) -> str:
    """`text` with the camera's sections replaced by `sections` (only those given)."""
    doc = YAML(typ="rt").load(text)
    cam, boundary = _camera(doc, camera_id)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    edits: list[_Edit] = []
    key_col = cam.lc.col
    keys = list(cam.keys())
    for key in SECTIONS:
        if key not in sections:
            continue
        new = sections[key]
        old = cam.get(key)
        if plain(old or []) == new:
            continue
        if not isinstance(old, CommentedSeq) or old.fa.flow_style() or not old or not new:
            edits.append(_whole_section(cam, key, new, lines, boundary, key_col, keys))
            continue
        edits += _items(old, new, lines, _end_of(cam, key, keys, lines, boundary))
    out = list(lines)
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        out[edit.start : edit.end] = edit.lines
    return "".join(out)


# ---- where things are ------------------------------------------------------------------------
def _camera(doc: Any, camera_id: str) -> tuple[CommentedMap, int]:
    """The camera's mapping and the line where what follows it starts."""
    cams = doc.get("cameras") if isinstance(doc, CommentedMap) else None
    if not isinstance(cams, CommentedSeq):
        raise SpliceError("the file has no cameras list")
    for index, cam in enumerate(cams):
        if isinstance(cam, CommentedMap) and str(cam.get("id")) == camera_id:
            if cam.fa.flow_style():
                raise SpliceError(f"camera {camera_id!r} is written on one line: edit it by hand")
            if index + 1 < len(cams):
                return cam, cams.lc.item(index + 1)[0]
            top = list(doc.keys())
            after = top.index("cameras") + 1
            return cam, doc.lc.key(top[after])[0] if after < len(top) else 1 << 30
    raise SpliceError(f"no camera {camera_id!r} in the file")


def _trim(lines: list[str], start: int, end: int) -> int:
    """`end` moved back over blank and comment-only lines: they belong to what follows."""
    end = min(end, len(lines))
    while end > start + 1 and (
        not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")
    ):
        end -= 1
    return end


def _end_of(cam: CommentedMap, key: str, keys: list[Any], lines: list[str], boundary: int) -> int:
    """The line after the last line of `key`'s value in the camera."""
    at = keys.index(key)
    nxt = cam.lc.key(keys[at + 1])[0] if at + 1 < len(keys) else boundary
    return _trim(lines, cam.lc.key(key)[0], nxt)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" "))]


# ---- the splices -----------------------------------------------------------------------------
def _whole_section(
    cam: CommentedMap, key: str, new: list[Any], lines: list[str], boundary: int, col: int,
    keys: list[Any],
) -> _Edit:  # fmt: skip
    pad = " " * col
    block = [f"{pad}{key}:\n"] + [f"{pad}  - {flow(item)}\n" for item in new] if new else []
    if key in cam:
        start = cam.lc.key(key)[0]
        return _Edit(start, _end_of(cam, key, keys, lines, boundary), block)
    # A section the camera did not have: after its last key.
    last = keys[-1]
    end = _end_of(cam, last, keys, lines, boundary)
    return _Edit(end, end, block)


def _items(old: CommentedSeq, new: list[Any], lines: list[str], seq_end: int) -> list[_Edit]:
    edits: list[_Edit] = []
    starts = [old.lc.item(i)[0] for i in range(len(old))]
    ends = [_trim(lines, s, e) for s, e in zip(starts, [*starts[1:], seq_end], strict=True)]
    dash = _indent(lines[starts[0]])
    item_col = old.lc.item(0)[1]
    for i in range(max(len(old), len(new))):
        if i >= len(new):  # removed
            edits.append(_Edit(starts[i], ends[i], []))
        elif i >= len(old):  # added: after the last item
            edits.append(_Edit(ends[-1], ends[-1], [_item_line(dash, new[i])]))
        elif plain(old[i]) != new[i]:
            edits += _item(old[i], new[i], lines, starts[i], ends[i], dash, item_col)
    # Several additions at one place: keep their order (edits apply bottom-up, stable).
    added = [e for e in edits if e.start == e.end == ends[-1] and e.lines]
    if len(added) > 1:
        edits = [e for e in edits if e not in added]
        edits.append(_Edit(ends[-1], ends[-1], [line for e in added for line in e.lines]))
    return edits


def _item_line(dash: str, value: Any) -> str:
    return f"{dash}- {flow(value)}\n"


def _item(
    old: Any, new: Any, lines: list[str], start: int, end: int, dash: str, col: int
) -> list[_Edit]:
    """One changed list item: value by value where it is a block mapping whose changed values
    each sit on one line (their comments stay), else the item rewritten on one line."""
    whole = [_Edit(start, end, [_item_line(dash, new)])]
    if not isinstance(old, CommentedMap) or old.fa.flow_style() or not isinstance(new, dict):
        return whole
    edits: list[_Edit] = []
    keys = list(old.keys())
    for key, value in new.items():
        if key in old and plain(old[key]) == value:
            continue
        if key not in old:
            continue  # added keys go in below, once we know the rest can be done in place
        line_no, value_col = old.lc.value(key)
        if line_no != old.lc.key(key)[0]:
            return whole  # the value starts on a later line (a block list): rewrite the item
        span = _value_span(lines[line_no], value_col)
        if span is None:
            return whole
        a, b = span
        text = lines[line_no]
        edits.append(_Edit(line_no, line_no + 1, [text[:a] + flow(value) + text[b:]]))
    for key in keys:
        if key not in new:
            line_no = old.lc.key(key)[0]
            nxt = old.lc.key(keys[keys.index(key) + 1])[0] if key != keys[-1] else end
            if nxt != line_no + 1 or line_no == start:
                return whole  # a multi-line value, or the key the dash is on
            edits.append(_Edit(line_no, line_no + 1, []))
    added = [k for k in new if k not in old]
    if added:
        pad = " " * col
        edits.append(_Edit(end, end, [f"{pad}{k}: {flow(new[k])}\n" for k in added]))
    return edits


def _value_span(line: str, col: int) -> tuple[int, int] | None:
    """Where the value that starts at `col` ends on this line; None if it goes on."""
    if col >= len(line):
        return None
    first = line[col]
    if first in "[{":
        depth, quote = 0, ""
        for i in range(col, len(line)):
            ch = line[i]
            if quote:
                quote = "" if ch == quote and line[i - 1] != "\\" else quote
            elif ch in "\"'":
                quote = ch
            elif ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
                if depth == 0:
                    return col, i + 1
        return None
    if first in "\"'":
        i = col + 1
        while i < len(line):
            if line[i] == first and (first == "'" or line[i - 1] != "\\"):
                if first == "'" and i + 1 < len(line) and line[i + 1] == "'":
                    i += 2
                    continue
                return col, i + 1
            i += 1
        return None
    if first in "|>&*!":
        return None  # block scalars, anchors, tags: not for an in-place edit
    comment = line.find(" #", col)
    stop = comment if comment >= 0 else len(line.rstrip("\r\n"))
    return col, len(line[:stop].rstrip())
