"""Files people send back about an incident (a photo from the field), kept beside the
snapshots: one row per file in SQLite, the bytes in `<data_dir>/attachments/<id><ext>`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from events.files import write_atomic
from events.model import new_id
from events.store import Store

TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


@dataclass(frozen=True)
class Attachment:
    id: str
    incident_id: str
    name: str
    content_type: str
    size: int
    added_by: str
    at: datetime


class Attachments:
    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.folder = folder

    async def add(
        self, incident_id: str, data: bytes, content_type: str, added_by: str, name: str = ""
    ) -> Attachment:
        if content_type not in TYPES:
            raise ValueError(f"not an accepted picture type: {content_type}")
        att = Attachment(new_id("att"), incident_id, name or f"foto{TYPES[content_type]}",
                         content_type, len(data), added_by, datetime.now(UTC))  # fmt: skip
        await asyncio.to_thread(write_atomic, self.path(att), data)
        await self.store.execute(
            "INSERT INTO attachments(id, incident_id, name, content_type, size, added_by, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (att.id, incident_id, att.name, content_type, att.size, added_by, att.at.isoformat()),
        )
        return att

    def path(self, att: Attachment) -> Path:
        return self.folder / f"{att.id}{TYPES.get(att.content_type, '.bin')}"

    async def of(self, incident_id: str) -> list[Attachment]:
        rows = await self.store.execute(
            "SELECT id, incident_id, name, content_type, size, added_by, at FROM attachments "
            "WHERE incident_id = ? ORDER BY at",
            (incident_id,),
        )
        return [
            Attachment(
                str(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                int(str(r[4])),
                str(r[5]),
                datetime.fromisoformat(str(r[6])),
            )
            for r in rows
        ]
