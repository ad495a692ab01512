"""Two-way WhatsApp in the shape of the WhatsApp Business Cloud API.

Out: a template message (approved in Meta's manager as `notify.whatsapp.template`, language
`id`) whose body carries kind, place, title and time, and whose quick-reply buttons carry the
action and incident id as payloads (Terima, Tangani, Selesai, Bukan kejadian).
In: Meta's webhook (POST /api/chat/whatsapp) signed with the app secret in X-Hub-Signature-256;
a button press acts as the contact that number is, a text is a comment (on the incident the
message quotes, else the last one told), an image is attached. Unknown numbers are refused.
The generic HTTP chat gateway (local providers) can post replies the same way, signed with
its own secret (`notify.chat.reply_secret`), in a simple JSON shape.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import httpx

from events.config import Contact, WhatsAppConfig
from events.model import Incident
from events.notify.channels import DeliveryFailed
from events.notify.chat_answers import REFUSED, ChatAnswers, Outcome
from events.notify.chat_links import ChatLinks
from events.notify.message import KIND_ID, Notice

log = logging.getLogger(__name__)
APP = "WhatsApp"
BUTTON_ORDER = ("acknowledge", "start", "resolve", "false_alarm")  # the template's buttons
IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp"}


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Meta's X-Hub-Signature-256: `sha256=` + HMAC-SHA256 of the raw body with the app
    secret, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    want = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, header.removeprefix("sha256="))


class WhatsAppApp:
    name = "whatsapp"

    def __init__(self, config: WhatsAppConfig, links: ChatLinks, answers: ChatAnswers) -> None:
        self.config = config
        self.links = links
        self.answers = answers
        self.client = httpx.AsyncClient(
            base_url=config.api_url.rstrip("/") + "/", timeout=15,
            headers={"Authorization": f"Bearer {config.access_token}"},
        )  # fmt: skip
        self.refused = 0

    async def close(self) -> None:
        await self.client.aclose()

    # ---- out ----------------------------------------------------------------------------
    def chat_of(self, opd_id: str, contact: Contact) -> str | None:
        return self.links.chat_of("whatsapp", opd_id, contact)

    def template(self, notice: Notice, incident: Incident, to: str) -> dict[str, Any]:
        place = ", ".join(p for p in (incident.desa, incident.kecamatan) if p) or "-"
        body = [KIND_ID.get(incident.kind, str(incident.kind)), place, incident.title[:200],
                notice.local(incident.started_at)]  # fmt: skip
        if notice.reason:
            body[2] = f"{notice.reason}: {body[2]}"[:200]
        elif notice.step:
            body[2] = f"ESKALASI ke-{notice.step}: {body[2]}"[:200]
        buttons = [
            {"type": "button", "sub_type": "quick_reply", "index": str(i),
             "parameters": [{"type": "payload", "payload": f"{action}:{incident.id}"}]}
            for i, action in enumerate(BUTTON_ORDER)
        ]  # fmt: skip
        return {
            "messaging_product": "whatsapp",
            "to": to,
            "type": "template",
            "template": {
                "name": self.config.template,
                "language": {"code": self.config.language},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": t} for t in body]},
                    *buttons,
                ],
            },
        }

    async def send(self, notice: Notice, chat_id: str, contact: Contact, delivery_id: str) -> None:
        for incident in notice.incidents:
            doc = await self._post(self.template(notice, incident, chat_id))
            message_id = (doc.get("messages") or [{}])[0].get("id")
            if message_id:
                await self.links.remember("whatsapp", chat_id, str(message_id), incident.id,
                                          notice.opd_id)  # fmt: skip

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            r = await self.client.post(f"{self.config.phone_number_id}/messages", json=payload)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if r.status_code >= 300:
            raise DeliveryFailed(f"HTTP {r.status_code}: {r.text[:200]}")
        doc: dict[str, Any] = r.json()
        return doc

    async def tell(self, to: str, text: str) -> None:
        """A plain text answer (the officer just wrote: inside WhatsApp's 24-hour window)."""
        try:
            await self._post({"messaging_product": "whatsapp", "to": to, "type": "text",
                              "text": {"body": text[:4096]}})  # fmt: skip
        except DeliveryFailed as exc:
            log.warning("whatsapp answer to %s not sent: %s", to, exc)

    # ---- in -----------------------------------------------------------------------------
    async def handle(self, doc: dict[str, Any]) -> int:
        """Meta's webhook body; returns how many messages were taken. Statuses are ignored."""
        taken = 0
        for entry in doc.get("entry") or []:
            for change in entry.get("changes") or []:
                for message in (change.get("value") or {}).get("messages") or []:
                    await self._message(message)
                    taken += 1
        return taken

    async def _message(self, message: dict[str, Any]) -> None:
        sender = str(message.get("from") or "")
        user = self.links.user("whatsapp", sender)
        kind = message.get("type")
        if user is None:
            self.refused += 1
            log.warning("whatsapp number=%s refused: not a contact of any OPD", sender)
            await self.tell(sender, REFUSED)
            return
        payload = None
        if kind == "button":
            payload = (message.get("button") or {}).get("payload")
        elif kind == "interactive":
            payload = ((message.get("interactive") or {}).get("button_reply") or {}).get("id")
        outcome: Outcome
        if payload:
            action, _, pressed = str(payload).partition(":")
            outcome = await self.answers.press(user, pressed, action, APP)
        else:
            quoted = (message.get("context") or {}).get("id")
            incident_id = (
                await self.links.incident_of("whatsapp", sender, str(quoted))
                if quoted
                else await self.links.last_incident("whatsapp", sender)
            )
            if incident_id is None:
                await self.tell(sender, "Balas pesan kejadian untuk menambah catatan atau foto.")
                return
            if kind == "text":
                text = str((message.get("text") or {}).get("body") or "")
                outcome = await self.answers.comment(user, incident_id, text, APP)
            elif kind == "image":
                image = message.get("image") or {}
                got = await self._media(str(image.get("id") or ""))
                if got is None:
                    await self.tell(sender, "Foto tidak dapat diambil, coba kirim lagi.")
                    return
                caption = str(image.get("caption") or "")
                outcome = await self.answers.photo(user, incident_id, got[0], got[1], caption, APP)
            else:
                outcome = Outcome(False, "Jenis pesan ini belum dapat diterima.")
        await self.tell(sender, outcome.text)

    async def _media(self, media_id: str) -> tuple[bytes, str] | None:
        """The Cloud API's two steps: the media's URL by id, then its bytes (both with the
        token)."""
        if not media_id:
            return None
        try:
            meta = await self.client.get(media_id)
            meta.raise_for_status()
            info = meta.json()
            if info.get("mime_type") not in IMAGE_TYPES:
                return None
            blob = await self.client.get(str(info["url"]))
            blob.raise_for_status()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning("whatsapp media %s not fetched: %s", media_id, exc)
            return None
        return blob.content, str(info["mime_type"])
