"""WebSocket fan-out: a snapshot on connect, then numbered deltas; resume after reconnect.

Every delta has a sequence number. The hub keeps the last `history` deltas, so a client that
reconnects with `?since=N` gets exactly what it missed, or a fresh snapshot when N is too old.
Each client has a bounded queue; a client that cannot keep up is disconnected (it will resume)
rather than slowing every other screen on the wall.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from events.bus import Subscription
from events.model import AnyEvent, CameraStatus, CameraStatusEvent, Incident

log = logging.getLogger(__name__)

SnapshotIncidents = Callable[[], Awaitable[list[Incident]]]


@dataclass(eq=False)
class Client:
    queue: asyncio.Queue[str]
    cut_off: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    def __init__(
        self,
        open_incidents: SnapshotIncidents,
        static_snapshot: dict[str, Any],
        history: int = 2048,
        client_queue: int = 256,
    ) -> None:
        self._open_incidents = open_incidents
        self._static = static_snapshot
        self._history: deque[tuple[int, str]] = deque(maxlen=history)
        self._client_queue = client_queue
        self._clients: set[Client] = set()
        self._cameras: dict[str, CameraStatus] = {}
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

    def publish(self, event: AnyEvent) -> None:
        if isinstance(event, CameraStatusEvent):
            self._cameras[event.status.camera_id] = event.status
        self.seq += 1
        message = json.dumps(
            {"seq": self.seq, "type": str(event.type), "event": event.model_dump(mode="json")},
            ensure_ascii=False,
        )
        self._history.append((self.seq, message))
        for client in list(self._clients):
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning("wallboard client too slow at seq=%d: disconnecting it", self.seq)
                client.cut_off.set()
                self._clients.discard(client)

    async def snapshot(self) -> str:
        incidents = await self._open_incidents()
        return json.dumps(
            {
                "seq": self.seq,
                "type": "snapshot",
                "incidents": [i.model_dump(mode="json") for i in incidents],
                "cameras": [s.model_dump(mode="json") for s in self._cameras.values()],
                **self._static,
            },
            ensure_ascii=False,
        )

    async def connect(self, since: int | None) -> tuple[Client, list[str]]:
        """Register a client; returns it with the messages to send first."""
        client = Client(asyncio.Queue(self._client_queue))
        # Register before building the snapshot: a delta published meanwhile is queued and the
        # page skips it by sequence number, so nothing falls between snapshot and deltas.
        self._clients.add(client)
        oldest = self._history[0][0] if self._history else self.seq + 1
        if since is not None and oldest - 1 <= since <= self.seq:
            first = [m for s, m in self._history if s > since]
        else:
            first = [await self.snapshot()]
        return client, first

    def disconnect(self, client: Client) -> None:
        self._clients.discard(client)

    def heartbeat(self) -> str:
        return json.dumps({"type": "heartbeat", "seq": self.seq})
