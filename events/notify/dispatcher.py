"""Who hears about an incident, and when: grouping, silences, inhibition, escalation, retries.

- Grouping (Alertmanager's group_wait / group_interval): incidents routed to one OPD that share
  the `group_by` labels go out as ONE notice, so a storm gives one message per OPD.
- Muting: an incident that matches a silence, comes from a camera that is offline or tampered
  with, or duplicates an incident operators already closed, is routed and shown but not sent.
- Escalation (Genetec's sequential recipients): an OPD that has not acknowledged within its
  route's deadline is sent again to its next contact, then the next; the last contact is
  reminded every `repeat_interval_s` until the OPD acknowledges or the incident is closed.
- Delivery: each channel attempt that fails is retried with exponential backoff; after
  `max_tries` the delivery is dead, stored and shown on the wall.

The dispatcher is driven by the bus (incident and action events) and by `tick()`, which a loop
calls every second and tests call with a controlled clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx

from events.bus import Bus, Subscription
from events.config import Contact, NotifyConfig, Opd, Route, Silence
from events.correlate import CorrelationConfig, place_of, same_place
from events.model import (
    ActionEvent,
    ActionKind,
    AnyEvent,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Incident,
    IncidentAction,
    IncidentEvent,
    IncidentKind,
    new_id,
    utcnow,
)
from events.notify.channels import ChatChannel, DeliveryFailed, EmailChannel, WebhookChannel
from events.notify.message import Notice
from events.routing import ack_deadlines
from events.store import Store, StoreFull

log = logging.getLogger(__name__)
KNOWN_MAX = 100_000
CAMERA_HEALTH = (IncidentKind.OFFLINE, IncidentKind.TAMPER)
STOPS_ESCALATION = (
    ActionKind.ACKNOWLEDGE, ActionKind.START, ActionKind.RESOLVE, ActionKind.FALSE_ALARM,
)  # fmt: skip


@dataclass
class _Group:
    opd_id: str
    pending: list[str] = field(default_factory=list)  # incident ids
    first_at: datetime | None = None
    last_sent_at: datetime | None = None


@dataclass
class _Watch:
    incident_id: str
    opd_id: str
    step: int
    next_at: datetime
    deadline_s: float


class Dispatcher:
    def __init__(
        self,
        store: Store,
        publish: Callable[[AnyEvent], Awaitable[None]],
        opds: Sequence[Opd],
        routes: Sequence[Route],
        config: NotifyConfig,
        correlation: CorrelationConfig | None = None,
        timezone: str = "Asia/Makassar",
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self._publish = publish
        self.opds = {o.id: o for o in opds}
        self.routes = list(routes)
        self.config = config
        self.correlation = correlation or CorrelationConfig()
        self.timezone = timezone
        self.now = now
        self._sleep = sleep
        self._client = httpx.AsyncClient(timeout=10, follow_redirects=False)
        self.webhook = WebhookChannel(self._client)
        self.chat = ChatChannel(self._client, config.chat) if config.chat else None
        self.email = EmailChannel(config.smtp) if config.smtp else None
        self._incidents: dict[str, Incident] = {}
        # (incident, OPD) already taken in: insertion-ordered so the oldest can go (KNOWN_MAX)
        self._known: dict[tuple[str, str], None] = {}
        self._groups: dict[tuple[object, ...], _Group] = {}
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._answered: set[tuple[str, str | None]] = set()  # (incident, OPD or None = all)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._full_logged = -1e9  # monotonic: a full disk is logged once a minute
        self._loops: list[asyncio.Task[None]] = []
        self.silences: list[Silence] = list(config.silences)

    def reconfigure(
        self, opds: list[Opd], routes: list[Route], correlation: CorrelationConfig, timezone: str
    ) -> None:
        """A live reload: new contacts and routes apply from the next notice and escalation
        step; watches of an OPD that is gone end at their next step."""
        self.opds = {o.id: o for o in opds}
        self.routes = list(routes)
        self.correlation = correlation
        self.timezone = timezone

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self, bus: Bus) -> None:
        await self.recover()
        sub = await bus.subscribe("notifier")
        self._loops = [
            asyncio.create_task(self._consume(sub), name="notifier"),
            asyncio.create_task(self._ticker(), name="notifier-tick"),
        ]

    async def stop(self) -> None:
        for task in [*self._loops, *self._deliveries]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._deliveries, return_exceptions=True)
        await self._client.aclose()

    async def _consume(self, sub: Subscription) -> None:
        try:
            async for event in sub:
                try:
                    await self.handle(event)
                except Exception:
                    log.exception("notifier failed on event=%s", event.id)
        finally:
            await sub.close()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(1)
            try:
                await self.tick()
            except StoreFull as exc:  # the disk watch says it loudly; retried every second
                if time.monotonic() - self._full_logged > 60:
                    self._full_logged = time.monotonic()
                    log.error("notifier waits for disk space: %s", exc)
            except Exception:
                log.exception("notifier tick failed")

    async def drain(self) -> None:
        """Wait until every delivery in flight has finished (sent or dead)."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    async def recover(self) -> None:
        """After a restart: unanswered incidents are watched again, unsent ones queued."""
        for incident_id, opd_id in await self.store.unanswered():
            inc = await self.store.incident(incident_id)
            if inc is None or opd_id not in self.opds:
                continue
            self._incidents[inc.id] = inc
            self._remember(inc.id, opd_id)
            sent = [
                a for a in await self.store.actions(inc.id)
                if a.opd_id == opd_id and a.kind in (ActionKind.NOTIFIED, ActionKind.ESCALATED)
            ]  # fmt: skip
            if not sent:
                self._queue(inc, opd_id)
                continue
            deadline = self._deadline(inc, opd_id)
            step = sum(a.kind == ActionKind.ESCALATED for a in sent)
            self._watches[(inc.id, opd_id)] = _Watch(
                inc.id, opd_id, step, sent[-1].at + self._delay(opd_id, step, deadline), deadline
            )

    # ---- events in ----------------------------------------------------------------------
    async def handle(self, event: AnyEvent) -> None:
        if isinstance(event, IncidentEvent):
            await self._on_incident(event.incident)
        elif isinstance(event, ActionEvent) and event.action.kind in STOPS_ESCALATION:
            action = event.action
            if action.incident_id in self._incidents:  # only open incidents can still be told
                self._answered.add((action.incident_id, action.opd_id))
            for key in list(self._watches):
                if key[0] == action.incident_id and action.opd_id in (None, key[1]):
                    del self._watches[key]

    async def _on_incident(self, inc: Incident) -> None:
        if inc.state.closed:
            # A closed incident needs nothing more from here; keeping it would grow the process
            # by every incident the site ever had (seen in the soak run).
            self._incidents.pop(inc.id, None)
            self._answered.difference_update({(inc.id, None), *((inc.id, o) for o in self.opds)})
            for key in [k for k in self._watches if k[0] == inc.id]:
                del self._watches[key]
            return
        self._incidents[inc.id] = inc
        for opd_id in inc.routed_opds:
            if (inc.id, opd_id) in self._known or opd_id not in self.opds:
                continue
            self._remember(inc.id, opd_id)
            reason = await self._muted(inc, opd_id)
            if reason:
                await self._record_action(inc.id, ActionKind.MUTED, opd_id, reason)
                log.info("incident=%s opd=%s not notified: %s", inc.id, opd_id, reason)
                continue
            self._queue(inc, opd_id)

    def _remember(self, incident_id: str, opd_id: str) -> None:
        self._known[(incident_id, opd_id)] = None
        if len(self._known) > KNOWN_MAX:  # a reopened incident older than that is told again
            del self._known[next(iter(self._known))]

    def _queue(self, inc: Incident, opd_id: str) -> None:
        labels = tuple(str(getattr(inc, name) or "") for name in self.config.group_by)
        group = self._groups.setdefault((opd_id, *labels), _Group(opd_id))
        if not group.pending:
            group.first_at = self.now()
        group.pending.append(inc.id)

    async def _muted(self, inc: Incident, opd_id: str) -> str | None:
        now = self.now()
        stored = [Silence.model_validate_json(b) for b in await self.store.silence_bodies(now)]
        for s in [*self.silences, *stored]:
            if (
                s.starts_at <= now < s.ends_at
                and (not s.kinds or inc.kind in s.kinds)
                and (not s.kecamatan or inc.kecamatan in s.kecamatan)
                and (not s.cameras or inc.camera_id in s.cameras)
                and (not s.opds or opd_id in s.opds)
            ):
                return f"senyap {s.id} oleh {s.author}: {s.comment}".rstrip(": ")
        if inc.camera_id and inc.kind not in CAMERA_HEALTH:
            for other in self._incidents.values():
                if (
                    other.camera_id == inc.camera_id
                    and other.kind in CAMERA_HEALTH
                    and other.active
                    and not other.state.closed
                ):
                    return f"kamera {inc.camera_id} sedang {other.kind} ({other.id})"
        window = timedelta(seconds=self.correlation.window_s)
        for old in await self.store.incidents(kind=inc.kind, open_or_since=now - window):
            if (
                old.id != inc.id
                and old.state.closed
                and old.closed_at is not None
                and now - old.closed_at <= window
                and same_place(place_of(old), place_of(inc), self.correlation.distance_m)
            ):
                return f"duplikat dari {old.id} yang sudah ditutup"
        return None

    # ---- time ---------------------------------------------------------------------------
    async def tick(self) -> None:
        now = self.now()
        cfg = self.config
        for key, group in list(self._groups.items()):
            if not group.pending:
                if group.last_sent_at and now - group.last_sent_at > timedelta(
                    seconds=cfg.group_interval_s
                ):
                    del self._groups[key]
                continue
            assert group.first_at is not None
            due = (
                group.first_at + timedelta(seconds=cfg.group_wait_s)
                if group.last_sent_at is None
                else max(
                    group.first_at, group.last_sent_at + timedelta(seconds=cfg.group_interval_s)
                )
            )
            if now >= due:
                await self._flush(group, now)
        for watch in list(self._watches.values()):
            if now >= watch.next_at:
                await self._escalate(watch, now)

    async def _flush(self, group: _Group, now: datetime) -> None:
        incidents = [
            self._incidents[i] for i in group.pending
            if i in self._incidents and not self._incidents[i].state.closed
        ]  # fmt: skip
        group.pending, group.last_sent_at = [], now
        if not incidents:
            return
        opd = self.opds[group.opd_id]
        notice = self._notice(opd, incidents, 0)
        channels = self._send(notice, opd, opd.contacts[0], with_webhook=True)
        for inc in incidents:
            await self._record_action(inc.id, ActionKind.NOTIFIED, opd.id, channels)
            if {(inc.id, opd.id), (inc.id, None)} & self._answered:
                continue  # answered before the notice left: told, but nothing to escalate
            deadline = self._deadline(inc, opd.id)
            self._watches[(inc.id, opd.id)] = _Watch(
                inc.id, opd.id, 0, now + timedelta(seconds=deadline), deadline
            )

    async def _escalate(self, watch: _Watch, now: datetime) -> None:
        inc = self._incidents.get(watch.incident_id)
        opd = self.opds.get(watch.opd_id)
        if inc is None or opd is None or inc.state.closed:
            self._watches.pop((watch.incident_id, watch.opd_id), None)
            return
        watch.step += 1
        contact = opd.contacts[min(watch.step, len(opd.contacts) - 1)]
        watch.next_at = now + self._delay(opd.id, watch.step, watch.deadline_s)
        channels = self._send(self._notice(opd, [inc], watch.step), opd, contact, with_webhook=True)
        note = f"eskalasi ke-{watch.step}: {contact.name} ({channels})"
        await self._record_action(inc.id, ActionKind.ESCALATED, opd.id, note)
        log.warning("incident=%s opd=%s not acknowledged: %s", inc.id, opd.id, note)

    def _deadline(self, inc: Incident, opd_id: str) -> float:
        """Seconds the OPD has to acknowledge, from the route that sent the incident to it."""
        return ack_deadlines(inc, self.routes).get(opd_id, 300.0)

    def _delay(self, opd_id: str, step: int, deadline_s: float) -> timedelta:
        last = len(self.opds[opd_id].contacts) - 1
        return timedelta(seconds=deadline_s if step < last else self.config.repeat_interval_s)

    # ---- sending ------------------------------------------------------------------------
    def _notice(self, opd: Opd, incidents: list[Incident], step: int) -> Notice:
        return Notice(opd.id, opd.name, tuple(incidents), step, self.config.base_url, self.timezone)

    def _send(self, notice: Notice, opd: Opd, contact: Contact, with_webhook: bool) -> str:
        """Start deliveries (they run on their own); returns the channels, for the log."""
        used = []
        notice_id = new_id("ntc")
        if with_webhook and opd.webhook is not None:
            hook = opd.webhook
            target = "{0.scheme}://{0.netloc}{0.path}".format(urlsplit(hook.url))
            self._spawn(
                notice, "webhook", target, lambda: self.webhook.send(notice, hook, notice_id)
            )
            used.append("webhook")
        if self.email is not None and contact.email:
            email, to = self.email, contact.email
            self._spawn(notice, "email", to, lambda: email.send(notice, to, notice_id))
            used.append(f"email {to}")
        if self.chat is not None and contact.phone:
            chat, phone = self.chat, contact.phone
            self._spawn(notice, "chat", phone, lambda: chat.send(notice, phone, notice_id))
            used.append(f"chat {phone}")
        return ", ".join(used) or "tidak ada kanal (atur webhook/smtp/chat)"

    def _spawn(
        self, notice: Notice, channel: str, target: str, attempt: Callable[[], Awaitable[None]]
    ) -> None:
        task = asyncio.create_task(self._deliver(notice, channel, target, attempt))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(
        self, notice: Notice, channel: str, target: str, attempt: Callable[[], Awaitable[None]]
    ) -> None:
        ids = {inc.id: new_id("dlv") for inc in notice.incidents}
        for n in range(1, self.config.max_tries + 1):
            try:
                await attempt()
            except DeliveryFailed as exc:
                status = (
                    DeliveryStatus.DEAD if n == self.config.max_tries else DeliveryStatus.RETRYING
                )
                await self._record_delivery(notice, ids, channel, target, status, n, str(exc))
                if status == DeliveryStatus.DEAD:
                    log.error("opd=%s %s to %s dead after %d tries: %s",
                              notice.opd_id, channel, target, n, exc)  # fmt: skip
                    return
                await self._sleep(self.config.retry_base_s * 2 ** (n - 1))
            else:
                await self._record_delivery(
                    notice, ids, channel, target, DeliveryStatus.SENT, n, None
                )
                return

    async def _record_delivery(
        self,
        notice: Notice,
        ids: dict[str, str],
        channel: str,
        target: str,
        status: DeliveryStatus,
        attempts: int,
        error: str | None,
    ) -> None:
        events: list[AnyEvent] = [
            DeliveryEvent(
                delivery=Delivery(
                    id=ids[inc.id],
                    incident_id=inc.id,
                    opd_id=notice.opd_id,
                    channel=channel,
                    target=target,
                    status=status,
                    attempts=attempts,
                    at=self.now(),
                    step=notice.step,
                    error=error,
                )
            )
            for inc in notice.incidents
        ]
        await self.store.commit(events)
        for event in events:
            await self._publish(event)

    async def _record_action(
        self, incident_id: str, kind: ActionKind, opd_id: str, note: str
    ) -> None:
        event = ActionEvent(
            action=IncidentAction(
                incident_id=incident_id,
                kind=kind,
                actor="system",
                at=self.now(),
                opd_id=opd_id,
                note=note,
            )
        )
        await self.store.commit([event])
        await self._publish(event)
