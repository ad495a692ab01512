"""How honest each camera rule is: the share of its incidents that operators closed as a false
alarm ("Bukan kejadian") over the last 7 and 30 days. A rule above `flag_share` (with at least
`min_incidents`) is flagged to admins with its latest false alarms' snapshots, so the threshold
or the zone gets fixed, and those snapshots can become "normal" labels of the camera's model.

A rule is known by what its incidents carry: camera, kind and zone ("flood@lantai").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from events.store import Store

WINDOWS = (7, 30)


@dataclass(frozen=True)
class RuleHonesty:
    camera_id: str
    rule: str  # kind@zone, or the kind for camera-wide rules (tamper, offline)
    kind: str
    zone_id: str | None
    incidents_7d: int
    false_alarms_7d: int
    incidents_30d: int
    false_alarms_30d: int
    flagged: bool
    examples: list[str]  # incident ids of the latest false alarms (their snapshots)

    @property
    def share_7d(self) -> float | None:
        return round(self.false_alarms_7d / self.incidents_7d, 3) if self.incidents_7d else None

    @property
    def share_30d(self) -> float | None:
        return round(self.false_alarms_30d / self.incidents_30d, 3) if self.incidents_30d else None

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "share_7d": self.share_7d, "share_30d": self.share_30d}


async def honesty(
    store: Store, now: datetime, flag_share: float = 0.3, min_incidents: int = 5,
    examples: int = 3,
) -> list[RuleHonesty]:  # fmt: skip
    """Per camera rule with incidents in the last 30 days; flagged on the 7-day share (or the
    30-day one while the week has too few incidents to judge)."""
    since = now - timedelta(days=30)
    week = now - timedelta(days=7)
    rows = await store.execute(
        """SELECT camera_id, kind, json_extract(body, '$.zone_id'), state, started_at, id,
                  json_extract(body, '$.snapshot_ref')
           FROM incidents WHERE camera_id IS NOT NULL AND started_at >= ?
           ORDER BY started_at DESC""",
        (since.astimezone(UTC).isoformat(),),
    )
    groups: dict[tuple[str, str, str | None], list[tuple[str, datetime, str, bool]]] = {}
    for camera, kind, zone, state, started, inc_id, snap in rows:
        key = (str(camera), str(kind), None if zone is None else str(zone))
        at = datetime.fromisoformat(str(started))
        groups.setdefault(key, []).append((str(state), at, str(inc_id), snap is not None))
    out = []
    for (camera, kind, zone), items in sorted(groups.items()):
        recent = [i for i in items if i[1] >= week]
        fa_30 = [i for i in items if i[0] == "false_alarm"]
        fa_7 = [i for i in recent if i[0] == "false_alarm"]
        judged = recent if len(recent) >= min_incidents else items
        judged_fa = [i for i in judged if i[0] == "false_alarm"]
        flagged = len(judged) >= min_incidents and len(judged_fa) / len(judged) > flag_share
        out.append(RuleHonesty(
            camera, f"{kind}@{zone}" if zone else kind, kind, zone, len(recent), len(fa_7),
            len(items), len(fa_30), flagged,
            [i[2] for i in fa_30 if i[3]][:examples],
        ))  # fmt: skip
    return out
