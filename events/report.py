"""The weekly OPD performance report ("Laporan kinerja OPD"): per OPD, for one ISO week in the
site's time zone, what a Bupati asks: incidents routed, acknowledged within SLA, how fast they
were acknowledged and resolved (median, p90), SLA breaches, false alarms, and the trend over the
8 weeks up to it. Times count from when the OPD was told, as on the scoreboard.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from events.scoreboard import compute
from events.store import Store

TREND_WEEKS = 8


@dataclass(frozen=True)
class OpdWeek:
    opd_id: str
    opd_name: str
    routed: int  # all incidents routed to it, false alarms included
    acknowledged: int
    resolved: int
    sla_ack_total: int  # incidents whose route has an acknowledge SLA
    sla_ack_met: int
    sla_ack_pct: float | None
    ack_p50_s: float | None
    ack_p90_s: float | None
    resolve_p50_s: float | None
    resolve_p90_s: float | None
    ack_breaches: int
    resolve_breaches: int
    false_alarms: int


@dataclass(frozen=True)
class TrendPoint:
    week: str
    routed: int
    ack_p50_s: float | None
    sla_ack_pct: float | None
    breaches: int


@dataclass
class WeeklyReport:
    week: str  # ISO week, 2026-W49
    starts: datetime  # Monday 00:00 in the site's zone
    ends: datetime  # the next Monday 00:00
    timezone: str
    title: str
    opds: list[OpdWeek]
    trend: dict[str, list[TrendPoint]] = field(default_factory=dict)  # opd -> oldest first
    generated_at: datetime | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def only(self, opd_id: str) -> WeeklyReport:
        """The report an OPD user may see: its own row and trend."""
        return WeeklyReport(self.week, self.starts, self.ends, self.timezone, self.title,
                            [o for o in self.opds if o.opd_id == opd_id],
                            {k: v for k, v in self.trend.items() if k == opd_id},
                            self.generated_at)  # fmt: skip


def week_bounds(week: str, timezone: str) -> tuple[datetime, datetime]:
    """ "2026-W49" -> Monday 00:00 and the next Monday 00:00, in the site's zone."""
    year, _, num = week.partition("-W")
    monday = date.fromisocalendar(int(year), int(num), 1)
    zone = ZoneInfo(timezone)
    start = datetime.combine(monday, time(0), zone)
    return start, datetime.combine(monday + timedelta(days=7), time(0), zone)


def week_name(at: datetime, timezone: str) -> str:
    year, wk, _ = at.astimezone(ZoneInfo(timezone)).isocalendar()
    return f"{year}-W{wk:02d}"


def previous_week(at: datetime, timezone: str) -> str:
    return week_name(at.astimezone(ZoneInfo(timezone)) - timedelta(days=7), timezone)


async def build(
    store: Store, week: str, timezone: str, opd_names: dict[str, str], title: str,
    now: datetime | None = None,
) -> WeeklyReport:  # fmt: skip
    starts, ends = week_bounds(week, timezone)
    first = starts - timedelta(weeks=TREND_WEEKS - 1)
    rows = await store.response_times(since=first, until=ends)
    scores = {(s.opd_id, s.week): s for s in compute(rows, timezone)}
    false_alarms = await store.false_alarms(since=starts, until=ends)
    # Every OPD in the configuration is listed, and any other one the store routed to.
    opds = sorted({*opd_names, *(o for o, _ in scores)}, key=lambda o: opd_names.get(o, o))
    weeks = [week_name(first + timedelta(weeks=i), timezone) for i in range(TREND_WEEKS)]
    lines: list[OpdWeek] = []
    trend: dict[str, list[TrendPoint]] = {}
    for opd in opds:
        s = scores.get((opd, week))
        lines.append(OpdWeek(
            opd_id=opd, opd_name=opd_names.get(opd, opd),
            # every incident routed to it, false alarms included; times leave those out
            routed=(s.routed if s else 0) + false_alarms.get(opd, 0),
            acknowledged=s.acknowledged if s else 0,
            resolved=s.resolved if s else 0,
            sla_ack_total=s.sla_ack_total if s else 0, sla_ack_met=s.sla_ack_met if s else 0,
            sla_ack_pct=s.sla_ack_pct if s else None,
            ack_p50_s=s.ack_p50_s if s else None, ack_p90_s=s.ack_p90_s if s else None,
            resolve_p50_s=s.resolve_p50_s if s else None,
            resolve_p90_s=s.resolve_p90_s if s else None,
            ack_breaches=s.ack_breaches if s else 0,
            resolve_breaches=s.resolve_breaches if s else 0,
            false_alarms=false_alarms.get(opd, 0),
        ))  # fmt: skip
        trend[opd] = []
        for w in weeks:
            t = scores.get((opd, w))
            trend[opd].append(TrendPoint(
                w, t.routed if t else 0, t.ack_p50_s if t else None,
                t.sla_ack_pct if t else None, (t.ack_breaches + t.resolve_breaches) if t else 0,
            ))  # fmt: skip
    return WeeklyReport(week, starts, ends, timezone, title, lines, trend, now)
