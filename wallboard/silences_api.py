"""Maintenance windows from the wall: supervisors silence notifications for a while.

A silence keeps incidents on the wall and in the store; it only stops messages to OPDs (the
activity log says which silence held one back). Ending a silence early keeps it in the record.
"""

import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from events.config import Silence
from events.model import IncidentKind
from events.store import Store
from wallboard.access import Access
from wallboard.auth import Accounts, Role, User
from wallboard.deps import IsoTime
from wallboard.errors import responses
from wallboard.session_api import _ip

# No `from __future__ import annotations`: FastAPI must evaluate these signatures (see app.py).


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    starts_at: IsoTime | None = None  # default: now
    ends_at: IsoTime
    comment: str = Field(min_length=1, max_length=500)
    kinds: list[IncidentKind] = []
    kecamatan: list[str] = []
    cameras: list[str] = []
    opds: list[str] = []


def silences_router(store: Store, access: Access, accounts: Accounts) -> APIRouter:
    router = APIRouter(
        prefix="/api", tags=["silences"], responses=responses(400, 401, 403, 404, 422)
    )

    def staff(user: User) -> None:
        if access.scope(user) is not None:
            raise HTTPException(403, "silences are for command-center staff")

    @router.get("/silences")
    async def list_silences(user: Annotated[User, Depends(access.user)]) -> list[Silence]:
        """Silences in force now or planned."""
        staff(user)
        return [Silence.model_validate_json(b) for b in await store.silence_bodies()]

    @router.post("/silences", status_code=201)
    async def add_silence(
        body: SilenceIn, request: Request, user: Annotated[User, Depends(access.user)]
    ) -> Silence:
        access.need(user, Role.SUPERVISOR)
        try:
            silence = Silence(
                id=f"s-{secrets.token_hex(4)}", starts_at=body.starts_at or datetime.now(UTC),
                ends_at=body.ends_at, author=user.username, comment=body.comment,
                kinds=body.kinds, kecamatan=body.kecamatan, cameras=body.cameras, opds=body.opds,
            )  # fmt: skip
        except ValidationError as exc:
            raise HTTPException(422, [e["msg"] for e in exc.errors()]) from exc
        await save(silence)
        await accounts.audit(user, "silence.add", silence.id, silence.comment, _ip(request))
        return silence

    @router.delete("/silences/{silence_id}")
    async def end_silence(
        silence_id: str, request: Request, user: Annotated[User, Depends(access.user)]
    ) -> Silence:
        """End a silence now (it stays in the record)."""
        access.need(user, Role.SUPERVISOR)
        found = [
            s for s in map(Silence.model_validate_json, await store.silence_bodies())
            if s.id == silence_id
        ]  # fmt: skip
        if not found:
            raise HTTPException(404, f"no silence {silence_id!r} in force")
        now = datetime.now(UTC)
        ended = found[0].model_copy(update={"ends_at": max(now, found[0].starts_at)})
        await save(ended)
        await accounts.audit(user, "silence.end", silence_id, ip=_ip(request))
        return ended

    async def save(silence: Silence) -> None:
        await store.save_silence(
            silence.id,
            silence.starts_at.astimezone(UTC).isoformat(),
            silence.ends_at.astimezone(UTC).isoformat(),
            silence.model_dump_json(),
        )

    return router
