"""What `pantau server` keeps of the workers: leases (fencing the desk), heartbeats (the
workers panel, the fleet watch), media (proxied from the owning worker) and snapshots (copied
from Redis into the server's own folder as the desk takes each observation, so an incident's
picture outlives the worker that took it)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import redis.asyncio as aioredis

from events.bus import Bus
from events.files import write_atomic
from events.model import AnyEvent, Observation, StateModelChangedEvent, WorkerStatus
from events.redis_bus import retrying
from pantau.camera_watch import CameraWatch
from pantau.config import PantauConfig
from pantau.fleet import Registry
from pantau.leases import CameraLeases
from pantau.media_proxy import RemoteMedia
from pantau.model_shelf import ModelShelf
from pantau.worker_role import CONFIG_KEY, SNAPSHOT
from wallboard.hub import Hub
from wallboard.webrtc import LiveError

log = logging.getLogger(__name__)


class ServerFleet:
    def __init__(self, config: PantauConfig, bus: Bus, snapshot_dir: Path, models: Path) -> None:
        self.config = config
        self.bus = bus
        self.snapshot_dir = snapshot_dir
        self.models = models  # the server's state_models folder: what workers get
        self.redis: aioredis.Redis = aioredis.Redis.from_url(
            config.bus, socket_connect_timeout=2, socket_timeout=5
        )
        self.leases = CameraLeases(self.redis)
        self.shelf = ModelShelf(self.redis)
        self.registry = Registry(self.redis, config.fleet.heartbeat_s)
        self.watch = CameraWatch(
            config.cameras, config.fleet, self.leases, self.registry, self._publish
        )
        self._media: RemoteMedia | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def media(self) -> RemoteMedia:
        assert self._media is not None, "ServerFleet.start() first"
        return self._media

    async def _publish(self, event: AnyEvent) -> None:
        await self.bus.publish(event)

    async def start(self, hub: Hub) -> None:
        secret = await self.registry.media_secret()
        self._media = RemoteMedia(self.leases, self.registry, secret)
        shared = await self.shelf.share_all(self.models, [c.id for c in self.config.cameras])
        log.info("%d enabled state model(s) shared with the workers", shared)
        self.watch.hub = hub
        self._task = asyncio.create_task(self.watch.run(), name="fleet-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._media is not None:
            await self._media.close()
        await self.redis.aclose()

    async def reconfigure(self, config: PantauConfig, text: str) -> None:
        """A reload on the server: the fleet watch covers the new camera list, and the workers
        get the file's text through Redis (they parse it with their own environment)."""
        self.config = config
        self.watch.cameras = {c.id: c for c in config.cameras}
        await self.share_config(text)

    async def share_config(self, text: str) -> None:
        await retrying(f"SET {CONFIG_KEY}", lambda: self.redis.set(CONFIG_KEY, text))

    async def share_model(self, camera_id: str, zone_id: str, version: int | None,
                          by: str) -> None:  # fmt: skip
        """A model enabled (or disabled) here: into Redis, then the camera's worker is told."""
        await self.shelf.put(self.models, camera_id, zone_id, version)
        await self.bus.publish(StateModelChangedEvent(camera_id=camera_id, zone_id=zone_id,
                                                      version=version, by=by))  # fmt: skip
        log.info("camera=%s zone=%s state model %s by %s, shared with the workers", camera_id,
                 zone_id, f"v{version} enabled" if version else "disabled", by)  # fmt: skip

    async def fence(self, camera_id: str) -> int | None:
        """The desk's fence check waits out a Redis restart: an observation that the desk
        dropped for a failed GET would be an accepted event lost."""
        return await retrying(f"GET fence {camera_id}", lambda: self.leases.fence(camera_id))  # type: ignore[no-any-return]

    async def workers(self) -> list[WorkerStatus]:
        try:
            return await self.registry.all()
        except (OSError, aioredis.RedisError) as exc:
            why = f"Redis is not reachable, the workers' state is unknown: {exc}"
            raise LiveError(503, why) from exc

    async def fetch_snapshot(self, obs: Observation) -> None:
        """Before the desk takes an observation: its snapshot into the server's folder."""
        name = obs.snapshot_ref
        if not name or "/" in name or (self.snapshot_dir / name).is_file():
            return
        key = SNAPSHOT.format(name)
        data = await retrying(f"GET {key}", lambda: self.redis.get(key))
        if data is None:
            log.warning("camera=%s observation=%s snapshot %s not in Redis",
                        obs.camera_id, obs.id, name)  # fmt: skip
            return
        blob = data if isinstance(data, bytes) else data.encode()
        await asyncio.to_thread(write_atomic, self.snapshot_dir / name, blob)
