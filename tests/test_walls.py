"""Wall views: presets pushed by operators and switched by incident triggers, over the real bus,
hub, HTTP API and WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from events.bus import MemoryBus
from events.model import EventType, Incident, IncidentEvent, IncidentKind, Severity
from events.store import Store
from tests.conftest import serve_asgi
from tests.test_hub import NoFrames
from tests.test_model import make_incident
from wallboard.app import CameraInfo, WallboardDeps, create_app
from wallboard.auth import SESSION_COOKIE, Accounts, Role
from wallboard.config import Preset, PresetTrigger, UiConfig, Wall
from wallboard.hub import Hub
from wallboard.live import LiveFrames
from wallboard.walls import WallDirector

WALL = Wall(
    id="utama",
    layout="2x2",
    cameras=["cam-1", "cam-2"],
    presets=[
        Preset(id="banjir", name="Pantauan banjir", layout="1x1", cameras=["cam-2"]),
        Preset(id="kota", layout="3x3", cameras=["cam-1", "cam-2"]),
    ],
    on_incident=[
        PresetTrigger(kinds=[IncidentKind.FLOOD], min_severity=Severity.HIGH, preset="banjir"),
    ],
)


def event(kind: EventType, incident: Incident) -> IncidentEvent:
    return IncidentEvent(type=kind, incident=incident)


def flood(severity: Severity = Severity.HIGH) -> Incident:
    return make_incident(kind=IncidentKind.FLOOD, severity=severity, camera_id="cam-2")


async def no_incidents() -> list[Incident]:
    return []


def test_trigger_switches_and_reverts_when_its_incidents_close() -> None:
    hub = Hub(no_incidents, {})
    walls = WallDirector([WALL], hub)
    walls.on_incident(event(EventType.INCIDENT_OPENED, flood(Severity.MEDIUM)))
    assert walls.views["utama"].preset is None  # below min_severity
    walls.on_incident(event(EventType.INCIDENT_OPENED, make_incident()))  # a crowd: no trigger
    assert walls.views["utama"].preset is None
    first, second = flood(), flood(Severity.CRITICAL)
    walls.on_incident(event(EventType.INCIDENT_OPENED, first))
    assert walls.views["utama"].preset == "banjir"
    assert walls.views["utama"].by == f"incident:{first.id}"
    walls.on_incident(event(EventType.INCIDENT_OPENED, second))
    walls.on_incident(event(EventType.INCIDENT_CLOSED, first))
    assert walls.views["utama"].preset == "banjir"  # the second flood still holds it
    walls.on_incident(event(EventType.INCIDENT_CLOSED, second))
    assert walls.views["utama"].preset is None  # back to the wall's own layout


def test_an_operators_choice_is_not_reverted_by_closing_incidents() -> None:
    hub = Hub(no_incidents, {})
    walls = WallDirector([WALL], hub)
    inc = flood()
    walls.on_incident(event(EventType.INCIDENT_OPENED, inc))
    walls.choose("utama", "banjir", "budi")
    walls.on_incident(event(EventType.INCIDENT_CLOSED, inc))
    assert walls.views["utama"].preset == "banjir"
    assert walls.views["utama"].by == "operator:budi"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[str, Store, Accounts, MemoryBus]]:
    store = Store(tmp_path / "walls.db")
    await store.open()
    bus = MemoryBus()
    hub = Hub(no_incidents, {})
    hub.start(await bus.subscribe("wallboard"))
    director = WallDirector([WALL], hub)
    director.start(await bus.subscribe("walls"))
    accounts = Accounts(store)
    deps = WallboardDeps(
        store=store, hub=hub, live=LiveFrames(NoFrames()),
        cameras=[CameraInfo(id=c, name=c, url_masked="rtsp://h/x") for c in ("cam-1", "cam-2")],
        walls=[WALL], ui=UiConfig(), snapshot_dir=None, clip_dir=None, health=lambda: {},
        accounts=accounts, director=director,
    )  # fmt: skip
    async with serve_asgi(create_app(deps)) as port:
        yield f"127.0.0.1:{port}", store, accounts, bus
    await director.stop()
    await hub.stop()
    await bus.close()
    await store.close()


async def cookie(accounts: Accounts, role: str, opd: str | None = None) -> dict[str, str]:
    name = f"w-{role}"
    await accounts.add(name, "walls-password-1", Role(role), opd_id=opd)
    found = await accounts.login(name, "walls-password-1")
    assert found is not None
    return {SESSION_COOKIE: found[1]}


async def test_operator_pushes_a_preset_to_every_screen_of_the_wall(
    site: tuple[str, Store, Accounts, MemoryBus],
) -> None:
    host, _store, accounts, bus = site
    viewer = await cookie(accounts, "viewer")
    operator = await cookie(accounts, "operator")
    opd = await cookie(accounts, "opd", "bpbd")
    header = {"Cookie": f"{SESSION_COOKIE}={viewer[SESSION_COOKIE]}"}
    async with websockets.connect(f"ws://{host}/ws", additional_headers=header) as screen:
        snap = json.loads(await asyncio.wait_for(screen.recv(), 5))
        assert snap["state"]["wall:utama"]["preset"] is None
        for who, expected in ((viewer, 403), (opd, 403), (operator, 200)):
            async with httpx.AsyncClient(base_url=f"http://{host}", cookies=who) as http:
                r = await http.post("/api/walls/utama/view", json={"preset": "kota"})
                assert r.status_code == expected, r.text
        msg = json.loads(await asyncio.wait_for(screen.recv(), 5))
        assert msg["type"] == "wall.view" and msg["preset"] == "kota"
        assert msg["by"] == "operator:w-operator" and msg["seq"] == snap["seq"] + 1
        # A flood routed through the bus switches the wall by its trigger.
        inc = flood()
        await bus.publish(event(EventType.INCIDENT_OPENED, inc))
        while (msg := json.loads(await asyncio.wait_for(screen.recv(), 5)))["type"] != "wall.view":
            pass
        assert msg["preset"] == "banjir" and msg["by"] == f"incident:{inc.id}"
    async with httpx.AsyncClient(base_url=f"http://{host}", cookies=operator) as http:
        walls = (await http.get("/api/walls")).json()
        assert walls[0]["view"]["preset"] == "banjir"
        assert [p["id"] for p in walls[0]["presets"]] == ["banjir", "kota"]
        bad = await http.post("/api/walls/utama/view", json={"preset": "nope"})
        assert bad.status_code == 404 and "no preset 'nope'" in bad.json()["detail"]
        assert (await http.post("/api/walls/utama/view", json={})).status_code == 422
    log = await accounts.audit_log()
    assert any(a["action"] == "wall.view" and a["username"] == "w-operator" for a in log)
