"""The incident desk: the one place that decides what an incident is and what state it is in.

Camera detections (from analytics) and alerts (from intake) come in; the desk correlates them
into incidents, routes them to OPDs, applies operators' actions through the workflow state
machine, keeps the activity log, and for every change stores first (one SQLite transaction),
then publishes on the bus. It is the single writer of incidents, so its operations are
serialised by one lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from events.calendar import WorkCalendar
from events.config import Route
from events.correlate import (
    CorrelationConfig,
    find_match,
    max_severity,
    merged_severity,
    place_of,
)
from events.model import (
    ActionEvent,
    ActionKind,
    Alert,
    AlertEvent,
    AlertMsgType,
    AlertStatus,
    AnyEvent,
    EventType,
    Incident,
    IncidentAction,
    IncidentEvent,
    IncidentKind,
    IncidentState,
    Observation,
    Source,
    SourceKind,
    utcnow,
)
from events.routing import route
from events.store import Store

log = logging.getLogger(__name__)
SYSTEM = "system"

# (from state, action) -> to state. Acknowledge/start by a second OPD on an incident already
# acknowledged is allowed (it records that OPD's answer) and keeps the state.
_S, _A = IncidentState, ActionKind
TRANSITIONS: dict[tuple[IncidentState, ActionKind], IncidentState] = {
    (_S.NEW, _A.ACKNOWLEDGE): _S.ACKNOWLEDGED,
    (_S.ACKNOWLEDGED, _A.ACKNOWLEDGE): _S.ACKNOWLEDGED,
    (_S.IN_PROGRESS, _A.ACKNOWLEDGE): _S.IN_PROGRESS,
    (_S.NEW, _A.START): _S.IN_PROGRESS,
    (_S.ACKNOWLEDGED, _A.START): _S.IN_PROGRESS,
    (_S.IN_PROGRESS, _A.START): _S.IN_PROGRESS,
    (_S.RESOLVED, _A.REOPEN): _S.ACKNOWLEDGED,
    (_S.FALSE_ALARM, _A.REOPEN): _S.ACKNOWLEDGED,
    **{(s, _A.RESOLVE): _S.RESOLVED for s in (_S.NEW, _S.ACKNOWLEDGED, _S.IN_PROGRESS)},
    **{(s, _A.FALSE_ALARM): _S.FALSE_ALARM for s in (_S.NEW, _S.ACKNOWLEDGED, _S.IN_PROGRESS)},
    **{(s, _A.ASSIGN): s for s in (_S.NEW, _S.ACKNOWLEDGED, _S.IN_PROGRESS)},
    **{(s, _A.COMMENT): s for s in IncidentState},
}
OPERATOR_ACTIONS = frozenset(a for _, a in TRANSITIONS)


class TransitionError(ValueError):
    """The action is not allowed in the incident's current state."""


class UnknownIncident(LookupError):
    pass


@dataclass(frozen=True)
class AlertReceipt:
    alert: Alert
    incident_id: str | None
    duplicate: bool  # the sender sent this external id before: nothing new was stored


@dataclass
class _Change:
    events: list[AnyEvent] = field(default_factory=list)


class IncidentDesk:
    def __init__(
        self,
        store: Store,
        publish: Callable[[AnyEvent], object],
        routes: Sequence[Route],
        correlation: CorrelationConfig | None = None,
        camera_coords: dict[str, tuple[float, float]] | None = None,
        now: Callable[[], datetime] = utcnow,
        calendar: WorkCalendar | None = None,
    ) -> None:
        self.store = store
        self._publish = publish
        self.routes = list(routes)
        self.calendar = calendar  # office-hours routes; None: Monday-Friday 08-16 WIB
        self.correlation = correlation or CorrelationConfig()
        self.camera_coords = camera_coords or {}
        self.now = now
        self._lock = asyncio.Lock()
        # The current lease token of a camera (scaled out); None: no leases, nothing fenced.
        self.fence: Callable[[str], Awaitable[int | None]] | None = None
        self.stale_dropped = 0

    # ---- camera observations ------------------------------------------------------------
    async def observe(self, obs: Observation) -> Incident | None:
        """An observation opened, updated or closed. Returns the incident it is part of, or
        None when it was dropped: made under a camera lease older than the current one (a
        worker that was cut off and came back must not speak for a camera another box holds).
        """
        async with self._lock:
            if obs.lease_token is not None and obs.camera_id and self.fence is not None:
                current_token = await self.fence(obs.camera_id)
                if current_token is not None and obs.lease_token < current_token:
                    self.stale_dropped += 1
                    log.warning(
                        "camera=%s observation=%s from worker=%s token=%d < %d: stale, ignored",
                        obs.camera_id, obs.id, obs.worker, obs.lease_token, current_token,
                    )  # fmt: skip
                    return None
            det = _as_incident(obs, self.camera_coords.get(obs.camera_id or ""))
            change = _Change()
            current = await self.store.incident_for_source(obs.id)
            source = Source(
                kind=SourceKind.CAMERA, ref=obs.id, name=obs.camera_id or obs.worker,
                at=obs.started_at,
                summary=obs.title, active=obs.active,
            )  # fmt: skip
            if current is None:
                if not obs.active:
                    return None  # closes something never opened here (e.g. opened while fenced)
                match = await self._match(det.kind, det, det.started_at, exercise=False)
                if match is None:
                    inc = det.model_copy(update={"sources": (source,)})
                    return await self._save(inc, None, change, obs.id, EventType.INCIDENT_OPENED)
                current, reason = match
                change.events.append(
                    self._log(current.id, ActionKind.MERGED, f"{det.title} ({reason})")
                )
            only_camera = all(s.ref == obs.id for s in current.sources)
            inc = current.model_copy(
                update={
                    "sources": _with_source(current.sources, source),
                    "severity": (
                        max_severity(current.severity, det.severity)
                        if only_camera
                        else merged_severity(current, SourceKind.CAMERA, det.severity)
                    ),
                    "current_count": det.current_count,
                    "peak_count": max(det.peak_count or 0, current.peak_count or 0) or None,
                    "threshold": det.threshold or current.threshold,
                    "track_ids": det.track_ids or current.track_ids,
                    "level": det.level or current.level,
                    "cause": det.cause or current.cause,
                    "snapshot_ref": det.snapshot_ref or current.snapshot_ref,
                    "camera_id": current.camera_id or det.camera_id,
                    "zone_id": current.zone_id or det.zone_id,
                    "kecamatan": current.kecamatan or det.kecamatan,
                    "desa": current.desa or det.desa,
                    "lat": current.lat if current.lat is not None else det.lat,
                    "lon": current.lon if current.lon is not None else det.lon,
                }
            )
            return await self._save(inc, current, change, obs.id)

    # ---- alerts -------------------------------------------------------------------------
    async def receive_alert(self, alert: Alert) -> AlertReceipt:
        async with self._lock:
            if alert.external_id:
                known = await self.store.alert_by_external(alert.sender, alert.external_id)
                if known is not None:
                    linked = await self.store.incident_for_source(known.id)
                    return AlertReceipt(known, linked.id if linked else None, duplicate=True)
            change = _Change()
            change.events.append(AlertEvent(alert=alert))
            exercise = alert.status != AlertStatus.ACTUAL
            source = Source(
                kind=alert.source, ref=alert.id, name=alert.sender, at=alert.sent_at,
                summary=alert.title, active=alert.msg_type != AlertMsgType.CANCEL,
            )  # fmt: skip
            replaced = await self._replaced_alerts(alert)
            current = await self._incident_of(replaced)
            if current is not None:
                inc = self._apply_reference(
                    current, alert, {a.id for a in replaced}, source, change
                )
                return AlertReceipt(
                    alert, (await self._save(inc, current, change, alert.id)).id, False
                )
            if alert.msg_type == AlertMsgType.CANCEL:
                # Cancels something we never had: keep the alert, open nothing.
                await self.store.commit(change.events)
                await self._emit(change.events)
                return AlertReceipt(alert, None, duplicate=False)
            match = await self._match(alert.kind, alert, alert.sent_at, exercise)
            if match is None:
                inc = Incident(
                    kind=alert.kind, severity=alert.severity, title=alert.title,
                    camera_id=alert.camera_id, kecamatan=alert.kecamatan, desa=alert.desa,
                    lat=alert.lat, lon=alert.lon, started_at=alert.sent_at,
                    updated_at=self.now(), sources=(source,), exercise=exercise,
                )  # fmt: skip
                saved = await self._save(inc, None, change, alert.id, EventType.INCIDENT_OPENED)
                return AlertReceipt(alert, saved.id, duplicate=False)
            current, reason = match
            change.events.append(
                self._log(current.id, ActionKind.MERGED, f"{alert.title} ({reason})")
            )
            inc = current.model_copy(
                update={
                    "sources": _with_source(current.sources, source),
                    "severity": merged_severity(current, alert.source, alert.severity),
                }
            )
            saved = await self._save(inc, current, change, alert.id)
            return AlertReceipt(alert, saved.id, duplicate=False)

    async def _replaced_alerts(self, alert: Alert) -> list[Alert]:
        """The earlier alerts of this sender that an Update or Cancel names."""
        if alert.msg_type == AlertMsgType.ALERT:
            return []
        found = [await self.store.alert_by_external(alert.sender, ref) for ref in alert.references]
        return [a for a in found if a is not None]

    async def _incident_of(self, alerts: list[Alert]) -> Incident | None:
        for old in alerts:
            found = await self.store.incident_for_source(old.id)
            if found is not None:
                return found
        return None

    def _apply_reference(
        self, current: Incident, alert: Alert, replaced: set[str], source: Source, change: _Change
    ) -> Incident:
        sources = tuple(
            s.model_copy(update={"active": False}) if s.ref in replaced else s
            for s in current.sources
        )
        update: dict[str, object] = {"sources": _with_source(sources, source)}
        if alert.msg_type == AlertMsgType.UPDATE:
            update["severity"] = merged_severity(current, alert.source, alert.severity)
            update["title"] = alert.title if current.sources[0].ref in replaced else current.title
            change.events.append(
                self._log(current.id, ActionKind.COMMENT, f"Pembaruan: {alert.title}")
            )
        else:
            note = f"Dibatalkan oleh pengirim {alert.sender}"
            change.events.append(self._log(current.id, ActionKind.COMMENT, note))
            still = [s for s in update["sources"] if s.active]  # type: ignore[attr-defined]
            if not still and not current.state.closed:
                update["state"] = IncidentState.RESOLVED
                update["closed_at"] = self.now()
                change.events.append(self._log(current.id, ActionKind.RESOLVE, note))
        return current.model_copy(update=update)

    async def expire_alerts(self) -> int:
        """Alerts past their `expires` stop holding their incident. Returns how many expired."""
        now, expired = self.now(), 0
        async with self._lock:
            for inc in await self.store.incidents(active=True, limit=1000):
                sources, changed = [], False
                for s in inc.sources:
                    if s.active and s.kind != SourceKind.CAMERA:
                        alert = await self.store.alert(s.ref)
                        if alert is not None and alert.expires_at and alert.expires_at <= now:
                            s, changed = s.model_copy(update={"active": False}), True
                            expired += 1
                    sources.append(s)
                if changed:
                    await self._save(
                        inc.model_copy(update={"sources": tuple(sources)}), inc, _Change(), None
                    )
        return expired

    # ---- operators ------------------------------------------------------------------------
    async def act(
        self,
        incident_id: str,
        kind: ActionKind,
        actor: str,
        *,
        opd_id: str | None = None,
        note: str = "",
        owner: str | None = None,
    ) -> Incident:
        async with self._lock:
            current = await self.store.incident(incident_id)
            if current is None:
                raise UnknownIncident(incident_id)
            target = TRANSITIONS.get((current.state, kind))
            if target is None:
                raise TransitionError(f"cannot {kind} an incident that is {current.state}")
            if kind == ActionKind.ASSIGN and not owner:
                raise TransitionError("assign needs an owner")
            now = self.now()
            action = IncidentAction(
                incident_id=incident_id, kind=kind, actor=actor, at=now, opd_id=opd_id,
                note=note, owner=owner,
            )  # fmt: skip
            update: dict[str, object] = {"state": target}
            if kind == ActionKind.ASSIGN:
                update["owner"] = owner
            if target != IncidentState.NEW and current.acknowledged_at is None:
                update["acknowledged_at"] = now
            if target.closed and not current.state.closed:
                update["closed_at"] = now
            if kind == ActionKind.REOPEN:
                update["closed_at"] = None
            change = _Change(events=[ActionEvent(action=action)])
            return await self._save(current.model_copy(update=update), current, change, None)

    # ---- shared -------------------------------------------------------------------------
    async def _match(
        self, kind: IncidentKind, item: Incident | Alert, at: datetime, exercise: bool
    ) -> tuple[Incident, str] | None:
        window = timedelta(seconds=self.correlation.window_s)
        candidates = await self.store.incidents(kind=kind, open_or_since=at - window, limit=500)
        until = item.expires_at if isinstance(item, Alert) else None
        return find_match(
            item.kind, place_of(item), at, exercise, candidates, self.correlation, until
        )

    def _log(
        self, incident_id: str, kind: ActionKind, note: str, opd: str | None = None
    ) -> ActionEvent:
        return ActionEvent(
            action=IncidentAction(
                incident_id=incident_id,
                kind=kind,
                actor=SYSTEM,
                at=self.now(),
                opd_id=opd,
                note=note[:4000],
            )
        )

    async def _save(
        self,
        inc: Incident,
        before: Incident | None,
        change: _Change,
        source_ref: str | None,
        event_type: EventType | None = None,
    ) -> Incident:
        now = self.now()
        active = any(s.active for s in inc.sources) if inc.sources else inc.active
        update: dict[str, object] = {"active": active, "updated_at": max(now, inc.updated_at)}
        if before is not None and before.active and not active:
            update["ended_at"] = now
        elif active:
            update["ended_at"] = None
        if not inc.exercise:
            routed = route(inc.model_copy(update=update), self.routes, self.calendar)
            new_opds = [o for o in routed if o not in inc.routed_opds]
            if new_opds:
                update["routed_opds"] = (*inc.routed_opds, *new_opds)
                for opd in new_opds:
                    change.events.append(self._log(inc.id, ActionKind.ROUTED, f"ke {opd}", opd))
        inc = inc.model_copy(update=update)
        if event_type is None:
            event_type = (
                EventType.INCIDENT_CLOSED
                if before is not None and before.active and not inc.active
                else EventType.INCIDENT_UPDATED
            )
        # The incident row goes first: the routed/merged log lines refer to it.
        incident_event = IncidentEvent(type=event_type, at=now, incident=inc)  # type: ignore[arg-type]
        events: list[AnyEvent] = [incident_event, *change.events]
        links = ((source_ref, inc.id),) if source_ref else ()
        await self.store.commit(events, links)
        await self._emit(events)
        log.info(
            "incident=%s %s state=%s sources=%d", inc.id, event_type, inc.state, len(inc.sources)
        )
        return inc

    async def _emit(self, events: list[AnyEvent]) -> None:
        for event in events:
            result = self._publish(event)
            if asyncio.iscoroutine(result):
                await result


def _with_source(sources: tuple[Source, ...], new: Source) -> tuple[Source, ...]:
    """Replace the source with the same ref (a detection's update, keeping its first time) or
    add it."""
    kept = next((s for s in sources if s.ref == new.ref), None)
    if kept is None:
        return (*sources, new)
    new = new.model_copy(update={"at": kept.at})
    return tuple(new if s.ref == new.ref else s for s in sources)


def _as_incident(obs: Observation, coords: tuple[float, float] | None) -> Incident:
    """The incident an observation would open on its own."""
    return Incident(
        kind=obs.kind, severity=obs.severity, title=obs.title, camera_id=obs.camera_id,
        zone_id=obs.zone_id, kecamatan=obs.kecamatan, desa=obs.desa,
        started_at=obs.started_at, updated_at=obs.at, active=obs.active,
        ended_at=None if obs.active else obs.at, current_count=obs.current_count,
        peak_count=obs.peak_count, threshold=obs.threshold, track_ids=obs.track_ids,
        cause=obs.cause, level=obs.level, snapshot_ref=obs.snapshot_ref,
        lat=coords[0] if coords else None, lon=coords[1] if coords else None,
    )  # fmt: skip
