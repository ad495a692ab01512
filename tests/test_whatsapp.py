"""Two-way WhatsApp (Cloud API shape) and replies through the HTTP chat gateway, with real
parts: a loopback server standing in for the Graph API and for a local gateway, the wall's
webhook endpoints over real HTTP, SQLite, the dispatcher on a clock the test moves."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiohttp import web
from PIL import Image

from events.attachments import Attachments
from events.config import ChatGateway, NotifyConfig, Opd, Route, WhatsAppConfig
from events.desk import IncidentDesk
from events.model import (
    ActionKind,
    AnyEvent,
    IncidentKind,
    IncidentState,
    Observation,
    ObservationPhase,
    Severity,
)
from events.notify.channels import sign
from events.notify.chat_answers import ChatAnswers
from events.notify.chat_links import ChatLinks
from events.notify.dispatcher import Dispatcher
from events.notify.gateway_replies import GatewayReplies
from events.notify.whatsapp import WhatsAppApp
from events.scoreboard import compute
from events.store import Store
from tests.conftest import ManualClock, serve_asgi
from wallboard.app import create_app
from wallboard.auth import Accounts
from wallboard.config import UiConfig, Wall
from wallboard.deps import WallboardDeps
from wallboard.hub import Hub
from wallboard.live import LiveFrames

WITA = ZoneInfo("Asia/Makassar")
APP_SECRET = "meta-app-secret-123"
GATEWAY_SECRET = "gateway-reply-secret-1"
PIKET, KALAK, STRANGER = "628110000003", "628110000009", "628999999999"
BPBD = Opd.model_validate({
    "id": "bpbd", "name": "BPBD",
    "contacts": [
        {"id": "regu-a", "name": "Regu A", "whatsapp": PIKET},
        {"id": "kalak", "name": "Kalaksa", "whatsapp": KALAK},
    ],
})  # fmt: skip
DISHUB = Opd.model_validate({
    "id": "dishub", "name": "Dishub",
    "contacts": [{"id": "piket", "name": "Piket Dishub", "phone": "0811 0000 004"}],
})  # fmt: skip


@dataclass
class Graph:
    """The Graph API's messages and media endpoints, and a local chat gateway's send URL."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    gateway: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)
    url: str = ""
    tokens: set[str] = field(default_factory=set)

    async def messages(self, request: web.Request) -> web.Response:
        self.tokens.add(request.headers.get("Authorization", ""))
        doc = await request.json()
        self.sent.append(doc)
        return web.json_response({"messaging_product": "whatsapp",
                                  "messages": [{"id": f"wamid.{len(self.sent)}"}]})  # fmt: skip

    async def media_info(self, request: web.Request) -> web.Response:
        mid = request.match_info["mid"]
        return web.json_response({"url": f"{self.url}/bytes/{mid}", "mime_type": "image/jpeg"})

    async def media_bytes(self, request: web.Request) -> web.Response:
        return web.Response(body=self.media[request.match_info["mid"]])

    async def send(self, request: web.Request) -> web.Response:
        self.gateway.append(await request.json())
        return web.json_response({"status": "queued"})

    def templates_to(self, number: str) -> list[dict[str, Any]]:
        return [d for d in self.sent if d["to"] == number and d["type"] == "template"]

    def texts_to(self, number: str) -> list[str]:
        return [d["text"]["body"] for d in self.sent if d["to"] == number and d["type"] == "text"]


@dataclass
class Site:
    base: str
    store: Store
    desk: IncidentDesk
    dispatcher: Dispatcher
    graph: Graph
    attachments: Attachments
    clock: ManualClock
    published: list[AnyEvent]

    async def tick(self, seconds: float = 0) -> None:
        while self.published:
            await self.dispatcher.handle(self.published.pop(0))
        self.clock.advance(seconds)
        await self.dispatcher.tick()
        await self.dispatcher.drain()
        while self.published:
            await self.dispatcher.handle(self.published.pop(0))


class _NoFrames:
    def latest_frame(self, camera_id: str) -> None:
        return None

    def watched(self, camera_id: str) -> None:
        return None


@pytest.fixture
async def site(tmp_path: Path) -> AsyncGenerator[Site, None]:
    graph = Graph()
    app = web.Application()
    app.router.add_post("/1234567890/messages", graph.messages)
    app.router.add_get("/bytes/{mid}", graph.media_bytes)
    app.router.add_get("/{mid}", graph.media_info)
    app.router.add_post("/gateway/send", graph.send)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    graph.url = f"http://127.0.0.1:{tcp._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    store = Store(tmp_path / "w.db")
    await store.open()
    clock = ManualClock(datetime(2026, 12, 1, 10, 0, tzinfo=WITA))
    published: list[AnyEvent] = []

    async def publish(event: AnyEvent) -> None:
        published.append(event)

    routes = [
        Route.model_validate({"match": {"kinds": ["flood"]}, "opds": ["bpbd"]}),
        Route.model_validate({"match": {"kinds": ["traffic"]}, "opds": ["dishub"]}),
    ]
    desk = IncidentDesk(store, publish, routes, now=clock)
    gateway = ChatGateway(url=f"{graph.url}/gateway/send", reply_secret=GATEWAY_SECRET)
    notify = NotifyConfig(group_wait_s=0, chat=gateway, retry_base_s=0.01)
    dispatcher = Dispatcher(store, publish, [BPBD, DISHUB], routes, notify,
                            timezone="Asia/Makassar", now=clock)  # fmt: skip
    links = ChatLinks(store, [BPBD, DISHUB])
    attachments = Attachments(store, tmp_path / "attachments")
    answers = ChatAnswers(desk, attachments)
    config = WhatsAppConfig(phone_number_id="1234567890", access_token="EAAG-token-xyz",
                            app_secret=APP_SECRET, verify_token="verify-me-please",
                            api_url=graph.url)  # fmt: skip
    whatsapp = WhatsAppApp(config, links, answers)
    dispatcher.apps.append(whatsapp)
    dispatcher.links = links

    async def open_incidents() -> list:  # type: ignore[type-arg]
        return await store.incidents(active=True)

    deps = WallboardDeps(
        store=store, hub=Hub(open_incidents, {}), live=LiveFrames(_NoFrames()),  # type: ignore[arg-type]
        cameras=[], walls=[Wall(id="utama")], ui=UiConfig(), snapshot_dir=None, clip_dir=None,
        health=lambda: {}, accounts=Accounts(store), desk=desk, attachments=attachments,
        whatsapp=whatsapp, gateway_replies=GatewayReplies(links, answers),
        gateway_secret=GATEWAY_SECRET,
    )  # fmt: skip
    async with serve_asgi(create_app(deps)) as port:
        yield Site(f"http://127.0.0.1:{port}", store, desk, dispatcher, graph, attachments,
                   clock, published)  # fmt: skip
    await whatsapp.close()
    await dispatcher.stop()
    await store.close()
    await runner.cleanup()


def incident(clock: ManualClock, kind: IncidentKind = IncidentKind.FLOOD) -> Observation:
    return Observation(
        phase=ObservationPhase.OPENED, rule=f"{kind}-0", kind=kind, severity=Severity.HIGH,
        title="Air masuk gudang logistik", camera_id=f"cam-{kind}", kecamatan="Kota",
        started_at=clock.t, at=clock.t,
    )  # fmt: skip


def meta_body(sender: str, message: dict[str, Any]) -> bytes:
    doc = {"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "62811", "phone_number_id": "1234567890"},
            "contacts": [{"profile": {"name": "Petugas"}, "wa_id": sender}],
            "messages": [{"from": sender, "id": f"wamid.in{time.time_ns()}",
                          "timestamp": str(int(time.time())), **message}],
        }}]}]}  # fmt: skip
    return json.dumps(doc).encode()


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={mac}", "Content-Type": "application/json"}


async def test_a_signed_button_reply_acknowledges_and_a_bad_signature_changes_nothing(
    site: Site,
) -> None:
    inc = await site.desk.observe(incident(site.clock))
    assert inc is not None
    await site.tick()
    (told,) = site.graph.templates_to(PIKET)
    template = told["template"]
    assert template["name"] == "pantau_kejadian" and template["language"] == {"code": "id"}
    body = [p["text"] for p in template["components"][0]["parameters"]]
    assert body[:3] == ["Banjir", "Kota", "Air masuk gudang logistik"]
    payloads = [c["parameters"][0]["payload"] for c in template["components"][1:]]
    assert payloads == [f"{a}:{inc.id}" for a in ("acknowledge", "start", "resolve",
                                                  "false_alarm")]  # fmt: skip
    assert site.graph.tokens == {"Bearer EAAG-token-xyz"}
    press = meta_body(
        PIKET,
        {
            "type": "button",
            "context": {"id": "wamid.1"},
            "button": {"text": "Terima", "payload": f"acknowledge:{inc.id}"},
        },
    )
    async with httpx.AsyncClient(base_url=site.base) as http:
        # a forged or unsigned press: 401 and nothing changes
        bad = await http.post("/api/chat/whatsapp", content=press,
                              headers=signed(press, "not-the-secret"))  # fmt: skip
        assert bad.status_code == 401 and "X-Hub-Signature-256" in bad.json()["detail"]
        naked = await http.post("/api/chat/whatsapp", content=press)
        assert naked.status_code == 401
        assert (await site.store.incident(inc.id)).state == IncidentState.NEW  # type: ignore[union-attr]
        assert not [a for a in await site.store.actions(inc.id) if a.kind == "acknowledge"]
        r = await http.post("/api/chat/whatsapp", content=press, headers=signed(press))
        assert r.status_code == 200 and r.json() == {"taken": 1}
    acked = await site.store.incident(inc.id)
    assert acked is not None and acked.state == IncidentState.ACKNOWLEDGED
    (ack,) = [a for a in await site.store.actions(inc.id) if a.kind == ActionKind.ACKNOWLEDGE]
    assert (ack.actor, ack.opd_id) == ("Regu A via WhatsApp", "bpbd")
    assert site.graph.texts_to(PIKET)[-1] == "Tercatat: Diterima oleh Regu A."
    await site.tick(400)  # past the deadline: the Kalaksa is not woken
    assert site.graph.templates_to(KALAK) == []
    (week,) = compute(await site.store.response_times(), "Asia/Makassar")
    assert (week.acknowledged, week.unanswered) == (1, 0)


async def test_whatsapp_replies_comments_photos_strangers_and_the_handshake(site: Site) -> None:
    inc = await site.desk.observe(incident(site.clock))
    assert inc is not None
    await site.tick()
    photo = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 10)).save(photo, "JPEG")
    site.graph.media["media-77"] = photo.getvalue()
    messages = [
        (PIKET, {"type": "text", "context": {"id": "wamid.1"}, "text": {"body": "Pompa dikirim"}}),
        (PIKET, {"type": "image", "image": {"id": "media-77", "mime_type": "image/jpeg",
                                            "caption": "kondisi pukul 10"}}),
        (STRANGER, {"type": "button", "button": {"text": "Selesai",
                                                 "payload": f"resolve:{inc.id}"}}),
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=site.base) as http:
        for sender, message in messages:
            body = meta_body(sender, message)
            r = await http.post("/api/chat/whatsapp", content=body, headers=signed(body))
            assert r.status_code == 200, r.text
        ok = await http.get("/api/chat/whatsapp", params={
            "hub.mode": "subscribe", "hub.verify_token": "verify-me-please",
            "hub.challenge": "1158201444"})  # fmt: skip
        assert ok.status_code == 200 and ok.text == "1158201444"
        guess = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "x"}
        wrong = await http.get("/api/chat/whatsapp", params=guess)
        assert wrong.status_code == 403
        garbage = b"not json"
        assert (await http.post("/api/chat/whatsapp", content=garbage,
                                headers=signed(garbage))).status_code == 400  # fmt: skip
    notes = [a.note for a in await site.store.actions(inc.id) if a.kind == ActionKind.COMMENT]
    assert notes[0] == "Pompa dikirim" and notes[1].endswith(": kondisi pukul 10")
    (att,) = await site.attachments.of(inc.id)
    assert site.attachments.path(att).read_bytes() == photo.getvalue()
    found = await site.store.incident(inc.id)
    assert found is not None and found.state == IncidentState.NEW  # the stranger changed nothing
    assert "belum terdaftar" in site.graph.texts_to(STRANGER)[-1]


async def test_the_chat_gateway_takes_signed_replies_by_phone_number(site: Site) -> None:
    inc = await site.desk.observe(incident(site.clock, IncidentKind.TRAFFIC))
    assert inc is not None
    await site.tick()
    (sent,) = site.graph.gateway
    assert sent["to"] == "0811 0000 004" and "Kemacetan" in sent["message"]

    def post(doc: dict[str, Any], secret: str = GATEWAY_SECRET, age: int = 0) -> Any:
        body = json.dumps(doc).encode()
        stamp = str(int(time.time()) - age)
        headers = {"X-Pantau-Timestamp": stamp, "X-Pantau-Signature": sign(secret, stamp, body),
                   "Content-Type": "application/json"}  # fmt: skip
        return http.post("/api/chat/gateway", content=body, headers=headers)

    async with httpx.AsyncClient(base_url=site.base) as http:
        reply = {"from": "+62 811-0000-004", "text": "TERIMA petugas meluncur"}
        assert (await post(reply, secret="wrong-secret-0000")).status_code == 401
        assert (await post(reply, age=900)).status_code == 401  # an old signature is a replay
        assert (await post({"from": "0811", "text": ""})).status_code == 422
        r = await post(reply)
        assert r.status_code == 200 and r.json() == {
            "ok": True, "text": "Tercatat: Diterima oleh Piket Dishub."}  # fmt: skip
        stranger = await post({"from": "0812 3456 789", "text": "SELESAI"})
        assert stranger.json()["ok"] is False and "belum terdaftar" in stranger.json()["text"]
    found = await site.store.incident(inc.id)
    assert found is not None and found.state == IncidentState.ACKNOWLEDGED
    notes = [(a.kind, a.actor, a.note) for a in await site.store.actions(inc.id)
             if a.kind in (ActionKind.ACKNOWLEDGE, ActionKind.COMMENT)]  # fmt: skip
    assert notes == [
        (ActionKind.ACKNOWLEDGE, "Piket Dishub via SMS/WA gateway", "dari SMS/WA gateway"),
        (ActionKind.COMMENT, "Piket Dishub via SMS/WA gateway", "petugas meluncur"),
    ]
