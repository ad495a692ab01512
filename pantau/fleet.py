"""Worker liveness on Redis (as arq does it): a heartbeat key with a TTL its worker refreshes.

pantau:workers              the names of every worker that ever registered (a set)
pantau:worker:<name>        its latest WorkerStatus, PX 3 x heartbeat: gone = not alive
pantau:worker-last:<name>   the same status without a TTL: what a lost worker held
pantau:media-secret         the key media requests between server and workers are signed with
"""

from __future__ import annotations

import logging
import secrets

import redis.asyncio as aioredis

from events.model import WorkerState, WorkerStatus

log = logging.getLogger(__name__)

WORKERS = "pantau:workers"
ALIVE = "pantau:worker:{}"
LAST = "pantau:worker-last:{}"
MEDIA_SECRET = "pantau:media-secret"


class Registry:
    def __init__(self, redis: aioredis.Redis, heartbeat_s: float) -> None:
        self.redis = redis
        self.ttl_ms = int(heartbeat_s * 3 * 1000)

    async def beat(self, status: WorkerStatus) -> None:
        body = status.model_dump_json()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(WORKERS, status.name)
            pipe.set(ALIVE.format(status.name), body, px=self.ttl_ms)
            pipe.set(LAST.format(status.name), body)
            await pipe.execute()

    async def goodbye(self, status: WorkerStatus) -> None:
        """A clean stop: not alive any more, and not lost either."""
        gone = status.model_copy(update={"state": WorkerState.STOPPED, "cameras": ()})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(ALIVE.format(status.name))
            pipe.set(LAST.format(status.name), gone.model_dump_json())
            await pipe.execute()

    async def all(self) -> list[WorkerStatus]:
        """Every known worker: alive ones as they report, the others as last seen, LOST
        unless they said goodbye."""
        members = await self.redis.smembers(WORKERS)  # type: ignore[misc]
        names = sorted(n.decode() if isinstance(n, bytes) else n for n in members)
        if not names:
            return []
        alive = await self.redis.mget([ALIVE.format(n) for n in names])
        last = await self.redis.mget([LAST.format(n) for n in names])
        found = []
        for a, b in zip(alive, last, strict=True):
            raw = a or b
            if raw is None:
                continue
            status = WorkerStatus.model_validate_json(raw)
            if a is None and status.state == WorkerState.RUNNING:
                status = status.model_copy(update={"state": WorkerState.LOST})
            found.append(status)
        return found

    async def media_secret(self) -> bytes:
        """One random key for the site, made by whichever box asks first (SET NX)."""
        await self.redis.set(MEDIA_SECRET, secrets.token_hex(32), nx=True)
        raw = await self.redis.get(MEDIA_SECRET)
        assert raw is not None
        return raw if isinstance(raw, bytes) else raw.encode()
