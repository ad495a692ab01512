"""The OPD response scoreboard: how fast each OPD acknowledges and resolves, week by week.

Times run from when the OPD was told (first successful delivery; when nothing could be
delivered, from when the incident was routed to it). Incidents closed as false alarms do not
count. Weeks are ISO weeks in the operator's time zone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
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

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


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


def compute(
    rows: list[tuple[str, str, str | None, str | None, str | None]], tz: str
) -> list[OpdScore]:
    zone = ZoneInfo(tz) if tz else UTC
    buckets: dict[tuple[str, str], list[tuple[float | None, float | None]]] = {}
    for opd, routed_at, delivered_at, acked_at, resolved_at in rows:
        told = datetime.fromisoformat(delivered_at or routed_at)
        year, wk, _ = datetime.fromisoformat(routed_at).astimezone(zone).isocalendar()
        buckets.setdefault((opd, f"{year}-W{wk:02d}"), []).append(
            (_seconds(told, acked_at), _seconds(told, resolved_at))
        )
    scores = []
    for (opd, week), items in sorted(buckets.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        acks = [max(a, 0.0) for a, _ in items if a is not None]
        fixes = [max(r, 0.0) for _, r in items if r is not None]
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
            )
        )
    return scores


async def scoreboard(
    store: Store, tz: str, weeks: int = 8, now: datetime | None = None
) -> list[OpdScore]:
    since = (now or datetime.now(UTC)) - timedelta(weeks=weeks)
    return compute(await store.response_times(since=since), tz)
