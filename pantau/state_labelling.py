"""What the wall's labelling asks of the site: a picture of a camera's zone, from the camera
now (its still: here or from its worker), from its recordings at a chosen time (here, or from
the worker boxes that recorded it), or from an incident's snapshot, stored as a label;
training; enabling or disabling a model version (scaled out, the workers get it through
Redis). The wall only sees this through wallboard.deps.StateLabelling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from analytics.state_model import disable, enable, enabled
from events.store import Store
from pantau.config import Camera, PantauConfig
from pantau.state_labels import StateLabels
from pantau.state_training import StateTraining, as_dict

Still = Callable[[str], Awaitable[tuple[int, bytes] | None]]
Recorded = Callable[[str, datetime], Awaitable[npt.NDArray[np.uint8]]]  # FileNotFoundError: none
Shared = Callable[[str, str, int | None, str], Awaitable[None]]  # camera, zone, version, by


WET = ("banjir", "tergenang", "genangan")  # never chosen as a zone's normal look


class LabelError(LookupError):
    """The picture to label is not there (no still, no snapshot, no recording then)."""


def _decode(data: bytes) -> npt.NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise LabelError("the picture could not be read")
    return np.asarray(image, np.uint8)


def _when(ref: str | None) -> datetime:
    try:
        at = datetime.fromisoformat(ref or "")
    except ValueError as exc:
        raise LabelError("a recording label needs ref = an ISO time with a zone") from exc
    if at.tzinfo is None:
        raise LabelError("a recording label needs ref = an ISO time with a zone")
    return at


class Labelling:
    def __init__(
        self, config: Callable[[], PantauConfig], base_dir: Path, data_dir: Path, store: Store,
        still: Still, snapshot_dir: Path, models: Path, recorded: Recorded,
        reload_models: Callable[[str], dict[str, str]] | None = None,
        share: Shared | None = None,
    ) -> None:  # fmt: skip
        self._config = config
        self.base_dir = base_dir
        self.store = store
        self.still = still
        self.snapshot_dir = snapshot_dir
        self.models = models
        self.recorded = recorded
        self.reload_models = reload_models  # one process: the running camera takes it now
        self.share = share  # scaled out: to the workers, whose cameras take it from Redis
        self.labels = StateLabels(store, data_dir / "state_labels")

    def _training(self) -> StateTraining:
        return StateTraining(self._config(), self.labels, self.models)

    async def label(
        self, camera_id: str, zone_id: str, state: str, source: str, ref: str | None, by: str
    ) -> dict[str, Any]:
        zone = self._training().zone(camera_id, zone_id)
        taken_at = datetime.now(UTC)
        if source == "live":
            got = await self.still(camera_id)
            if got is None:
                raise LabelError(f"camera {camera_id} has no picture now")
            frame = _decode(got[1])
        elif source == "incident":
            incident = await self.store.incident(ref or "")
            if incident is None or incident.camera_id != camera_id or not incident.snapshot_ref:
                raise LabelError(f"no snapshot of camera {camera_id} for incident {ref!r}")
            path = self.snapshot_dir / incident.snapshot_ref
            if "/" in incident.snapshot_ref or not path.is_file():
                raise LabelError(f"incident {ref}'s snapshot is not on this server")
            frame = _decode(await asyncio.to_thread(path.read_bytes))
            taken_at = incident.started_at
        elif source == "recording":
            taken_at = _when(ref)
            frame = await self.recorded_frame(camera_id, taken_at)
        else:
            raise LabelError(f"unknown source {source!r} (live, recording, incident)")
        made = await self.labels.add(camera_id, zone, state, frame, taken_at, source, ref, by)
        return asdict(made)

    def _camera(self, camera_id: str) -> Camera:
        camera = next((c for c in self._config().cameras if c.id == camera_id), None)
        if camera is None:
            raise LookupError(f"no camera {camera_id!r}")
        return camera

    async def recorded_frame(self, camera_id: str, at: datetime) -> npt.NDArray[np.uint8]:
        self._camera(camera_id)
        try:
            return await self.recorded(camera_id, at)
        except FileNotFoundError as exc:
            raise LabelError(str(exc)) from exc

    async def recorded_jpeg(self, camera_id: str, at: datetime) -> bytes:
        """What a recording label at `at` would crop from (the dialog shows it first)."""
        frame = await self.recorded_frame(camera_id, at)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise LabelError("the frame could not be encoded")
        return bytes(jpeg.tobytes())

    async def label_normal(self, incident_id: str, state: str | None, by: str) -> dict[str, Any]:
        """A false alarm's snapshot as an example of the zone's normal look, in one click: the
        state given, else the zone's most-labelled state that is not a wet one, else "normal"
        ("kering" for a flood zone)."""
        incident = await self.store.incident(incident_id)
        if incident is None or not incident.camera_id or not incident.zone_id:
            raise LabelError(f"incident {incident_id!r} has no camera zone to label")
        if state is None:
            labels = await self.labels.of(incident.camera_id, incident.zone_id)
            counts: dict[str, int] = {}
            for lab in labels:
                if lab.state not in WET:
                    counts[lab.state] = counts.get(lab.state, 0) + 1
            state = max(counts, key=counts.__getitem__) if counts else (
                "kering" if incident.kind == "flood" else "normal")  # fmt: skip
        return await self.label(incident.camera_id, incident.zone_id, state, "incident",
                                incident.id, by)  # fmt: skip

    def zones(self, camera_id: str) -> list[dict[str, Any]]:
        return [{"id": z.id, "name": z.name or z.id, "points": [list(p) for p in z.points]}
                for z in self._camera(camera_id).zones]  # fmt: skip

    async def list(self, camera_id: str, zone_id: str) -> dict[str, Any]:
        self._training().zone(camera_id, zone_id)
        labels = [asdict(x) for x in await self.labels.of(camera_id, zone_id)]
        where = self.models / camera_id / zone_id
        versions = sorted(int(p.stem[1:]) for p in where.glob("v*.npz") if p.stem[1:].isdigit())
        live = enabled(self.models, camera_id, zone_id)
        return {"labels": labels, "versions": versions,
                "enabled": live.version if live else None}  # fmt: skip

    def crop(self, label_id: str) -> Path | None:
        path = self.labels.folder / f"{label_id}.jpg"
        return path if "/" not in label_id and path.is_file() else None

    async def remove(self, label_id: str) -> bool:
        return await self.labels.remove(label_id)

    async def train(self, camera_id: str, zone_id: str) -> dict[str, Any]:
        return as_dict(await self._training().train(camera_id, zone_id))

    async def enable(
        self, camera_id: str, zone_id: str, version: int | None, by: str = "wall"
    ) -> dict[str, str]:
        """Let the camera's rules use this version (None: none, the classical method again);
        returns zone -> method now in use (empty where the camera runs on a worker box, which
        takes the model from Redis)."""
        self._training().zone(camera_id, zone_id)
        if version is None:
            disable(self.models, camera_id, zone_id)
        else:
            try:
                enable(self.models, camera_id, zone_id, version)
            except FileNotFoundError as exc:
                raise LabelError(str(exc)) from exc
        if self.share is not None:
            await self.share(camera_id, zone_id, version, by)
        return self.reload_models(camera_id) if self.reload_models is not None else {}
