"""Which view each wall screen shows: its own layout, or a preset chosen by an operator or by a
trigger on an incident (as Milestone's Smart Wall rules).

Every switch is announced on the hub as a numbered `wall.view` message and kept in the hub's
snapshot, so every screen of that wall (and one that reconnects) shows the same view.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from events.bus import Subscription
from events.model import EventType, Incident, IncidentEvent, Severity, utcnow
from wallboard.config import PresetTrigger, Wall
from wallboard.hub import Hub

log = logging.getLogger(__name__)

_SEVERITY_ORDER = list(Severity)


class UnknownView(Exception):
    pass


@dataclass
class WallView:
    preset: str | None = None  # None: the wall's own layout
    by: str = "config"  # "operator:<username>" or "incident:<id>"
    at: datetime = field(default_factory=utcnow)
    # Incidents whose trigger holds the wall on this preset; empty: nothing to revert.
    holding: set[str] = field(default_factory=set)
    revert: bool = False

    def public(self, wall_id: str) -> dict[str, object]:
        return {"wall": wall_id, "preset": self.preset, "by": self.by, "at": self.at.isoformat()}


def matches(trigger: PresetTrigger, incident: Incident) -> bool:
    if trigger.kinds and incident.kind not in trigger.kinds:
        return False
    if trigger.min_severity is not None and (
        _SEVERITY_ORDER.index(incident.severity) < _SEVERITY_ORDER.index(trigger.min_severity)
    ):
        return False
    if trigger.cameras and incident.camera_id not in trigger.cameras:
        return False
    return not (trigger.kecamatan and incident.kecamatan not in trigger.kecamatan)


class WallDirector:
    def __init__(self, walls: list[Wall], hub: Hub) -> None:
        self._walls = {w.id: w for w in walls}
        self._hub = hub
        self.views = {w.id: WallView() for w in walls}
        self._task: asyncio.Task[None] | None = None
        for wall_id, view in self.views.items():
            hub.keep(f"wall:{wall_id}", view.public(wall_id))

    def reconfigure(self, walls: list[Wall]) -> None:
        """A live reload: walls keep what they show unless that preset is gone."""
        old = self._walls
        self._walls = {w.id: w for w in walls}
        for wall_id in [w for w in self.views if w not in self._walls]:
            del self.views[wall_id]
            self._hub.forget(f"wall:{wall_id}")
        for wall_id, wall in self._walls.items():
            view = self.views.get(wall_id)
            if view is None:
                self.views[wall_id] = WallView()
                self._hub.keep(f"wall:{wall_id}", self.views[wall_id].public(wall_id))
            elif view.preset is not None and view.preset not in {p.id for p in wall.presets}:
                self._switch(wall_id, WallView(None, "reload"))
            elif old.get(wall_id) != wall:
                self._switch(wall_id, view)  # same view, new layout or cameras: screens redraw

    def start(self, subscription: Subscription) -> None:
        self._task = asyncio.create_task(self._consume(subscription), name="walls")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _consume(self, subscription: Subscription) -> None:
        try:
            async for event in subscription:
                if isinstance(event, IncidentEvent):
                    self.on_incident(event)
        finally:
            await subscription.close()

    def choose(self, wall_id: str, preset: str | None, username: str) -> WallView:
        """An operator puts a wall on a preset (or back on its own layout with None)."""
        wall = self._walls.get(wall_id)
        if wall is None:
            raise UnknownView(f"no wall {wall_id!r}")
        if preset is not None and preset not in {p.id for p in wall.presets}:
            raise UnknownView(f"wall {wall_id!r} has no preset {preset!r}")
        # An operator's choice stands: triggers may switch again, but never revert it.
        return self._switch(wall_id, WallView(preset, f"operator:{username}"))

    def on_incident(self, event: IncidentEvent) -> None:
        incident = event.incident
        for wall_id, wall in self._walls.items():
            view = self.views[wall_id]
            if event.type == EventType.INCIDENT_OPENED:
                trigger = next((t for t in wall.on_incident if matches(t, incident)), None)
                if trigger is None:
                    continue
                if view.preset == trigger.preset and view.holding:
                    view.holding.add(incident.id)
                    continue
                log.info("wall=%s preset=%s incident=%s: switched by trigger",
                         wall_id, trigger.preset, incident.id)  # fmt: skip
                by = f"incident:{incident.id}"
                held = WallView(trigger.preset, by, holding={incident.id}, revert=trigger.revert)
                self._switch(wall_id, held)
            elif event.type == EventType.INCIDENT_CLOSED and incident.id in view.holding:
                view.holding.discard(incident.id)
                if not view.holding and view.revert:
                    log.info("wall=%s incidents closed: back to its own layout", wall_id)
                    self._switch(wall_id, WallView(None, f"incident:{incident.id}"))

    def _switch(self, wall_id: str, view: WallView) -> WallView:
        self.views[wall_id] = view
        self._hub.announce("wall.view", view.public(wall_id), keep_as=f"wall:{wall_id}")
        return view
