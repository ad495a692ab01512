"""Notifications with real parts: a webhook receiver and a chat gateway over loopback HTTP, a real
SMTP server (aiosmtpd), SQLite; grouping, muting and escalation on a controlled clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from events.config import (
    ChatGateway,
    Contact,
    NotifyConfig,
    Opd,
    Route,
    RouteMatch,
    Silence,
    Smtp,
    Webhook,
)
from events.desk import IncidentDesk
from events.model import (
    ActionKind,
    AnyEvent,
    DeliveryStatus,
    IncidentKind,
    Observation,
    ObservationPhase,
    Severity,
)
from events.notify.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from events.notify.dispatcher import Dispatcher
from events.store import Store
from tests.conftest import Mailbox, serve_asgi
from tests.test_desk import T0, Clock

SECRET = "rahasia-bpbd"


# ---- real receivers ---------------------------------------------------------------------------
@dataclass
class Receiver:
    """An HTTP server on loopback that records requests and fails the first `fail` of them."""

    fail: int = 0
    always_fail: bool = False
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    async def app(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((scope["path"], headers, body))
        failing = self.always_fail or len(self.requests) <= self.fail
        status = 500 if failing else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"busy" if failing else b"ok"})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with serve_asgi(rec.app) as port:
        rec.port = port
        yield rec


@dataclass
class World:
    store: Store
    desk: IncidentDesk
    dispatcher: Dispatcher
    clock: Clock
    published: list[AnyEvent]

    async def feed(self) -> None:
        """Hand what was published to the dispatcher, as the bus would."""
        while self.published:
            await self.dispatcher.handle(self.published.pop(0))

    async def tick(self, seconds: float = 0) -> None:
        await self.feed()  # what happened so far happened before the clock moves
        self.clock.advance(seconds)
        await self.dispatcher.tick()
        await self.dispatcher.drain()
        await self.feed()


def bpbd(port: int, *, secret: str | None = SECRET) -> Opd:
    return Opd(
        id="bpbd",
        name="BPBD",
        contacts=[
            Contact(name="Pusdalops", email="pusdalops@bpbd.example.go.id", phone="+62811000003"),
            Contact(name="Kabid Darlog", email="kabid@bpbd.example.go.id"),
        ],
        webhook=Webhook(url=f"http://127.0.0.1:{port}/hook?token=x", secret=secret),
    )


@pytest.fixture
async def make_world(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[World] = []

    async def build(opds: list[Opd], db: str = "n.db", **notify: Any) -> World:
        store = Store(tmp_path / db)
        await store.open()
        clock = Clock()
        published: list[AnyEvent] = []

        async def publish(event: AnyEvent) -> None:
            published.append(event)

        routes = [Route(match=RouteMatch(), opds=[o.id for o in opds], ack_deadline_s=120)]
        desk = IncidentDesk(store, publish, routes, now=clock)
        cfg = NotifyConfig(
            base_url="https://pantau.example.go.id",
            **{"group_wait_s": 30, "retry_base_s": 0.01, "max_tries": 3, **notify},
        )
        dispatcher = Dispatcher(store, publish, opds, routes, cfg, now=clock)
        world = World(store, desk, dispatcher, clock, published)
        made.append(world)
        return world

    yield build
    for w in made:
        await w.dispatcher.stop()
        await w.store.close()


def flood(clock: Clock, **kw: Any) -> Observation:
    fields: dict[str, Any] = dict(
        phase=ObservationPhase.OPENED, rule="flood-0", kind=IncidentKind.FLOOD,
        severity=Severity.HIGH, title="Genangan 60% lantai", camera_id="gudang",
        kecamatan="Kuta", desa="Kedonganan", started_at=clock.t, at=clock.t, peak_count=None,
        snapshot_ref="x.jpg",
    )  # fmt: skip
    fields.update(kw)
    return Observation(**fields)


# ---- tests ------------------------------------------------------------------------------------
async def test_webhook_is_signed_retried_and_recorded(make_world: Any, receiver: Receiver) -> None:
    receiver.fail = 2
    w = await make_world([bpbd(receiver.port)])
    inc = await w.desk.observe(flood(w.clock))
    await w.tick()
    assert receiver.requests == []  # group_wait: not yet
    await w.tick(31)
    assert len(receiver.requests) == 3  # 500, 500, 200
    keys = {h["idempotency-key"] for _, h, _ in receiver.requests}
    assert len(keys) == 1  # a retry is the same notice
    path, headers, body = receiver.requests[-1]
    assert path == "/hook" and headers[SIGNATURE_HEADER.lower()] == sign(
        SECRET, headers[TIMESTAMP_HEADER.lower()], body
    )
    doc = json.loads(body)
    item = doc["incidents"][0]
    assert doc["opd"] == "bpbd" and item["id"] == inc.id
    assert item["url"] == f"https://pantau.example.go.id/incident/{inc.id}"
    assert item["snapshot_url"].endswith(f"/api/incidents/{inc.id}/snapshot.jpg")
    assert item["clip_url"].endswith("/clip.mp4")
    hooks = [d for d in await w.store.deliveries(inc.id) if d.channel == "webhook"]
    assert [(d.status, d.attempts) for d in hooks] == [(DeliveryStatus.SENT, 3)]
    assert hooks[0].target == f"http://127.0.0.1:{receiver.port}/hook"  # no query secrets
    times = await w.store.response_times()
    assert times[0][2] is not None  # delivered_at set for the scoreboard


async def test_a_webhook_that_never_answers_is_dead_lettered(
    make_world: Any, receiver: Receiver
) -> None:
    receiver.always_fail = True
    w = await make_world([bpbd(receiver.port)])
    inc = await w.desk.observe(flood(w.clock))
    await w.tick(31)
    assert len(receiver.requests) == 3
    dead = await w.store.deliveries(dead_only=True)
    assert [(d.incident_id, d.attempts) for d in dead] == [(inc.id, 3)]
    assert "HTTP 500" in (dead[0].error or "")


async def test_email_reaches_a_real_smtp_server_in_bahasa_indonesia(
    make_world: Any, smtp_server: tuple[Mailbox, int]
) -> None:
    box, port = smtp_server
    smtp = Smtp(host="127.0.0.1", port=port, sender="pantau@kab.example.go.id", starttls=False)
    opd = bpbd(1).model_copy(update={"webhook": None})
    w = await make_world([opd], smtp=smtp)
    inc = await w.desk.observe(flood(w.clock))
    await w.tick(31)
    assert len(box.messages) == 1
    mail = box.messages[0]
    assert mail["To"] == "pusdalops@bpbd.example.go.id"
    assert mail["Subject"] == "[Pantau] Banjir di Kuta: Genangan 60% lantai"
    text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Tingkat: tinggi" in text and "Kedonganan, Kuta" in text
    assert f"https://pantau.example.go.id/incident/{inc.id}" in text
    assert "10:00 WITA" in text  # 02:00 UTC shown in the operator's zone


async def test_chat_gateway_request_follows_its_template(
    make_world: Any, receiver: Receiver
) -> None:
    gateway = ChatGateway(
        url=f"http://127.0.0.1:{receiver.port}/wa/send",
        headers={"Authorization": "Bearer gw-token"},
        body='{"target": "{phone}", "message": "{text}", "link": "{incident_url}"}',
    )
    w = await make_world([bpbd(receiver.port).model_copy(update={"webhook": None})], chat=gateway)
    inc = await w.desk.observe(flood(w.clock, title='Air "naik" cepat'))
    await w.tick(31)
    path, headers, body = receiver.requests[0]
    doc = json.loads(body)  # quotes in the title were escaped
    assert path == "/wa/send" and headers["authorization"] == "Bearer gw-token"
    assert doc["target"] == "+62811000003" and 'Air "naik" cepat' in doc["message"]
    assert doc["link"].endswith(inc.id)


async def test_a_storm_gives_one_message_per_group(make_world: Any, receiver: Receiver) -> None:
    w = await make_world([bpbd(receiver.port)])
    for i, cam in enumerate(["cam-a", "cam-b", "cam-c", "cam-d", "cam-e"]):
        await w.desk.observe(flood(w.clock, camera_id=cam, desa=f"Desa {i}"))
        await w.tick(3)
    other = await w.desk.observe(flood(w.clock, camera_id="cam-x", kecamatan="Mengwi", desa="M"))
    await w.tick(20)  # 35 s after the first: the Kuta group goes, Mengwi still waits
    assert len(receiver.requests) == 1
    assert len(json.loads(receiver.requests[0][2])["incidents"]) == 5
    await w.tick(20)
    assert [i["id"] for i in json.loads(receiver.requests[1][2])["incidents"]] == [other.id]
    late = await w.desk.observe(flood(w.clock, camera_id="cam-f", desa="F"))
    await w.tick(60)
    assert len(receiver.requests) == 2  # group_interval (300 s) holds later news of the group
    await w.tick(300)
    assert [i["id"] for i in json.loads(receiver.requests[2][2])["incidents"]] == [late.id]


async def test_escalation_follows_the_chain_at_its_deadlines(
    make_world: Any, smtp_server: tuple[Mailbox, int]
) -> None:
    box, port = smtp_server
    smtp = Smtp(host="127.0.0.1", port=port, sender="pantau@kab.example.go.id", starttls=False)
    opd = bpbd(1).model_copy(update={"webhook": None})
    w = await make_world([opd], smtp=smtp, group_wait_s=0, repeat_interval_s=600)
    inc = await w.desk.observe(flood(w.clock))
    await w.tick(0)
    assert [m["To"] for m in box.messages] == ["pusdalops@bpbd.example.go.id"]
    await w.tick(119)
    assert len(box.messages) == 1  # deadline 120 s not passed
    await w.tick(2)
    assert box.messages[1]["To"] == "kabid@bpbd.example.go.id"
    assert box.messages[1]["Subject"].startswith("[ESKALASI]")
    await w.tick(599)
    assert len(box.messages) == 2
    await w.tick(2)  # the last contact is reminded every repeat_interval
    assert [m["To"] for m in box.messages][2] == "kabid@bpbd.example.go.id"
    await w.desk.act(inc.id, ActionKind.ACKNOWLEDGE, "opd:bpbd", opd_id="bpbd")
    await w.tick(5000)
    assert len(box.messages) == 3  # acknowledged: no more
    log = [
        (a.kind, a.note) for a in await w.store.actions(inc.id) if a.kind == ActionKind.ESCALATED
    ]
    assert [n for _, n in log] == [
        "eskalasi ke-1: Kabid Darlog (email kabid@bpbd.example.go.id)",
        "eskalasi ke-2: Kabid Darlog (email kabid@bpbd.example.go.id)",
    ]


async def test_escalation_survives_a_restart(make_world: Any, receiver: Receiver) -> None:
    w = await make_world([bpbd(receiver.port)], group_wait_s=0)
    inc = await w.desk.observe(flood(w.clock))
    await w.tick(0)
    assert len(receiver.requests) == 1
    await w.dispatcher.stop()
    again = Dispatcher(w.store, w.dispatcher._publish, [bpbd(receiver.port)],
                       w.dispatcher.routes, w.dispatcher.config, now=w.clock)  # fmt: skip
    await again.recover()
    w.dispatcher = again
    await w.tick(60)
    assert len(receiver.requests) == 1
    await w.tick(61)
    assert len(receiver.requests) == 2
    assert json.loads(receiver.requests[1][2])["escalation_step"] == 1
    assert json.loads(receiver.requests[1][2])["incidents"][0]["id"] == inc.id


async def test_silences_inhibition_and_closed_duplicates_mute(
    make_world: Any, receiver: Receiver
) -> None:
    silence = Silence(
        id="perbaikan-cam-x", starts_at=T0, ends_at=T0 + timedelta(hours=2), author="sari",
        comment="ganti kabel", cameras=["cam-x"],
    )  # fmt: skip
    w = await make_world([bpbd(receiver.port)], group_wait_s=0, silences=[silence])
    silenced = await w.desk.observe(flood(w.clock, camera_id="cam-x", desa="X"))
    await w.desk.observe(
        flood(w.clock, kind=IncidentKind.OFFLINE, camera_id="cam-y", desa="Y", title="Kamera mati")
    )
    inhibited = await w.desk.observe(flood(w.clock, camera_id="cam-y", desa="Y"))
    first_seen = flood(w.clock, camera_id="cam-z", desa="Z")
    first = await w.desk.observe(first_seen)
    await w.tick(1)
    await w.desk.act(first.id, ActionKind.FALSE_ALARM, "budi", note="bayangan")
    w.clock.advance(60)
    ended = first_seen.model_copy(update={"phase": ObservationPhase.CLOSED, "at": w.clock.t})
    await w.desk.observe(ended)
    duplicate = await w.desk.observe(flood(w.clock, camera_id="cam-z", desa="Z"))
    await w.tick(1)
    sent = {i["id"] for _, _, b in receiver.requests for i in json.loads(b)["incidents"]}
    assert first.id in sent
    for inc, why in ((silenced, "senyap perbaikan-cam-x oleh sari"), (inhibited, "sedang offline"),
                     (duplicate, f"duplikat dari {first.id}")):  # fmt: skip
        assert inc.id not in sent
        muted = [a.note for a in await w.store.actions(inc.id) if a.kind == ActionKind.MUTED]
        assert muted and why in muted[0], muted


async def test_a_silence_set_from_the_wall_mutes_too(make_world: Any, receiver: Receiver) -> None:
    w = await make_world([bpbd(receiver.port)], group_wait_s=0)
    hour = timedelta(hours=1)
    silence = Silence(id="s-1", starts_at=T0 - hour, ends_at=T0 + hour, author="sari",
                      comment="latihan", kinds=[IncidentKind.FLOOD])  # fmt: skip
    await w.store.save_silence(silence.id, silence.starts_at.isoformat(),
                               silence.ends_at.isoformat(), silence.model_dump_json())  # fmt: skip
    inc = await w.desk.observe(flood(w.clock))
    await w.tick(1)
    assert receiver.requests == []
    muted = [a.note for a in await w.store.actions(inc.id) if a.kind == ActionKind.MUTED]
    assert muted and "senyap s-1 oleh sari" in muted[0]
    w.clock.advance(7200)  # after the window, new incidents go out again
    await w.desk.observe(flood(w.clock, camera_id="cam-later", desa="L"))
    await w.tick(1)
    assert len(receiver.requests) == 1
