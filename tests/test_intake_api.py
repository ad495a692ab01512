"""Intake over real HTTP (uvicorn on loopback): API keys, validation, CAP 1.2, OPD answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from events.api_keys import ApiKeys
from events.bus import MemoryBus
from events.config import Route, RouteMatch
from events.desk import IncidentDesk
from events.model import AlertStatus, IncidentKind, IncidentState, Severity, SourceKind
from events.store import Store
from tests.conftest import serve_asgi
from tests.test_hub import NoFrames
from wallboard.app import CameraInfo, WallboardDeps, create_app
from wallboard.auth import SESSION_COOKIE, Accounts, Role
from wallboard.config import UiConfig, Wall
from wallboard.hub import Hub
from wallboard.live import LiveFrames

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"


@dataclass
class Api:
    client: httpx.AsyncClient
    store: Store
    keys: dict[str, str]  # opd -> key
    deps: WallboardDeps  # read per request, as a live reload replaces its parts


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    store = Store(tmp_path / "intake.db")
    await store.open()
    bus = MemoryBus()
    routes = [
        Route(match=RouteMatch(kinds=[IncidentKind.FLOOD]), opds=["bpbd"]),
        Route(match=RouteMatch(), opds=["satpol-pp"]),
    ]
    desk = IncidentDesk(store, bus.publish, routes)
    keys = ApiKeys(store)
    made = {opd: (await keys.create(opd))[1] for opd in ("bpbd", "satpol-pp", "dishub")}
    revoked, old_key = await keys.create("dishub", "old")
    await keys.revoke(revoked.id)
    made["revoked"] = old_key

    async def open_incidents() -> list:  # type: ignore[type-arg]
        return await store.incidents(active=True)

    accounts = Accounts(store)
    await accounts.add("staff", "staff-password", Role.SUPERVISOR)
    login = await accounts.login("staff", "staff-password")
    assert login is not None
    hub = Hub(open_incidents, {})
    deps = WallboardDeps(
        store=store, hub=hub, live=LiveFrames(NoFrames()),
        cameras=[CameraInfo(id="gudang", name="Gudang", url_masked="rtsp://h/x")],
        walls=[Wall(id="utama")], ui=UiConfig(), snapshot_dir=None, clip_dir=None,
        health=lambda: {}, accounts=accounts, desk=desk, api_keys=keys,
        kecamatan=["Kuta", "Denpasar Barat"],
    )  # fmt: skip
    staff = {"Cookie": f"{SESSION_COOKIE}={login[1]}"}  # a logged-in supervisor reads
    async with (
        serve_asgi(create_app(deps)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=staff) as client,
    ):
        yield Api(client, store, made, deps)
    await bus.close()
    await store.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


GOOD = {
    "id": "lapor-123",
    "source": "citizen",
    "kind": "flood",
    "severity": "high",
    "title": "Air masuk rumah warga",
    "kecamatan": "Kuta",
    "desa": "Kedonganan",
    "lat": -8.76,
    "lon": 115.17,
    "reporter": "Wayan, 0812xxxx",
}


async def test_an_accepted_alert_is_stored_and_opens_a_routed_incident(api: Api) -> None:
    r = await api.client.post("/api/alerts", json=GOOD, headers=auth(api.keys["bpbd"]))
    assert r.status_code == 201, r.text
    body = r.json()
    alert = await api.store.alert(body["alert_id"])
    assert alert is not None and alert.sender == "bpbd" and alert.source == SourceKind.CITIZEN
    inc = await api.store.incident(body["incident_id"])
    assert inc is not None and inc.routed_opds == ("bpbd",) and inc.severity == Severity.HIGH
    # the same id again: 200, same alert, nothing new
    again = await api.client.post("/api/alerts", json=GOOD, headers={"X-API-Key": api.keys["bpbd"]})
    assert again.status_code == 200 and again.json() == {**body, "duplicate": True}
    assert len(await api.store.alerts()) == 1
    listed = (await api.client.get("/api/alerts")).json()
    assert [a["id"] for a in listed] == [body["alert_id"]]


def _big() -> bytes:
    return json.dumps({**GOOD, "description": "x" * 70_000}).encode()


MALFORMED: list[tuple[str, dict[str, str] | None, bytes | None, int, str]] = [
    # (name, headers beyond the key, raw body, status, reason fragment)
    ("not json", None, b"{nope", 400, "not valid JSON"),
    ("json array", None, b"[1, 2]", 422, "should be an object"),
    ("empty body", None, b"", 400, "not valid JSON"),
    (
        "wrong content type",
        {"Content-Type": "text/plain"},
        json.dumps(GOOD).encode(),
        415,
        "Content-Type",
    ),
    ("too large", None, _big(), 413, "larger than 64 KiB"),
]
INVALID_FIELDS: list[tuple[str, dict[str, object], str]] = [
    ("missing kind", {"kind": None}, "kind"),
    ("unknown kind", {"kind": "meteor"}, "kind"),
    ("unknown severity", {"severity": "apocalyptic"}, "severity"),
    ("missing title", {"title": None}, "title: required"),
    ("blank title", {"title": "   "}, "title"),
    ("title too long", {"title": "x" * 201}, "title"),
    ("unknown field", {"priority": 1}, "priority: unknown field"),
    ("lat out of range", {"lat": 95.0}, "lat"),
    ("lat without lon", {"lon": None}, "give both or neither"),
    ("no location", {"kecamatan": None, "desa": None, "lat": None, "lon": None}, "location"),
    ("unknown camera", {"camera_id": "nowhere"}, "unknown camera"),
    ("naive time", {"sent_at": "2026-11-23T10:00:00"}, "sent_at"),
    ("future time", {"sent_at": "2099-01-01T00:00:00Z"}, "in the future"),
    (
        "expires before sent",
        {"sent_at": "2026-11-23T10:00:00Z", "expires_at": "2026-11-23T09:00:00Z"},
        "expires_at",
    ),
    ("bad source", {"source": "cap"}, "source"),
    ("bad status", {"status": "drill"}, "status"),
    ("update without references", {"msg_type": "update"}, "references"),
    ("id with spaces", {"id": "a b"}, "id"),
    ("description too long", {"description": "x" * 4001}, "description"),
    ("references not a list", {"references": "abc"}, "references"),
]


@pytest.mark.parametrize(
    ("name", "headers", "body", "status", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
async def test_malformed_bodies_are_refused_with_the_reason(
    api: Api, name: str, headers: dict[str, str] | None, body: bytes, status: int, reason: str
) -> None:
    h = {"Content-Type": "application/json", **auth(api.keys["bpbd"]), **(headers or {})}
    r = await api.client.post("/api/alerts", content=body, headers=h)
    assert r.status_code == status, r.text
    assert reason in json.dumps(r.json()["detail"])
    assert await api.store.alerts() == []


@pytest.mark.parametrize(
    ("name", "change", "reason"), INVALID_FIELDS, ids=[f[0] for f in INVALID_FIELDS]
)
async def test_invalid_fields_are_refused_with_422_naming_the_field(
    api: Api, name: str, change: dict[str, object], reason: str
) -> None:
    payload = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    r = await api.client.post("/api/alerts", json=payload, headers=auth(api.keys["bpbd"]))
    assert r.status_code == 422, r.text
    assert reason in json.dumps(r.json()["detail"]), r.json()
    assert await api.store.alerts() == []


async def test_keys_are_required_valid_and_live(api: Api) -> None:
    for headers, status in (
        ({}, 401),
        (auth("pnt_not-a-real-key"), 401),
        (auth("something else"), 401),
        (auth(api.keys["revoked"]), 401),
    ):
        r = await api.client.post("/api/alerts", json=GOOD, headers=headers)
        assert r.status_code == status and r.headers.get("www-authenticate") == "Bearer"
    rows = await api.store.execute("SELECT hash FROM api_keys")
    assert all(api.keys["bpbd"] not in str(r[0]) for r in rows)  # only hashes at rest


def cap(
    identifier: str,
    *,
    status: str = "Actual",
    msg: str = "Alert",
    refs: str = "",
    area: str = "Kec. Kuta, Kab. Badung",
    severity: str = "Severe",
    extra: str = "",
) -> bytes:
    references = f"<references>{refs}</references>" if refs else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{CAP_NS}">
  <identifier>{identifier}</identifier>
  <sender>bmkg@bmkg.go.id</sender>
  <sent>2026-11-23T14:00:00+08:00</sent>
  <status>{status}</status>
  <msgType>{msg}</msgType>
  <scope>Public</scope>
  {references}
  <info>
    <language>en</language><category>Met</category><event>Heavy rain</event>
    <urgency>Expected</urgency><severity>Minor</severity><certainty>Likely</certainty>
    <headline>Heavy rain</headline><area><areaDesc>{area}</areaDesc></area>
  </info>
  <info>
    <language>id</language><category>Met</category><event>Banjir</event>
    <urgency>Immediate</urgency><severity>{severity}</severity><certainty>Observed</certainty>
    <expires>2099-11-23T20:00:00+08:00</expires>
    <headline>Peringatan dini banjir</headline>{extra}
    <area><areaDesc>{area}</areaDesc></area>
  </info>
</alert>""".encode()


async def post_cap(api: Api, body: bytes, ctype: str = "application/xml") -> httpx.Response:
    return await api.client.post(
        "/api/cap", content=body, headers={"Content-Type": ctype, **auth(api.keys["bpbd"])}
    )


async def test_cap_alert_update_and_cancel(api: Api) -> None:
    r = await post_cap(api, cap("BMKG-1", area="Kec. Kuta dan Kec. Denpasar Barat"))
    assert r.status_code == 201, r.text
    first = r.json()
    assert len(first) == 2  # one per kecamatan named
    alerts = {a.kecamatan: a for a in await api.store.alerts()}
    kuta = alerts["Kuta"]
    assert kuta.kind == IncidentKind.FLOOD and kuta.severity == Severity.HIGH  # from the id info
    assert kuta.title == "Peringatan dini banjir" and kuta.external_id == "BMKG-1|Kuta"
    ref = "bmkg@bmkg.go.id,BMKG-1,2026-11-23T14:00:00+08:00"
    r = await post_cap(api, cap("BMKG-2", msg="Update", refs=ref, severity="Extreme",
                                area="Kec. Kuta dan Kec. Denpasar Barat"))  # fmt: skip
    assert r.status_code == 201
    inc = await api.store.incident(first[0]["incident_id"])
    assert inc is not None and inc.severity == Severity.CRITICAL
    both = "Kec. Kuta dan Kec. Denpasar Barat"
    cancel = cap("BMKG-3", msg="Cancel", refs=ref.replace("-1", "-2"), area=both)
    r = await post_cap(api, cancel, "application/cap+xml")
    assert r.status_code == 201
    for item in first:
        inc = await api.store.incident(item["incident_id"])
        assert inc is not None and inc.state == IncidentState.RESOLVED and not inc.active


async def test_a_warning_for_another_kabupaten_opens_nothing_in_a_kecamatan_of_ours(
    api: Api,
) -> None:
    # The case: the demo has a kecamatan "Timur"; BMKG warns "... - Lombok Timur".
    api.deps.kecamatan = ["Kota", "Barat", "Timur", "Utara", "Selatan"]
    bmkg = cap("BMKG-LOTIM", area="Selong, Sakra, Masbagik, Aikmel - Lombok Timur")
    r = await post_cap(api, bmkg)
    assert r.status_code == 201, r.text
    assert [a.kecamatan for a in await api.store.alerts()] == [None]
    incidents = await api.store.incidents(active=True)
    assert len(incidents) == 1 and incidents[0].kecamatan is None
    # The same deployment still places a warning that names its own kecamatan.
    r = await post_cap(api, cap("BMKG-TIMUR", area="Kec. Timur, Kab. Contoh"))
    assert r.status_code == 201, r.text
    placed = await api.store.incident(r.json()[0]["incident_id"])
    assert placed is not None and placed.kecamatan == "Timur"


async def test_cap_test_and_exercise_are_kept_but_never_routed(api: Api) -> None:
    for status, expect in (("Test", AlertStatus.TEST), ("Exercise", AlertStatus.EXERCISE)):
        r = await post_cap(api, cap(f"X-{status}", status=status))
        assert r.status_code == 201
        inc = await api.store.incident(r.json()[0]["incident_id"])
        assert inc is not None and inc.exercise and inc.routed_opds == ()
        assert (await api.store.alert(r.json()[0]["alert_id"])).status == expect  # type: ignore[union-attr]


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol3;</identifier></alert>"""


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (XXE, 400, "DTDs and entities are not allowed"),
        (LAUGHS, 400, "DTDs and entities are not allowed"),
        (b"<alert", 400, "not well-formed"),
        (b"<rss/>", 422, "not a CAP 1.2"),
        (cap("A").replace(b"<sender>bmkg@bmkg.go.id</sender>", b""), 422, "<sender> is required"),
        (cap("A", msg="Ack"), 422, "is not an alert"),
        (cap("A", status="Maybe"), 422, "unknown <status>"),
        (cap("A").replace(b"2026-11-23T14:00:00+08:00", b"yesterday"), 422, "not a CAP date-time"),
    ],
    ids=["xxe", "billion-laughs", "broken", "not-cap", "no-sender", "ack", "status", "sent"],
)
async def test_dangerous_or_broken_cap_is_refused(
    api: Api, body: bytes, status: int, reason: str
) -> None:
    r = await post_cap(api, body)
    assert r.status_code == status, r.text
    assert reason in json.dumps(r.json()["detail"])
    assert await api.store.alerts() == []


async def test_an_opd_answers_only_incidents_routed_to_it(api: Api) -> None:
    r = await api.client.post("/api/alerts", json=GOOD, headers=auth(api.keys["bpbd"]))
    inc_id = r.json()["incident_id"]
    url = f"/api/incidents/{inc_id}/actions"
    other = await api.client.post(
        url, json={"kind": "acknowledge"}, headers=auth(api.keys["dishub"])
    )
    assert other.status_code == 404  # not routed to Dishub: not even its existence is told
    ok = await api.client.post(url, json={"kind": "acknowledge", "note": "Tim meluncur"},
                               headers=auth(api.keys["bpbd"]))  # fmt: skip
    assert ok.status_code == 200 and ok.json()["state"] == "acknowledged"
    bad = await api.client.post(url, json={"kind": "routed"}, headers=auth(api.keys["bpbd"]))
    assert bad.status_code == 403  # the system writes routing lines, nobody sends them
    await api.client.post(url, json={"kind": "resolve"}, headers=auth(api.keys["bpbd"]))
    again = await api.client.post(url, json={"kind": "start"}, headers=auth(api.keys["bpbd"]))
    assert again.status_code == 409 and "resolved" in again.json()["detail"]
    log = (await api.client.get(f"/api/incidents/{inc_id}/actions")).json()
    assert [(a["kind"], a["actor"]) for a in log] == [
        ("routed", "system"),
        ("acknowledge", "opd:bpbd"),
        ("resolve", "opd:bpbd"),
    ]


async def test_schema_is_published(api: Api) -> None:
    schemas = (await api.client.get("/api/schema")).json()
    assert {"event", "incident", "alert", "incidentaction", "delivery"} <= set(schemas)
    assert "alert.received" in json.dumps(schemas["event"])
