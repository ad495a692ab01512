"""Incidents about the camera itself: tampering (picture) and video loss (no frames).

While either is open the camera's own analytics incidents are inhibited: a covered or dead
camera must not also report "no crowd" or a bogus count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from analytics.config import TamperRule
from analytics.incidents import Hysteresis, Transition
from analytics.rules.tamper import TamperState
from events.model import CameraState, CameraStatus, EventType, Incident, IncidentEvent, IncidentKind
from ingest.frame import Frame

log = logging.getLogger(__name__)

Publish = Callable[[IncidentEvent], Awaitable[None]]

CAUSE_ID = {
    "black": "gambar hitam", "covered": "lensa tertutup", "defocus": "gambar kabur",
    "moved": "arah kamera berubah", "frozen": "gambar membeku",
}  # fmt: skip


class CameraHealthIncidents:
    def __init__(
        self,
        camera_id: str,
        camera_name: str,
        kecamatan: str | None,
        desa: str | None,
        rule: TamperRule,
        publish: Publish,
    ) -> None:
        self.camera_id, self.camera_name = camera_id, camera_name
        self.kecamatan, self.desa = kecamatan, desa
        self.rule = rule
        self.tamper = TamperState(rule)
        self.offline = Hysteresis(rule.offline_s, 0.0, 0.0)
        self._publish = publish
        self._open: dict[IncidentKind, Incident] = {}

    @property
    def inhibited(self) -> bool:
        return bool(self._open)

    async def on_frame(self, frame: Frame) -> None:
        result = await asyncio.to_thread(self.tamper.update, frame.image, frame.captured_mono)
        if result is not None:
            transition, cause = result
            await self._transition(IncidentKind.TAMPER, transition, frame.captured_at, cause)

    async def on_health(self, status: CameraStatus, now_mono: float) -> None:
        down = status.state in (CameraState.RECONNECTING, CameraState.OFFLINE)
        transition = self.offline.update(down, now_mono)
        if transition is not None:
            await self._transition(IncidentKind.OFFLINE, transition, status.at, status.error)

    async def _transition(
        self, kind: IncidentKind, transition: Transition, at: datetime, cause: str | None
    ) -> None:
        current = self._open.get(kind)
        if transition is Transition.OPENED:
            if kind is IncidentKind.TAMPER:
                title = f"Kamera {self.camera_name}: {CAUSE_ID.get(cause or '', 'sabotase')}"
            else:
                title = f"Kamera {self.camera_name} tidak mengirim gambar"
            incident = Incident(
                kind=kind, severity=self.rule.severity, title=title, camera_id=self.camera_id,
                kecamatan=self.kecamatan, desa=self.desa, started_at=at, updated_at=at,
                cause=cause,
            )  # fmt: skip
            self._open[kind] = incident
            log.warning(
                "camera=%s incident=%s %s opened cause=%s", self.camera_id, incident.id, kind, cause
            )
            await self._publish(IncidentEvent(type=EventType.INCIDENT_OPENED, incident=incident))
        elif transition is Transition.CLOSED and current is not None:
            incident = current.model_copy(
                update={"active": False, "ended_at": at, "updated_at": at}
            )
            del self._open[kind]
            log.info("camera=%s incident=%s %s closed", self.camera_id, incident.id, kind)
            await self._publish(IncidentEvent(type=EventType.INCIDENT_CLOSED, incident=incident))
        elif transition is Transition.HOLDING and current is not None and cause != current.cause:
            incident = current.model_copy(update={"cause": cause, "updated_at": at})
            self._open[kind] = incident
            await self._publish(IncidentEvent(type=EventType.INCIDENT_UPDATED, incident=incident))
