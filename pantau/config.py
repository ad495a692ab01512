"""cameras.yaml: the whole-file model, composed from each package's own section models.

`load()` parses with ruamel.yaml (which keeps line numbers), expands `${VAR}` references, then
validates; every error names file, line and field, e.g.
`cameras.yaml:42: cameras[3].zones[0].points: a polygon needs at least 3 points`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from analytics.config import (
    CrowdRule,
    DetectorConfig,
    Line,
    MotionConfig,
    Rule,
    TamperRule,
    Zone,
)
from events.config import (
    CalendarConfig,
    FalseAlarmConfig,
    IntakeConfig,
    NotifyConfig,
    Opd,
    ReportConfig,
    Route,
    Slug,
)
from events.correlate import CorrelationConfig
from ingest.config import CameraSource, RecordingConfig
from pantau.region_check import check_region
from wallboard.config import LAYOUT_TILES, Preset, ServerConfig, UiConfig, Wall

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]
RULE_TYPES = ("crowd", "tamper", "traffic", "flood", "state")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Camera(CameraSource):
    id: Slug
    name: str = Field(min_length=1)
    kecamatan: str | None = None
    desa: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    # The frame's longer side in model pixels when detected (default: detector.imgsz). Smaller
    # is cheaper and sees less far: with a fixed-size export, frames at 320 px share one input.
    detect_size: int | None = Field(default=None, ge=160, le=1920, multiple_of=32)
    zones: list[Zone] = []
    lines: list[Line] = []
    rules: list[Rule] = []
    # Scaled out: only these worker boxes may hold the camera (the ones on its network);
    # empty means any worker.
    workers: list[Slug] = []


class DemoStream(Strict):
    path: Slug
    # A file name under the shared assets' video/ folder, or a path; when it is not there the
    # demo streams a clip it composes from the images that ship with ultralytics.
    clip: str = "builtin"


class DemoConfig(Strict):
    rtsp_port: int = Field(default=8554, ge=0, le=65535)
    streams: list[DemoStream] = Field(min_length=1)


def _bus_setting(value: str) -> str:
    if value == "memory" or value.startswith(("redis://", "rediss://", "unix://")):
        return value
    raise ValueError("must be `memory` or a Redis URL (redis://host:6379/0)")


class StorageConfig(Strict):
    data_dir: str = "var"
    # Free space under this on the data directory's disk opens a "disk almost full" incident.
    warn_free_mb: float = Field(default=1024, ge=1)


class FleetConfig(Strict):
    """Scale-out timing (`pantau server` + `pantau worker` on a Redis bus).

    A camera whose worker dies runs elsewhere within about lease_ttl_s + claim_interval_s.
    A worker that cannot renew a lease stops the camera before the lease can expire, so a
    Redis outage longer than the TTL stops analytics until Redis is back.
    """

    lease_ttl_s: float = Field(default=8.0, ge=2, le=300)
    claim_interval_s: float = Field(default=2.0, gt=0, le=60)
    heartbeat_s: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _renew_in_time(self) -> FleetConfig:
        if self.claim_interval_s * 2 > self.lease_ttl_s:
            raise ValueError("lease_ttl_s must be at least twice claim_interval_s (renewals)")
        return self


class PantauConfig(Strict):
    ui: UiConfig = UiConfig()
    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    recording: RecordingConfig = RecordingConfig()
    bus: Annotated[str, AfterValidator(_bus_setting)] = "memory"
    correlation: CorrelationConfig = CorrelationConfig()
    intake: IntakeConfig = IntakeConfig()
    notify: NotifyConfig = NotifyConfig()
    calendar: CalendarConfig = CalendarConfig()
    report: ReportConfig = ReportConfig()
    false_alarms: FalseAlarmConfig = FalseAlarmConfig()
    detector: DetectorConfig = DetectorConfig()
    motion: MotionConfig = MotionConfig()
    cameras: list[Camera] = Field(min_length=1)
    opds: list[Opd] = []
    routing: list[Route] = []
    walls: list[Wall] = []
    demo: DemoConfig | None = None
    fleet: FleetConfig = FleetConfig()

    def reference_problems(self) -> list[tuple[Loc, str]]:
        """Cross-references between sections (ids used twice, names that point nowhere)."""
        problems: list[tuple[Loc, str]] = []

        def unique(section: str, ids: list[str]) -> None:
            seen: set[str] = set()
            for index, item in enumerate(ids):
                if item in seen:
                    problems.append(((section, index, "id"), f"id {item!r} is used twice"))
                seen.add(item)

        unique("cameras", [c.id for c in self.cameras])
        unique("opds", [o.id for o in self.opds])
        unique("walls", [w.id for w in self.walls])
        cams = {c.id for c in self.cameras}
        opds = {o.id for o in self.opds}
        for ci, cam in enumerate(self.cameras):
            zones = [z.id for z in cam.zones]
            for zi, zid in enumerate(zones):
                if zid in zones[:zi]:
                    problems.append(
                        (("cameras", ci, "zones", zi, "id"), f"zone id {zid!r} is used twice")
                    )
            areas = {z.id: z.area_m2 for z in cam.zones}
            for ri, rule in enumerate(cam.rules):
                if isinstance(rule, CrowdRule) and rule.min_density and rule.zone in areas:
                    if not areas[rule.zone]:
                        problems.append(
                            (
                                ("cameras", ci, "rules", ri, "min_density"),
                                f"zone {rule.zone!r} has no area_m2: persons per m2 need the "
                                "ground area the zone covers",
                            )
                        )
                if not isinstance(rule, TamperRule) and rule.zone not in zones:
                    problems.append(
                        (
                            ("cameras", ci, "rules", ri, "zone"),
                            f"zone {rule.zone!r} is not defined on camera {cam.id!r} "
                            f"(its zones: {', '.join(zones) or 'none'})",
                        )
                    )
        for oi, opd_cfg in enumerate(self.opds):
            problems += [(("opds", oi, *loc), msg) for loc, msg in opd_cfg.roster_problems()]
        for ri, route in enumerate(self.routing):
            for oi, opd in enumerate(route.opds):
                if opd not in opds:
                    problems.append(
                        (("routing", ri, "opds", oi), f"OPD {opd!r} is not defined in opds")
                    )
            for ci, cam_id in enumerate(route.match.cameras):
                if cam_id not in cams:
                    problems.append(
                        (
                            ("routing", ri, "match", "cameras", ci),
                            f"camera {cam_id!r} is not defined",
                        )
                    )
        for si, silence in enumerate(self.notify.silences):
            for field_name, known, values in (
                ("cameras", cams, silence.cameras),
                ("opds", opds, silence.opds),
            ):
                for vi, value in enumerate(values):
                    if value not in known:
                        problems.append(
                            (
                                ("notify", "silences", si, field_name, vi),
                                f"{field_name[:-1]} {value!r} is not defined",
                            )
                        )
        for wi, wall in enumerate(self.walls):
            views: list[tuple[Loc, Wall | Preset]] = [(("walls", wi), wall)]
            views += [(("walls", wi, "presets", pi), p) for pi, p in enumerate(wall.presets)]
            for loc, view in views:
                for ci, cam_id in enumerate(view.cameras):
                    if cam_id not in cams:
                        problems.append(
                            ((*loc, "cameras", ci), f"camera {cam_id!r} is not defined")
                        )
                if len(view.cameras) > LAYOUT_TILES[view.layout]:
                    problems.append(
                        (
                            (*loc, "cameras"),
                            f"{len(view.cameras)} cameras do not fit layout {view.layout} "
                            f"({LAYOUT_TILES[view.layout]} tiles)",
                        )
                    )
            unique_in = [p.id for p in wall.presets]
            for pi, pid in enumerate(unique_in):
                if pid in unique_in[:pi]:
                    problems.append(
                        (("walls", wi, "presets", pi, "id"), f"preset id {pid!r} is used twice")
                    )
            for ti, trigger in enumerate(wall.on_incident):
                if trigger.preset not in unique_in:
                    problems.append(
                        (
                            ("walls", wi, "on_incident", ti, "preset"),
                            f"preset {trigger.preset!r} is not defined on wall {wall.id!r} "
                            f"(its presets: {', '.join(unique_in) or 'none'})",
                        )
                    )
                for ci, cam_id in enumerate(trigger.cameras):
                    if cam_id not in cams:
                        problems.append(
                            (
                                ("walls", wi, "on_incident", ti, "cameras", ci),
                                f"camera {cam_id!r} is not defined",
                            )
                        )
        return problems


class ConfigError(Exception):
    """One or more problems, each already formatted as `file:line: field: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: str, env: Mapping[str, str], where: str, problems: list[str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{where}: environment variable {name} is not set")
        return ""

    return _VAR.sub(sub, value)


def _plain(
    node: Any,
    path: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    env: Mapping[str, str],
    file: str,
    problems: list[str],
) -> Any:
    """Copy ruamel nodes into plain data, recording each key's and item's line (1-based)."""
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            line = node.lc.key(key)[0] + 1
            lines[(*path, key)] = line
            out[key] = _plain(value, (*path, key), lines, env, file, problems)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            lines[(*path, index)] = node.lc.item(index)[0] + 1
            items.append(_plain(value, (*path, index), lines, env, file, problems))
        return items
    if isinstance(node, str):
        line = lines.get(path, 0)
        return _expand(node, env, f"{file}:{line}: {_dotted(path)}", problems)
    return node


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_for(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _clean_loc(loc: Loc) -> Loc:
    # Pydantic puts the union tag into locs (rules[0].crowd.zone): drop what is not a key or
    # index of the YAML document.
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and part in RULE_TYPES and i >= 2 and loc[i - 2] == "rules":
            continue
        out.append(part)
    return tuple(out)


def _message(err: Any) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check its spelling; unknown keys are errors)"
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_invalid":
        return (
            f"unknown rule type {err['input'].get('type')!r} (known: {', '.join(RULE_TYPES)})"
            if isinstance(err.get("input"), dict)
            else msg
        )
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _file_problems(config: PantauConfig, base: Path) -> list[tuple[tuple[str | int, ...], str]]:
    """Files the configuration names that must be there to start (relative to the file)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    tls = config.server.tls
    for field in ("cert", "key") if tls is not None else ():
        value = getattr(tls, field)
        if not (base / value).is_file():
            found.append((("server", "tls", field), f"no such file: {value}"))
    return found


def _region_problems(config: PantauConfig) -> tuple[list[Problem], list[Problem]]:
    intake = config.intake
    kab = (intake.kabupaten.name, intake.kabupaten.code) if intake.kabupaten else None
    places: list[tuple[Loc, str, str | None]] = []
    for i, entry in enumerate(intake.kecamatan):
        name, code = (entry, None) if isinstance(entry, str) else (entry.name, entry.code)
        places.append((("intake", "kecamatan", i), name, code))
    for i, cam in enumerate(config.cameras):
        if cam.kecamatan and cam.kecamatan not in {n for _, n, _ in places}:
            places.append((("cameras", i, "kecamatan"), cam.kecamatan, None))
    return check_region(kab, places)


def load(
    path: str | Path, env: Mapping[str, str] | None = None, warnings: list[str] | None = None
) -> PantauConfig:
    """Read and validate cameras.yaml. Raises ConfigError naming file, line and field;
    `warnings` (when given) gets what is allowed but probably wrong, as file:line lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    return parse(text, path.name, path.parent, env, warnings)


def parse(
    text: str,
    name: str,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
    warnings: list[str] | None = None,
) -> PantauConfig:
    """`load` for text already read (a worker takes the server's reloaded file from Redis);
    `name` is what errors call the file, `base_dir` what relative paths in it start from."""
    env = os.environ if env is None else env
    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([f"{name}:{line}: not valid YAML: {exc.problem or exc.context}"]) from exc
    if doc is None:
        raise ConfigError([f"{name}:1: the file is empty"])
    if not isinstance(doc, CommentedMap):
        raise ConfigError([f"{name}:1: the top level must be a mapping of sections"])
    lines: dict[tuple[str | int, ...], int] = {}
    problems: list[str] = []
    data = _plain(doc, (), lines, env, name, problems)
    if problems:
        raise ConfigError(problems)
    try:
        config = PantauConfig.model_validate(data)
    except ValidationError as exc:
        found = []
        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]))
            found.append((_line_for(loc, lines), f"{_dotted(loc)}: {_message(err)}"))
        # In file order, as a person reads the file top-down.
        raise ConfigError([f"{name}:{line}: {text}" for line, text in sorted(found)]) from exc
    region_errors, region_warnings = _region_problems(config)
    refs = config.reference_problems() + _file_problems(config, base_dir) + region_errors
    if refs:
        raise ConfigError(
            [f"{name}:{_line_for(loc, lines)}: {_dotted(loc)}: {msg}" for loc, msg in refs]
        )
    if warnings is not None:
        warnings += [
            f"{name}:{_line_for(loc, lines)}: {_dotted(loc)}: {msg}" for loc, msg in region_warnings
        ]
    return config
