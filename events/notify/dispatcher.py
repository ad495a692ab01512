"""Who hears about an incident, and when: grouping, silences, inhibition, escalation, retries.

- Grouping (Alertmanager's group_wait / group_interval): incidents routed to one OPD that share
  the `group_by` labels go out as ONE notice, so a storm gives one message per OPD.
- Muting: an incident that matches a silence, comes from a camera that is offline or tampered
  with, or duplicates an incident operators already closed, is routed and shown but not sent.
- Escalation (Genetec's sequential recipients): an OPD that has not acknowledged within its
  route's deadline is sent again to its next contact, then the next; the last contact is
  reminded every `repeat_interval_s` until the OPD acknowledges or the incident is closed.
- Duty: with a roster, the first notice goes to whoever is on duty (piket) now, and the
  escalation continues with the OPD's contacts; the chain is fixed when the OPD is first told.
- SLA clocks (per route): time to acknowledge and to resolve, in clock or working time. A
  clock that runs out is logged as a breach on the incident (and counted on the scoreboard),
  and escalates: an unacknowledged incident goes to the next contact at once, an unresolved
  one to the contact after whoever has it.
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
from functools import partial
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from events.bus import Bus, Subscription
from events.calendar import WorkCalendar
from events.config import Contact, NotifyConfig, Opd, Route, Silence, duration
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
from events.notify.chat_links import ChatLinks, phone_key
from events.notify.message import Notice
from events.roster import on_duty
from events.routing import default_calendar, matching
from events.store import Store, StoreFull

log = logging.getLogger(__name__)


class ChatApp(Protocol):
    """A two-way chat channel (Telegram, WhatsApp): where a contact is on it, and one attempt
    to tell them (raises DeliveryFailed)."""

    name: str

    def chat_of(self, opd_id: str, contact: Contact) -> str | None: ...

    async def send(
        self, notice: Notice, chat_id: str, contact: Contact, delivery_id: str
    ) -> None: ...


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


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
    levels: list[list[Contact]] = field(default_factory=list)  # who hears at each step


@dataclass
class _Clock:
    """An OPD's SLA on one incident: what is due when, and what is already met or breached."""

    incident_id: str
    opd_id: str
    ack_due: datetime | None
    resolve_due: datetime | None
    acked: bool = False
    resolved: bool = False
    ack_breached: bool = False
    resolve_breached: bool = False

    def due(self, now: datetime) -> list[ActionKind]:
        out = []
        if self.ack_due and not (self.acked or self.resolved or self.ack_breached):
            if now >= self.ack_due:
                out.append(ActionKind.SLA_ACK_BREACHED)
        if self.resolve_due and not (self.resolved or self.resolve_breached):
            if now >= self.resolve_due:
                out.append(ActionKind.SLA_RESOLVE_BREACHED)
        return out

    @property
    def running(self) -> bool:
        return bool(
            (self.ack_due and not (self.acked or self.resolved or self.ack_breached))
            or (self.resolve_due and not (self.resolved or self.resolve_breached))
        )


def _span_text(value: str | float) -> str:
    days, seconds = duration(value)
    parts = [f"{days} hari"] if days else []
    hours, rest = divmod(int(seconds), 3600)
    parts += [f"{hours} jam"] if hours else []
    parts += [f"{rest // 60} menit"] if rest // 60 else []
    return " ".join(parts) or f"{seconds:.0f} detik"


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
        calendar: WorkCalendar | None = None,
    ) -> None:
        self.store = store
        self._publish = publish
        self.opds = {o.id: o for o in opds}
        self.routes = list(routes)
        self.config = config
        self.correlation = correlation or CorrelationConfig()
        self.timezone = timezone
        self.calendar = calendar or default_calendar()
        self.now = now
        self._sleep = sleep
        self._client = httpx.AsyncClient(timeout=10, follow_redirects=False)
        self.webhook = WebhookChannel(self._client)
        self.chat = ChatChannel(self._client, config.chat) if config.chat else None
        self.email = EmailChannel(config.smtp) if config.smtp else None
        # Two-way chat apps (set by the runtime, which owns their polling and webhooks).
        self.apps: list[ChatApp] = []
        self.links: ChatLinks | None = None  # remembers gateway sends, so replies find them
        self._incidents: dict[str, Incident] = {}
        # (incident, OPD) already taken in: insertion-ordered so the oldest can go (KNOWN_MAX)
        self._known: dict[tuple[str, str], None] = {}
        self._groups: dict[tuple[object, ...], _Group] = {}
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._clocks: dict[tuple[str, str], _Clock] = {}
        self._answered: set[tuple[str, str | None]] = set()  # (incident, OPD or None = all)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._full_logged = -1e9  # monotonic: a full disk is logged once a minute
        self._loops: list[asyncio.Task[None]] = []
        self.silences: list[Silence] = list(config.silences)

    def reconfigure(
        self,
        opds: list[Opd],
        routes: list[Route],
        correlation: CorrelationConfig,
        timezone: str,
        calendar: WorkCalendar | None = None,
    ) -> None:
        """A live reload: new contacts, rosters and routes apply from the next notice and
        escalation step; watches of an OPD that is gone end at their next step. SLA clocks
        already running keep the due times they were given."""
        self.opds = {o.id: o for o in opds}
        self.routes = list(routes)
        self.correlation = correlation
        self.timezone = timezone
        if calendar is not None:
            self.calendar = calendar

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
        """After a restart: unanswered incidents are watched again, unsent ones queued, SLA
        clocks that still run are timed again."""
        for row in await self.store.sla_clocks():
            key = (str(row["incident_id"]), str(row["opd_id"]))
            self._clocks[key] = _Clock(
                *key,
                ack_due=_at(row["ack_due"]),
                resolve_due=_at(row["resolve_due"]),
                acked=row["acknowledged_at"] is not None,
                resolved=row["resolved_at"] is not None,
                ack_breached=row["ack_breached_at"] is not None,
                resolve_breached=row["resolve_breached_at"] is not None,
            )
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
            levels = self.levels(self.opds[opd_id], sent[0].at)
            self._watches[(inc.id, opd_id)] = _Watch(
                inc.id, opd_id, step, sent[-1].at + self._delay(levels, step, deadline),
                deadline, levels,
            )  # fmt: skip

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
            closes = action.kind in (ActionKind.RESOLVE, ActionKind.FALSE_ALARM)
            for key, clock in list(self._clocks.items()):
                if key[0] == action.incident_id and (closes or action.opd_id in (None, key[1])):
                    clock.acked = True
                    clock.resolved = clock.resolved or closes
                    if not clock.running:
                        del self._clocks[key]
        elif isinstance(event, ActionEvent) and event.action.kind == ActionKind.REOPEN:
            for key, clock in self._clocks.items():
                if key[0] == event.action.incident_id:
                    clock.resolved = False

    async def _on_incident(self, inc: Incident) -> None:
        if inc.state.closed:
            # A closed incident needs nothing more from here; keeping it would grow the process
            # by every incident the site ever had (seen in the soak run).
            self._incidents.pop(inc.id, None)
            self._answered.difference_update({(inc.id, None), *((inc.id, o) for o in self.opds)})
            for key in [k for k in self._watches if k[0] == inc.id]:
                del self._watches[key]
            for key in [k for k in self._clocks if k[0] == inc.id]:
                del self._clocks[key]
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
            await self._start_clock(inc, opd_id)
            self._queue(inc, opd_id)

    async def _start_clock(self, inc: Incident, opd_id: str) -> None:
        route = matching(inc, self.routes, self.calendar).get(opd_id)
        sla = route.sla if route is not None else None
        if sla is None or (sla.acknowledge is None and sla.resolve is None):
            return
        start, working = self.now(), sla.time == "working"

        def due(value: str | float | None) -> datetime | None:
            return None if value is None else self.calendar.deadline(
                start, duration(value), working)  # fmt: skip

        clock = _Clock(inc.id, opd_id, due(sla.acknowledge), due(sla.resolve))
        self._clocks[(inc.id, opd_id)] = clock
        await self.store.set_sla(inc.id, opd_id, clock.ack_due, clock.resolve_due)

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
        for key, clock in list(self._clocks.items()):
            for kind in clock.due(now):
                await self._breach(clock, kind, now)
            if not clock.running:
                self._clocks.pop(key, None)
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
        opd = self.opds.get(group.opd_id)
        if opd is None:  # removed by a reload while the group waited
            return
        notice = self._notice(opd, incidents, 0)
        levels = self.levels(opd, now)
        channels = self._send(notice, opd, levels[0], with_webhook=True)
        for inc in incidents:
            await self._record_action(inc.id, ActionKind.NOTIFIED, opd.id, channels)
            if {(inc.id, opd.id), (inc.id, None)} & self._answered:
                continue  # answered before the notice left: told, but nothing to escalate
            deadline = self._deadline(inc, opd.id)
            self._watches[(inc.id, opd.id)] = _Watch(
                inc.id, opd.id, 0, now + timedelta(seconds=deadline), deadline, levels
            )

    async def _escalate(self, watch: _Watch, now: datetime) -> None:
        inc = self._incidents.get(watch.incident_id)
        opd = self.opds.get(watch.opd_id)
        if inc is None or opd is None or inc.state.closed:
            self._watches.pop((watch.incident_id, watch.opd_id), None)
            return
        levels = watch.levels or self.levels(opd, now)
        watch.step += 1
        people = levels[min(watch.step, len(levels) - 1)]
        watch.next_at = now + self._delay(levels, watch.step, watch.deadline_s)
        channels = self._send(self._notice(opd, [inc], watch.step), opd, people, with_webhook=True)
        names = ", ".join(c.name for c in people)
        note = f"eskalasi ke-{watch.step}: {names} ({channels})"
        await self._record_action(inc.id, ActionKind.ESCALATED, opd.id, note)
        log.warning("incident=%s opd=%s not acknowledged: %s", inc.id, opd.id, note)

    async def _breach(self, clock: _Clock, kind: ActionKind, now: datetime) -> None:
        inc = self._incidents.get(clock.incident_id)
        opd = self.opds.get(clock.opd_id)
        acked = kind == ActionKind.SLA_ACK_BREACHED
        if acked:
            clock.ack_breached = True
        else:
            clock.resolve_breached = True
        route = matching(inc, self.routes, self.calendar).get(clock.opd_id) if inc else None
        sla = route.sla if route is not None else None
        limit = (sla.acknowledge if acked else sla.resolve) if sla else None
        what = "menerima" if acked else "menyelesaikan"
        mode = " kerja" if sla is not None and sla.time == "working" else ""
        note = f"batas SLA {what}" + (f" ({_span_text(limit)}{mode})" if limit else "") + \
            " terlewati"  # fmt: skip
        await self._record_action(clock.incident_id, kind, clock.opd_id, note)
        log.warning("incident=%s opd=%s %s", clock.incident_id, clock.opd_id, note)
        if inc is None or opd is None:
            return
        watch = self._watches.get((inc.id, opd.id))
        if acked and watch is not None:
            watch.next_at = now  # escalates in this same tick
            return
        # Resolve SLA, or nobody is watching the ack any more: tell the next level up.
        levels = watch.levels if watch and watch.levels else self.levels(opd, now)
        step = min((watch.step if watch else 0) + 1, len(levels) - 1)
        notice = self._notice(opd, [inc], step, reason=note[0].upper() + note[1:])
        channels = self._send(notice, opd, levels[step], with_webhook=True)
        names = ", ".join(c.name for c in levels[step])
        await self._record_action(inc.id, ActionKind.ESCALATED, opd.id,
                                  f"{note}: ke {names} ({channels})")  # fmt: skip

    def levels(self, opd: Opd, at: datetime) -> list[list[Contact]]:
        """Who hears at each escalation step: everyone on duty first (when the OPD has a
        roster and someone stands duty now), then each contact in order."""
        duty = [d.contact for d in on_duty(opd, self.calendar, at)] if opd.roster else []
        rest = [[c] for c in opd.contacts if c not in duty]
        return [duty, *rest] if duty else rest

    def _deadline(self, inc: Incident, opd_id: str) -> float:
        """Seconds the OPD has to acknowledge, from the route that sent the incident to it."""
        found = matching(inc, self.routes, self.calendar).get(opd_id)
        return found.ack_deadline_s if found is not None else 300.0

    def _delay(self, levels: list[list[Contact]], step: int, deadline_s: float) -> timedelta:
        last = len(levels) - 1
        return timedelta(seconds=deadline_s if step < last else self.config.repeat_interval_s)

    # ---- sending ------------------------------------------------------------------------
    def _notice(self, opd: Opd, incidents: list[Incident], step: int, reason: str = "") -> Notice:
        return Notice(opd.id, opd.name, tuple(incidents), step, self.config.base_url,
                      self.timezone, reason)  # fmt: skip

    def _send(self, notice: Notice, opd: Opd, people: Sequence[Contact], with_webhook: bool) -> str:
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
        for contact in people:
            if self.email is not None and contact.email:
                to = contact.email
                self._spawn(notice, "email", to, partial(self.email.send, notice, to, notice_id))
                used.append(f"email {to}")
            if self.chat is not None and contact.phone:
                phone = contact.phone
                self._spawn(notice, "chat", phone, partial(self._chat, notice, phone, notice_id))
                used.append(f"chat {phone}")
            for app in self.apps:
                where = app.chat_of(opd.id, contact)
                if where is not None:
                    send = partial(app.send, notice, where, contact, notice_id)
                    self._spawn(notice, app.name, f"{app.name}:{where}", send)
                    used.append(f"{app.name} {contact.name}")
        return ", ".join(used) or "tidak ada kanal (atur webhook/smtp/chat/telegram/whatsapp)"

    async def _chat(self, notice: Notice, phone: str, notice_id: str) -> None:
        assert self.chat is not None
        await self.chat.send(notice, phone, notice_id)
        if self.links is not None:
            for inc in notice.incidents:
                await self.links.remember("gateway", phone_key(phone), f"{notice_id}:{inc.id}",
                                          inc.id, notice.opd_id)  # fmt: skip

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
