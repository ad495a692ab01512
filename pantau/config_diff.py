"""What changed between the running cameras.yaml and a new one, sorted by how it can be applied.

Live: cameras (added, removed, their stream, their analytics), OPDs and routing, walls, the
wall's UI settings, correlation, alert intake places. Everything else (the server's address and
TLS, the bus, storage, the detector, fleet timings, notification channels, recording settings,
the demo) is only reported as needing a restart: half-applying those would leave a process that
matches neither file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.config import CameraSource
from pantau.config import Camera, PantauConfig

# Top-level sections that a running process cannot take without a restart.
RESTART_SECTIONS = ("server", "storage", "bus", "detector", "fleet", "notify", "recording", "demo")
# Sections applied live, each by its own part (see Runtime.apply).
LIVE_SECTIONS = (
    "opds", "routing", "walls", "ui", "correlation", "intake", "motion", "calendar", "report",
    "false_alarms",
)  # fmt: skip
# A change in these fields restarts the camera's capture (and its recording); any other field
# of a camera only rebuilds its analytics, while frames keep flowing.
SOURCE_FIELDS = frozenset(CameraSource.model_fields)


@dataclass
class ConfigDiff:
    cameras_added: list[str] = field(default_factory=list)
    cameras_removed: list[str] = field(default_factory=list)
    cameras_restarted: list[str] = field(default_factory=list)  # stream settings changed
    cameras_reanalysed: list[str] = field(default_factory=list)  # zones, rules, names...
    cameras_moved: list[str] = field(default_factory=list)  # only `workers` (placement)
    sections: list[str] = field(default_factory=list)  # live sections that changed
    restart_needed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.cameras_added or self.cameras_removed or self.cameras_restarted
                    or self.cameras_reanalysed or self.cameras_moved or self.sections
                    or self.restart_needed)  # fmt: skip

    @property
    def cameras_touched(self) -> set[str]:
        return {*self.cameras_added, *self.cameras_removed, *self.cameras_restarted,
                *self.cameras_reanalysed}  # fmt: skip

    def summary(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.__dict__.items() if v}


def camera_change(old: Camera, new: Camera) -> str | None:
    """'restart', 'reanalyse', 'move' or None (the same camera)."""
    if old == new:
        return None
    changed = {name for name in Camera.model_fields if getattr(old, name) != getattr(new, name)}
    if changed & SOURCE_FIELDS:
        return "restart"
    if changed == {"workers"}:
        return "move"
    return "reanalyse"


def diff(old: PantauConfig, new: PantauConfig) -> ConfigDiff:
    out = ConfigDiff()
    before = {c.id: c for c in old.cameras}
    after = {c.id: c for c in new.cameras}
    out.cameras_added = [cid for cid in after if cid not in before]
    out.cameras_removed = [cid for cid in before if cid not in after]
    for cid, cam in after.items():
        if cid not in before:
            continue
        change = camera_change(before[cid], cam)
        if change == "restart":
            out.cameras_restarted.append(cid)
        elif change == "reanalyse":
            out.cameras_reanalysed.append(cid)
        elif change == "move":
            out.cameras_moved.append(cid)
    for name in LIVE_SECTIONS:
        if getattr(old, name) != getattr(new, name):
            out.sections.append(name)
    for name in RESTART_SECTIONS:
        if getattr(old, name) != getattr(new, name):
            out.restart_needed.append(name)
    if "motion" in out.sections:  # every camera's motion gate is built from it
        out.cameras_reanalysed = [
            cid for cid in after
            if cid not in out.cameras_added and cid not in out.cameras_restarted
        ]  # fmt: skip
    return out
