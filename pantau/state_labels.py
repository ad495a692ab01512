"""Operators' labels of a camera zone's state: which state a picture shows, who said so, when.
A label keeps the zone's crop (the polygon's bounding box, as a JPEG, at the camera's own
resolution) and the polygon it was cut with, so a model can be trained again later even after
the zone was edited. Rows in SQLite, crops in `<data_dir>/state_labels/<id>.jpg`."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from analytics.config import Zone
from analytics.state_model import Label, to_side, zone_box
from events.files import write_atomic
from events.model import new_id
from events.store import Store

SOURCES = ("live", "recording", "incident")


@dataclass(frozen=True)
class StateLabel:
    id: str
    camera_id: str
    zone_id: str
    state: str
    taken_at: datetime
    source: str  # live | recording | incident
    ref: str | None  # the incident id, or the recording time
    labelled_by: str
    labelled_at: datetime


class StateLabels:
    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.folder = folder

    async def add(
        self, camera_id: str, zone: Zone, state: str, frame: npt.NDArray[np.uint8],
        taken_at: datetime, source: str, ref: str | None, by: str,
    ) -> StateLabel:  # fmt: skip
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}")
        box, local = zone_box(frame, zone)  # the polygon in the crop's pixels
        label = StateLabel(new_id("lbl"), camera_id, zone.id, state, taken_at, source, ref, by,
                           datetime.now(UTC))  # fmt: skip
        ok, jpeg = cv2.imencode(".jpg", box, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise ValueError("the picture could not be encoded")
        await asyncio.to_thread(write_atomic, self.folder / f"{label.id}.jpg", jpeg.tobytes())
        await self.store.execute(
            "INSERT INTO state_labels(id, camera_id, zone_id, state, taken_at, source, ref, "
            "polygon, labelled_by, labelled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (label.id, camera_id, zone.id, state, taken_at.astimezone(UTC).isoformat(), source,
             ref, json.dumps(local.tolist()), by, label.labelled_at.isoformat()),
        )  # fmt: skip
        return label

    async def of(self, camera_id: str, zone_id: str) -> list[StateLabel]:
        rows = await self.store.execute(
            "SELECT id, camera_id, zone_id, state, taken_at, source, ref, labelled_by, "
            "labelled_at FROM state_labels WHERE camera_id = ? AND zone_id = ? ORDER BY taken_at",
            (camera_id, zone_id),
        )
        return [
            StateLabel(
                str(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                datetime.fromisoformat(str(r[4])),
                str(r[5]),
                None if r[6] is None else str(r[6]),
                str(r[7]),
                datetime.fromisoformat(str(r[8])),
            )
            for r in rows
        ]

    async def remove(self, label_id: str) -> bool:
        rows = await self.store.execute(
            "DELETE FROM state_labels WHERE id = ? RETURNING id", (label_id,)
        )
        (self.folder / f"{label_id}.jpg").unlink(missing_ok=True)
        return bool(rows)

    async def training_set(self, camera_id: str, zone_id: str) -> list[Label]:
        """The labels as the trainer takes them: crops at SIDE with their masks."""
        rows = await self.store.execute(
            "SELECT id, state, taken_at, polygon FROM state_labels WHERE camera_id = ? AND "
            "zone_id = ? ORDER BY taken_at",
            (camera_id, zone_id),
        )
        return await asyncio.to_thread(self._load, rows)

    def _load(self, rows: list[tuple[object, ...]]) -> list[Label]:
        out = []
        for label_id, state, taken_at, polygon in rows:
            box = cv2.imread(str(self.folder / f"{label_id}.jpg"))
            if box is None:
                continue  # its crop was deleted by hand: skip, do not fail the training
            patch, shape = to_side(np.asarray(box, np.uint8),
                                   np.array(json.loads(str(polygon)), np.float64))  # fmt: skip
            at = datetime.fromisoformat(str(taken_at)).timestamp()
            out.append(Label(str(state), at, patch, shape))
        return out
