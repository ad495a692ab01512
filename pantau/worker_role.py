"""`pantau worker`: one box of cameras in a scaled-out site (Redis bus).

The worker claims free cameras by lease (least-loaded worker first, within its capacity and
the cameras' `workers:` pins), runs capture, analytics and recording for what it holds, renews
its leases every claim interval and stops a camera the moment its lease is not certainly its
own any more. It publishes observations and statuses on Redis Streams, keeps the observations
it holds open in Redis (the next owner continues them), beats a heartbeat the server's workers
panel reads, and serves its cameras' media to the server on a signed endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from pathlib import Path

import redis.asyncio as aioredis

from events.bus import Subscription
from events.model import (
    ConfigChangedEvent,
    EventType,
    Observation,
    StateModelChangedEvent,
    WorkerCamera,
    WorkerStatus,
    utcnow,
)
from events.redis_bus import RedisStreamBus
from ingest.urls import mask_url
from pantau.camera_host import STATE_MODELS, CameraHost
from pantau.config import ConfigError, PantauConfig
from pantau.config_diff import diff
from pantau.fleet import Registry
from pantau.heap import HeapKeeper
from pantau.leases import CameraLeases, Held
from pantau.media_server import media_app
from pantau.model_shelf import ModelShelf
from pantau.reloader import ConfigSource, digest, running_config
from pantau.web import QuietServer, serve
from wallboard.live import LiveFrames
from wallboard.webrtc import LiveVideo

log = logging.getLogger(__name__)

SNAPSHOT = "pantau:snapshot:{}"
CONFIG_KEY = "pantau:config"  # the server's cameras.yaml text, as last loaded there
SNAPSHOT_KEEP_S = 6 * 3600  # the server copies it as soon as it takes the observation


class WorkerRuntime:
    def __init__(
        self,
        config: PantauConfig,
        base_dir: Path,
        name: str,
        capacity: int | None = None,
        media_host: str = "0.0.0.0",
        media_port: int = 8091,
        media_url: str | None = None,
        source: ConfigSource | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.config_digest: str | None = None  # of the text the cameras run from
        self.name = name
        self.capacity = capacity
        self.fleet = config.fleet
        self.data_dir = (base_dir / config.storage.data_dir / "workers" / name).resolve()
        self.redis: aioredis.Redis = aioredis.Redis.from_url(
            config.bus, socket_connect_timeout=2, socket_timeout=5
        )
        self.bus = RedisStreamBus(config.bus)
        self.leases = CameraLeases(self.redis)
        self.shelf = ModelShelf(self.redis)
        self.models = self.data_dir / STATE_MODELS
        self.registry = Registry(self.redis, self.fleet.heartbeat_s)
        self.host = CameraHost(
            config, self.data_dir, self.bus, self._snapshot, name,
            may_speak=self.may_speak, on_observation=self._remember,
        )  # fmt: skip
        self.held: dict[str, Held] = {}
        self.stills = LiveFrames(self.host)
        self.video = LiveVideo(self.host, config.ui.max_live_viewers)
        self.media_host, self.media_port, self._media_url = media_host, media_port, media_url
        self.started_at = utcnow()
        self._tasks: list[asyncio.Task[None]] = []
        self.heap = HeapKeeper()
        self._web: QuietServer | None = None
        self._web_task: asyncio.Task[None] | None = None
        self._cpu = (time.monotonic(), _cpu_seconds())
        self._images = (time.monotonic(), 0)
        self.lost = 0  # leases lost (not released by us)

    # ---- leases --------------------------------------------------------------------------
    def may_speak(self, camera_id: str) -> bool:
        held = self.held.get(camera_id)
        return held is not None and held.valid()

    def _valid_until(self, sent_mono: float) -> float:
        # Stop before Redis can hand the camera to someone else, whatever the clock drift
        # between a renewal's sending and its arrival.
        margin = max(0.5, self.fleet.lease_ttl_s * 0.1)
        return sent_mono + self.fleet.lease_ttl_s - margin

    def _allowed(self, camera_id: str, worker: str) -> bool:
        pins = self.host.cameras[camera_id].workers
        return not pins or worker in pins

    async def _lose(self, camera_id: str, why: str) -> None:
        if self.held.pop(camera_id, None) is None:
            return
        self.lost += 1
        log.warning(
            "camera=%s lease lost on worker=%s (%s): stopping it", camera_id, self.name, why
        )
        await self.host.stop_camera(camera_id)

    async def _watchdog(self) -> None:
        """Stop a camera the moment its local deadline passes (Redis unreachable, or this
        process was paused): never two owners at once."""
        while True:
            now = time.monotonic()
            for cid, held in list(self.held.items()):
                if not held.valid(now):
                    await self._lose(cid, "not renewed in time")
            await asyncio.sleep(0.2)

    async def _renew(self) -> None:
        for cid, held in list(self.held.items()):
            sent = time.monotonic()
            try:
                ok = await self.leases.renew(cid, self.name, held.token, self.fleet.lease_ttl_s)
            except (OSError, aioredis.RedisError) as exc:
                log.warning("camera=%s lease renewal failed: %s", cid, exc)
                continue  # the watchdog stops it if this goes on past the deadline
            if ok and cid in self.held:
                self.held[cid].valid_until = self._valid_until(sent)
            elif not ok:
                await self._lose(cid, "another worker holds it")

    async def _claim(self) -> None:
        if self.capacity is not None and len(self.held) >= self.capacity:
            return
        ids = [c.id for c in self.config.cameras]
        owners = await self.leases.owners(ids)
        free = [c for c in ids if owners[c] is None and self._allowed(c, self.name)]
        if not free:
            return
        # Least-loaded first: every worker runs the same assignment over the same view, and
        # takes only the cameras it gives itself; SET-if-free in Redis settles any race.
        peers = [w for w in await self.registry.all() if w.state == "running"]
        load = {w.name: len(w.cameras) for w in peers if w.name != self.name}
        caps = {w.name: w.capacity for w in peers}
        load[self.name], caps[self.name] = len(self.held), self.capacity
        for cid in free:
            eligible = [
                n for n in load
                if self._allowed(cid, n) and (caps.get(n) is None or load[n] < (caps[n] or 0))
            ]  # fmt: skip
            if not eligible:
                continue
            pick = min(eligible, key=lambda n: (load[n], n))
            load[pick] += 1
            if pick != self.name:
                continue
            sent = time.monotonic()
            token = await self.leases.claim(cid, self.name, self.fleet.lease_ttl_s)
            if token is None:
                load[pick] -= 1
                continue
            self.held[cid] = Held(token, self._valid_until(sent))
            resume = await self.leases.open_observations(cid)
            await self._take_models(cid)
            log.info("camera=%s claimed by worker=%s token=%d (%d open observations)",
                     cid, self.name, token, len(resume))  # fmt: skip
            await self.host.start_camera(cid, token, resume)

    # ---- the zone-state models enabled on the server --------------------------------------
    async def _take_models(self, camera_id: str) -> list[str]:
        try:
            changed = await self.shelf.take(self.models, camera_id)
        except (OSError, aioredis.RedisError) as exc:  # it runs on what this box has
            log.warning("camera=%s state models not taken from Redis: %s", camera_id, exc)
            return []
        if changed:
            log.info("camera=%s state models taken on worker=%s: zones %s", camera_id,
                     self.name, ", ".join(sorted(changed)))  # fmt: skip
        return changed

    async def _model_changes(self, sub: Subscription) -> None:
        try:
            async for event in sub:
                if isinstance(event, StateModelChangedEvent) and event.camera_id in self.held:
                    if await self._take_models(event.camera_id):
                        self.host.reload_models(event.camera_id)
        finally:
            await sub.close()

    async def _lease_loop(self) -> None:
        # Peers started at the same time register first, so the first claims are shared.
        await asyncio.sleep(self.fleet.heartbeat_s * 1.5)
        while True:
            try:
                await self._renew()
                await self._claim()
            except (OSError, aioredis.RedisError) as exc:
                log.warning("worker=%s lease round failed: %s", self.name, exc)
            except Exception:
                log.exception("worker=%s lease round failed", self.name)
            await asyncio.sleep(self.fleet.claim_interval_s)

    # ---- what this worker tells the others -----------------------------------------------
    async def _remember(self, obs: Observation) -> None:
        held = self.held.get(obs.camera_id or "")
        if held is None:
            return
        # Best effort: the handover copy only lets a next owner continue the observation.
        # Redis being away must not cost the observation itself, which the bus publish then
        # retries (an un-kept copy at worst makes a next owner resume an older state of it).
        try:
            await self.leases.remember(obs, held.token)
        except (OSError, aioredis.RedisError) as exc:
            log.warning("camera=%s observation=%s not kept for handover: %s",
                        obs.camera_id, obs.id, exc)  # fmt: skip

    async def _snapshot(self, name: str, data: bytes) -> None:
        try:
            await self.redis.set(SNAPSHOT.format(name), data, ex=SNAPSHOT_KEEP_S)
        except aioredis.RedisError as exc:  # the observation goes on without its picture
            raise OSError(f"snapshot not copied to Redis: {exc}") from exc

    def status(self) -> WorkerStatus:
        now = time.monotonic()
        cpu_t0, cpu0 = self._cpu
        cpu_now = _cpu_seconds()
        self._cpu = (now, cpu_now)
        img_t0, img0 = self._images
        images = self.host.detector.stats.images
        self._images = (now, images)
        statuses, active = self.host.statuses(), self.host.active_cameras(now)
        cameras = tuple(
            WorkerCamera(
                camera_id=cid,
                lease_token=held.token,
                state=statuses[cid].state,
                input_fps=statuses[cid].input_fps,
                decoded_fps=statuses[cid].decoded_fps,
                decode_mode=statuses[cid].decode_mode,
                last_frame_age_s=statuses[cid].last_frame_age_s,
                active=cid in active,
            )
            for cid, held in sorted(self.held.items())
            if cid in statuses and held.valid(now)  # past its deadline it is not ours to report
        )
        return WorkerStatus(
            name=self.name, host=socket.gethostname(), pid=os.getpid(), capacity=self.capacity,
            cameras=cameras,
            detector_fps=round((images - img0) / (now - img_t0), 2) if now > img_t0 else 0.0,
            cpu_percent=round(100 * (cpu_now - cpu0) / (now - cpu_t0), 1) if now > cpu_t0 else 0,
            media_url=self.media_url, started_at=self.started_at, at=utcnow(),
        )  # fmt: skip

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.registry.beat(self.status())
            except (OSError, aioredis.RedisError) as exc:
                log.warning("worker=%s heartbeat failed: %s", self.name, exc)
            await asyncio.sleep(self.fleet.heartbeat_s)

    @property
    def media_url(self) -> str:
        if self._media_url:
            return self._media_url
        host = self.media_host if self.media_host not in ("0.0.0.0", "::") else socket.getfqdn()
        return f"http://{host}:{self.media_port}"

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        log.info("worker=%s on %s, capacity=%s", self.name, mask_url(self.config.bus),
                 self.capacity or "any")  # fmt: skip
        await self.host.start()
        self.heap.start()
        secret = await self.bus.retrying("media key", self.registry.media_secret)
        recordings = self.data_dir / self.config.recording.dir
        app = media_app(secret, self.name, self.stills, self.video, self.may_speak,
                        self.host.clip_dir, recordings_dir=recordings)  # fmt: skip
        self._web, self._web_task, self.media_port = await serve(
            app, self.media_host, self.media_port
        )
        await self.registry.beat(self.status())
        if self.source is not None:
            own = await asyncio.to_thread(self.source.path.read_text, encoding="utf-8")
            self.config_digest = digest(own)
            shared = await self.bus.retrying("GET config", lambda: self.redis.get(CONFIG_KEY))
            if shared is not None:  # before claiming: cameras run from the server's file
                await self.take_config(_text(shared), "server")
            sub = await self.bus.subscribe(
                f"config-{self.name}", types=frozenset({EventType.CONFIG_CHANGED})
            )
            self._tasks.append(asyncio.create_task(self._config_changes(sub), name="config"))
        models = await self.bus.subscribe(
            f"models-{self.name}", types=frozenset({EventType.STATE_MODEL_CHANGED})
        )
        self._tasks.append(asyncio.create_task(self._model_changes(models), name="models"))
        for coro, name in ((self._heartbeat(), "heartbeat"), (self._lease_loop(), "leases"),
                           (self._watchdog(), "lease-watchdog")):  # fmt: skip
            self._tasks.append(asyncio.create_task(coro, name=name))

    # ---- the server's cameras.yaml -------------------------------------------------------
    async def _config_changes(self, sub: Subscription) -> None:
        try:
            async for event in sub:
                if not isinstance(event, ConfigChangedEvent) or event.digest == self.config_digest:
                    continue
                try:
                    raw = await self.redis.get(CONFIG_KEY)
                except (OSError, aioredis.RedisError) as exc:
                    log.warning("worker=%s cannot read the server's config: %s", self.name, exc)
                    continue
                if raw is not None:
                    await self.take_config(_text(raw), event.by)
        finally:
            await sub.close()

    async def take_config(self, text: str, by: str) -> None:
        """The server's cameras.yaml (reloaded there, or newer than this box's copy): the
        cameras change as they would in one process; what needs a restart here stays."""
        if digest(text) == self.config_digest or self.source is None:
            return
        try:
            new = self.source.parse(text)
        except ConfigError as exc:  # e.g. a ${VAR} this box does not have
            log.error("worker=%s cannot take the server's cameras.yaml (by %s), keeps its "
                      "cameras as they are:\n%s", self.name, by, exc)  # fmt: skip
            return
        change = diff(self.config, new)
        new = running_config(self.config, new, change)
        if change.restart_needed:
            differs = ", ".join(change.restart_needed)
            log.warning("worker=%s: the server's cameras.yaml differs in %s; this box keeps "
                        "its own until restarted", self.name, differs)  # fmt: skip
        cameras = {c.id: c for c in new.cameras}
        for cid in list(self.held):
            cam = cameras.get(cid)
            if cam is None or (cam.workers and self.name not in cam.workers):
                held = self.held.pop(cid)
                await self.host.stop_camera(cid)
                with contextlib.suppress(OSError, aioredis.RedisError):
                    await self.leases.release(cid, self.name, held.token)
                log.info("camera=%s released by worker=%s: %s", cid, self.name,
                         "removed" if cam is None else "pinned to other workers")  # fmt: skip
        self.config = new
        self.config_digest = digest(text)
        report = await self.host.reconfigure(new, change)
        log.info("worker=%s took cameras.yaml (by %s): %s", self.name, by, report or "no change")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        held = dict(self.held)
        self.held.clear()
        for cid in held:
            await self.host.stop_camera(cid)
        # Hand the cameras back at once (the next owner need not wait for the TTL); their
        # open observations stay in Redis for it.
        with contextlib.suppress(OSError, aioredis.RedisError):
            for cid, h in held.items():
                await self.leases.release(cid, self.name, h.token)
            await self.registry.goodbye(self.status())
        if self._web is not None and self._web_task is not None:
            self._web.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._web_task, 3)
        await self.video.close()
        await self.host.stop()
        await self.heap.stop()
        await self.bus.close()
        await self.redis.aclose()
        log.info("worker=%s stopped", self.name)


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
