"""Observations about the camera itself: tampering (picture) and video loss (no frames).

Video loss is watched on every camera, whether or not it has a tamper rule: a dead camera with
no rules must still reach the wall. The picture checks (black, covered, defocus, moved, frozen)
run only where a tamper rule asks for them. While either is open the camera's own zone rules are
inhibited: a covered or dead camera must not also report "no crowd" or a bogus count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from analytics.config import TamperRule
from analytics.incidents import Hysteresis, Transition
from analytics.rules.tamper import TamperState
from events.model import (
    CameraState,
    CameraStatus,
    IncidentKind,
    Observation,
    ObservationPhase,
)
from ingest.frame import Frame

log = logging.getLogger(__name__)

Publish = Callable[[Observation], Awaitable[None]]

CAUSE_ID = {
    "black": "gambar hitam", "covered": "lensa tertutup", "defocus": "gambar kabur",
    "moved": "arah kamera berubah", "frozen": "gambar membeku",
}  # fmt: skip
# Video loss on a camera without a tamper rule: the rule's defaults (15 s without frames).
DEFAULT_RULE = TamperRule(type="tamper")
RULE_KEY = {IncidentKind.TAMPER: "tamper", IncidentKind.OFFLINE: "offline"}


class CameraHealthIncidents:
    def __init__(
        self,
        camera_id: str,
        camera_name: str,
        kecamatan: str | None,
        desa: str | None,
        rule: TamperRule | None,
        publish: Publish,
    ) -> None:
        self.camera_id, self.camera_name = camera_id, camera_name
        self.kecamatan, self.desa = kecamatan, desa
        self.rule = rule or DEFAULT_RULE
        self.tamper = TamperState(rule) if rule is not None else None
        self.offline = Hysteresis(self.rule.offline_s, 0.0, 0.0)
        self._publish = publish
        self._open: dict[IncidentKind, Observation] = {}

    def open_observations(self) -> list[Observation]:
        return list(self._open.values())

    @property
    def inhibited(self) -> bool:
        return bool(self._open)

    def resume(self, obs: Observation, now_mono: float) -> bool:
        """Continue another box's open tamper observation under its id (see
        CameraAnalytics.resume). Video loss is not taken over: the new owner's own frames
        decide, and the server's camera watch covers the gap."""
        if obs.rule != "tamper" or self.tamper is None or IncidentKind.TAMPER in self._open:
            return False
        self.tamper.gate.resume(now_mono)
        self.tamper.cause = obs.cause
        self._open[IncidentKind.TAMPER] = obs
        return True

    async def on_frame(self, frame: Frame) -> None:
        if self.tamper is None:
            return
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
            obs = Observation(
                phase=ObservationPhase.OPENED, camera_id=self.camera_id, rule=RULE_KEY[kind],
                kind=kind, severity=self.rule.severity, title=title, kecamatan=self.kecamatan,
                desa=self.desa, started_at=at, at=at, cause=cause,
            )  # fmt: skip
            self._open[kind] = obs
            log.warning("camera=%s observation=%s %s opened cause=%s",
                        self.camera_id, obs.id, kind, cause)  # fmt: skip
            await self._publish(obs)
        elif transition is Transition.CLOSED and current is not None:
            obs = current.model_copy(update={"phase": ObservationPhase.CLOSED, "at": at})
            del self._open[kind]
            log.info("camera=%s observation=%s %s closed", self.camera_id, obs.id, kind)
            await self._publish(obs)
        elif transition is Transition.HOLDING and current is not None and cause != current.cause:
            obs = current.model_copy(
                update={"phase": ObservationPhase.UPDATED, "cause": cause, "at": at}
            )
            self._open[kind] = obs
            await self._publish(obs)
