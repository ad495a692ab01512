"""The incident desk on a real SQLite store: correlation, CAP updates/cancels, the workflow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from events.config import Route, RouteMatch
from events.correlate import CorrelationConfig, Place, same_place
from events.desk import IncidentDesk, TransitionError
from events.model import (
    ActionKind,
    Alert,
    AlertMsgType,
    AlertStatus,
    AnyEvent,
    EventType,
    IncidentEvent,
    IncidentKind,
    IncidentState,
    Observation,
    ObservationPhase,
    Severity,
    SourceKind,
)
from events.store import Store

T0 = datetime.fromisoformat("2026-11-23T02:00:00+00:00")


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def desk(tmp_path: Path, clock: Clock) -> AsyncIterator[tuple[IncidentDesk, list[AnyEvent]]]:
    store = Store(tmp_path / "desk.db")
    await store.open()
    published: list[AnyEvent] = []
    routes = [
        Route(match=RouteMatch(kinds=[IncidentKind.FLOOD]), opds=["bpbd"]),
        Route(
            match=RouteMatch(kinds=[IncidentKind.CROWD], min_severity=Severity.HIGH),
            opds=["polres"],
            **{"continue": True},
        ),
        Route(match=RouteMatch(kinds=[IncidentKind.CROWD]), opds=["satpol-pp"]),
        Route(match=RouteMatch(), opds=["bpbd"]),
    ]
    coords = {"gudang": (-8.6500, 115.2160), "pasar": (-8.6505, 115.2163)}
    yield (
        IncidentDesk(store, published.append, routes, CorrelationConfig(), coords, clock),
        published,
    )
    await store.close()


def detection(kind: IncidentKind = IncidentKind.FLOOD, **kw: object) -> Observation:
    fields: dict[str, object] = dict(
        phase=ObservationPhase.OPENED, rule="flood-0", kind=kind, severity=Severity.MEDIUM,
        title="Genangan", camera_id="gudang", zone_id="lantai", kecamatan="Denpasar Barat",
        desa="Pemecutan", started_at=T0, at=T0,
    )  # fmt: skip
    if "updated_at" in kw:
        kw["at"] = kw.pop("updated_at")
    fields.update(kw)
    return Observation(**fields)  # type: ignore[arg-type]


def alert(**kw: object) -> Alert:
    fields: dict[str, object] = dict(
        source=SourceKind.CITIZEN, sender="bpbd", kind=IncidentKind.FLOOD,
        severity=Severity.MEDIUM, title="Banjir di gudang", kecamatan="Denpasar Barat",
        desa="Pemecutan", sent_at=T0,
    )  # fmt: skip
    fields.update(kw)
    return Alert(**fields)  # type: ignore[arg-type]


def opened(obs: Observation) -> Observation:
    return obs


def closed_at(obs: Observation, at: datetime) -> Observation:
    return obs.model_copy(update={"phase": ObservationPhase.CLOSED, "at": at})


def test_places() -> None:
    cam = Place(camera_id="a", zone_id="z1", kecamatan="k", desa="d")
    assert same_place(cam, Place(camera_id="a", zone_id="z1"), 300) == "kamera a"
    assert same_place(cam, Place(camera_id="a", zone_id="z2", kecamatan="k", desa="d"), 300) is None
    assert same_place(cam, Place(kecamatan="k", desa="d"), 300) == "desa d"
    assert same_place(cam, Place(kecamatan="k"), 300) == "kecamatan k"  # area-wide report
    assert same_place(cam, Place(kecamatan="k", desa="other"), 300) is None
    assert same_place(cam, Place(kecamatan="x"), 300) is None
    near = Place(lat=-8.65, lon=115.216)
    assert same_place(near, Place(lat=-8.6505, lon=115.2163), 300) == "65 m"
    assert same_place(near, Place(lat=-8.66, lon=115.216), 300) is None  # 1.1 km


async def test_detection_opens_routes_and_closes(
    desk: tuple[IncidentDesk, list[AnyEvent]], clock: Clock
) -> None:
    d, published = desk
    det = detection()
    inc = await d.observe(opened(det))
    assert inc.sources[0].ref == det.id and inc.routed_opds == ("bpbd",)
    assert inc.sources[0].kind == SourceKind.CAMERA and inc.lat == -8.65
    assert [a.kind for a in await d.store.actions(inc.id)] == [ActionKind.ROUTED]
    clock.advance(30)
    after = await d.observe(closed_at(det, clock.t))
    assert not after.active and after.ended_at == clock.t and after.state == IncidentState.NEW
    types = [e.type for e in published if isinstance(e, IncidentEvent)]
    assert types == [EventType.INCIDENT_OPENED, EventType.INCIDENT_CLOSED]


async def test_report_and_detection_at_one_place_become_one_incident(
    desk: tuple[IncidentDesk, list[AnyEvent]], clock: Clock
) -> None:
    d, _ = desk
    first = await d.receive_alert(alert())
    clock.advance(60)
    inc = await d.observe(opened(detection(started_at=clock.t, updated_at=clock.t)))
    assert inc.id == first.incident_id
    assert [s.kind for s in inc.sources] == [SourceKind.CITIZEN, SourceKind.CAMERA]
    # a second camera 64 m away (no desa given) joins by distance
    other = detection(
        camera_id="pasar", zone_id=None, desa=None, started_at=clock.t, updated_at=clock.t
    )
    inc = await d.observe(opened(other))
    assert inc.id == first.incident_id and len(inc.sources) == 3
    assert len(await d.store.incidents()) == 1
    merged = [a.note for a in await d.store.actions(inc.id) if a.kind == ActionKind.MERGED]
    assert merged == ["Genangan (desa pemecutan)", "Genangan (65 m)"]
    # another kind at the same place, or the same kind elsewhere, is a different incident
    crowd = await d.observe(opened(detection(IncidentKind.CROWD, zone_id="pintu")))
    far = await d.receive_alert(alert(kecamatan="Denpasar Utara", desa="Peguyangan"))
    assert len({inc.id, crowd.id, far.incident_id}) == 3


async def test_cap_flood_warning_raises_the_camera_flood_incident(
    desk: tuple[IncidentDesk, list[AnyEvent]], clock: Clock
) -> None:
    d, _ = desk
    cam = await d.observe(opened(detection(severity=Severity.MEDIUM)))
    cap = alert(
        source=SourceKind.CAP, sender="bmkg@bmkg.go.id", external_id="CAP-1", desa=None,
        title="Peringatan dini banjir", severity=Severity.MEDIUM,
    )  # fmt: skip
    receipt = await d.receive_alert(cap)
    inc = await d.store.incident(cam.id)
    assert receipt.incident_id == cam.id and inc is not None
    assert inc.severity == Severity.HIGH  # medium camera + corroborating warning
    # the same CAP message again is a duplicate: nothing new
    again = await d.receive_alert(cap.model_copy(update={"id": "alt_other"}))
    assert again.duplicate and again.incident_id == cam.id
    assert len((await d.store.incident(cam.id)).sources) == 2  # type: ignore[union-attr]


async def test_cap_update_and_cancel_follow_references(
    desk: tuple[IncidentDesk, list[AnyEvent]], clock: Clock
) -> None:
    d, _ = desk
    base = dict(source=SourceKind.CAP, sender="bmkg", desa=None, kecamatan="Kuta")
    first = await d.receive_alert(alert(external_id="A1", severity=Severity.MEDIUM, **base))
    clock.advance(600)
    upd = await d.receive_alert(
        alert(
            external_id="A2",
            msg_type=AlertMsgType.UPDATE,
            references=("A1",),
            severity=Severity.HIGH,
            title="Banjir meluas",
            **base,
        )
    )
    assert upd.incident_id == first.incident_id
    inc = await d.store.incident(first.incident_id)  # type: ignore[arg-type]
    assert inc is not None and inc.severity == Severity.HIGH and inc.title == "Banjir meluas"
    assert [s.active for s in inc.sources] == [False, True]
    clock.advance(600)
    await d.receive_alert(
        alert(external_id="A3", msg_type=AlertMsgType.CANCEL, references=("A2",), **base)
    )
    inc = await d.store.incident(first.incident_id)  # type: ignore[arg-type]
    assert inc is not None and not inc.active and inc.state == IncidentState.RESOLVED
    # a Cancel for something never received opens nothing
    lone = await d.receive_alert(
        alert(external_id="B9", msg_type=AlertMsgType.CANCEL, references=("B1",), **base)
    )
    assert lone.incident_id is None


async def test_exercise_alerts_are_kept_apart_and_not_routed(
    desk: tuple[IncidentDesk, list[AnyEvent]],
) -> None:
    d, _ = desk
    real = await d.receive_alert(alert())
    drill = await d.receive_alert(alert(status=AlertStatus.EXERCISE))
    assert real.incident_id != drill.incident_id
    inc = await d.store.incident(drill.incident_id)  # type: ignore[arg-type]
    assert inc is not None and inc.exercise and inc.routed_opds == ()


async def test_alert_expiry_ends_its_incident(
    desk: tuple[IncidentDesk, list[AnyEvent]], clock: Clock
) -> None:
    d, _ = desk
    r = await d.receive_alert(alert(expires_at=T0 + timedelta(hours=1)))
    clock.advance(1800)
    assert await d.expire_alerts() == 0
    clock.advance(1801)
    assert await d.expire_alerts() == 1
    inc = await d.store.incident(r.incident_id)  # type: ignore[arg-type]
    assert inc is not None and not inc.active


async def test_workflow_state_machine_and_activity_log(
    desk: tuple[IncidentDesk, list[AnyEvent]], clock: Clock
) -> None:
    d, _ = desk
    inc = await d.observe(opened(detection(IncidentKind.CROWD, severity=Severity.HIGH)))
    assert inc.routed_opds == ("polres", "satpol-pp")
    clock.advance(40)
    inc = await d.act(inc.id, ActionKind.ACKNOWLEDGE, "budi", opd_id="polres")
    assert inc.state == IncidentState.ACKNOWLEDGED and inc.acknowledged_at == clock.t
    clock.advance(20)
    await d.act(inc.id, ActionKind.ACKNOWLEDGE, "sari", opd_id="satpol-pp")
    await d.act(inc.id, ActionKind.ASSIGN, "sari", owner="regu-2")
    await d.act(inc.id, ActionKind.COMMENT, "sari", note="Regu 2 menuju lokasi")
    inc = await d.act(inc.id, ActionKind.START, "sari")
    with pytest.raises(TransitionError):
        await d.act(inc.id, ActionKind.REOPEN, "sari")
    clock.advance(600)
    inc = await d.act(inc.id, ActionKind.RESOLVE, "budi", note="Massa bubar")
    assert (
        inc.state == IncidentState.RESOLVED and inc.closed_at == clock.t and inc.owner == "regu-2"
    )
    with pytest.raises(TransitionError):
        await d.act(inc.id, ActionKind.ACKNOWLEDGE, "x")
    log = await d.store.actions(inc.id)
    assert [(a.kind, a.actor) for a in log] == [
        (ActionKind.ROUTED, "system"), (ActionKind.ROUTED, "system"),
        (ActionKind.ACKNOWLEDGE, "budi"), (ActionKind.ACKNOWLEDGE, "sari"),
        (ActionKind.ASSIGN, "sari"), (ActionKind.COMMENT, "sari"), (ActionKind.START, "sari"),
        (ActionKind.RESOLVE, "budi"),
    ]  # fmt: skip
    times = {r[0]: r for r in await d.store.response_times()}
    assert times["polres"][3] == (T0 + timedelta(seconds=40)).isoformat()
    assert times["satpol-pp"][3] == (T0 + timedelta(seconds=60)).isoformat()
    assert times["polres"][4] == times["satpol-pp"][4] == clock.t.isoformat()
    assert [i.id for i in await d.store.incidents(opd_id="satpol-pp")] == [inc.id]
    assert await d.store.incidents(opd_id="bpbd") == []


async def test_a_warning_sent_hours_ago_still_valid_joins_a_new_camera_incident(
    desk: tuple[IncidentDesk, list[AnyEvent]], clock: Clock
) -> None:
    d, _ = desk
    cap = alert(source=SourceKind.CAP, sender="bmkg", external_id="W", desa=None,
                expires_at=T0 + timedelta(hours=24))  # fmt: skip
    r = await d.receive_alert(cap)
    clock.advance(6 * 3600)  # the camera sees water six hours later, the warning still holds
    inc = await d.observe(opened(detection(started_at=clock.t, updated_at=clock.t)))
    assert inc.id == r.incident_id
    assert [s.kind for s in inc.sources] == [SourceKind.CAP, SourceKind.CAMERA]
    assert inc.severity == Severity.HIGH  # medium camera flood confirmed by the warning


async def test_an_old_report_does_not_join_a_later_incident(
    desk: tuple[IncidentDesk, list[AnyEvent]], clock: Clock
) -> None:
    d, _ = desk
    clock.advance(6 * 3600)
    cam = await d.observe(opened(detection(started_at=clock.t, updated_at=clock.t)))
    stale = await d.receive_alert(alert(external_id="OLD", sent_at=T0))  # 6 h old, no expiry
    assert stale.incident_id != cam.id
