"""Chat apps: a supervisor makes a one-time code that links an officer's Telegram account to
their OPD contact (the officer sends `/start CODE` to the bot); WhatsApp's webhook (Meta signs
it with the app secret) and a local chat gateway's replies (signed like Pantau's webhooks) come
in here without a login: their signature is the credential, and a bad one changes nothing."""

import hmac
import json
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from events.notify.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from events.notify.whatsapp import signature_ok
from wallboard.access import Access
from wallboard.auth import Role, User
from wallboard.deps import WallboardDeps
from wallboard.errors import responses
from wallboard.intake_api import read_limited
from wallboard.session_api import _ip

MAX_WEBHOOK_BYTES = 256 * 1024
FRESH_S = 300  # a gateway reply signed longer ago than this is a replay


class ChatContact(BaseModel):
    opd_id: str
    opd_name: str
    contact_id: str
    name: str
    role: str
    telegram: bool  # reachable on Telegram (an id in cameras.yaml or a linked account)
    whatsapp: bool


class WebhookTaken(BaseModel):
    taken: int  # messages acted on (statuses and the like are ignored)


class GatewayReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender: str = Field(alias="from", min_length=3, max_length=32)
    text: str = Field(min_length=1, max_length=4000)
    incident_id: str | None = Field(default=None, max_length=64)


class GatewayAnswer(BaseModel):
    ok: bool
    text: str  # what the gateway should send back to the officer


class LinkCode(BaseModel):
    code: str
    opd_id: str
    contact_id: str
    expires_at: datetime
    how: str  # what the officer does with it, in Bahasa Indonesia


def chat_router(deps: WallboardDeps, access: Access) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["chat"], responses=responses(401, 403, 404, 422))

    @router.get("/chat/contacts", responses=responses(404))
    async def chat_contacts(user: Annotated[User, Depends(access.user)]) -> list[ChatContact]:
        """OPD contacts that can be linked (they have an id), and where each is reachable."""
        access.need(user, Role.SUPERVISOR)
        links = deps.chat_links
        if links is None:
            raise HTTPException(404, "no chat app is set up (notify.telegram / notify.whatsapp)")
        return [
            ChatContact(
                opd_id=opd.id,
                opd_name=opd.name,
                contact_id=cid,
                name=c.name,
                role=c.role,
                telegram=links.chat_of("telegram", opd.id, c) is not None,
                whatsapp=links.chat_of("whatsapp", opd.id, c) is not None,
            )
            for opd in links.opds.values()
            for cid, c in opd.people().items()
        ]

    @router.post("/opds/{opd_id}/contacts/{contact_id}/link-code", status_code=201,
                 responses=responses(404))  # fmt: skip
    async def make_link_code(
        opd_id: str, contact_id: str, request: Request,
        user: Annotated[User, Depends(access.user)],
    ) -> LinkCode:  # fmt: skip
        """A code (valid 30 minutes, once) that links a chat account to this contact."""
        access.need(user, Role.SUPERVISOR)
        if deps.chat_links is None:
            raise HTTPException(404, "no chat app is set up (notify.telegram / notify.whatsapp)")
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

    @router.get(
        "/chat/whatsapp",
        response_class=Response,  # errors stay JSON in the OpenAPI; the echo is text
        responses={200: {"content": {"text/plain": {}}}, **responses(401, 403, 404, 422)},
    )
    async def whatsapp_handshake(
        mode: Annotated[str, Query(alias="hub.mode")] = "",
        token: Annotated[str, Query(alias="hub.verify_token")] = "",
        challenge: Annotated[str, Query(alias="hub.challenge", max_length=200)] = "",
    ) -> Response:
        """Meta's subscription check: echo the challenge when the verify token matches."""
        app = deps.whatsapp
        if app is None:
            raise HTTPException(404, "WhatsApp is not set up (notify.whatsapp)")
        if mode != "subscribe" or not _same(token, app.config.verify_token):
            raise HTTPException(403, "verify token does not match")
        return PlainTextResponse(challenge)

    @router.post("/chat/whatsapp", responses=responses(400, 413))
    async def whatsapp_webhook(request: Request) -> WebhookTaken:
        """Messages from WhatsApp (button presses, replies, photos), signed by Meta."""
        app = deps.whatsapp
        if app is None:
            raise HTTPException(404, "WhatsApp is not set up (notify.whatsapp)")
        body = await read_limited(request, MAX_WEBHOOK_BYTES)
        if not signature_ok(
            app.config.app_secret, body, request.headers.get("x-hub-signature-256")
        ):
            raise HTTPException(401, "X-Hub-Signature-256 missing or wrong", headers=_HUB)
        doc = _json(body)
        return WebhookTaken(taken=await app.handle(doc))

    @router.post("/chat/gateway", responses=responses(400, 413))
    async def gateway_reply(request: Request) -> GatewayAnswer:
        """What an officer wrote back through the HTTP chat gateway (TERIMA, TANGANI,
        SELESAI, BUKAN, or a comment), signed with `notify.chat.reply_secret`."""
        replies, secret = deps.gateway_replies, deps.gateway_secret
        if replies is None or secret is None:
            raise HTTPException(404, "gateway replies are not set up (notify.chat.reply_secret)")
        body = await read_limited(request, MAX_WEBHOOK_BYTES)
        stamp = request.headers.get(TIMESTAMP_HEADER.lower(), "")
        given = request.headers.get(SIGNATURE_HEADER.lower(), "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > FRESH_S:
            raise HTTPException(401, f"{TIMESTAMP_HEADER} missing or not within 5 minutes")
        if not _same(given, sign(secret, stamp, body)):
            raise HTTPException(401, f"{SIGNATURE_HEADER} missing or wrong")
        try:
            reply = GatewayReply.model_validate(_json(body))
        except ValidationError as exc:
            raise HTTPException(422, [e["msg"] for e in exc.errors()]) from exc
        outcome = await replies.take(reply.sender, reply.text, reply.incident_id)
        return GatewayAnswer(ok=outcome.ok, text=outcome.text)

    return router


_HUB = {"WWW-Authenticate": 'HMAC realm="X-Hub-Signature-256"'}


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise HTTPException(400, f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return doc
