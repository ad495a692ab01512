"""WebSocket fan-out: a snapshot on connect, then numbered deltas; resume after reconnect.

Every delta has a sequence number. The hub keeps the deltas of the last `history_s` seconds (and
no more than `history` of them, nor `history_bytes`), so a client that reconnects with `?since=N`
gets exactly what it missed, or a fresh snapshot when N is too old. A screen back from a blip
resumes; one away for longer than minutes is better served by a snapshot than by a replay, and
a history bounded by time reaches its level within those minutes instead of filling for an hour
or more at a quiet site (incident updates are kilobytes each): on a 24/7 box that reads as a
leak.
Each client has a bounded queue; a client that cannot keep up is disconnected (it will resume)
rather than slowing every other screen on the wall.

A client may be limited to one OPD (an OPD user): it then gets only what concerns incidents
routed to that OPD (and camera health); sequence numbers it does not see simply skip.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from events.bus import Subscription
from events.model import (
    ActionEvent,
    AlertEvent,
    AnyEvent,
    CameraStatus,
    CameraStatusEvent,
    ClipReadyEvent,
    DeliveryEvent,
    EventType,
    Incident,
    IncidentEvent,
)

log = logging.getLogger(__name__)

SnapshotIncidents = Callable[[], Awaitable[list[Incident]]]
# What pages are told. Not observations (the desk's raw input, for no OPD in particular) nor
# clip requests: those are between the cameras' boxes and the desk.
PAGE_TYPES = frozenset({
    EventType.INCIDENT_OPENED, EventType.INCIDENT_UPDATED, EventType.INCIDENT_CLOSED,
    EventType.CAMERA_STATUS, EventType.CLIP_READY, EventType.ALERT_RECEIVED,
    EventType.INCIDENT_ACTION, EventType.DELIVERY, EventType.CONFIG_CHANGED,
})  # fmt: skip


@dataclass(eq=False)
class Client:
    queue: asyncio.Queue[str]
    cut_off: asyncio.Event = field(default_factory=asyncio.Event)
    opd: str | None = None  # None: sees everything

    def sees(self, audience: frozenset[str] | None) -> bool:
        return self.opd is None or audience is None or self.opd in audience


class Hub:
    def __init__(
        self,
        open_incidents: SnapshotIncidents,
        static_snapshot: dict[str, Any],
        history: int = 2048,
        client_queue: int = 256,
        history_bytes: int = 2_000_000,
        history_s: float = 300.0,
    ) -> None:
        self._open_incidents = open_incidents
        self._static = static_snapshot
        # (seq, message, audience, monotonic time it was sent)
        self._history: deque[tuple[int, str, frozenset[str] | None, float]] = deque()
        self._history_count = history
        self._history_bytes = history_bytes
        self._history_s = history_s
        self._history_size = 0  # characters of the messages in the history
        self._routed: dict[str, frozenset[str]] = {}  # incident id -> OPDs it was routed to
        self._client_queue = client_queue
        self._clients: set[Client] = set()
        self._cameras: dict[str, CameraStatus] = {}
        self._activity: frozenset[str] = frozenset()
        self._kept: dict[str, dict[str, Any]] = {}
        self._rates: dict[str, float] = {}  # latest state by key, part of snapshots
        self._decode: dict[str, dict[str, object]] = {}
        self.seq = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def camera_statuses(self) -> dict[str, CameraStatus]:
        return dict(self._cameras)

    def start(self, subscription: Subscription) -> None:
        self._task = asyncio.create_task(self._consume(subscription), name="hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for client in list(self._clients):
            client.cut_off.set()

    async def _consume(self, subscription: Subscription) -> None:
        try:
            async for event in subscription:
                self.publish(event)
        finally:
            await subscription.close()

    def _audience(self, event: AnyEvent) -> frozenset[str] | None:
        """The OPDs an event concerns; None when it is for everyone (camera health)."""
        if isinstance(event, IncidentEvent):
            routed = frozenset(event.incident.routed_opds)
            self._routed[event.incident.id] = routed
            if len(self._routed) > 20_000:
                self._routed.pop(next(iter(self._routed)))
            return routed
        if isinstance(event, AlertEvent):
            return frozenset({event.alert.sender})
        if isinstance(event, ActionEvent):
            return self._routed.get(event.action.incident_id, frozenset())
        if isinstance(event, DeliveryEvent):
            return frozenset({event.delivery.opd_id})
        if isinstance(event, ClipReadyEvent):
            return self._routed.get(event.clip.incident_id, frozenset())
        return None

    def set_activity(self, cameras: set[str]) -> None:
        """Cameras with motion now: a hint for smart streaming, not an event. Sent unnumbered
        when it changes, and with every snapshot and heartbeat, so a resumed page catches up."""
        active = frozenset(cameras)
        if active == self._activity:
            return
        self._activity = active
        self._send(json.dumps({"type": "camera.activity", "activity": sorted(active)}), None)

    def send_rates(
        self, fps: dict[str, float], decoding: dict[str, tuple[str | None, float]] | None = None
    ) -> None:
        """Each camera's input frame rate now, for the page's health panel (a choppy camera),
        and how it is decoded (mode, decoded frames/s). Unnumbered, like activity: the next
        one replaces it."""
        self._rates = {cid: round(v, 1) for cid, v in fps.items()}
        self._decode = {cid: {"mode": m, "fps": round(f, 2)}
                        for cid, (m, f) in (decoding or {}).items()}  # fmt: skip
        message = {"type": "camera.rates", "fps": self._rates, "decode": self._decode}
        self._send(json.dumps(message), None)

    def forget(self, key: str) -> None:
        self._kept.pop(key, None)

    def set_static(self, static_snapshot: dict[str, Any]) -> None:
        """What every snapshot carries besides live state (walls, UI settings): a reload."""
        self._static = static_snapshot

    def keep(self, key: str, state: dict[str, Any]) -> None:
        """State that every snapshot carries under "state" (e.g. each wall's current view)."""
        self._kept[key] = state

    def announce(self, kind: str, payload: dict[str, Any], keep_as: str | None = None) -> None:
        """A numbered message that is not a stored event (a wall switched view): resumable like
        the events, and with `keep_as` part of every later snapshot."""
        if keep_as is not None:
            self.keep(keep_as, payload)
        self.seq += 1
        message = json.dumps({"seq": self.seq, "type": kind, **payload}, ensure_ascii=False)
        self._fan_out(message, None)

    def publish(self, event: AnyEvent) -> None:
        if isinstance(event, CameraStatusEvent):
            self._cameras[event.status.camera_id] = event.status
        audience = self._audience(event)
        self.seq += 1
        message = json.dumps(
            {"seq": self.seq, "type": str(event.type), "event": event.model_dump(mode="json")},
            ensure_ascii=False,
        )
        self._fan_out(message, audience)

    def _fan_out(self, message: str, audience: frozenset[str] | None) -> None:
        now = time.monotonic()
        self._history.append((self.seq, message, audience, now))
        self._history_size += len(message)
        while len(self._history) > 1 and (
            len(self._history) > self._history_count
            or self._history_size > self._history_bytes
            or now - self._history[0][3] > self._history_s
        ):
            self._history_size -= len(self._history.popleft()[1])
        self._send(message, audience)

    def _send(self, message: str, audience: frozenset[str] | None) -> None:
        for client in list(self._clients):
            if not client.sees(audience):
                continue
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning("wallboard client too slow at seq=%d: cut off", self.seq)
                client.cut_off.set()
                self._clients.discard(client)

    async def snapshot(self, opd: str | None = None) -> str:
        incidents = await self._open_incidents()
        for inc in incidents:
            self._routed.setdefault(inc.id, frozenset(inc.routed_opds))
        if opd is not None:
            incidents = [i for i in incidents if opd in i.routed_opds]
        return json.dumps(
            {
                "seq": self.seq,
                "type": "snapshot",
                "incidents": [i.model_dump(mode="json") for i in incidents],
                "cameras": [s.model_dump(mode="json") for s in self._cameras.values()],
                "activity": sorted(self._activity),
                "fps": self._rates,
                "decode": self._decode,
                "state": self._kept,
                **self._static,
            },
            ensure_ascii=False,
        )

    async def connect(self, since: int | None, opd: str | None = None) -> tuple[Client, list[str]]:
        """Register a client; returns it with the messages to send first."""
        client = Client(asyncio.Queue(self._client_queue), opd=opd)
        # Register before building the snapshot: a delta published meanwhile is queued and the
        # page skips it by sequence number, so nothing falls between snapshot and deltas.
        self._clients.add(client)
        oldest = self._history[0][0] if self._history else self.seq + 1
        if since is not None and oldest - 1 <= since <= self.seq:
            first = [m for s, m, aud, _ in self._history if s > since and client.sees(aud)]
        else:
            first = [await self.snapshot(opd)]
        return client, first

    def disconnect(self, client: Client) -> None:
        self._clients.discard(client)

    def heartbeat(self) -> str:
        return json.dumps(
            {"type": "heartbeat", "seq": self.seq, "activity": sorted(self._activity)}
        )
