"""Training a camera zone's state model from its labels, for `pantau train` and the wall:
the labels from SQLite, the model fitted (analytics/state_model.py), saved as the next version
beside the earlier ones, and its held-back accuracy reported before anyone enables it."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Any

from analytics.state_model import StateModel, enable, next_version, train
from pantau.config import PantauConfig
from pantau.state_labels import StateLabels


class NothingToTrain(ValueError):
    pass


class StateTraining:
    def __init__(self, config: PantauConfig, labels: StateLabels, models: Path) -> None:
        self.config = config
        self.labels = labels
        self.models = models
        self._lock = asyncio.Lock()  # one training at a time: it takes both cores for seconds

    def zone(self, camera_id: str, zone_id: str) -> Any:
        camera = next((c for c in self.config.cameras if c.id == camera_id), None)
        if camera is None:
            raise LookupError(f"no camera {camera_id!r}")
        zone = next((z for z in camera.zones if z.id == zone_id), None)
        if zone is None:
            raise LookupError(f"camera {camera_id!r} has no zone {zone_id!r}")
        return zone

    async def train(self, camera_id: str, zone_id: str, enable_it: bool = False) -> StateModel:
        self.zone(camera_id, zone_id)
        async with self._lock:
            labels = await self.labels.training_set(camera_id, zone_id)
            if len({lab.state for lab in labels}) < 2:
                raise NothingToTrain(
                    f"camera {camera_id} zone {zone_id} has {len(labels)} labels of "
                    f"{len({lab.state for lab in labels})} state(s): label at least two states"
                )
            version = next_version(self.models, camera_id, zone_id)
            model = await asyncio.to_thread(train, labels, camera_id, zone_id, version=version)
            await asyncio.to_thread(model.save, self.models)
            if enable_it:
                enable(self.models, camera_id, zone_id, version)
            return model


def report(model: StateModel) -> list[str]:
    """What `pantau train` prints: per state the labels it trained on and held back, and how
    many of the held-back ones it got right."""
    ev = model.evaluation
    lines = [f"model v{model.version} for camera {model.camera_id} zone {model.zone_id}: "
             f"states {', '.join(model.states)}"]  # fmt: skip
    if ev is None or ev.accuracy is None:
        lines.append("too few labels to hold any back: label at least 4 pictures per state")
        return lines
    lines.append(f"{'state':<16}{'trained on':>12}{'held back':>11}{'right':>9}")
    for state in model.states:
        right = ev.per_state.get(state)
        lines.append(f"{state:<16}{ev.trained_on.get(state, 0):>12}{ev.held_back.get(state, 0):>11}"
                     f"{'-' if right is None else f'{right:.0%}':>9}")  # fmt: skip
    lines.append(f"held-back accuracy (later pictures than trained on): {ev.accuracy:.1%}")
    return lines


def as_dict(model: StateModel) -> dict[str, Any]:
    return {"camera_id": model.camera_id, "zone_id": model.zone_id, "version": model.version,
            "states": model.states, "trained_at": model.trained_at,
            "evaluation": asdict(model.evaluation) if model.evaluation else None}  # fmt: skip
