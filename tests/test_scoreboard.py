"""OPD response scoreboard from real stored routing, delivery, acknowledgement and resolve times."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from events.config import Route, RouteMatch
from events.desk import IncidentDesk
from events.model import ActionKind, Delivery, DeliveryEvent, DeliveryStatus, IncidentKind
from events.scoreboard import compute, percentile
from events.store import Store
from tests.test_desk import Clock, alert


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([], 0.5) is None
    assert percentile([10.0], 0.9) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.1


async def test_scoreboard_per_opd_per_week(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    clock = Clock()
    routes = [
        Route(match=RouteMatch(kinds=[IncidentKind.FLOOD]), opds=["bpbd"]),
        Route(match=RouteMatch(), opds=["satpol-pp"]),
    ]
    desk = IncidentDesk(store, lambda e: None, routes, now=clock)
    ack_after = [30, 60, 90, 600]
    for i, secs in enumerate(ack_after):
        r = await desk.receive_alert(alert(desa=f"Desa {i}", sent_at=clock.t))
        inc_id = r.incident_id
        assert inc_id is not None
        clock.advance(10)  # told 10 s after routing: times count from here
        delivery = Delivery(incident_id=inc_id, opd_id="bpbd", channel="webhook", target="t",
                            status=DeliveryStatus.SENT, attempts=1, at=clock.t)  # fmt: skip
        await store.append(DeliveryEvent(delivery=delivery))
        clock.advance(secs)
        await desk.act(inc_id, ActionKind.ACKNOWLEDGE, "opd:bpbd", opd_id="bpbd")
        clock.advance(1000)
        if i < 3:
            await desk.act(inc_id, ActionKind.RESOLVE, "opd:bpbd", opd_id="bpbd")
    # one unanswered, one false alarm (left out), for Satpol PP
    quiet = await desk.receive_alert(alert(kind=IncidentKind.FIRE, desa="Q", sent_at=clock.t))
    wrong = await desk.receive_alert(alert(kind=IncidentKind.FIRE, desa="W", sent_at=clock.t))
    assert quiet.incident_id and wrong.incident_id
    await desk.act(wrong.incident_id, ActionKind.FALSE_ALARM, "budi")
    clock.advance(timedelta(days=7).total_seconds())
    await desk.receive_alert(alert(desa="next week", sent_at=clock.t))

    scores = compute(await store.response_times(), "Asia/Makassar")
    table = {(s.opd_id, s.week): s for s in scores}
    bpbd = table[("bpbd", "2026-W48")]
    assert (bpbd.routed, bpbd.acknowledged, bpbd.resolved, bpbd.unanswered) == (4, 4, 3, 0)
    assert bpbd.ack_p50_s == 75.0 and bpbd.ack_p90_s == 447.0
    assert bpbd.resolve_p50_s == 1060.0
    satpol = table[("satpol-pp", "2026-W48")]
    assert (satpol.routed, satpol.acknowledged, satpol.unanswered) == (1, 0, 1)
    assert satpol.ack_p50_s is None
    assert table[("bpbd", "2026-W49")].routed == 1
    await store.close()
