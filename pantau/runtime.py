"""Builds the services of one Pantau process and owns their lifetimes.

Start order: store -> bus -> demo RTSP server -> detector -> consumers -> cameras -> web.
Stop runs in reverse, each step bounded, so SIGTERM ends the process within seconds and leaves
no thread, task or child process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import uvicorn

from analytics.detector import Detector
from analytics.engine import CameraAnalytics, CameraPlace
from events.api_keys import ApiKeys
from events.bus import Bus, MemoryBus, default_consumer_name
from events.cap_feed import CapFeedPoller
from events.desk import IncidentDesk
from events.model import (
    CameraState,
    CameraStatus,
    CameraStatusEvent,
    ClipReadyEvent,
    ClipRef,
    EventType,
    Incident,
    IncidentEvent,
)
from events.notify.dispatcher import Dispatcher
from events.redis_bus import RedisStreamBus
from events.store import Store
from ingest.recording import RecordingService
from ingest.source import PacketListener
from ingest.urls import mask_url
from ingest.worker import CameraWorker
from pantau import demo_media
from pantau.config import PantauConfig
from pantau.rtsp_server import RtspTestServer
from wallboard.app import CameraInfo, WallboardDeps, create_app
from wallboard.auth import Accounts, Role
from wallboard.hub import Hub
from wallboard.live import LiveFrames
from wallboard.walls import WallDirector
from wallboard.webrtc import LiveVideo

log = logging.getLogger(__name__)


def make_bus(setting: str) -> Bus:
    """`memory` (one process) or a `redis://` URL (Redis Streams, for several processes)."""
    if setting == "memory":
        return MemoryBus()
    return RedisStreamBus(setting)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Runtime:
    config: PantauConfig
    base_dir: Path
    workers: dict[str, CameraWorker] = field(default_factory=dict)
    analytics: dict[str, CameraAnalytics] = field(default_factory=dict)
    rtsp: RtspTestServer | None = None
    web_port: int | None = None

    def __post_init__(self) -> None:
        self.data_dir = (self.base_dir / self.config.storage.data_dir).resolve()
        self.snapshot_dir = self.data_dir / "snapshots"
        self.clip_dir = self.data_dir / "clips"
        self.recording: RecordingService | None = None
        self.store = Store(self.data_dir / "pantau.db")
        self.accounts = Accounts(self.store)
        self.bus = make_bus(self.config.bus)
        self.desk = IncidentDesk(
            self.store,
            self.bus.publish,
            self.config.routing,
            self.config.correlation,
            {
                c.id: (c.lat, c.lon)
                for c in self.config.cameras
                if c.lat is not None and c.lon is not None
            },
        )
        self.detector = Detector(self.config.detector)
        self.dispatcher = Dispatcher(
            self.store,
            self.bus.publish,
            self.config.opds,
            self.config.routing,
            self.config.notify,
            self.config.correlation,
            self.config.ui.timezone,
        )
        self.hub = Hub(self._open_incidents, self._static_snapshot())
        self._tasks: list[asyncio.Task[None]] = []
        self._reported: dict[str, CameraState] = {}
        self._web: _QuietServer | None = None
        self._web_task: asyncio.Task[None] | None = None
        self.video = LiveVideo(self, self.config.ui.max_live_viewers)
        self.walls = WallDirector(self.config.walls, self.hub)

    # ---- wiring helpers ------------------------------------------------------------------
    async def _open_incidents(self) -> list[Incident]:
        """For a page that (re)connects: every open incident plus the latest closed ones."""
        active = await self.store.incidents(active=True, limit=500)
        recent = await self.store.incidents(limit=100)
        seen = {i.id for i in active}
        return active + [i for i in recent if i.id not in seen]

    def _static_snapshot(self) -> dict[str, object]:
        return {
            "walls": [w.model_dump() for w in self.config.walls],
            "ui": self.config.ui.model_dump(),
        }

    def latest_image(self, camera_id: str) -> tuple[int, npt.NDArray[np.uint8]] | None:
        worker = self.workers.get(camera_id)
        frame = worker.latest() if worker else None
        return (frame.seq, frame.image) if frame is not None else None

    # The wall's PacketSource: live video taps the packets each capture already receives.
    def codec(self, camera_id: str) -> str | None:
        worker = self.workers.get(camera_id)
        return worker.capture.codec if worker else None

    def add_packet_listener(self, camera_id: str, listener: PacketListener) -> None:
        if camera_id in self.workers:
            self.workers[camera_id].capture.add_packet_listener(listener)

    def remove_packet_listener(self, camera_id: str, listener: PacketListener) -> None:
        if camera_id in self.workers:
            self.workers[camera_id].capture.remove_packet_listener(listener)

    async def _on_detection(self, event: IncidentEvent) -> None:
        """Analytics opened, updated or closed a detection: clip it, hand it to the desk."""
        if event.type == EventType.INCIDENT_CLOSED:
            self._request_clip(event.incident)
        await self.desk.observe(event)

    async def _on_status(self, status: CameraStatus) -> None:
        engine = self.analytics.get(status.camera_id)
        if engine is not None:
            await engine.on_health(status, time.monotonic())
        # The bus (and so the store and the wall) hears about state changes only.
        if self._reported.get(status.camera_id) != status.state:
            self._reported[status.camera_id] = status.state
            await self.bus.publish(CameraStatusEvent(status=status))

    async def _persist(self) -> None:
        # The desk stores what it publishes itself; this keeps the rest (camera status, clips).
        # Appends are idempotent by event id, so a redelivered event is stored once.
        sub = await self.bus.subscribe("store")
        try:
            async for event in sub:
                await self.store.append(event)
        finally:
            await sub.close()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(15)
            try:
                await self.desk.expire_alerts()
            except Exception:
                log.exception("alert expiry failed")

    async def _activity(self) -> None:
        """Which cameras see motion now (smart streaming) and their frame rates (health)."""
        for tick in itertools.count():
            now = time.monotonic()
            self.hub.set_activity({cid for cid, a in self.analytics.items() if a.active(now)})
            if tick % 5 == 0:
                self.hub.send_rates({cid: w.capture.input_fps() for cid, w in self.workers.items()})
            await asyncio.sleep(1.0)

    async def _publish_clip(self, clip: ClipRef) -> None:
        await self.bus.publish(ClipReadyEvent(clip=clip))

    def _request_clip(self, detection: Incident) -> None:
        """A camera detection ended: cut its clip, pre-roll before it, post-roll after."""
        rec = self.config.recording
        cam = detection.camera_id
        if self.recording is None or not cam or not self.recording.records(cam):
            return
        end = detection.ended_at or detection.updated_at
        self.recording.clips.request(
            detection.id, cam,
            detection.started_at - timedelta(seconds=rec.pre_roll_s),
            end + timedelta(seconds=rec.post_roll_s),
        )  # fmt: skip

    def kecamatan_names(self) -> list[str]:
        names = [c.kecamatan for c in self.config.cameras if c.kecamatan]
        names += self.config.intake.kecamatan
        return sorted(set(names), key=names.index)

    def health(self) -> dict[str, object]:
        return {
            "cameras": {cid: str(w.capture.state) for cid, w in self.workers.items()},
            "detector": {
                "batches": self.detector.stats.batches,
                "images": self.detector.stats.images,
                "inference_ms_p50": round(self.detector.stats.p50_ms(), 1),
                "last_batch_size": self.detector.stats.last_batch_size,
                "imgsz": self.detector.effective_imgsz,
                "model_input": self.detector.fixed_size,  # None: a dynamic model
                "inferences": self.detector.stats.inferences,
                "queue_depth": self.detector.queue_depth,
            },
            "analytics": {
                cid: {
                    "frames": a.frames,
                    "detected": a.detected,
                    "zone_counts": a.last_zone_counts,
                    "line_flow_per_min": {c.line.id: c.per_minute() for c in a.lines},
                }
                for cid, a in self.analytics.items()
            },
            "wall_clients": self.hub.client_count,
            "live_video": self.video.stats(),
        }

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.open()
        await self._first_account()
        if self.config.demo is not None:
            streams = await asyncio.to_thread(self._prepare_demo_clips)
            self.rtsp = RtspTestServer(streams, port=self.config.demo.rtsp_port)
            self.rtsp.spawn()  # on the main thread: the child dies with this process
            await asyncio.to_thread(self.rtsp.wait_ready)
        await self.detector.start()
        self._tasks.append(asyncio.create_task(self._persist(), name="store-writer"))
        if any(cam.record for cam in self.config.cameras):
            self.recording = RecordingService(
                {cam.id: cam for cam in self.config.cameras},
                self.config.recording,
                self.data_dir / self.config.recording.dir,
                self.clip_dir,
                self._publish_clip,
            )
            await self.recording.start()
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        self._tasks.append(asyncio.create_task(self._activity(), name="activity"))
        await self.dispatcher.start(self.bus)
        for feed in self.config.intake.cap_feeds:
            poller = CapFeedPoller(feed, self.kecamatan_names(), self.desk.receive_alert)
            self._tasks.append(asyncio.create_task(poller.run(), name=f"cap-feed {feed.url}"))
        self.hub.start(await self.bus.subscribe(f"wallboard-{default_consumer_name()}"))
        self.walls.start(await self.bus.subscribe(f"walls-{default_consumer_name()}"))
        for cam in self.config.cameras:
            place = CameraPlace(cam.id, cam.name, cam.kecamatan, cam.desa)
            engine = CameraAnalytics(
                place, cam.zones, cam.rules, self.detector, self._on_detection,
                self.snapshot_dir, detect_fps=cam.detect_fps, motion=self.config.motion,
                lines=cam.lines, detect_size=cam.detect_size,
            )  # fmt: skip
            worker = CameraWorker(cam.id, cam, engine.on_frame, self._on_status)
            self.analytics[cam.id] = engine
            self.workers[cam.id] = worker
            await worker.start()
        await self._start_web()

    async def _first_account(self) -> None:
        """With no account yet: an admin from PANTAU_ADMIN_PASSWORD, or in the demo one with a
        random password written to the log (a fixed default password would outlive the demo)."""
        if await self.accounts.all():
            return
        password = os.environ.get("PANTAU_ADMIN_PASSWORD")
        if password is None and self.config.demo is None:
            log.warning("no accounts yet: create one with `pantau user add <name> --role admin`")
            return
        shown = password is None
        password = password or secrets.token_urlsafe(9)
        await self.accounts.add("admin", password, Role.ADMIN, "Administrator")
        if shown:
            log.warning("demo login: admin / %s  (set your own: pantau user add)", password)

    def _prepare_demo_clips(self) -> dict[str, Path]:
        demo = self.config.demo
        assert demo is not None
        assets = demo_media.find_assets()
        cache = demo_media.default_cache_dir()
        return {s.path: demo_media.resolve_clip(s.clip, assets, cache) for s in demo.streams}

    async def _start_web(self) -> None:
        cameras = [
            CameraInfo(
                id=c.id, name=c.name, kecamatan=c.kecamatan, desa=c.desa, url_masked=mask_url(c.url)
            )
            for c in self.config.cameras
        ]
        deps = WallboardDeps(
            store=self.store,
            hub=self.hub,
            live=LiveFrames(self),
            video=self.video,
            director=self.walls,
            cameras=cameras,
            walls=self.config.walls,
            ui=self.config.ui,
            snapshot_dir=self.snapshot_dir,
            clip_dir=self.clip_dir,
            health=self.health,
            accounts=self.accounts,
            desk=self.desk,
            api_keys=ApiKeys(self.store),
            kecamatan=self.kecamatan_names(),
            opds=[{"id": o.id, "name": o.name} for o in self.config.opds],
        )
        server = self.config.server
        self._web = _QuietServer(
            uvicorn.Config(
                create_app(deps),
                host=server.host,
                port=server.port,
                log_config=None,
                timeout_graceful_shutdown=1,
                ws_ping_interval=20,
            )
        )
        self._web_task = asyncio.create_task(self._web.serve(), name="web")
        while not self._web.started:
            if self._web_task.done():
                await self._web_task  # raises the bind error
                raise RuntimeError(f"web server on {server.host}:{server.port} did not start")
            await asyncio.sleep(0.05)
        sockets = [s for srv in self._web.servers for s in srv.sockets]
        self.web_port = sockets[0].getsockname()[1] if sockets else server.port
        log.info("wallboard on http://%s:%d/", server.host, self.web_port)

    async def stop(self) -> None:
        if self._web is not None and self._web_task is not None:
            self._web.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._web_task, 3)
        await self.video.close()
        await asyncio.gather(*(w.stop() for w in self.workers.values()), return_exceptions=True)
        if self.recording is not None:
            await self.recording.stop()
        await self.hub.stop()
        await self.walls.stop()
        await self.dispatcher.stop()
        await self.detector.stop()
        # Let the store writer drain what the bus already holds, then end it.
        await self.bus.close()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.rtsp is not None:
            await asyncio.to_thread(self.rtsp.stop)
        await self.store.close()
        log.info("pantau stopped")
