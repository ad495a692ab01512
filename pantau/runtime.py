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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from analytics.engine import local_snapshots
from events.api_keys import ApiKeys
from events.attachments import Attachments
from events.bus import Bus, MemoryBus, default_consumer_name
from events.calendar import WorkCalendar
from events.cap_feed import CapFeedPoller
from events.desk import IncidentDesk
from events.desk_feed import DeskFeed
from events.model import ConfigChangedEvent, Incident
from events.notify.chat_answers import ChatAnswers
from events.notify.chat_links import ChatLinks
from events.notify.dispatcher import Dispatcher
from events.notify.gateway_replies import GatewayReplies
from events.notify.whatsapp import WhatsAppApp
from events.redis_bus import RedisStreamBus
from events.region import CameraPoint, Kecamatan, Region
from events.report_service import Reports
from events.roster import duty_board
from events.store import Store
from ingest.urls import mask_url
from pantau import demo_media
from pantau.camera_host import STATE_MODELS, CameraHost
from pantau.config import ConfigError, PantauConfig
from pantau.config_diff import diff
from pantau.config_editor import ConfigEditor
from pantau.control import ControlServer, socket_path
from pantau.disk_watch import DiskWatch
from pantau.heap import HeapKeeper
from pantau.loop_monitor import LoopMonitor
from pantau.memory_trace import MemoryTrace
from pantau.recorded_still import frame_at
from pantau.reloader import ConfigSource, ReloadResult, digest, running_config
from pantau.replay_jobs import ReplayJobs
from pantau.rtsp_server import RtspTestServer
from pantau.server_fleet import ServerFleet
from pantau.state_labelling import Labelling
from pantau.web import QuietServer, serve
from wallboard.app import CameraInfo, WallboardDeps, create_app
from wallboard.auth import Accounts, Role
from wallboard.hub import PAGE_TYPES, Hub
from wallboard.live import LiveFrames
from wallboard.walls import WallDirector
from wallboard.webrtc import LiveVideo

if TYPE_CHECKING:
    from events.notify.telegram import TelegramBot

log = logging.getLogger(__name__)


def make_bus(setting: str) -> Bus:
    """`memory` (one process) or a `redis://` URL (Redis Streams, for several processes)."""
    if setting == "memory":
        return MemoryBus()
    return RedisStreamBus(setting)


@dataclass
class Runtime:
    """`pantau run`: every part in one process, on the memory bus (or on Redis, alone)."""

    config: PantauConfig
    base_dir: Path
    rtsp: RtspTestServer | None = None
    web_port: int | None = None
    # "all": every part here (pantau run); "server": desk, store, routing, wall and API, with
    # the cameras on `pantau worker` boxes (pantau server, Redis bus).
    role: str = "all"
    # Where `reload` reads the file again; None: this process cannot reload (tests, benches).
    source: ConfigSource | None = None

    def __post_init__(self) -> None:
        self.data_dir = (self.base_dir / self.config.storage.data_dir).resolve()
        self.snapshot_dir = self.data_dir / "snapshots"
        self.clip_dir = self.data_dir / "clips"
        self.store = Store(self.data_dir / "pantau.db")
        self.accounts = Accounts(self.store)
        self.bus = make_bus(self.config.bus)
        self.calendar = WorkCalendar(self.config.calendar, self.config.ui.timezone)
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
            calendar=self.calendar,
        )
        self.feed = DeskFeed(self.desk, self.bus)
        self.loop_monitor = LoopMonitor()
        self.memory_trace = MemoryTrace.from_env()
        self.heap = HeapKeeper()
        self.disk_watch: DiskWatch | None = None
        self.host: CameraHost | None = None
        if self.role == "all":
            self.host = CameraHost(
                self.config, self.data_dir, self.bus, local_snapshots(self.snapshot_dir)
            )
        self.fleet: ServerFleet | None = None
        if self.role == "server":
            self.fleet = ServerFleet(
                self.config, self.bus, self.snapshot_dir, self.data_dir / STATE_MODELS
            )
            self.feed = DeskFeed(self.desk, self.bus, self.fleet.fetch_snapshot)
            self.desk.fence = self.fleet.fence
        self.dispatcher = Dispatcher(
            self.store,
            self.bus.publish,
            self.config.opds,
            self.config.routing,
            self.config.notify,
            self.config.correlation,
            self.config.ui.timezone,
            calendar=self.calendar,
        )
        # Two-way chat apps: who a chat user is, what they send back, the apps themselves.
        self.chat_links = ChatLinks(self.store, self.config.opds)
        self.attachments = Attachments(self.store, self.data_dir / "attachments")
        self.telegram: TelegramBot | None = None
        if self.config.notify.telegram is not None:
            from events.notify.telegram import TelegramBot  # aiogram: only where it is used

            self.telegram = TelegramBot(
                self.config.notify.telegram, self.chat_links,
                ChatAnswers(self.desk, self.attachments), self.snapshot_dir,
                self.config.ui.timezone,
            )  # fmt: skip
            self.dispatcher.apps.append(self.telegram)
        answers = ChatAnswers(self.desk, self.attachments)
        self.whatsapp: WhatsAppApp | None = None
        if self.config.notify.whatsapp is not None:
            self.whatsapp = WhatsAppApp(self.config.notify.whatsapp, self.chat_links, answers)
            self.dispatcher.apps.append(self.whatsapp)
        self.dispatcher.links = self.chat_links
        self.gateway_replies = GatewayReplies(self.chat_links, answers)
        self.reports = Reports(
            self.store, self.data_dir / "reports", self.config.report, self.config.ui.timezone,
            self.config.ui.title, lambda: {o.id: o.name for o in self.config.opds},
            self.config.notify.smtp,
        )  # fmt: skip
        self.hub = Hub(self._open_incidents, self._static_snapshot())
        self._tasks: list[asyncio.Task[None]] = []
        self._web: QuietServer | None = None
        self._web_task: asyncio.Task[None] | None = None
        self.video: LiveVideo | None = (
            LiveVideo(self.host, self.config.ui.max_live_viewers) if self.host else None
        )
        self.walls = WallDirector(self.config.walls, self.hub)
        self._deps: WallboardDeps | None = None
        self._cap_feeds: list[tuple[CapFeedPoller, asyncio.Task[None]]] = []
        self._reload_lock = asyncio.Lock()
        self.last_reload: ReloadResult | None = None
        self.control: ControlServer | None = None
        self.replays: ReplayJobs | None = None
        self._signalled: set[asyncio.Task[ReloadResult]] = set()

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

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(15)
            try:
                await self.desk.expire_alerts()
            except Exception:
                log.exception("alert expiry failed")

    async def _activity(self) -> None:
        """Which cameras see motion now (smart streaming) and their frame rates (health)."""
        assert self.host is not None
        for tick in itertools.count():
            self.hub.set_activity(self.host.active_cameras(time.monotonic()))
            if tick % 5 == 0:
                decoding = self.host.decoding()
                modes = {cid: (d["mode"], d["decoded_fps"]) for cid, d in decoding.items()}
                self.hub.send_rates(self.host.rates(), modes)
            await asyncio.sleep(1.0)

    def kecamatan_names(self) -> list[str]:
        return self.region().names

    def region(self) -> Region:
        """The regency as CAP areas are matched against it (events/region.py)."""
        intake = self.config.intake
        codes = {p.name: p.code for p in intake.places()}
        names = [c.kecamatan for c in self.config.cameras if c.kecamatan]
        names += [p.name for p in intake.places()]
        kecamatan = tuple(Kecamatan(n, codes.get(n)) for n in sorted(set(names), key=names.index))
        cameras = tuple(
            CameraPoint(c.kecamatan, c.lat, c.lon)
            for c in self.config.cameras
            if c.kecamatan and c.lat is not None and c.lon is not None
        )
        kab = intake.kabupaten
        return Region(kecamatan, kab.name if kab else None, kab.code if kab else None, cameras)

    def health(self) -> dict[str, object]:
        if self.host is None:  # the server: cameras are on the workers (see /api/workers)
            statuses = self.hub.camera_statuses()
            return {
                "cameras": {cid: str(st.state) for cid, st in statuses.items()},
                "workers": [w.model_dump(mode="json") for w in self.fleet.watch.workers]
                if self.fleet
                else [],
                "desk": {"observations": self.feed.observations,
                         "stale_dropped": self.desk.stale_dropped},
                "wall_clients": self.hub.client_count,
                "loop_lag": self.loop_monitor.stats(),
                "disk": self.disk_watch.state() if self.disk_watch else {},
                "memory": self.heap.state(),
            }  # fmt: skip
        return {
            "cameras": {cid: str(st.state) for cid, st in self.host.statuses().items()},
            "detector": self.host.detector_health(),
            "decoding": self.host.decoding(),
            "analytics": self.host.analytics_health(),
            "wall_clients": self.hub.client_count,
            "live_video": self.video.stats() if self.video else {},
            "loop_lag": self.loop_monitor.stats(),
            "disk": self.disk_watch.state() if self.disk_watch else {},
            "memory": self.heap.state(),
        }

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self.loop_monitor.start()
        if self.memory_trace is not None:
            await self.memory_trace.start()
        self.heap.start()
        await self.store.open()
        await self._first_account()
        if self.config.demo is not None:
            streams = await asyncio.to_thread(self._prepare_demo_clips)
            self.rtsp = RtspTestServer(streams, port=self.config.demo.rtsp_port)
            self.rtsp.spawn()  # on the main thread: the child dies with this process
            await asyncio.to_thread(self.rtsp.wait_ready)
        await self.feed.start()
        if self.host is not None:
            await self.host.start()
            self._tasks.append(asyncio.create_task(self._activity(), name="activity"))
        if self.fleet is not None:
            await self.fleet.start(self.hub)
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        recording = self.host.recording if self.host is not None else None
        self.disk_watch = DiskWatch(
            self.data_dir, self.store, self.config.storage.warn_free_mb, self.bus.publish,
            recording.free_space if recording is not None else None,
            self.config.recording.max_disk_fraction,
        )  # fmt: skip
        self.disk_watch.on_change = lambda state: self.hub.announce(
            "system.disk", state, keep_as="disk"
        )
        await self.disk_watch.start()
        await self.dispatcher.start(self.bus)
        await self.chat_links.load()
        if self.telegram is not None:
            await self.telegram.start()
        await self.reports.start()
        self._start_cap_feeds()
        self.hub.start(
            await self.bus.subscribe(f"wallboard-{default_consumer_name()}", types=PAGE_TYPES)
        )
        self.walls.start(await self.bus.subscribe(f"walls-{default_consumer_name()}"))
        if self.host is not None:
            for cam in self.config.cameras:
                await self.host.start_camera(cam.id)
        await self._start_web()
        if self.source is not None:
            if self.fleet is not None:  # workers converge on the server's file
                text = await asyncio.to_thread(self.source.path.read_text, encoding="utf-8")
                await self.fleet.share_config(text)
                await self.bus.publish(ConfigChangedEvent(digest=digest(text), by="server start"))
            self.control = ControlServer(
                socket_path(self.data_dir), {"reload": self._control_reload}
            )
            await self.control.start()

    async def _control_reload(self, request: dict[str, object]) -> dict[str, object]:
        result = await self.reload(str(request.get("by") or "pantau reload"))
        return result.model_dump(mode="json")

    def on_sighup(self) -> None:
        """SIGHUP: reload, the answer goes to the log."""
        task = asyncio.create_task(self.reload("SIGHUP"), name="reload SIGHUP")
        self._signalled.add(task)
        task.add_done_callback(self._signalled.discard)

    def _start_cap_feeds(self) -> None:
        for feed in self.config.intake.cap_feeds:
            poller = CapFeedPoller(feed, self.region(), self.desk.receive_alert)
            task = asyncio.create_task(poller.run(), name=f"cap-feed {feed.url}")
            self._cap_feeds.append((poller, task))

    async def _stop_cap_feeds(self) -> None:
        for _, task in self._cap_feeds:
            task.cancel()
        await asyncio.gather(*(t for _, t in self._cap_feeds), return_exceptions=True)
        self._cap_feeds = []

    # ---- live reload ---------------------------------------------------------------------
    async def reload(self, by: str) -> ReloadResult:
        """Read cameras.yaml again and apply what changed (pantau/config_diff.py says what can
        be applied live). An invalid file is refused whole: the running config stays."""
        if self.source is None:
            return ReloadResult(
                ok=False, by=by, errors=["this process was not started from a file"]
            )
        async with self._reload_lock:
            try:
                text, new = await asyncio.to_thread(self.source.read)
            except ConfigError as exc:
                log.error("reload by %s refused, the running config stays:\n%s", by, exc)
                result = ReloadResult(ok=False, by=by, errors=exc.problems)
                self.last_reload = result
                return result
            result = await self._apply(text, new, by)
            self.last_reload = result
            log.info("reload by %s: %s", by, "; ".join(result.lines()))
            return result

    async def _apply(self, text: str, new: PantauConfig, by: str) -> ReloadResult:
        old = self.config
        change = diff(old, new)
        new = running_config(old, new, change)
        self.config = new
        cameras: dict[str, object] = {}
        if self.host is not None:
            cameras = await self.host.reconfigure(new, change)
            for cid in change.cameras_added:
                await self.host.start_camera(cid)
                cameras[cid] = "started"
        if self.fleet is not None:
            await self.fleet.reconfigure(new, text)
        self.desk.routes = list(new.routing)
        self.desk.correlation = new.correlation
        self.desk.camera_coords = {
            c.id: (c.lat, c.lon) for c in new.cameras if c.lat is not None and c.lon is not None
        }
        self.calendar = WorkCalendar(new.calendar, new.ui.timezone)
        self.desk.calendar = self.calendar
        self.dispatcher.reconfigure(
            new.opds, new.routing, new.correlation, new.ui.timezone, self.calendar
        )
        self.walls.reconfigure(new.walls)
        self.chat_links.reconfigure(new.opds)
        self.reports.reconfigure(new.report, new.ui.timezone, new.ui.title)
        self.hub.set_static(self._static_snapshot())
        region = self.region()
        if old.intake.cap_feeds != new.intake.cap_feeds:
            await self._stop_cap_feeds()
            self._start_cap_feeds()
        else:
            for poller, _ in self._cap_feeds:
                poller.region = region
        if self._deps is not None:
            self._deps.cameras = self._camera_infos()
            self._deps.walls = new.walls
            self._deps.ui = new.ui
            self._deps.false_alarm_share = new.false_alarms.flag_share
            self._deps.false_alarm_min = new.false_alarms.min_incidents
            self._deps.kecamatan = region.names
            self._deps.region = region
            self._deps.opds = [{"id": o.id, "name": o.name} for o in new.opds]
        result = ReloadResult(
            ok=True, by=by, digest=digest(text), changed=change.summary(),
            restart_needed=change.restart_needed, cameras=cameras,
        )  # fmt: skip
        if not change.empty:
            touched = sorted(change.cameras_touched)
            event = ConfigChangedEvent(digest=result.digest or "", by=by, cameras=touched)
            await self.bus.publish(event)
        return result

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

    def _camera_infos(self) -> list[CameraInfo]:
        return [
            CameraInfo(
                id=c.id, name=c.name, kecamatan=c.kecamatan, desa=c.desa, url_masked=mask_url(c.url)
            )
            for c in self.config.cameras
        ]

    async def _start_web(self) -> None:
        cameras = self._camera_infos()
        chat = self.config.notify.chat
        deps = WallboardDeps(
            store=self.store,
            hub=self.hub,
            live=LiveFrames(self.host) if self.host else self.fleet.media,  # type: ignore[union-attr]
            video=self.video if self.host else self.fleet.media,  # type: ignore[union-attr]
            workers=self.fleet.workers if self.fleet else None,
            remote_clip=self.fleet.media.clip if self.fleet else None,
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
            region=self.region(),
            opds=[{"id": o.id, "name": o.name} for o in self.config.opds],
            duty=lambda at: duty_board(self.config.opds, self.calendar, at),
            attachments=self.attachments,
            chat_links=self.chat_links if self.telegram is not None else None,
            whatsapp=self.whatsapp,
            gateway_replies=self.gateway_replies,
            gateway_secret=chat.reply_secret if chat is not None else None,
            reports=self.reports,
            false_alarm_share=self.config.false_alarms.flag_share,
            false_alarm_min=self.config.false_alarms.min_incidents,
            labelling=self._labelling(),
        )
        server = self.config.server
        tls = None
        if server.tls is not None:
            tls = (self.base_dir / server.tls.cert, self.base_dir / server.tls.key)
        deps.hsts = tls is not None
        if self.source is not None:
            deps.reload = self.reload
            deps.editor = ConfigEditor(self.source, self.reload)
            # Scaled out, an incident's clip comes from the worker that cut it.
            fetch = self.fleet.media.download_clip if self.fleet is not None else None
            self.replays = ReplayJobs(self.source, self.data_dir / "replays", fetch=fetch)
            deps.replays = self.replays
        self._deps = deps
        self._web, self._web_task, self.web_port = await serve(
            create_app(deps), server.host, server.port, tls, server.trusted_proxies
        )
        scheme = "https" if tls else "http"
        log.info("wallboard on %s://%s:%d/", scheme, server.host, self.web_port)

    def _labelling(self) -> Labelling:
        """One process: stills, recordings and models are here. Scaled out: the still and
        the recordings come from the workers, and an enabled model goes to them."""
        models = self.data_dir / STATE_MODELS
        common = (lambda: self.config, self.base_dir, self.data_dir, self.store)
        if self.host is not None:
            recordings = self.data_dir / self.config.recording.dir

            async def recorded(camera_id: str, at: datetime) -> npt.NDArray[np.uint8]:
                return await asyncio.to_thread(frame_at, recordings, camera_id, at)

            return Labelling(*common, LiveFrames(self.host).jpeg, self.snapshot_dir, models,
                             recorded, reload_models=self.host.reload_models)  # fmt: skip
        assert self.fleet is not None
        return Labelling(*common, self.fleet.media.jpeg, self.snapshot_dir, models,
                         self.fleet.media.recorded, share=self.fleet.share_model)  # fmt: skip

    async def stop(self) -> None:
        if self.control is not None:
            await self.control.stop()
        if self.replays is not None:
            await self.replays.stop()
        await asyncio.gather(*self._signalled, return_exceptions=True)
        if self._web is not None and self._web_task is not None:
            self._web.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._web_task, 3)
        if self.video is not None:
            await self.video.close()
        if self.host is not None:
            await self.host.stop()
        if self.fleet is not None:
            await self.fleet.stop()
        await self.hub.stop()
        await self.walls.stop()
        await self.reports.stop()
        if self.telegram is not None:
            await self.telegram.stop()
        if self.whatsapp is not None:
            await self.whatsapp.close()
        await self.dispatcher.stop()
        # Let the desk take in what the bus already holds (last observations), then end it.
        await self.bus.close()
        await self.feed.stop()
        await self._stop_cap_feeds()
        # Housekeeping and activity loops never end by themselves: waiting for them only
        # delayed every stop by their timeout.
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.rtsp is not None:
            await asyncio.to_thread(self.rtsp.stop)
        await self.store.close()
        if self.memory_trace is not None:
            await self.memory_trace.stop()
        await self.heap.stop()
        await self.loop_monitor.stop()
        log.info("pantau stopped")
