"""The cameras one box runs: capture, analytics, recording and the media the wall watches.

`pantau run` hosts every camera; a `pantau worker` hosts the cameras it holds a lease on and
starts or stops each one as leases come and go. Either way the host only publishes: every
observation and camera status goes on the bus stamped with this box's name and the camera's
lease token, and the desk (wherever it runs) turns them into incidents. Clip requests come
back over the bus and are served by the box that records the camera.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.detector import Detector
from analytics.engine import Adopted, CameraAnalytics, CameraPlace, SnapshotSink
from events.bus import Bus, Subscription
from events.model import (
    CameraState,
    CameraStatus,
    CameraStatusEvent,
    ClipReadyEvent,
    ClipRef,
    ClipRequestEvent,
    EventType,
    Observation,
    ObservationEvent,
    utcnow,
)
from ingest.recording import RecordingService
from ingest.source import PacketListener
from ingest.worker import CameraWorker
from pantau.config import Camera, PantauConfig
from pantau.config_diff import ConfigDiff

log = logging.getLogger(__name__)
WATCH_HOLD_S = 3.0  # a viewer's picture requests closer than this keep full-rate decoding
STATE_MODELS = "state_models"  # in the data directory: <camera>/<zone>/v<N>.npz, `enabled`

# May this box still speak for the camera (its lease is valid)? Scaled out, the lease keeper
# answers; in one process always yes.
MaySpeak = Callable[[str], bool]
# Told of every observation published (scaled out: kept in Redis for a takeover).
ObservationHook = Callable[[Observation], Awaitable[None]]


@dataclass
class _Running:
    camera: Camera
    worker: CameraWorker
    analytics: CameraAnalytics
    token: int | None
    reported: CameraState | None = None
    started_mono: float = field(default_factory=time.monotonic)
    watched_until: float = 0.0  # someone looks at its decoded picture (MJPEG, stills) until
    looked_mono: float = float("-inf")  # the last request for its decoded picture


class CameraHost:
    def __init__(
        self,
        config: PantauConfig,
        data_dir: Path,
        bus: Bus,
        snapshots: SnapshotSink,
        name: str = "local",
        may_speak: MaySpeak | None = None,
        on_observation: ObservationHook | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.bus = bus
        self.snapshots = snapshots
        self.cameras = {c.id: c for c in config.cameras}
        self.detector = Detector(config.detector)
        self.clip_dir = data_dir / "clips"
        self.data_dir = data_dir
        self.recording: RecordingService | None = None
        if any(c.record for c in config.cameras):
            self.recording = self._recording_service()
        self.running: dict[str, _Running] = {}
        self._may_speak = may_speak or (lambda _cid: True)
        self._on_observation = on_observation
        self._clip_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped_unheld = 0  # observations not sent: the lease was no longer ours

    def _recording_service(self) -> RecordingService:
        return RecordingService(
            dict(self.cameras), self.config.recording,
            self.data_dir / self.config.recording.dir, self.clip_dir, self._publish_clip,
        )  # fmt: skip

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self.detector.start()
        if self.recording is not None:
            await self.recording.start()
        sub = await self.bus.subscribe(
            f"clips-{self.name}", types=frozenset({EventType.CLIP_REQUEST})
        )
        self._clip_task = asyncio.create_task(self._clip_requests(sub), name="clip-requests")

    async def stop(self) -> None:
        await asyncio.gather(*(self.stop_camera(cid) for cid in list(self.running)))
        if self._clip_task is not None:
            self._clip_task.cancel()
            await asyncio.gather(self._clip_task, return_exceptions=True)
        if self.recording is not None:
            await self.recording.stop()
        await self.detector.stop()

    async def start_camera(
        self, camera_id: str, token: int | None = None, resume: list[Observation] | None = None
    ) -> None:
        """Capture, analyse and record one camera; `resume`: observations another box held
        open for it (they continue under their ids)."""
        async with self._lock:
            if camera_id in self.running:
                return
            cam = self.cameras[camera_id]
            engine = self._engine(cam)

            async def status(st: CameraStatus) -> None:
                await self._on_status(camera_id, st)

            if resume:
                taken = engine.resume(resume, time.monotonic())
                log.info("camera=%s took over %d open observations", camera_id, taken)
            worker = CameraWorker(cam.id, cam, engine.on_frame, status)
            self.running[camera_id] = _Running(cam, worker, engine, token)
            await worker.start()
            if self.recording is not None:
                await self.recording.start_camera(camera_id)
        log.info("camera=%s started on worker=%s token=%s", camera_id, self.name, token)

    def _engine(self, cam: Camera) -> CameraAnalytics:
        place = CameraPlace(cam.id, cam.name, cam.kecamatan, cam.desa)

        async def publish(obs: Observation) -> None:
            await self._publish_observation(cam.id, obs)

        return CameraAnalytics(
            place, cam.zones, cam.rules, self.detector, publish, self.snapshots,
            detect_fps=cam.detect_fps, motion=self.config.motion, lines=cam.lines,
            detect_size=cam.detect_size, state_models=self.data_dir / STATE_MODELS,
            on_busy=lambda: self._full_now(cam.id),
        )  # fmt: skip

    # ---- decode mode: every frame, or keyframes only while nothing goes on -----------------
    def _full_now(self, camera_id: str) -> None:
        run = self.running.get(camera_id)
        if run is not None:
            run.worker.capture.set_full(True)

    def _decide_decoding(self, run: _Running, now: float) -> None:
        """Full rate while the camera is busy, watched, just started or set to `full`; else
        keyframes only (motion, tamper and flood still see a picture a GOP)."""
        cam = run.camera
        full = (
            cam.decode == "full"
            or now - run.started_mono < cam.idle_after_s
            or now < run.watched_until
            or run.analytics.busy(now, cam.idle_after_s)
        )
        run.worker.capture.set_full(full)

    def watched(self, camera_id: str) -> None:
        """Someone asked for the camera's decoded picture. Two asks within WATCH_HOLD_S (an
        MJPEG tile, stills polled as a live view) mean a viewer: every frame for that long.
        One still now and then (the wall's idle tiles, every 10 s) is served the keyframe."""
        run = self.running.get(camera_id)
        if run is None:
            return
        now = time.monotonic()
        if now - run.looked_mono <= WATCH_HOLD_S:
            run.watched_until = now + WATCH_HOLD_S
            run.worker.capture.set_full(True)
        run.looked_mono = now

    def reload_models(self, camera_id: str) -> dict[str, str]:
        """Rules of a running camera take its newly enabled state models."""
        run = self.running.get(camera_id)
        if run is None:
            return {}
        methods = run.analytics.reload_models()
        log.info("camera=%s state models reloaded: %s", camera_id, methods)
        return methods

    # ---- live reload ------------------------------------------------------------------------
    async def reconfigure(self, config: PantauConfig, diff: ConfigDiff) -> dict[str, object]:
        """Apply a reloaded cameras.yaml to the cameras this box runs; every camera the diff
        does not name keeps its capture, recording and analysis untouched."""
        motion_same = self.config.motion == config.motion
        self.config = config
        self.cameras = {c.id: c for c in config.cameras}
        report: dict[str, object] = {}
        for cid in diff.cameras_removed:
            if cid in self.running:
                await self.stop_camera(cid)
                report[cid] = "stopped"
        if self.recording is not None:
            for cid in diff.cameras_restarted:  # their recorders start again with the new URL
                await self.recording.stop_camera(cid)
            self.recording.set_cameras(dict(self.cameras))
        elif any(c.record for c in config.cameras):
            self.recording = self._recording_service()
            await self.recording.start()
        for cid in diff.cameras_restarted:
            run = self.running.get(cid)
            if run is None:
                continue
            async with self._lock:
                await self._restart(run, self.cameras[cid], motion_same)
            report[cid] = "restarted"
        for cid in diff.cameras_reanalysed:
            run = self.running.get(cid)
            if run is None:
                continue
            async with self._lock:
                kept = await self._reanalyse(run, self.cameras[cid], motion_same)
            report[cid] = {"reanalysed": True, "kept": kept.kept, "closed": kept.closed}
        return report

    async def _reanalyse(self, run: _Running, cam: Camera, motion_same: bool) -> Adopted:
        """New zones and rules on a running camera: frames keep coming; the new engine waits at
        its door until the old one has finished the frames it holds, then takes its state."""
        engine = self._engine(cam)
        old = run.analytics
        async with engine.intake:
            run.worker.set_frame_handler(engine.on_frame)
            run.analytics, run.camera = engine, cam
            await old.drain()
            adopted = await engine.adopt(old, motion_same, utcnow())
        log.info("camera=%s analytics rebuilt: kept %s, closed %d observations", cam.id,
                 ", ".join(adopted.kept) or "nothing", len(adopted.closed))  # fmt: skip
        return adopted

    async def _restart(self, run: _Running, cam: Camera, motion_same: bool) -> None:
        """New stream settings: capture (and recording) start again; the rules carry on."""
        await run.worker.stop()
        engine = self._engine(cam)
        await run.analytics.drain()
        await engine.adopt(run.analytics, motion_same, utcnow())

        async def status(st: CameraStatus) -> None:
            await self._on_status(cam.id, st)

        run.worker = CameraWorker(cam.id, cam, engine.on_frame, status)
        run.analytics, run.camera, run.reported = engine, cam, None
        await run.worker.start()
        if self.recording is not None and cam.record:
            await self.recording.start_camera(cam.id)
        log.info("camera=%s restarted with its new stream settings", cam.id)

    async def stop_camera(self, camera_id: str) -> None:
        """Stop capture, analysis and recording of a camera at once (e.g. its lease is lost)."""
        async with self._lock:
            run = self.running.pop(camera_id, None)
            if run is None:
                return
            if self.recording is not None:
                await self.recording.stop_camera(camera_id)
            await run.worker.stop()
        log.info("camera=%s stopped on worker=%s", camera_id, self.name)

    # ---- what goes on the bus ------------------------------------------------------------
    async def _publish_observation(self, camera_id: str, obs: Observation) -> None:
        run = self.running.get(camera_id)
        if run is None or not self._may_speak(camera_id):
            self.dropped_unheld += 1
            log.warning("camera=%s observation=%s not published: lease not held",
                        camera_id, obs.id)  # fmt: skip
            return
        obs = obs.model_copy(update={"worker": self.name, "lease_token": run.token})
        if self._on_observation is not None:
            await self._on_observation(obs)
        await self.bus.publish(ObservationEvent(observation=obs))

    async def _on_status(self, camera_id: str, status: CameraStatus) -> None:
        run = self.running.get(camera_id)
        if run is None:
            return
        now = time.monotonic()
        await run.analytics.on_health(status, now)
        self._decide_decoding(run, now)
        # The bus (and so the store and the wall) hears about state changes only.
        if run.reported != status.state and self._may_speak(camera_id):
            run.reported = status.state
            stamped = status.model_copy(update={"worker": self.name, "lease_token": run.token})
            await self.bus.publish(CameraStatusEvent(status=stamped))

    async def _publish_clip(self, clip: ClipRef) -> None:
        await self.bus.publish(ClipReadyEvent(clip=clip.model_copy(update={"worker": self.name})))

    async def _clip_requests(self, sub: Subscription) -> None:
        try:
            async for event in sub:
                if isinstance(event, ClipRequestEvent) and self.recording is not None:
                    self.recording.request_clip(event.request)
        finally:
            await sub.close()

    # ---- media sources for the wall (FrameSource, PacketSource) ---------------------------
    def latest_image(self, camera_id: str) -> tuple[int, npt.NDArray[np.uint8]] | None:
        run = self.running.get(camera_id)
        frame = run.worker.latest() if run else None
        return (frame.seq, frame.image) if frame is not None else None

    def codec(self, camera_id: str) -> str | None:
        run = self.running.get(camera_id)
        return run.worker.capture.codec if run else None

    def add_packet_listener(self, camera_id: str, listener: PacketListener) -> None:
        run = self.running.get(camera_id)
        if run is not None:
            run.worker.capture.add_packet_listener(listener)

    def remove_packet_listener(self, camera_id: str, listener: PacketListener) -> None:
        run = self.running.get(camera_id)
        if run is not None:
            run.worker.capture.remove_packet_listener(listener)

    # ---- what the box reports --------------------------------------------------------------
    def active_cameras(self, now_mono: float) -> set[str]:
        """Cameras with motion now (the wall plays them live: smart streaming)."""
        return {cid for cid, r in self.running.items() if r.analytics.active(now_mono)}

    def rates(self) -> dict[str, float]:
        return {cid: r.worker.capture.input_fps() for cid, r in self.running.items()}

    def decoding(self) -> dict[str, dict[str, Any]]:
        """Per camera: decode mode, frames decoded and sent per second, catch-ups (health)."""
        return {
            cid: {"mode": c.decode_mode, "decoded_fps": round(c.decoded_fps(10.0), 2),
                  "input_fps": round(c.input_fps(), 2), "catch_ups": c.catch_ups}
            for cid, r in self.running.items()
            for c in (r.worker.capture,)
        }  # fmt: skip

    def statuses(self) -> dict[str, CameraStatus]:
        return {cid: r.worker.status() for cid, r in self.running.items()}

    def detector_health(self) -> dict[str, object]:
        stats = self.detector.stats
        return {
            "batches": stats.batches,
            "images": stats.images,
            "inference_ms_p50": round(stats.p50_ms(), 1),
            "last_batch_size": stats.last_batch_size,
            "imgsz": self.detector.effective_imgsz,
            "model_input": self.detector.fixed_size,  # None: a dynamic model
            "inferences": stats.inferences,
            "queue_depth": self.detector.queue_depth,
        }

    def analytics_health(self) -> dict[str, object]:
        return {
            cid: {
                "frames": r.analytics.frames,
                "detected": r.analytics.detected,
                "zone_counts": r.analytics.last_zone_counts,
                "line_flow_per_min": {c.line.id: c.per_minute() for c in r.analytics.lines},
                # Are motion crops used here (they agree with whole frames on this camera)?
                "region_crops": {
                    "used": trust.trusted,
                    "frames": r.analytics.region_frames,
                    "found_pct": round(trust.agreement[0] * 100, 1),
                    "kept_pct": round(trust.agreement[1] * 100, 1),
                    "checks": trust.checks,
                },
            }
            for cid, r in self.running.items()
            for trust in (r.analytics.region_trust,)
        }
