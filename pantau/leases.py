"""Camera ownership on Redis: one lease key per camera, with a TTL and a fencing token.

    pantau:lease:<camera>   "<worker>:<token>"  PX ttl   held by at most one worker
    pantau:fence:<camera>   the last token handed out; INCR on every new owner, never reset
    pantau:open:<camera>    the observations its owner holds open (for the next owner)

Every step is one Lua script, so "is it free? then take it with the next token" and "is it
still mine? then extend it" are atomic on the Redis side; no clock is compared across boxes.
A token only grows, so the desk can drop whatever a previous owner says late (fencing, as in
Kleppmann's "How to do distributed locking"). Redis' own TTL decides expiry; the owner also
keeps a local deadline (sent-time + TTL - margin) and stops the camera when it passes without
a renewal, so it has stopped before Redis lets anyone else in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from events.model import Observation

log = logging.getLogger(__name__)

LEASE = "pantau:lease:{}"
FENCE = "pantau:fence:{}"
OPEN = "pantau:open:{}"
OPEN_KEEP_S = 24 * 3600  # open observations of a camera nobody runs are kept this long

_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""
# Remember (or forget, when closed) an open observation, only while the lease is still ours.
_REMEMBER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[4] == '1' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
else redis.call('HDEL', KEYS[2], ARGV[2]) end
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""


@dataclass(frozen=True)
class Owner:
    worker: str
    token: int


def parse_owner(raw: bytes | str | None) -> Owner | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    worker, _, token = text.rpartition(":")
    return Owner(worker, int(token)) if worker and token.isdigit() else None


class CameraLeases:
    """The Redis side of leases: every call is one round trip."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._remember = redis.register_script(_REMEMBER)

    async def claim(self, camera_id: str, worker: str, ttl_s: float) -> int | None:
        """Take a free camera: its new fencing token, or None when someone holds it."""
        token = await self._claim(
            keys=[LEASE.format(camera_id), FENCE.format(camera_id)],
            args=[worker, int(ttl_s * 1000)],
        )
        return int(token) or None

    async def renew(self, camera_id: str, worker: str, token: int, ttl_s: float) -> bool:
        ok = await self._renew(
            keys=[LEASE.format(camera_id)], args=[f"{worker}:{token}", int(ttl_s * 1000)]
        )
        return bool(ok)

    async def release(self, camera_id: str, worker: str, token: int) -> bool:
        ok = await self._release(keys=[LEASE.format(camera_id)], args=[f"{worker}:{token}"])
        return bool(ok)

    async def owners(self, camera_ids: Iterable[str]) -> dict[str, Owner | None]:
        ids = list(camera_ids)
        if not ids:
            return {}
        raw = await self.redis.mget([LEASE.format(c) for c in ids])
        return {cid: parse_owner(r) for cid, r in zip(ids, raw, strict=True)}

    async def fence(self, camera_id: str) -> int | None:
        """The camera's newest token (what the desk compares observations with)."""
        raw = await self.redis.get(FENCE.format(camera_id))
        return int(raw) if raw is not None else None

    async def remember(self, obs: Observation, token: int) -> bool:
        assert obs.camera_id is not None
        ok = await self._remember(
            keys=[LEASE.format(obs.camera_id), OPEN.format(obs.camera_id)],
            args=[f"{obs.worker}:{token}", obs.rule, obs.model_dump_json(),
                  "1" if obs.active else "0", OPEN_KEEP_S],
        )  # fmt: skip
        return bool(ok)

    async def open_observations(self, camera_id: str) -> list[Observation]:
        raw = cast(dict[Any, Any], await self.redis.hgetall(OPEN.format(camera_id)))
        found = []
        for value in raw.values():
            try:
                found.append(Observation.model_validate_json(value))
            except ValueError:
                log.warning("camera=%s unreadable open observation dropped", camera_id)
        return found


@dataclass
class Held:
    token: int
    valid_until: float  # monotonic: past this without a renewal, the camera must be stopped

    def valid(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) < self.valid_until
