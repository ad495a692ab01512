"""Duty rosters (piket), the working calendar and SLA clocks, with real parts: Indonesian
holidays from the `holidays` library, a real SMTP server (who was told), SQLite (what was
stored), the wall's HTTP API; a clock the test moves."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from events.calendar import WorkCalendar
from events.config import CalendarConfig, NotifyConfig, Opd, Route, Smtp
from events.desk import IncidentDesk
from events.model import (
    ActionKind,
    AnyEvent,
    EventType,
    Incident,
    IncidentEvent,
    IncidentKind,
    Observation,
    ObservationPhase,
    Severity,
)
from events.notify.dispatcher import Dispatcher
from events.roster import duty_board, next_change, on_duty
from events.routing import route
from events.scoreboard import compute
from events.store import Store
from pantau.config import ConfigError, load
from tests.conftest import Mailbox, ManualClock, bearer, serve_asgi
from wallboard.app import create_app
from wallboard.auth import Accounts, Role
from wallboard.config import UiConfig, Wall
from wallboard.deps import CameraInfo, WallboardDeps
from wallboard.hub import Hub
from wallboard.live import LiveFrames

WITA = ZoneInfo("Asia/Makassar")
PASSWORD = "piket-2026-aman"


def wita(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WITA)


CALENDAR = CalendarConfig(
    office_hours="08:00-16:00",
    extra_days_off=[{"date": "2026-12-31", "name": "Hari Jadi Kabupaten"}],  # type: ignore[list-item]
)
BPBD = {
    "id": "bpbd",
    "name": "BPBD",
    "contacts": [
        {
            "id": "kabid",
            "name": "Kabid Darlog",
            "role": "supervisor",
            "email": "kabid@bpbd.example.go.id",
            "phone": "+62 811 0000 009",
        },
    ],
    "roster": {
        "team": [
            {"id": "budi", "name": "Budi", "email": "budi@bpbd.example.go.id", "phone": "0811 1"},
            {"id": "sari", "name": "Sari", "email": "sari@bpbd.example.go.id", "phone": "0811 2"},
            {"id": "andi", "name": "Andi", "email": "andi@bpbd.example.go.id", "phone": "0811 3"},
        ],
        "shifts": {"pagi": "07:00-19:00", "malam": "19:00-07:00"},
        "starts": "2026-11-30",
        "weeks": [
            {"daily": {"pagi": "budi", "malam": "andi"}},
            {"daily": {"pagi": "sari", "malam": "andi"}, "sun": {"pagi": "budi"}},
        ],
        "holidays": {"pagi": "andi", "malam": "budi"},
        "exceptions": [
            {
                "date": "2026-12-09",
                "shift": "malam",
                "contacts": ["sari"],
                "note": "tukar dengan Andi",
            },
        ],
    },
}


def bpbd() -> Opd:
    return Opd.model_validate(BPBD)


def names(opd: Opd, cal: WorkCalendar, at: datetime) -> list[str]:
    return [d.contact.name for d in on_duty(opd, cal, at)]


# ---- the calendar ------------------------------------------------------------------------------
def test_calendar_has_indonesian_holidays_cuti_bersama_and_the_sites_days() -> None:
    cal = WorkCalendar(CALENDAR, "Asia/Makassar")
    christmas, joint, site = cal.info(date(2026, 12, 25)), cal.info(date(2026, 12, 24)), None
    assert not christmas.working and "Natal" in christmas.reason  # Indonesian names
    assert not joint.working and "Cuti Bersama" in joint.reason  # from the government category
    site = cal.info(date(2026, 12, 31))
    assert (site.working, site.reason) == (False, "Hari Jadi Kabupaten")
    assert cal.info(date(2026, 12, 26)).reason == "Sabtu"
    nyepi = cal.info(date(2026, 3, 19))
    assert not nyepi.working and "Nyepi" in nyepi.reason
    monday = cal.info(date(2026, 12, 28))
    assert monday.working and monday.office == (wita("2026-12-28T08:00"), wita("2026-12-28T16:00"))
    assert cal.in_office_hours(wita("2026-12-28T15:59")) and not cal.in_office_hours(
        wita("2026-12-28T16:00")
    )
    # without cuti bersama (a private company's calendar) the joint day is a working day
    plain = WorkCalendar(CalendarConfig(cuti_bersama=False), "Asia/Makassar")
    assert plain.info(date(2026, 12, 24)).working
    saturday = CalendarConfig(extra_working_days=[date(2026, 12, 26)])
    assert WorkCalendar(saturday, "Asia/Makassar").info(date(2026, 12, 26)).working


def test_working_time_skips_nights_weekends_and_holidays() -> None:
    cal = WorkCalendar(CALENDAR, "Asia/Makassar")
    friday = wita("2026-12-04T15:00")
    assert cal.add_working(friday, seconds=2 * 3600) == wita("2026-12-07T09:00")  # Fri 1 h, Mon 1 h
    assert cal.add_working(friday, days=1) == wita("2026-12-07T15:00")
    # LAPOR!-style 3 working days over cuti bersama, Christmas and a weekend
    assert cal.add_working(wita("2026-12-23T10:00"), days=3) == wita("2026-12-30T10:00")
    # a report on Sunday counts from Monday's opening
    assert cal.add_working(wita("2026-12-06T11:00"), seconds=3600) == wita("2026-12-07T09:00")
    assert cal.working_seconds(friday, wita("2026-12-07T09:00")) == 2 * 3600
    assert cal.deadline(friday, (1, 0), working=False) == wita("2026-12-05T15:00")


def test_office_hours_routes_follow_the_calendar() -> None:
    cal = WorkCalendar(CALENDAR, "Asia/Makassar")
    routes = [
        Route.model_validate({"match": {"kinds": ["flood"], "hours": "office"}, "opds": ["pupr"]}),
        Route.model_validate({"match": {"kinds": ["flood"]}, "opds": ["bpbd"]}),
    ]

    def who(at: str) -> tuple[str, ...]:
        inc = Incident(kind=IncidentKind.FLOOD, severity=Severity.HIGH, title="Genangan",
                       started_at=wita(at), updated_at=wita(at))  # fmt: skip
        return route(inc, routes, cal)

    assert who("2026-12-01T10:00") == ("pupr",)  # a Tuesday morning
    assert who("2026-12-01T20:00") == ("bpbd",)  # the evening
    assert who("2026-12-25T10:00") == ("bpbd",)  # Christmas: after hours all day


# ---- the roster --------------------------------------------------------------------------------
def test_roster_picks_the_right_person_across_shifts_weeks_holidays_and_swaps() -> None:
    cal, opd = WorkCalendar(CALENDAR, "Asia/Makassar"), bpbd()
    assert names(opd, cal, wita("2026-12-01T10:00")) == ["Budi"]  # week 1, day shift
    assert names(opd, cal, wita("2026-12-01T18:59")) == ["Budi"]
    assert names(opd, cal, wita("2026-12-01T19:00")) == ["Andi"]  # the shift changed
    assert names(opd, cal, wita("2026-12-02T03:00")) == ["Andi"]  # Tuesday's night shift
    assert next_change(opd, cal, wita("2026-12-02T03:00")) == wita("2026-12-02T07:00")
    assert names(opd, cal, wita("2026-12-07T10:00")) == ["Sari"]  # week 2
    assert names(opd, cal, wita("2026-12-13T10:00")) == ["Budi"]  # week 2's Sunday
    assert names(opd, cal, wita("2026-12-14T10:00")) == ["Budi"]  # week 3 = week 1 again
    assert names(opd, cal, wita("2026-12-09T21:00")) == ["Sari"]  # the dated swap...
    assert names(opd, cal, wita("2026-12-10T06:00")) == ["Sari"]  # ...to its end
    assert names(opd, cal, wita("2026-12-10T21:00")) == ["Andi"]
    # Christmas Eve is cuti bersama, Christmas a public holiday: the holiday plan
    assert names(opd, cal, wita("2026-12-24T10:00")) == ["Andi"]
    assert names(opd, cal, wita("2026-12-25T10:00")) == ["Andi"]
    assert names(opd, cal, wita("2026-12-25T20:00")) == ["Budi"]
    assert names(opd, cal, wita("2026-12-26T03:00")) == ["Budi"]  # Christmas night, next day
    assert names(opd, cal, wita("2026-12-26T08:00")) == ["Sari"]  # Saturday: week 4 = week 2
    duty = on_duty(opd, cal, wita("2026-12-25T10:00"))[0]
    assert duty.note == "Hari Raya Natal" and duty.ends == wita("2026-12-25T19:00")


def test_a_roster_naming_nobody_is_an_error_with_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(textwrap.dedent("""\
        cameras:
          - {id: cam, name: Cam, url: "rtsp://127.0.0.1:1/x"}
        opds:
          - id: bpbd
            name: BPBD
            contacts: [{id: kabid, name: Kabid}]
            roster:
              shifts: {pagi: "07:00-19:00"}
              starts: 2026-11-30
              weeks:
                - {daily: {pagi: budi, siang: kabid}}
        """), encoding="utf-8")  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load(path)
    text = str(err.value)
    assert "cameras.yaml:11: opds[0].roster.weeks[0].daily.pagi: contact 'budi'" in text
    assert "opds[0].roster.weeks[0].daily.siang: shift 'siang' is not defined" in text
    path.write_text(path.read_text().replace("2026-11-30", "2026-12-01"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"roster.starts: .*on a Monday"):
        load(path)


# ---- who is told, and SLA clocks --------------------------------------------------------------
@dataclass
class Desk:
    store: Store
    desk: IncidentDesk
    dispatcher: Dispatcher
    clock: ManualClock
    published: list[AnyEvent]

    async def feed(self) -> None:
        while self.published:
            await self.dispatcher.handle(self.published.pop(0))

    async def at(self, when: datetime) -> None:
        """Move the clock to `when` and let the dispatcher act, as its ticker would."""
        await self.feed()
        self.clock.set(when)
        await self.dispatcher.tick()
        await self.dispatcher.drain()
        await self.feed()

    async def actions(self, incident_id: str, kind: ActionKind) -> list[Any]:
        return [a for a in await self.store.actions(incident_id) if a.kind == kind]


def flood(clock: ManualClock, rule: str = "flood-0", place: str = "Kota") -> Observation:
    """A camera's flood observation; another `place` is another incident (no correlation)."""
    obs = Observation(
        phase=ObservationPhase.OPENED, rule=rule, kind=IncidentKind.FLOOD,
        severity=Severity.HIGH, title="Genangan di gudang", camera_id=f"cam-{place.lower()}",
        kecamatan=place, started_at=clock.t, at=clock.t,
    )  # fmt: skip
    return obs


@pytest.fixture
async def make_desk(tmp_path: Path, smtp_server: tuple[Mailbox, int]) -> AsyncGenerator[Any, None]:
    made: list[Desk] = []

    async def build(routes: list[Route], start: datetime) -> Desk:
        store = Store(tmp_path / f"d{len(made)}.db")
        await store.open()
        clock, published = ManualClock(start), []

        async def publish(event: AnyEvent) -> None:
            published.append(event)

        cal = WorkCalendar(CALENDAR, "Asia/Makassar")
        desk = IncidentDesk(store, publish, routes, now=clock, calendar=cal)
        smtp = Smtp(host="127.0.0.1", port=smtp_server[1], sender="pantau@example.go.id",
                    starttls=False)  # fmt: skip
        notify = NotifyConfig(group_wait_s=0, retry_base_s=0.01, max_tries=2, smtp=smtp)
        dispatcher = Dispatcher(store, publish, [bpbd()], routes, notify, timezone="Asia/Makassar",
                                now=clock, calendar=cal)  # fmt: skip
        made.append(Desk(store, desk, dispatcher, clock, published))
        return made[-1]

    yield build
    for d in made:
        await d.dispatcher.stop()
        await d.store.close()


async def test_the_duty_officer_hears_first_then_the_chain(
    make_desk: Any, smtp_server: tuple[Mailbox, int]
) -> None:
    box = smtp_server[0]
    routes = [Route(opds=["bpbd"], ack_deadline_s=120)]
    # across a shift change: a minute before 19:00 the day piket, a minute after the night one
    d = await make_desk(routes, wita("2026-12-01T18:59"))
    day = await d.desk.observe(flood(d.clock, "flood-1", "Barat"))
    await d.at(wita("2026-12-01T18:59:01"))
    await d.at(wita("2026-12-01T19:01"))
    night = await d.desk.observe(flood(d.clock, "flood-2", "Timur"))
    await d.at(wita("2026-12-01T19:01:01"))
    first = [m["To"] for m in box.messages if "ESKALASI" not in m["Subject"]]
    assert first == ["budi@bpbd.example.go.id", "andi@bpbd.example.go.id"]
    for inc in (day, night):
        await d.desk.act(inc.id, ActionKind.RESOLVE, "kabid", opd_id="bpbd")
    await d.feed()
    box.messages.clear()
    await d.at(wita("2026-12-25T10:00"))
    christmas = await d.desk.observe(flood(d.clock))
    await d.at(wita("2026-12-25T10:00:01"))
    assert [m["To"] for m in box.messages] == ["andi@bpbd.example.go.id"]  # holiday piket
    await d.at(wita("2026-12-25T10:02:02"))  # not acknowledged in 120 s
    assert box.messages[-1]["To"] == "kabid@bpbd.example.go.id"
    assert "[ESKALASI]" in box.messages[-1]["Subject"]
    (step,) = await d.actions(christmas.id, ActionKind.ESCALATED)
    assert step.note.startswith("eskalasi ke-1: Kabid Darlog")


async def test_a_working_time_sla_breaches_at_the_right_moment_and_escalates(
    make_desk: Any, smtp_server: tuple[Mailbox, int]
) -> None:
    box = smtp_server[0]
    sla = {"acknowledge": "2h", "resolve": "3d", "time": "working"}
    routes = [Route.model_validate({"opds": ["bpbd"], "ack_deadline_s": 7200, "sla": sla})]
    d = await make_desk(routes, wita("2026-12-04T15:00"))  # a Friday afternoon
    late = await d.desk.observe(flood(d.clock))
    await d.at(wita("2026-12-04T15:00:01"))
    (clock_row,) = await d.store.sla_clocks(late.id)
    assert datetime.fromisoformat(str(clock_row["ack_due"])) == wita("2026-12-07T09:00")
    assert datetime.fromisoformat(str(clock_row["resolve_due"])) == wita("2026-12-09T15:00")
    # A second incident, acknowledged in time on Monday morning.
    await d.at(wita("2026-12-04T15:30"))
    kept = await d.desk.observe(flood(d.clock, "flood-9", "Utara"))
    await d.at(wita("2026-12-04T15:30:01"))
    await d.at(wita("2026-12-07T08:30"))
    await d.desk.act(kept.id, ActionKind.ACKNOWLEDGE, "sari", opd_id="bpbd")
    box.messages.clear()
    await d.at(wita("2026-12-07T08:59:59"))
    assert await d.actions(late.id, ActionKind.SLA_ACK_BREACHED) == []
    await d.at(wita("2026-12-07T09:00:00"))
    (breach,) = await d.actions(late.id, ActionKind.SLA_ACK_BREACHED)
    assert breach.at == wita("2026-12-07T09:00") and breach.opd_id == "bpbd"
    assert breach.note == "batas SLA menerima (2 jam kerja) terlewati"
    # ...and it escalated at once, to the contact after Monday's piket
    assert any(m["To"] == "kabid@bpbd.example.go.id" for m in box.messages)
    assert await d.actions(kept.id, ActionKind.SLA_ACK_BREACHED) == []
    # acknowledged late, never resolved: the resolve clock runs out on Wednesday 15:00
    await d.desk.act(late.id, ActionKind.ACKNOWLEDGE, "sari", opd_id="bpbd")
    await d.at(wita("2026-12-09T14:59:59"))
    assert await d.actions(late.id, ActionKind.SLA_RESOLVE_BREACHED) == []
    box.messages.clear()
    await d.at(wita("2026-12-09T15:00:00"))
    (late_fix,) = await d.actions(late.id, ActionKind.SLA_RESOLVE_BREACHED)
    assert late_fix.note == "batas SLA menyelesaikan (3 hari kerja) terlewati"
    assert box.messages and box.messages[0]["Subject"].startswith("[SLA]")
    # the second one is resolved before its clock (opened 15:30) runs out
    await d.desk.act(kept.id, ActionKind.RESOLVE, "kabid", opd_id="bpbd")
    await d.at(wita("2026-12-09T15:31"))
    assert await d.actions(kept.id, ActionKind.SLA_RESOLVE_BREACHED) == []
    # the scoreboard counts them: 1 of 2 acknowledged within SLA, 1 + 1 breaches
    (week,) = compute(await d.store.response_times(), "Asia/Makassar")
    assert (week.sla_ack_total, week.sla_ack_met, week.sla_ack_pct) == (2, 1, 50.0)
    assert (week.ack_breaches, week.resolve_breaches) == (1, 1)


async def test_sla_clocks_survive_a_restart(make_desk: Any) -> None:
    sla = {"acknowledge": "30m"}
    routes = [Route.model_validate({"opds": ["bpbd"], "sla": sla})]
    d = await make_desk(routes, wita("2026-12-01T10:00"))
    inc = await d.desk.observe(flood(d.clock))
    await d.at(wita("2026-12-01T10:00:01"))
    # a new dispatcher on the same store (the process restarted) still times the clock
    again = Dispatcher(d.store, d.dispatcher._publish, [bpbd()], routes, d.dispatcher.config,
                       now=d.clock, calendar=d.dispatcher.calendar)  # fmt: skip
    await again.recover()
    d.clock.set(wita("2026-12-01T10:30"))
    await again.tick()
    await again.drain()
    assert len(await d.actions(inc.id, ActionKind.SLA_ACK_BREACHED)) == 1
    await again.stop()


# ---- the wall's duty API ------------------------------------------------------------------------
class _NoFrames:
    def latest_frame(self, camera_id: str) -> None:
        return None

    def watched(self, camera_id: str) -> None:
        return None


@pytest.fixture
async def duty_site(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str], Store, str]]:
    store = Store(tmp_path / "w.db")
    await store.open()
    cal = WorkCalendar(CALENDAR, "Asia/Makassar")
    opds = [
        bpbd(),
        Opd.model_validate(
            {
                "id": "dishub",
                "name": "Dishub",
                "contacts": [{"name": "Piket Dishub", "phone": "112"}],
            }
        ),
    ]
    routes = [Route.model_validate({"opds": ["bpbd"], "sla": {"acknowledge": "15m"}})]
    clock = ManualClock(wita("2026-12-25T10:00"))
    desk = IncidentDesk(store, lambda e: None, routes, now=clock, calendar=cal)
    accounts = Accounts(store)
    tokens = {}
    for who, role, opd in (("op", Role.OPERATOR, None), ("lihat", Role.VIEWER, None),
                           ("dishub", Role.OPD, "dishub")):  # fmt: skip
        await accounts.add(who, PASSWORD, role, opd_id=opd)
        found = await accounts.login(who, PASSWORD)
        assert found is not None
        tokens[who] = found[1]
    inc = await desk.observe(flood(clock))
    assert inc is not None
    dispatcher = Dispatcher(store, _ignore, opds, routes, NotifyConfig(), now=clock, calendar=cal)
    await dispatcher.handle(_opened(inc))

    async def open_incidents() -> list:  # type: ignore[type-arg]
        return await store.incidents(active=True)

    deps = WallboardDeps(
        store=store, hub=Hub(open_incidents, {}), live=LiveFrames(_NoFrames()),  # type: ignore[arg-type]
        cameras=[CameraInfo(id="gudang", name="Gudang", url_masked="rtsp://h/x")],
        walls=[Wall(id="utama")], ui=UiConfig(timezone="Asia/Makassar"), snapshot_dir=None,
        clip_dir=None, health=lambda: {}, accounts=accounts, desk=desk,
        duty=lambda at: duty_board(opds, cal, at),
    )  # fmt: skip
    async with serve_asgi(create_app(deps)) as port:
        yield f"http://127.0.0.1:{port}", tokens, store, inc.id
    await dispatcher.stop()
    await store.close()


async def _ignore(event: AnyEvent) -> None:
    return None


def _opened(inc: Incident) -> AnyEvent:
    return IncidentEvent(type=EventType.INCIDENT_OPENED, incident=inc)


async def test_the_duty_api_shows_who_is_on_duty_and_phones_to_staff_only(
    duty_site: tuple[str, dict[str, str], Store, str],
) -> None:
    base, tokens, _, incident_id = duty_site
    async with httpx.AsyncClient(base_url=base) as http:
        at = {"at": "2026-12-25T10:00:00+08:00"}
        r = await http.get("/api/duty", params=at, headers=bearer(tokens["op"]))
        assert r.status_code == 200, r.text
        board = {row["opd_id"]: row for row in r.json()}
        (andi,) = board["bpbd"]["on_duty"]
        assert (andi["name"], andi["shift"], andi["phone"]) == ("Andi", "pagi", "0811 3")
        assert andi["note"] == "Hari Raya Natal" and board["bpbd"]["day_off"] == "Hari Raya Natal"
        assert board["bpbd"]["until"].startswith("2026-12-25T11:00:00")  # 19:00 WITA in UTC
        assert board["dishub"]["on_duty"] == []  # no roster: its first contact hears first
        assert board["dishub"]["first_contact"]["name"] == "Piket Dishub"
        viewer = (await http.get("/api/duty", params=at, headers=bearer(tokens["lihat"]))).json()
        assert {p["phone"] for row in viewer for p in row["on_duty"]} == {None}
        own = (await http.get("/api/duty", params=at, headers=bearer(tokens["dishub"]))).json()
        assert [row["opd_id"] for row in own] == ["dishub"]
        assert own[0]["first_contact"]["phone"] == "112"  # an OPD sees its own numbers
        naive = await http.get("/api/duty", params={"at": "2026-12-25T10:00"},
                               headers=bearer(tokens["op"]))  # fmt: skip
        assert naive.status_code == 422 and "time zone" in naive.json()["detail"]
        assert (await http.get("/api/duty")).status_code == 401
        sla = await http.get(f"/api/incidents/{incident_id}/sla", headers=bearer(tokens["op"]))
        assert sla.status_code == 200
        (clock,) = sla.json()
        assert clock["opd_id"] == "bpbd"
        assert clock["ack_due"].startswith("2026-12-25T02:15:00")  # 15 min of clock time


# ---- the wall, end to end: a real runtime (both shapes), Chromium, real clock ----------------
WALL_CONFIG = """\
server: {{host: 127.0.0.1, port: 0}}
storage: {{data_dir: {data_dir}}}
bus: {bus}
detector: {{model: {model}}}
ui: {{timezone: Asia/Makassar}}
notify: {{group_wait_s: 0}}
cameras:
  - {{id: gudang, name: Gudang Logistik, url: "rtsp://127.0.0.1:1/mati", kecamatan: Kota}}
opds:
  - id: bpbd
    name: BPBD
    contacts: [{{id: kalak, name: Kalaksa BPBD, phone: "+62 811 9"}}]
    roster:
      team: [{{id: regu-a, name: Regu A Pusdalops, phone: "+62 811 0000 003"}}]
      shifts: {{sehari: "00:00-24:00"}}
      starts: 2026-11-30
      weeks: [{{daily: {{sehari: regu-a}}}}]
  - {{id: dishub, name: Dinas Perhubungan, contacts: [{{name: Piket Dishub, phone: "112"}}]}}
routing:
  - match: {{kinds: [flood]}}
    opds: [bpbd]
    sla: {{acknowledge: 2s, resolve: 1h}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["one-process", "scaled-out"])
async def test_the_wall_shows_who_is_on_duty_and_a_breached_sla(
    shape: str, tmp_path: Path, model_path: Path, browser: Any
) -> None:
    import asyncio
    import os
    import shutil

    from events.api_keys import ApiKeys
    from pantau.redis_server import RedisServer
    from pantau.runtime import Runtime
    from tests.conftest import wall_page

    redis = None
    bus = "memory"
    if shape == "scaled-out":  # `pantau server`: desk, routing and the wall on Redis Streams
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed (scripts/install.sh --test installs it)")
        redis = RedisServer(tmp_path / "redis")
        redis.start()
        bus = redis.url
    path = tmp_path / "cameras.yaml"
    path.write_text(WALL_CONFIG.format(data_dir=tmp_path / "var", bus=bus, model=model_path))
    runtime = Runtime(load(path), tmp_path, role="server" if redis else "all")
    await runtime.start()
    try:
        _, key = await ApiKeys(runtime.store).create("dishub")
        base = f"http://127.0.0.1:{runtime.web_port}"
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}) as opd:
            report = {"kind": "flood", "severity": "high", "kecamatan": "Kota",
                      "title": "Air masuk gudang logistik"}  # fmt: skip
            r = await opd.post("/api/alerts", json=report)
            assert r.status_code == 201, r.text
            incident_id = r.json()["incident_id"]
        page = await wall_page(browser, runtime, "operator", 1600, 1000)
        duty = page.locator("#duty li[data-opd=bpbd]")
        await duty.wait_for(timeout=10000)
        text = await duty.inner_text()
        assert "Regu A Pusdalops" in text and "sehari" in text
        assert await duty.locator("a.tel").get_attribute("href") == "tel:+628110000003"
        dishub = await page.locator("#duty li[data-opd=dishub]").inner_text()
        assert "Piket Dishub" in dishub  # no roster: its first contact
        # the 2 s acknowledge SLA runs out on the server's real clock
        for _ in range(40):
            acts = await runtime.store.actions(incident_id)
            if any(a.kind == ActionKind.SLA_ACK_BREACHED for a in acts):
                break
            await asyncio.sleep(0.25)
        else:
            pytest.fail("the acknowledge SLA did not breach within 10 s")
        await page.locator(".timeline .incident").first.click()
        badge = page.locator("#detail .badge.sla-breached[data-sla=sla_ack]")
        await badge.wait_for(timeout=10000)
        assert "TERLEWATI" in await badge.inner_text()
        running = page.locator("#detail .badge.sla-running[data-sla=sla_resolve]")
        assert await running.count() == 1
        assert "SLA terima terlewati" in await page.locator("#detail .activity").inner_text()
        assert "null" not in await page.locator("#detail").inner_text()  # left-out parts
        assert await page.locator("#report").is_hidden()  # the weekly report is not the desk's
        keep = Path(os.environ.get("PANTAU_TEST_PNG", tmp_path))
        await page.screenshot(path=str(keep / f"duty-{shape}.png"))
        await page.close()
        # a leader on a phone: who is on duty, without the numbers (viewers do not call)
        phone = await wall_page(browser, runtime, "viewer", 390, 844)
        mine = phone.locator("#duty li[data-opd=bpbd]")
        await mine.wait_for(timeout=10000)
        await mine.scroll_into_view_if_needed()
        assert "Regu A Pusdalops" in await mine.inner_text()
        assert await phone.locator("#duty a.tel").count() == 0
        # ...and last week's OPD report in short, with its PDF
        report = phone.locator("#report")
        await report.locator("tr[data-opd=bpbd]").wait_for(timeout=10000)
        href = await report.locator("a[download]").get_attribute("href")
        assert href is not None and href.endswith("/report.pdf")
        pdf = await phone.request.get(f"http://127.0.0.1:{runtime.web_port}{href}")
        assert pdf.status == 200 and (await pdf.body()).startswith(b"%PDF")
        await phone.screenshot(path=str(keep / f"duty-phone-{shape}.png"), full_page=True)
        await phone.close()
    finally:
        await runtime.stop()
        if redis is not None:
            redis.stop()
