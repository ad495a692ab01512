"""The OPD response scoreboard: how fast each OPD acknowledges and resolves, week by week.

Times run from when the OPD was told (first successful delivery; when nothing could be
delivered, from when the incident was routed to it). Incidents closed as false alarms do not
count. Weeks are ISO weeks in the operator's time zone. SLA figures count only incidents whose
route has an SLA: met when acknowledged by the due time; a breach is a clock that ran out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from events.store import Store


@dataclass(frozen=True)
class OpdScore:
    opd_id: str
    week: str  # ISO week, e.g. 2026-W48
    routed: int
    acknowledged: int
    resolved: int
    unanswered: int
    ack_p50_s: float | None
    ack_p90_s: float | None
    resolve_p50_s: float | None
    resolve_p90_s: float | None
    sla_ack_total: int = 0  # incidents with an acknowledge SLA
    sla_ack_met: int = 0  # ...acknowledged by the due time
    ack_breaches: int = 0
    resolve_breaches: int = 0

    @property
    def sla_ack_pct(self) -> float | None:
        return round(100 * self.sla_ack_met / self.sla_ack_total, 1) if self.sla_ack_total else None

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "sla_ack_pct": self.sla_ack_pct}


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), 1)


def _seconds(start: datetime, end: str | None) -> float | None:
    return (datetime.fromisoformat(end) - start).total_seconds() if end else None


@dataclass(frozen=True)
class _Row:
    ack_s: float | None
    resolve_s: float | None
    sla_ack: bool | None  # None: no acknowledge SLA
    ack_breached: bool
    resolve_breached: bool


def week_of(at: datetime, zone: ZoneInfo | timezone) -> str:
    year, wk, _ = at.astimezone(zone).isocalendar()
    return f"{year}-W{wk:02d}"


def compute(rows: Sequence[Sequence[str | None]], tz: str) -> list[OpdScore]:
    """Rows as Store.response_times gives them (older callers' 5 columns also work)."""
    zone = ZoneInfo(tz) if tz else UTC
    buckets: dict[tuple[str, str], list[_Row]] = {}
    for row in rows:
        opd, routed_at, delivered_at, acked_at, resolved_at = (row[i] for i in range(5))
        ack_due, _, ack_breached, resolve_breached = (*row[5:9], None, None, None, None)[:4]
        assert opd is not None and routed_at is not None
        told = datetime.fromisoformat(delivered_at or routed_at)
        sla_ack = None
        if ack_due is not None:
            due = datetime.fromisoformat(ack_due)
            # met strictly before the due time: at the due time the clock has run out
            sla_ack = acked_at is not None and datetime.fromisoformat(acked_at) < due
        week = week_of(datetime.fromisoformat(routed_at), zone)
        buckets.setdefault((opd, week), []).append(
            _Row(
                _seconds(told, acked_at),
                _seconds(told, resolved_at),
                sla_ack,
                ack_breached is not None,
                resolve_breached is not None,
            )
        )
    scores = []
    for (opd, week), items in sorted(buckets.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        acks = [max(r.ack_s, 0.0) for r in items if r.ack_s is not None]
        fixes = [max(r.resolve_s, 0.0) for r in items if r.resolve_s is not None]
        scores.append(
            OpdScore(
                opd_id=opd,
                week=week,
                routed=len(items),
                acknowledged=len(acks),
                resolved=len(fixes),
                unanswered=len(items) - len(acks),
                ack_p50_s=percentile(acks, 0.5),
                ack_p90_s=percentile(acks, 0.9),
                resolve_p50_s=percentile(fixes, 0.5),
                resolve_p90_s=percentile(fixes, 0.9),
                sla_ack_total=sum(r.sla_ack is not None for r in items),
                sla_ack_met=sum(r.sla_ack is True for r in items),
                ack_breaches=sum(r.ack_breached for r in items),
                resolve_breaches=sum(r.resolve_breached for r in items),
            )
        )
    return scores


async def scoreboard(
    store: Store, tz: str, weeks: int = 8, now: datetime | None = None
) -> list[OpdScore]:
    since = (now or datetime.now(UTC)) - timedelta(weeks=weeks)
    return compute(await store.response_times(since=since), tz)
