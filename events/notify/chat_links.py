"""Who a chat-app user is, and which message told which incident.

A Telegram user id or a WhatsApp number maps to one OPD contact: from cameras.yaml
(`contacts[].telegram`, `contacts[].whatsapp`) or linked from the wall with a one-time code
the officer sends to the bot. Anyone else is refused. Sent messages are remembered, so a button
press or a reply finds its incident (and the message can be updated).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from events.config import Contact, Opd
from events.store import Store

log = logging.getLogger(__name__)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read over the phone
CODE_TTL = timedelta(minutes=30)


@dataclass(frozen=True)
class ChatUser:
    opd: Opd
    contact: Contact

    @property
    def label(self) -> str:
        return f"{self.contact.name} ({self.opd.name})"


class ChatLinks:
    def __init__(self, store: Store, opds: Sequence[Opd]) -> None:
        self.store = store
        self._linked: dict[tuple[str, str], tuple[str, str]] = {}  # (channel, ext) -> (opd, cid)
        self.reconfigure(opds)

    def reconfigure(self, opds: Sequence[Opd]) -> None:
        self.opds = {o.id: o for o in opds}

    async def load(self) -> None:
        rows = await self.store.execute(
            "SELECT channel, external_id, opd_id, contact_id FROM chat_links"
        )
        self._linked = {(str(a), str(b)): (str(c), str(d)) for a, b, c, d in rows}

    # ---- who -----------------------------------------------------------------------------
    def user(self, channel: str, external_id: str) -> ChatUser | None:
        """The contact behind a chat user, or None (refused)."""
        for opd in self.opds.values():
            for contact in [*opd.contacts, *(opd.roster.team if opd.roster else [])]:
                if _configured(channel, contact) == external_id:
                    return ChatUser(opd, contact)
        linked = self._linked.get((channel, external_id))
        if linked is not None:
            owner = self.opds.get(linked[0])
            person = owner.people().get(linked[1]) if owner else None
            if owner is not None and person is not None:
                return ChatUser(owner, person)
        return None

    def chat_of(self, channel: str, opd_id: str, contact: Contact) -> str | None:
        """Where to send a contact's messages on a channel, or None (not on it)."""
        configured = _configured(channel, contact)
        if configured:
            return configured
        if contact.id is None:
            return None
        for (ch, ext), (opd, cid) in self._linked.items():
            if ch == channel and opd == opd_id and cid == contact.id:
                return ext
        return None

    # ---- linking by a one-time code --------------------------------------------------------
    async def new_code(self, opd_id: str, contact_id: str, by: str) -> tuple[str, datetime]:
        opd = self.opds.get(opd_id)
        if opd is None or contact_id not in opd.people():
            raise LookupError(f"no contact {contact_id!r} in OPD {opd_id!r}")
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        expires = datetime.now(UTC) + CODE_TTL
        await self.store.execute(
            "INSERT INTO chat_codes(code, opd_id, contact_id, expires_at, created_by) "
            "VALUES (?, ?, ?, ?, ?)",
            (code, opd_id, contact_id, expires.isoformat(), by),
        )
        return code, expires

    async def redeem(self, channel: str, external_id: str, code: str) -> ChatUser | None:
        """Link the chat user to the code's contact; None for a wrong or expired code."""
        code = code.strip().upper()
        now = datetime.now(UTC).isoformat()
        rows = await self.store.execute(
            "DELETE FROM chat_codes WHERE code = ? AND expires_at > ? RETURNING opd_id, contact_id",
            (code, now),
        )
        if not rows:
            log.warning("chat=%s user=%s sent a wrong or expired link code", channel, external_id)
            return None
        opd_id, contact_id = str(rows[0][0]), str(rows[0][1])
        await self.store.execute(
            "INSERT OR REPLACE INTO chat_links(channel, external_id, opd_id, contact_id, "
            "linked_at) VALUES (?, ?, ?, ?, ?)",
            (channel, external_id, opd_id, contact_id, now),
        )
        self._linked[(channel, external_id)] = (opd_id, contact_id)
        found = self.user(channel, external_id)
        log.info("chat=%s user=%s linked to opd=%s contact=%s", channel, external_id, opd_id,
                 contact_id)  # fmt: skip
        return found

    # ---- messages ------------------------------------------------------------------------
    async def remember(
        self, channel: str, chat_id: str, message_id: str, incident_id: str, opd_id: str
    ) -> None:
        await self.store.execute(
            "INSERT OR REPLACE INTO chat_messages(channel, chat_id, message_id, incident_id, "
            "opd_id, sent_at) VALUES (?, ?, ?, ?, ?, ?)",
            (channel, chat_id, message_id, incident_id, opd_id, datetime.now(UTC).isoformat()),
        )

    async def incident_of(self, channel: str, chat_id: str, message_id: str) -> str | None:
        rows = await self.store.execute(
            "SELECT incident_id FROM chat_messages WHERE channel = ? AND chat_id = ? "
            "AND message_id = ?",
            (channel, chat_id, message_id),
        )
        return str(rows[0][0]) if rows else None

    async def last_incident(self, channel: str, chat_id: str) -> str | None:
        """The incident the chat was last told about (a reply without quoting one)."""
        rows = await self.store.execute(
            "SELECT incident_id FROM chat_messages WHERE channel = ? AND chat_id = ? "
            "ORDER BY sent_at DESC LIMIT 1",
            (channel, chat_id),
        )
        return str(rows[0][0]) if rows else None


def phone_key(phone: str) -> str:
    """A phone number as digits with the country code: "+62 811-0000-003", "0811 0000 003"
    and "62811 0000003" are all "628110000003" (Indonesia's 0 prefix means +62)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return "62" + digits[1:] if digits.startswith("0") else digits


def _configured(channel: str, contact: Contact) -> str | None:
    if channel == "telegram" and contact.telegram is not None:
        return str(contact.telegram)
    if channel == "whatsapp" and contact.whatsapp:
        return contact.whatsapp
    if channel == "gateway" and contact.phone:
        return phone_key(contact.phone)
    return None
