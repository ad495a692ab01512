"""Every endpoint, per role, over real HTTP: what each role may see and do, and nothing more.

Roles: anonymous, viewer, operator, supervisor, admin, and OPD users of BPBD and Dishub (who see
only incidents routed to their OPD). Plus: login, its rate limit, logout, session expiry, audit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.api_keys import ApiKeys
from events.attachments import Attachments
from events.bus import MemoryBus
from events.calendar import WorkCalendar
from events.config import CalendarConfig, Opd, ReportConfig, Route, RouteMatch, WhatsAppConfig
from events.desk import IncidentDesk
from events.model import (
    Alert,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    IncidentKind,
    Severity,
    SourceKind,
    utcnow,
)
from events.notify.chat_answers import ChatAnswers
from events.notify.chat_links import ChatLinks
from events.notify.gateway_replies import GatewayReplies
from events.notify.whatsapp import WhatsAppApp
from events.report_service import Reports
from events.roster import duty_board
from events.store import Store
from pantau.config import ConfigError, load
from pantau.config_editor import ConfigEditor
from pantau.heap import HeapKeeper
from pantau.reloader import ConfigSource, ReloadResult, digest
from pantau.state_labelling import Labelling
from tests.conftest import serve_asgi
from tests.test_hub import NoFrames
from wallboard.app import CameraInfo, WallboardDeps, create_app
from wallboard.auth import SESSION_COOKIE, Accounts, Role
from wallboard.config import UiConfig, Wall
from wallboard.hub import Hub
from wallboard.live import LiveFrames

PASSWORD = "role-password-1"
ROLES = ["anonymous", "viewer", "operator", "supervisor", "admin", "opd-bpbd", "opd-dishub"]


@dataclass
class Site:
    base: str
    store: Store
    accounts: Accounts
    tokens: dict[str, str]
    flood: str  # incident routed to bpbd
    jam: str  # incident routed to dishub

    def client(self, who: str) -> httpx.AsyncClient:
        cookies = {SESSION_COOKIE: self.tokens[who]} if who in self.tokens else {}
        return httpx.AsyncClient(base_url=self.base, cookies=cookies, timeout=10)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with roles_site(tmp_path) as found:
        yield found


@contextlib.asynccontextmanager
async def roles_site(tmp_path: Path) -> AsyncIterator[Site]:
    """A site over real HTTP with an account of every role and two routed incidents."""
    store = Store(tmp_path / "roles.db")
    await store.open()
    bus = MemoryBus()
    routes = [
        Route(match=RouteMatch(kinds=[IncidentKind.FLOOD]), opds=["bpbd"]),
        Route(match=RouteMatch(kinds=[IncidentKind.TRAFFIC]), opds=["dishub"]),
    ]
    desk = IncidentDesk(store, lambda e: None, routes)
    accounts = Accounts(store)
    tokens: dict[str, str] = {}
    for who in ROLES[1:]:
        role, _, opd = who.partition("-")
        await accounts.add(who, PASSWORD, Role(role), opd_id=opd or None)
        found = await accounts.login(who, PASSWORD)
        assert found is not None
        tokens[who] = found[1]

    def alert(kind: IncidentKind, sender: str) -> Alert:
        return Alert(source=SourceKind.OPD, sender=sender, kind=kind, severity=Severity.HIGH,
                     title=str(kind), kecamatan="Kuta", sent_at=utcnow())  # fmt: skip

    flood = (await desk.receive_alert(alert(IncidentKind.FLOOD, "bpbd"))).incident_id
    jam = (await desk.receive_alert(alert(IncidentKind.TRAFFIC, "dishub"))).incident_id
    assert flood and jam
    for inc, opd in ((flood, "bpbd"), (jam, "dishub")):
        await store.append(DeliveryEvent(delivery=Delivery(
            incident_id=inc, opd_id=opd, channel="webhook", target="t",
            status=DeliveryStatus.DEAD, attempts=6,
        )))  # fmt: skip

    async def open_incidents() -> list:  # type: ignore[type-arg]
        return await store.incidents(active=True)

    # The zone editor over a real cameras.yaml; "applying" it here is validating it again
    # (this site has no cameras running to rebuild).
    config = tmp_path / "cameras.yaml"
    config.write_text(EDITABLE, encoding="utf-8")
    source = ConfigSource(config)

    async def reload(by: str) -> ReloadResult:
        try:
            text, _ = source.read()
        except ConfigError as exc:
            return ReloadResult(ok=False, by=by, errors=exc.problems)
        return ReloadResult(ok=True, by=by, digest=digest(text))

    async def no_recording(camera_id: str, at: object) -> Any:
        raise FileNotFoundError(f"no recording of {camera_id}")

    async def no_still(camera_id: str) -> None:
        return None

    links = ChatLinks(store, DUTY_OPDS)
    attachments = Attachments(store, tmp_path / "attachments")
    answers = ChatAnswers(desk, attachments)
    whatsapp = WhatsAppApp(WhatsAppConfig(
        phone_number_id="1", access_token="token-xyz-123", app_secret="app-secret-1",
        verify_token="verify-token-1", api_url="http://127.0.0.1:1"), links, answers)  # fmt: skip
    deps = WallboardDeps(
        store=store, hub=Hub(open_incidents, {}), live=LiveFrames(NoFrames()),
        cameras=[CameraInfo(id="cam-1", name="Satu", url_masked="rtsp://h/x")],
        walls=[Wall(id="utama")], ui=UiConfig(), snapshot_dir=None, clip_dir=None,
        health=lambda: {"cameras": {"cam-1": "online"}, "memory": HeapKeeper().state()},
        accounts=accounts, desk=desk,
        api_keys=ApiKeys(store), reload=reload, editor=ConfigEditor(source, reload),
        duty=lambda at: duty_board(DUTY_OPDS, WorkCalendar(CalendarConfig(), "Asia/Jakarta"), at),
        attachments=attachments, chat_links=links, whatsapp=whatsapp,
        gateway_replies=GatewayReplies(links, answers), gateway_secret="gateway-secret-0001",
        reports=Reports(store, tmp_path / "reports", ReportConfig(), "Asia/Jakarta", "Contoh",
                        lambda: {o.id: o.name for o in DUTY_OPDS}, None),
        labelling=Labelling(lambda: load(config), tmp_path, tmp_path / "var", store, no_still,
                            tmp_path / "snapshots", tmp_path / "models", no_recording),
    )  # fmt: skip
    async with serve_asgi(create_app(deps)) as port:
        yield Site(f"http://127.0.0.1:{port}", store, accounts, tokens, flood, jam)
    await whatsapp.close()
    await bus.close()
    await store.close()


DUTY_OPDS = [
    Opd.model_validate({
        "id": "bpbd", "name": "BPBD",
        "contacts": [{"id": "kalak", "name": "Kalak", "phone": "112"}],
        "roster": {"shifts": {"pagi": "07:00-19:00", "malam": "19:00-07:00"},
                   "starts": "2026-11-30", "weeks": [{"daily": {"pagi": "kalak"}}]},
    }),
    Opd.model_validate({"id": "dishub", "name": "Dishub", "contacts": [{"name": "Piket"}]}),
]  # fmt: skip


EDITABLE = """\
# the roles site's camera
cameras:
  - id: cam-1
    name: Satu
    url: rtsp://127.0.0.1:1/x
    zones:
      - {id: all, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}
    rules:
      - {type: crowd, zone: all, min_count: 5}
"""
STAFF = {"viewer", "operator", "supervisor", "admin"}
ANYONE = STAFF | {"opd-bpbd", "opd-dishub"}
# (path, who gets 200) -- everyone else must be refused: 401 anonymous, 403 or 404 otherwise.
READS: list[tuple[str, set[str]]] = [
    ("/api/ui", ANYONE),
    ("/api/me", ANYONE),
    ("/api/cameras", ANYONE),
    ("/api/health", ANYONE),
    ("/api/incidents", ANYONE),
    ("/api/alerts", ANYONE),
    ("/api/deliveries", ANYONE),
    ("/api/scoreboard", ANYONE),
    ("/api/schema", ANYONE),
    ("/api/incidents/{flood}", STAFF | {"opd-bpbd"}),
    ("/api/incidents/{flood}/actions", STAFF | {"opd-bpbd"}),
    ("/api/incidents/{flood}/deliveries", STAFF | {"opd-bpbd"}),
    ("/api/incidents/{jam}", STAFF | {"opd-dishub"}),
    ("/api/incidents/{jam}/actions", STAFF | {"opd-dishub"}),
    ("/metrics", STAFF),
    ("/api/audit", {"admin"}),
    ("/api/users", {"admin"}),
    ("/api/config/cameras/cam-1", {"admin"}),
    ("/api/config/history", {"admin"}),
]


@pytest.mark.parametrize("who", ROLES)
async def test_reads_per_role(site: Site, who: str) -> None:
    async with site.client(who) as http:
        for template, allowed in READS:
            path = template.format(flood=site.flood, jam=site.jam)
            r = await http.get(path)
            if who in allowed:
                assert r.status_code == 200, (who, path, r.text)
            else:
                expected = (
                    401
                    if who == "anonymous"
                    else (
                        403
                        if any(w in path for w in ("audit", "users", "metrics", "config"))
                        else 404
                    )
                )
                assert r.status_code == expected, (who, path, r.status_code)
        # Files behind incidents: refused the same way when not visible, 404 "no file" when it is.
        for sub in ("snapshot.jpg", "clip", "clip.mp4"):
            r = await http.get(f"/api/incidents/{site.jam}/{sub}")
            assert r.status_code == (401 if who == "anonymous" else 404)
        frame = await http.get("/api/cameras/cam-1/frame.jpg")
        assert frame.status_code == (401 if who == "anonymous" else 503)  # no frame in this test
        # Live video: any signed-in user may ask; this test server has WebRTC switched off.
        offer = {"sdp": "v=0 o=- 1 1 IN IP4 0.0.0.0", "type": "offer"}
        r = await http.post("/api/cameras/cam-1/webrtc", json=offer)
        assert r.status_code == (401 if who == "anonymous" else 404)
        # Who incidents can be assigned to: the people who assign.
        r = await http.get("/api/people")
        assert r.status_code == (
            401 if who == "anonymous" else 200 if who in STAFF - {"viewer"} else 403
        ), (who, r.text)
        if r.status_code == 200:
            people = r.json()
            assert "viewer" not in {p["username"] for p in people}
            assert all(set(p) == {"username", "role", "display_name", "opd_id"} for p in people)
        assert (await http.get("/healthz")).json() == {"ok": True}  # bare liveness only


@pytest.mark.parametrize("who", ROLES)
async def test_lists_are_limited_to_the_users_opd(site: Site, who: str) -> None:
    if who == "anonymous":
        return
    async with site.client(who) as http:
        incidents = {i["id"] for i in (await http.get("/api/incidents")).json()}
        deliveries = {d["opd_id"] for d in (await http.get("/api/deliveries?status=dead")).json()}
        alerts = {a["sender"] for a in (await http.get("/api/alerts")).json()}
        forced = await http.get("/api/incidents?opd=dishub")
    if who == "opd-bpbd":
        assert incidents == {site.flood} and deliveries == {"bpbd"} and alerts == {"bpbd"}
        assert forced.json() == []  # asking for another OPD's incidents gives nothing
    elif who == "opd-dishub":
        assert incidents == {site.jam} and deliveries == {"dishub"} and alerts == {"dishub"}
    else:
        assert incidents == {site.flood, site.jam} and deliveries == {"bpbd", "dishub"}


# action -> roles that may do it on an incident they can see
ACTS = {
    "comment": {"operator", "supervisor", "admin", "opd-bpbd"},
    "assign": {"operator", "supervisor", "admin"},
    "acknowledge": {"operator", "supervisor", "admin", "opd-bpbd"},
    "false_alarm": {"supervisor", "admin"},
}


@pytest.mark.parametrize("who", ROLES)
async def test_actions_per_role(site: Site, who: str) -> None:
    async with site.client(who) as http:
        for kind, allowed in ACTS.items():
            body = {"kind": kind, "note": f"{who} {kind}", "owner": "regu-1"}
            r = await http.post(f"/api/incidents/{site.flood}/actions", json=body)
            if who == "anonymous":
                assert r.status_code == 401
            elif who not in allowed:
                assert r.status_code == (
                    404 if who == "opd-dishub" and kind in ("comment", "acknowledge") else 403
                ), (who, kind, r.text)
            else:
                assert r.status_code in (200, 409), (who, kind, r.text)  # 409: already closed
    log = await site.store.actions(site.flood)
    people = {a.actor for a in log if a.actor != "system"}
    assert people <= ({who} & (ANYONE - {"viewer"}))
    if who != "anonymous":
        audit = await site.accounts.audit_log()
        acted = {a["username"] for a in audit if str(a["action"]).startswith("incident.")}
        assert acted <= {who}


async def test_admin_manages_accounts_and_others_cannot(site: Site) -> None:
    new = {"username": "piket-2", "password": "piket-password", "role": "operator"}
    async with site.client("supervisor") as http:
        assert (await http.post("/api/users", json=new)).status_code == 403
    async with site.client("admin") as http:
        assert (await http.post("/api/users", json=new)).status_code == 201
        weak = {**new, "username": "piket-3", "password": "short"}
        assert (await http.post("/api/users", json=weak)).status_code == 422
        opd_no_opd = {**new, "username": "piket-4", "role": "opd"}
        assert (await http.post("/api/users", json=opd_no_opd)).status_code == 422
        assert (await http.delete("/api/users/admin")).status_code == 409  # not oneself
        assert (await http.delete("/api/users/ghost")).status_code == 404
        assert (await http.delete("/api/users/piket-2")).status_code == 200
        users = {u["username"]: u for u in (await http.get("/api/users")).json()}
    assert users["piket-2"]["role"] == "operator" and "password" not in users["piket-2"]
    assert users["piket-2"]["disabled"] is True
    assert await site.accounts.login("piket-2", "piket-password") is None
    async with site.client("supervisor") as http:
        assert (await http.delete("/api/users/operator")).status_code == 403


async def test_login_rate_limit_logout_and_audit(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.base, timeout=10) as http:
        ok = await http.post("/api/login", json={"username": "viewer", "password": PASSWORD})
        assert ok.status_code == 200
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert (await http.get("/api/me")).json()["role"] == "viewer"
        assert (await http.post("/api/logout")).status_code == 200
        http.cookies.clear()
        assert (
            await http.get("/api/me", cookies={SESSION_COOKIE: ok.json()["token"]})
        ).status_code == 401
        for _ in range(5):
            bad = await http.post("/api/login", json={"username": "operator", "password": "nope"})
            assert bad.status_code == 401
        limited = await http.post("/api/login", json={"username": "operator", "password": PASSWORD})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        # A colleague at the same address (the command center's NAT) is not locked out.
        colleague = await http.post("/api/login", json={"username": "admin", "password": PASSWORD})
        assert colleague.status_code == 200
    audit = await site.accounts.audit_log()
    actions = [a["action"] for a in audit]
    assert actions.count("login.failed") == 5 and "login.limited" in actions
    assert "login" in actions and "logout" in actions


async def test_login_limiter_stops_a_guesser_and_a_sprayer_not_the_room(site: Site) -> None:
    async def login(http: httpx.AsyncClient, user: str, password: str) -> int:
        r = await http.post("/api/login", json={"username": user, "password": password})
        return r.status_code

    async with httpx.AsyncClient(base_url=site.base, timeout=10) as http:
        # A guesser at one account: five tries, then 429, even with the right password.
        assert [await login(http, "supervisor", f"guess-{n}") for n in range(5)] == [401] * 5
        assert await login(http, "supervisor", PASSWORD) == 429
        # Meanwhile the rest of the room logs in (and mistypes now and then) as usual.
        assert await login(http, "viewer", "typo") == 401
        assert await login(http, "viewer", PASSWORD) == 200
        # A sprayer: a few tries at many accounts from one address; after 30 failures of the
        # address every login from there waits, a right password included.
        tried = [await login(http, f"user-{n}", "Password123") for n in range(24)]
        assert tried == [401] * 24  # 5 + 1 + 24 = 30 failures from this address
        assert await login(http, "user-99", "Password123") == 429
        assert await login(http, "viewer", PASSWORD) == 429


async def test_sessions_expire_when_idle(site: Site) -> None:
    # Long enough that a loaded CI box answers the first request inside it.
    site.accounts.idle_s = 3.0
    found = await site.accounts.login("viewer", PASSWORD)
    assert found is not None
    site.tokens["viewer"] = found[1]
    async with site.client("viewer") as http:
        assert (await http.get("/api/me")).status_code == 200
        await asyncio.sleep(3.5)
        assert (await http.get("/api/me")).status_code == 401


async def test_metrics_in_prometheus_format(site: Site) -> None:
    async with site.client("viewer") as http:
        r = await http.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "# TYPE pantau_camera_up gauge" in text
    assert 'pantau_camera_up{camera="cam-1",state="online"} 1' in text
    assert 'pantau_incidents_open{kind="flood",state="new"} 1' in text
    assert 'pantau_deliveries_dead{opd="bpbd"} 1' in text
    # A real Prometheus text exposition (prometheus_client parses it back), with the process.
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["pantau_camera_up"].samples[0].labels == {"camera": "cam-1", "state": "online"}
    assert families["pantau_incidents_open"].type == "gauge"
    assert families["process_resident_memory_bytes"].samples[0].value > 10e6
    assert families["process_open_fds"].samples[0].value > 0
    # The store's own SQLite connection is open: its caches are counted, as is the C heap.
    assert families["pantau_sqlite_memory_bytes"].samples[0].value > 0
    assert families["pantau_malloc_in_use_bytes"].samples[0].value > 1e6
    assert families["pantau_python_allocated_blocks"].samples[0].value > 10_000


async def test_supervisors_silence_notifications_from_the_wall(site: Site) -> None:
    window = {
        "ends_at": "2099-01-01T00:00:00+08:00",
        "comment": "ganti kabel",
        "cameras": ["cam-1"],
    }
    for who, status in (("viewer", 403), ("operator", 403), ("opd-bpbd", 403), ("anonymous", 401)):
        async with site.client(who) as http:
            assert (await http.post("/api/silences", json=window)).status_code == status
    async with site.client("supervisor") as http:
        made = await http.post("/api/silences", json=window)
        assert made.status_code == 201 and made.json()["author"] == "supervisor"
        bad = await http.post("/api/silences", json={**window, "ends_at": "2000-01-01T00:00:00Z"})
        assert bad.status_code == 422
    async with site.client("viewer") as http:
        listed = (await http.get("/api/silences")).json()
    assert [s["id"] for s in listed] == [made.json()["id"]]
    async with site.client("supervisor") as http:
        ended = await http.delete(f"/api/silences/{made.json()['id']}")
        assert ended.status_code == 200
        assert (await http.get("/api/silences")).json() == []
    audit = [a["action"] for a in await site.accounts.audit_log()]
    assert "silence.add" in audit and "silence.end" in audit


async def test_walls_by_id_or_number_and_the_page_shell_is_open(site: Site) -> None:
    async with site.client("anonymous") as http:
        for path, status in (("/wall/utama", 200), ("/wall/1", 200), ("/wall/2", 404),
                             ("/wall/nope", 404)):  # fmt: skip
            assert (await http.get(path)).status_code == status, path
        page = (await http.get("/wall/1")).text
    assert "login-form" in page and "incident" not in page.lower().split("<body")[0]
