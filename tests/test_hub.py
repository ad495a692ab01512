"""WebSocket hub over a real uvicorn server and real WebSocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from events.bus import MemoryBus
from events.model import (
    CameraState,
    CameraStatus,
    CameraStatusEvent,
    EventType,
    IncidentEvent,
    utcnow,
)
from events.store import Store
from tests.conftest import serve_asgi
from tests.test_model import make_incident
from wallboard.app import CameraInfo, WallboardDeps, create_app
from wallboard.auth import SESSION_COOKIE, Accounts, Role
from wallboard.config import UiConfig, Wall
from wallboard.hub import Hub
from wallboard.live import LiveFrames


class NoFrames:
    def latest_image(self, camera_id: str) -> None:
        return None

    def watched(self, camera_id: str) -> None:
        return None


class Harness:
    def __init__(
        self, store: Store, bus: MemoryBus, hub: Hub, port: int, accounts: Accounts
    ) -> None:
        self.store, self.bus, self.hub, self.port = store, bus, hub, port
        self.accounts = accounts
        self.tokens: dict[str, str] = {}

    def url(self, since: int | None = None) -> str:
        return f"ws://127.0.0.1:{self.port}/ws" + (f"?since={since}" if since is not None else "")

    async def login(self, role: str = "viewer", opd: str | None = None) -> dict[str, str]:
        key = f"{role}-{opd}"
        if key not in self.tokens:
            name = f"u-{role}-{opd or 'cc'}"
            await self.accounts.add(name, "hub-password-1", Role(role), opd_id=opd)
            found = await self.accounts.login(name, "hub-password-1")
            assert found is not None
            self.tokens[key] = found[1]
        return {"Cookie": f"{SESSION_COOKIE}={self.tokens[key]}"}

    async def connect(
        self, since: int | None = None, role: str = "viewer", opd: str | None = None
    ) -> websockets.ClientConnection:
        return await websockets.connect(
            self.url(since), additional_headers=await self.login(role, opd)
        )

    async def publish(self, event: object) -> None:
        await self.store.append(event)  # type: ignore[arg-type]
        await self.bus.publish(event)  # type: ignore[arg-type]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    store = Store(tmp_path / "hub.db")
    await store.open()
    bus = MemoryBus()

    async def open_incidents() -> list:  # type: ignore[type-arg]
        return await store.incidents(active=True)

    accounts = Accounts(store)
    hub = Hub(open_incidents, {"walls": [{"id": "utama"}]}, history=8)
    hub.start(await bus.subscribe("wallboard"))
    deps = WallboardDeps(
        store=store,
        hub=hub,
        live=LiveFrames(NoFrames()),
        cameras=[CameraInfo(id="cam-1", name="Satu", url_masked="rtsp://h/x")],
        walls=[Wall(id="utama")],
        ui=UiConfig(),
        snapshot_dir=None,
        clip_dir=None,
        health=lambda: {},
        accounts=accounts,
    )
    async with serve_asgi(create_app(deps)) as port:
        yield Harness(store, bus, hub, port, accounts)
    await hub.stop()
    await bus.close()
    await store.close()


def opened(**kw: object) -> IncidentEvent:
    return IncidentEvent(type=EventType.INCIDENT_OPENED, incident=make_incident(**kw))


async def recv(ws: websockets.ClientConnection) -> dict:  # type: ignore[type-arg]
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def test_snapshot_then_deltas(harness: Harness) -> None:
    first = opened()
    await harness.publish(first)
    await asyncio.sleep(0.05)
    async with await harness.connect() as ws:
        snap = await recv(ws)
        assert snap["type"] == "snapshot" and snap["seq"] == 1
        assert [i["id"] for i in snap["incidents"]] == [first.incident.id]
        assert snap["walls"] == [{"id": "utama"}]
        status = CameraStatusEvent(
            status=CameraStatus(
                camera_id="cam-1", state=CameraState.OFFLINE, url_masked="rtsp://h/x", at=utcnow()
            )
        )
        await harness.publish(status)
        delta = await recv(ws)
        assert delta["seq"] == 2 and delta["type"] == "camera.status"
        assert delta["event"]["status"]["state"] == "offline"


async def test_resume_gets_exactly_what_was_missed(harness: Harness) -> None:
    async with await harness.connect() as ws:
        seq = (await recv(ws))["seq"]
    missed = [opened() for _ in range(3)]
    for event in missed:
        await harness.publish(event)
    await asyncio.sleep(0.05)
    async with await harness.connect(since=seq) as ws:
        got = [await recv(ws) for _ in range(3)]
        assert [g["seq"] for g in got] == [seq + 1, seq + 2, seq + 3]
        assert [g["event"]["incident"]["id"] for g in got] == [e.incident.id for e in missed]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)


async def test_resume_too_old_gets_snapshot(harness: Harness) -> None:
    for _ in range(12):  # history keeps 8
        await harness.publish(opened())
    await asyncio.sleep(0.05)
    async with await harness.connect(since=1) as ws:
        snap = await recv(ws)
        assert snap["type"] == "snapshot" and snap["seq"] == 12 and len(snap["incidents"]) == 12


async def test_slow_client_is_cut_off_not_waited_for() -> None:
    async def nothing() -> list:  # type: ignore[type-arg]
        return []

    hub = Hub(nothing, {}, client_queue=4)
    slow, _ = await hub.connect(None)
    fast, _ = await hub.connect(None)
    for _ in range(4):
        hub.publish(opened())
        await fast.queue.get()
    assert not slow.cut_off.is_set()
    hub.publish(opened())  # the 5th message does not fit the slow client's queue
    assert slow.cut_off.is_set() and not fast.cut_off.is_set()
    assert hub.client_count == 1
    with contextlib.suppress(Exception):
        await hub.stop()


async def test_a_socket_without_login_is_refused(harness: Harness) -> None:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with websockets.connect(harness.url()) as ws:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_an_opd_user_hears_only_its_own_incidents(harness: Harness) -> None:
    mine = opened(routed_opds=("bpbd",), title="Banjir")
    other = opened(routed_opds=("dishub",), title="Macet")
    await harness.publish(mine)
    await harness.publish(other)
    await asyncio.sleep(0.05)
    async with await harness.connect(role="opd", opd="bpbd") as ws:
        snap = await recv(ws)
        assert [i["id"] for i in snap["incidents"]] == [mine.incident.id]
        later_other = opened(routed_opds=("dishub",))
        later_mine = opened(routed_opds=("satpol-pp", "bpbd"))
        await harness.publish(later_other)
        await harness.publish(later_mine)
        msg = await recv(ws)
        assert msg["event"]["incident"]["id"] == later_mine.incident.id  # the other never came
    async with await harness.connect() as ws:  # command-center staff see both
        snap = await recv(ws)
        assert len(snap["incidents"]) == 4


async def test_activity_and_rates_are_hints_outside_the_numbering(harness: Harness) -> None:
    async with await harness.connect() as ws:
        snap = await recv(ws)
        assert snap["activity"] == [] and snap["fps"] == {}
        harness.hub.set_activity({"cam-1"})
        harness.hub.set_activity({"cam-1"})  # unchanged: not sent again
        harness.hub.send_rates({"cam-1": 9.87}, {"cam-1": ("keyframes", 0.5)})
        activity, rates = await recv(ws), await recv(ws)
        assert activity == {"type": "camera.activity", "activity": ["cam-1"]}
        assert rates == {"type": "camera.rates", "fps": {"cam-1": 9.9},
                         "decode": {"cam-1": {"mode": "keyframes", "fps": 0.5}}}  # fmt: skip
        assert harness.hub.seq == snap["seq"]  # hints take no sequence number
        beat = json.loads(harness.hub.heartbeat())
        assert beat["activity"] == ["cam-1"]
    async with await harness.connect() as ws:
        snap = await recv(ws)
        assert snap["activity"] == ["cam-1"] and snap["fps"] == {"cam-1": 9.9}


async def test_history_is_bounded_by_size_as_well_as_count() -> None:
    """Incident messages are kilobytes each: the replay history stops at its byte budget (a
    history filling for most of an hour reads as a leak on a 24/7 box), and a resume from
    further back than it holds gets a fresh snapshot."""

    async def nothing() -> list:  # type: ignore[type-arg]
        return []

    one = len(json.dumps({"seq": 1, "type": "incident.opened",
                          "event": opened().model_dump(mode="json")}))  # fmt: skip
    hub = Hub(nothing, {}, history=1000, history_bytes=5 * one)
    for _ in range(40):
        hub.publish(opened())
    assert 3 <= len(hub._history) <= 5
    assert hub._history_size == sum(len(m) for _, m, _, _ in hub._history) <= 5 * one
    oldest = hub._history[0][0]
    _, first = await hub.connect(since=oldest - 1)
    assert [json.loads(m)["seq"] for m in first] == list(range(oldest, 41))
    _, first = await hub.connect(since=10)
    assert [json.loads(m)["type"] for m in first] == ["snapshot"]


async def test_history_is_bounded_by_age() -> None:
    """A screen resumes from a blip with exactly what it missed; deltas older than the
    history's window are gone (the level stops rising after that window, not after an hour),
    and a screen back from further away gets a snapshot."""

    async def nothing() -> list:  # type: ignore[type-arg]
        return []

    hub = Hub(nothing, {}, history=1000, history_s=1.0)
    for _ in range(5):
        hub.publish(opened())
    _, first = await hub.connect(since=2)
    assert [json.loads(m)["seq"] for m in first] == [3, 4, 5]
    await asyncio.sleep(1.2)
    for _ in range(3):
        hub.publish(opened())
    assert [seq for seq, *_ in hub._history] == [6, 7, 8]
    _, first = await hub.connect(since=5)
    assert [json.loads(m)["seq"] for m in first] == [6, 7, 8]
    _, first = await hub.connect(since=3)
    assert [json.loads(m)["type"] for m in first] == ["snapshot"]
