"""Replies through a local HTTP chat gateway (the providers a pemda already pays for): the
gateway posts what an officer wrote back; a command word acts on the incident, anything else
is a comment. The sender is matched to a contact by phone number; anyone else is refused.

    TERIMA [catatan]     acknowledge      TANGANI    in progress
    SELESAI [catatan]    resolve          BUKAN      false alarm (where the contact may)
"""

from __future__ import annotations

import logging

from events.notify.chat_answers import REFUSED, ChatAnswers, Outcome
from events.notify.chat_links import ChatLinks, phone_key

log = logging.getLogger(__name__)
APP = "gateway"
WORDS = {"TERIMA": "acknowledge", "TANGANI": "start", "SELESAI": "resolve",
         "BUKAN": "false_alarm"}  # fmt: skip


class GatewayReplies:
    def __init__(self, links: ChatLinks, answers: ChatAnswers) -> None:
        self.links = links
        self.answers = answers
        self.refused = 0

    async def take(self, sender: str, text: str, incident_id: str | None) -> Outcome:
        key = phone_key(sender)
        user = self.links.user("gateway", key)
        if user is None:
            self.refused += 1
            log.warning("chat gateway number=%s refused: not a contact of any OPD", key)
            return Outcome(False, REFUSED)
        target = incident_id or await self.links.last_incident("gateway", key)
        if target is None:
            return Outcome(False, "Tidak ada kejadian yang dikirim ke nomor ini.")
        word, _, rest = text.strip().partition(" ")
        action = WORDS.get(word.upper().strip(".,!"))
        if action is None:
            return await self.answers.comment(user, target, text, "SMS/WA gateway")
        outcome = await self.answers.press(user, target, action, "SMS/WA gateway")
        if outcome.ok and rest.strip():
            await self.answers.comment(user, target, rest, "SMS/WA gateway")
        return outcome
