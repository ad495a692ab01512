"""What an officer's answer from a chat app does, whatever the app: a button acts on the
incident as that contact (acknowledge, in progress, resolve, false alarm), a reply becomes a
comment, a photo is attached. Each lands in the activity log with who and when, and goes over
the bus like an answer from the wall (so escalation stops and the scoreboard counts it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from events.attachments import Attachments
from events.desk import IncidentDesk, TransitionError, UnknownIncident
from events.model import ActionKind, Incident, IncidentState
from events.notify.chat_links import ChatUser

log = logging.getLogger(__name__)

BUTTONS: dict[str, str] = {
    "acknowledge": "Terima",
    "start": "Tangani",
    "resolve": "Selesai",
    "false_alarm": "Bukan kejadian",
}
DONE = {
    "acknowledge": "Diterima",
    "start": "Ditangani",
    "resolve": "Selesai",
    "false_alarm": "Ditutup: bukan kejadian",
}
NEXT: dict[IncidentState, tuple[str, ...]] = {
    IncidentState.NEW: ("acknowledge", "start", "resolve", "false_alarm"),
    IncidentState.ACKNOWLEDGED: ("start", "resolve", "false_alarm"),
    IncidentState.IN_PROGRESS: ("resolve", "false_alarm"),
    IncidentState.RESOLVED: (),
    IncidentState.FALSE_ALARM: (),
}
REFUSED = (
    "Maaf, akun ini belum terdaftar di Pantau. Minta kode tautan ke Command Center, lalu "
    "kirim: /start KODE"
)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str  # what the officer is told back
    incident: Incident | None = None


def buttons_for(incident: Incident, user_can: list[str] | None) -> list[str]:
    """The actions to offer now: what the incident's state allows and the contact may do."""
    allowed = NEXT.get(incident.state, ())
    return [a for a in allowed if user_can is None or a in user_can]


class ChatAnswers:
    def __init__(self, desk: IncidentDesk, attachments: Attachments | None) -> None:
        self.desk = desk
        self.attachments = attachments

    def actor(self, user: ChatUser, app: str) -> str:
        return f"{user.contact.name} via {app}"

    async def _routed(self, user: ChatUser, incident_id: str) -> Incident | None:
        found = await self.desk.store.incident(incident_id)
        if found is None or user.opd.id not in found.routed_opds:
            return None  # another OPD's incident: not theirs to answer
        return found

    async def press(self, user: ChatUser, incident_id: str, action: str, app: str) -> Outcome:
        if action not in BUTTONS:
            return Outcome(False, "Tombol tidak dikenal.")
        if action not in user.contact.can:
            return Outcome(False, f"Peran Anda tidak boleh: {BUTTONS[action]}.")
        incident = await self._routed(user, incident_id)
        if incident is None:
            return Outcome(False, "Kejadian ini tidak diteruskan ke OPD Anda.")
        try:
            done = await self.desk.act(
                incident_id, ActionKind(action), self.actor(user, app), opd_id=user.opd.id,
                note=f"dari {app}",
            )  # fmt: skip
        except (TransitionError, UnknownIncident) as exc:
            return Outcome(False, f"Tidak bisa: {exc}", incident)
        log.info("incident=%s opd=%s %s by %s via %s", incident_id, user.opd.id, action,
                 user.contact.name, app)  # fmt: skip
        return Outcome(True, f"Tercatat: {DONE[action]} oleh {user.contact.name}.", done)

    async def comment(self, user: ChatUser, incident_id: str, text: str, app: str) -> Outcome:
        incident = await self._routed(user, incident_id)
        if incident is None:
            return Outcome(False, "Kejadian ini tidak diteruskan ke OPD Anda.")
        text = text.strip()[:4000]
        if not text:
            return Outcome(False, "Catatan kosong.")
        done = await self.desk.act(incident_id, ActionKind.COMMENT, self.actor(user, app),
                                   opd_id=user.opd.id, note=text)  # fmt: skip
        return Outcome(True, "Catatan tersimpan di kejadian.", done)

    async def photo(
        self, user: ChatUser, incident_id: str, data: bytes, content_type: str, caption: str,
        app: str,
    ) -> Outcome:  # fmt: skip
        incident = await self._routed(user, incident_id)
        if incident is None:
            return Outcome(False, "Kejadian ini tidak diteruskan ke OPD Anda.")
        if self.attachments is None:
            return Outcome(False, "Foto tidak dapat disimpan di server ini.")
        att = await self.attachments.add(incident_id, data, content_type, self.actor(user, app))
        note = f"foto {att.id}" + (f": {caption.strip()[:3000]}" if caption.strip() else "")
        done = await self.desk.act(incident_id, ActionKind.COMMENT, self.actor(user, app),
                                   opd_id=user.opd.id, note=note)  # fmt: skip
        return Outcome(True, "Foto tersimpan di kejadian.", done)
