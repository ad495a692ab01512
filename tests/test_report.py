"""The weekly OPD report from a seeded week with real parts: incidents, answers and SLA
breaches made through the desk and the dispatcher into SQLite, the figures checked against an
independent computation, the PDF rendered to PNG by pdftoppm, the Monday 07:00 schedule mailed
through a real SMTP server, the wall's report API over HTTP for each role."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest

from events.config import NotifyConfig, Opd, ReportConfig, Route, Smtp
from events.desk import IncidentDesk
from events.model import (
    ActionKind,
    AnyEvent,
    IncidentKind,
    Observation,
    ObservationPhase,
    Severity,
)
from events.notify.dispatcher import Dispatcher
from events.report import build, week_bounds
from events.report_service import Reports
from events.store import Store
from pantau.redis_server import free_port
from tests.conftest import Mailbox, ManualClock, bearer, serve_asgi
from wallboard.app import create_app
from wallboard.auth import Accounts, Role
from wallboard.config import UiConfig, Wall
from wallboard.deps import WallboardDeps
from wallboard.hub import Hub
from wallboard.live import LiveFrames

WITA = ZoneInfo("Asia/Makassar")
TZ = "Asia/Makassar"
NAMES = {"bpbd": "BPBD", "dishub": "Dinas Perhubungan", "damkar": "Damkar"}
OPDS = [Opd.model_validate({"id": k, "name": v, "contacts": [{"name": f"Piket {v}"}]})
        for k, v in NAMES.items()]  # fmt: skip
ROUTES = [
    Route.model_validate({"match": {"kinds": ["flood"]}, "opds": ["bpbd"],
                          "sla": {"acknowledge": "10m", "resolve": "4h"}}),
    Route.model_validate({"match": {"kinds": ["traffic"]}, "opds": ["dishub"]}),
]  # fmt: skip
PASSWORD = "laporan-2026-aman"


def wita(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WITA)


# (opd kind, opened at (WITA), minutes to acknowledge, minutes to resolve, false alarm)
SEED = [
    # the week before (W48), for the trend and the boundary
    ("flood", "2026-11-24T10:00", 3, 30, False),
    ("flood", "2026-11-29T23:30", 4, 20, False),  # Sunday night WITA: still W48
    # the week (W49, Monday 30 Nov - Sunday 6 Dec, WITA)
    ("flood", "2026-11-30T00:30", 1, 10, False),  # Sunday 16:30 UTC, but Monday in WITA
    ("flood", "2026-11-30T09:00", 2, 60, False),
    ("flood", "2026-12-01T14:00", 5, 120, False),
    ("flood", "2026-12-02T20:00", 30, 300, False),  # both SLAs run out
    ("flood", "2026-12-03T08:00", None, 3, True),  # closed as a false alarm
    ("traffic", "2026-12-04T07:30", 8, 45, False),
    ("traffic", "2026-12-04T17:00", 12, None, False),  # acknowledged, never resolved
    ("traffic", "2026-12-05T09:00", None, None, False),  # never answered
    # the week after (W50): left out
    ("flood", "2026-12-07T09:00", 2, 20, False),
]


@dataclass
class Seeded:
    store: Store
    clock: ManualClock


async def seed(store: Store) -> ManualClock:
    """Drive the desk and the dispatcher through SEED on a moving clock, so routing, SLA
    clocks and their breaches are made as on a live site."""
    clock = ManualClock(wita("2026-11-23T00:00"))
    published: list[AnyEvent] = []

    async def publish(event: AnyEvent) -> None:
        published.append(event)

    desk = IncidentDesk(store, publish, ROUTES, now=clock)
    dispatcher = Dispatcher(store, publish, OPDS, ROUTES, NotifyConfig(group_wait_s=0),
                            timezone=TZ, now=clock)  # fmt: skip
    plan: list[tuple[datetime, str, Any]] = []
    for n, (kind, at, ack, fix, false_alarm) in enumerate(SEED):
        start = wita(at)
        plan.append((start, "open", (n, kind)))
        if ack is not None:
            plan.append((start + timedelta(minutes=ack), "ack", n))
        if fix is not None:
            plan.append((start + timedelta(minutes=fix), "false" if false_alarm else "fix", n))
    ids: dict[int, str] = {}
    for when, what, arg in sorted(plan, key=lambda p: p[0]):
        # every minute up to the event, so SLA clocks run out when they should
        while clock.t + timedelta(minutes=1) < when:
            clock.advance(60)
            while published:
                await dispatcher.handle(published.pop(0))
            await dispatcher.tick()
        clock.set(when)
        if what == "open":
            n, kind = arg
            obs = Observation(
                phase=ObservationPhase.OPENED, rule=f"r{n}", kind=IncidentKind(kind),
                severity=Severity.HIGH, title=f"kejadian {n}", camera_id=f"cam-{n}",
                kecamatan=f"Kec {n}", started_at=when, at=when,
            )  # fmt: skip
            inc = await desk.observe(obs)
            assert inc is not None
            ids[n] = inc.id
        else:
            kind = {"ack": ActionKind.ACKNOWLEDGE, "fix": ActionKind.RESOLVE,
                    "false": ActionKind.FALSE_ALARM}[what]  # fmt: skip
            opd = "bpbd" if SEED[arg][0] == "flood" else "dishub"
            await desk.act(ids[arg], kind, f"petugas-{opd}", opd_id=opd)
        while published:
            await dispatcher.handle(published.pop(0))
        await dispatcher.tick()
    await dispatcher.stop()
    return clock


@pytest.fixture
async def seeded(tmp_path: Path) -> AsyncGenerator[Seeded, None]:
    store = Store(tmp_path / "r.db")
    await store.open()
    clock = await seed(store)
    yield Seeded(store, clock)
    await store.close()


def expected(kind: str, week: str) -> dict[str, Any]:
    """The week's figures for one OPD, computed here from SEED alone."""
    starts, ends = week_bounds(week, TZ)
    mine = [s for s in SEED if s[0] == kind and starts <= wita(s[1]) < ends]
    kept = [s for s in mine if not s[4]]
    acks = [s[2] * 60.0 for s in kept if s[2] is not None]
    fixes = [s[3] * 60.0 for s in kept if s[3] is not None]

    def pct(values: list[float], q: float) -> float | None:
        return round(float(np.percentile(values, q)), 1) if values else None

    return {
        "routed": len(mine), "false_alarms": len(mine) - len(kept),
        "acknowledged": len(acks), "resolved": len(fixes),
        "ack_p50_s": pct(acks, 50), "ack_p90_s": pct(acks, 90),
        "resolve_p50_s": pct(fixes, 50), "resolve_p90_s": pct(fixes, 90),
    }  # fmt: skip


async def test_the_weekly_report_has_the_right_figures(seeded: Seeded) -> None:
    report = await build(seeded.store, "2026-W49", TZ, NAMES, "Kabupaten Contoh")
    rows = {o.opd_id: o for o in report.opds}
    assert list(rows) == ["bpbd", "damkar", "dishub"]  # by name, every configured OPD
    for opd, kind in (("bpbd", "flood"), ("dishub", "traffic")):
        got = rows[opd]
        assert {k: getattr(got, k) for k in expected(kind, "2026-W49")} == expected(
            kind, "2026-W49"), opd  # fmt: skip
    bpbd = rows["bpbd"]
    # SLA 10 minutes to acknowledge: 3 of 4 (1, 2, 5 min yes; 30 min no); 4 h to resolve:
    # the 300-minute one ran out
    assert (bpbd.sla_ack_total, bpbd.sla_ack_met, bpbd.sla_ack_pct) == (4, 3, 75.0)
    assert (bpbd.ack_breaches, bpbd.resolve_breaches, bpbd.false_alarms) == (1, 1, 1)
    dishub = rows["dishub"]
    assert (dishub.routed, dishub.acknowledged, dishub.sla_ack_pct) == (3, 2, None)
    assert rows["damkar"].routed == 0 and rows["damkar"].ack_p50_s is None
    # the trend: 8 weeks up to W49, oldest first
    trend = report.trend["bpbd"]
    assert [p.week for p in trend][-3:] == ["2026-W47", "2026-W48", "2026-W49"]
    assert len(trend) == 8 and trend[-2].routed == 2 and trend[-2].ack_p50_s == 210.0
    assert trend[-1].routed == 4 and trend[-1].breaches == 2  # false alarms not in trend counts


async def test_the_pdf_renders(seeded: Seeded, tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.fail("pdftoppm is missing: scripts/install.sh --test installs poppler-utils")
    reports = Reports(seeded.store, tmp_path / "reports", ReportConfig(), TZ, "Kabupaten Contoh",
                      lambda: NAMES, None, now=lambda: wita("2026-12-07T07:00"))  # fmt: skip
    pdf = await reports.make("2026-W49")
    assert pdf.read_bytes().startswith(b"%PDF")
    out = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "100", str(pdf), str(out)], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    keep = os.environ.get("PANTAU_TEST_PNG")  # kept for a person to look at
    for page in pages if keep else []:
        shutil.copy(page, Path(keep or ".") / f"report-{page.name}")
    assert len(pages) == 2
    from PIL import Image

    for page in pages:  # a page with a table and charts, not a blank one
        with Image.open(page) as im:
            assert im.size == (1169, 827)
            colors = im.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colors is None or len(colors) > 50


async def test_monday_0700_makes_and_mails_it_once(
    seeded: Seeded, tmp_path: Path, smtp_server: tuple[Mailbox, int]
) -> None:
    box, port = smtp_server
    clock = ManualClock(wita("2026-12-07T06:59"))
    config = ReportConfig(recipients=["bupati@example.go.id", "sekda@example.go.id"])
    dead = Smtp(host="127.0.0.1", port=free_port(), sender="pantau@example.go.id",
                starttls=False, timeout_s=2)  # fmt: skip
    reports = Reports(seeded.store, tmp_path / "reports", config, TZ, "Kabupaten Contoh",
                      lambda: NAMES, dead, now=clock)  # fmt: skip
    assert await reports.run_once() is None  # a minute early
    clock.set(wita("2026-12-07T07:00"))
    assert await reports.run_once() == "2026-W49"  # made; the mail server is down
    assert reports.pdf_path("2026-W49").is_file() and box.messages == []
    reports.smtp = Smtp(host="127.0.0.1", port=port, sender="pantau@example.go.id",
                        starttls=False)  # fmt: skip
    clock.advance(60)
    assert await reports.run_once() == "2026-W49"  # mailed on the next minute's try
    (mail,) = box.messages
    assert mail["Subject"] == "[Pantau] Laporan kinerja OPD minggu 2026-W49"
    assert mail["To"] == "bupati@example.go.id, sekda@example.go.id"
    parts = {p.get_filename(): p for p in mail.walk() if p.get_filename()}
    attached: Message = parts["laporan-kinerja-opd-2026-W49.pdf"]
    assert bytes(attached.get_payload(decode=True)).startswith(b"%PDF")  # type: ignore[arg-type]
    body = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    assert "BPBD: 5 kejadian, diterima sesuai SLA 75%" in str(body.get_payload(decode=True),
                                                              "utf-8")  # fmt: skip
    clock.advance(3600)
    assert await reports.run_once() is None and len(box.messages) == 1  # once
    assert reports.made() == ["2026-W49"]


class _NoFrames:
    def latest_frame(self, camera_id: str) -> None:
        return None

    def watched(self, camera_id: str) -> None:
        return None


async def test_the_report_api_by_role(seeded: Seeded, tmp_path: Path) -> None:
    accounts = Accounts(seeded.store)
    tokens = {}
    for who, role, opd in (("bupati", Role.VIEWER, None), ("op", Role.OPERATOR, None),
                           ("bpbd", Role.OPD, "bpbd"), ("spv", Role.SUPERVISOR, None)):  # fmt: skip
        await accounts.add(who, PASSWORD, role, opd_id=opd)
        found = await accounts.login(who, PASSWORD)
        assert found is not None
        tokens[who] = found[1]
    reports = Reports(seeded.store, tmp_path / "reports", ReportConfig(), TZ, "Kabupaten Contoh",
                      lambda: NAMES, None, now=lambda: wita("2026-12-08T10:00"))  # fmt: skip
    await reports.make("2026-W49")

    async def open_incidents() -> list:  # type: ignore[type-arg]
        return []

    deps = WallboardDeps(
        store=seeded.store, hub=Hub(open_incidents, {}), live=LiveFrames(_NoFrames()),  # type: ignore[arg-type]
        cameras=[], walls=[Wall(id="utama")], ui=UiConfig(timezone=TZ), snapshot_dir=None,
        clip_dir=None, health=lambda: {}, accounts=accounts, reports=reports,
    )  # fmt: skip
    async with (
        serve_asgi(create_app(deps)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        index = (await http.get("/api/reports", headers=bearer(tokens["bupati"]))).json()
        assert index == {"last_week": "2026-W49", "made": ["2026-W49"]}
        full = (await http.get("/api/reports/2026-W49", headers=bearer(tokens["bupati"]))).json()
        assert [o["opd_id"] for o in full["opds"]] == ["bpbd", "damkar", "dishub"]
        own = (await http.get("/api/reports/2026-W49", headers=bearer(tokens["bpbd"]))).json()
        assert [o["opd_id"] for o in own["opds"]] == ["bpbd"] and list(own["trend"]) == ["bpbd"]
        assert (await http.get("/api/reports/2026-W49",
                               headers=bearer(tokens["op"]))).status_code == 403  # fmt: skip
        pdf = await http.get("/api/reports/2026-W49/report.pdf", headers=bearer(tokens["spv"]))
        assert pdf.status_code == 200 and pdf.content == reports.pdf_path("2026-W49").read_bytes()
        mine = await http.get("/api/reports/2026-W49/report.pdf", headers=bearer(tokens["bpbd"]))
        assert mine.content.startswith(b"%PDF") and mine.content != pdf.content  # its own
        chart = await http.get("/api/reports/2026-W49/chart.png", params={"page": 1},
                               headers=bearer(tokens["bupati"]))  # fmt: skip
        assert chart.headers["content-type"] == "image/png" and chart.content[:4] == b"\x89PNG"
        assert (await http.get("/api/reports/2026-W60",
                               headers=bearer(tokens["bupati"]))).status_code == 404  # fmt: skip
        assert (await http.get("/api/reports/latest",
                               headers=bearer(tokens["bupati"]))).status_code == 422  # fmt: skip
        assert (await http.get("/api/reports")).status_code == 401
