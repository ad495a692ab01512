"""Chat apps from the wall: a supervisor makes a one-time code that links an officer's Telegram
(or WhatsApp) account to their OPD contact; the officer sends `/start CODE` to the bot."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from wallboard.access import Access
from wallboard.auth import Role, User
from wallboard.deps import WallboardDeps
from wallboard.errors import responses
from wallboard.session_api import _ip


class LinkCode(BaseModel):
    code: str
    opd_id: str
    contact_id: str
    expires_at: datetime
    how: str  # what the officer does with it, in Bahasa Indonesia


def chat_router(deps: WallboardDeps, access: Access) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["chat"], responses=responses(401, 403, 404, 422))

    @router.post("/opds/{opd_id}/contacts/{contact_id}/link-code", status_code=201,
                 responses=responses(503))  # fmt: skip
    async def make_link_code(
        opd_id: str, contact_id: str, request: Request,
        user: Annotated[User, Depends(access.user)],
    ) -> LinkCode:  # fmt: skip
        """A code (valid 30 minutes, once) that links a chat account to this contact."""
        access.need(user, Role.SUPERVISOR)
        if deps.chat_links is None:
            raise HTTPException(503, "no chat app is set up (notify.telegram / notify.whatsapp)")
        try:
            code, expires = await deps.chat_links.new_code(opd_id, contact_id, user.username)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        await deps.accounts.audit(user, "chat.link_code", f"{opd_id}/{contact_id}",
                                  ip=_ip(request))  # fmt: skip
        return LinkCode(
            code=code, opd_id=opd_id, contact_id=contact_id, expires_at=expires,
            how=f"Kirim ke bot Pantau di Telegram: /start {code} (berlaku 30 menit, sekali).",
        )  # fmt: skip

    return router
