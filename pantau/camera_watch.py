"""The server's watch over the fleet (scaled out): cameras nobody runs, workers that are lost.

Workers raise video loss for the cameras they run; what they cannot raise is their own death.
Every heartbeat interval this reads the leases and the workers' heartbeats and publishes
observations like any camera would (worker "server", no lease token):
- a camera with no live owner for longer than a failover takes: video loss ("offline"), closed
  when a live worker runs it again;
- a worker whose heartbeat stopped while it held cameras: "worker lost" (kind offline, routed
  like camera faults), closed when it is back or all its cameras run elsewhere.
It also feeds the wall's smart streaming (which cameras move) and frame rates from heartbeats.

Nothing is judged for one heartbeat TTL after the server starts or Redis comes back: while
Redis was away no worker could renew its heartbeat, so every one would read as lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from events.model import (
    AnyEvent,
    CameraState,
    CameraStatus,
    CameraStatusEvent,
    IncidentKind,
    Observation,
    ObservationEvent,
    ObservationPhase,
    Severity,
    WorkerState,
    WorkerStatus,
    utcnow,
)
from ingest.urls import mask_url
from pantau.config import Camera, FleetConfig
from pantau.fleet import Registry
from pantau.leases import CameraLeases
from wallboard.hub import Hub

log = logging.getLogger(__name__)

Publish = Callable[[AnyEvent], Awaitable[None]]
SERVER = "server"


@dataclass
class _Down:
    since: float
    observation: Observation | None = None


class CameraWatch:
    def __init__(
        self,
        cameras: list[Camera],
        fleet: FleetConfig,
        leases: CameraLeases,
        registry: Registry,
        publish: Publish,
        hub: Hub | None = None,
    ) -> None:
        self.cameras = {c.id: c for c in cameras}
        self.fleet = fleet
        self.leases = leases
        self.registry = registry
        self._publish = publish
        self.hub = hub
        self._unheld: dict[str, _Down] = {}
        self._lost: dict[str, Observation] = {}
        self._orphaned: set[str] = set()  # cameras told offline: their owner is gone
        self.workers: list[WorkerStatus] = []
        self._judge_from: float | None = None  # monotonic; None: Redis was not reachable

    def grace_s(self, camera: Camera) -> float:
        """How long a camera may have no owner before it is video loss: a failover's time
        (lease TTL + a claim round + a connect), or the camera's own video-loss time if longer."""
        own = next((r.offline_s for r in camera.rules if r.type == "tamper"), 15.0)
        return max(own, self.fleet.lease_ttl_s + 2 * self.fleet.claim_interval_s + 5.0)

    async def run(self) -> None:
        while True:
            try:
                await self.tick(time.monotonic())
            except (OSError, aioredis.RedisError) as exc:
                self._judge_from = None
                log.warning("fleet watch round failed, Redis not reachable: %s", exc)
            except Exception:
                log.exception("fleet watch round failed")
            await asyncio.sleep(self.fleet.heartbeat_s)

    async def tick(self, now: float) -> None:
        self.workers = await self.registry.all()
        if self._judge_from is None:
            self._judge_from = now + self.registry.ttl_ms / 1000
        judge = now >= self._judge_from
        alive = {w.name: w for w in self.workers if w.state == WorkerState.RUNNING}
        owners = await self.leases.owners(self.cameras)
        running = {
            cid
            for cid, owner in owners.items()
            if owner is not None and owner.worker in alive
            and any(c.camera_id == cid for c in alive[owner.worker].cameras)
        }  # fmt: skip
        for cid, cam in self.cameras.items():
            owner = owners[cid]
            orphan = owner is None or owner.worker not in alive
            await self._camera(cam, cid in running, orphan, now, judge)
        for worker in self.workers:
            await self._worker(worker, running, judge)
        if self.hub is not None:
            cams = [c for w in alive.values() for c in w.cameras]
            self.hub.set_activity({c.camera_id for c in cams if c.active})
            decoding = {c.camera_id: (c.decode_mode, c.decoded_fps) for c in cams}
            self.hub.send_rates({c.camera_id: c.input_fps for c in cams}, decoding)

    async def _camera(
        self, cam: Camera, running: bool, orphan: bool, now: float, judge: bool
    ) -> None:
        down = self._unheld.get(cam.id)
        if running:
            self._orphaned.discard(cam.id)
            if down is not None:
                del self._unheld[cam.id]
                if down.observation is not None:
                    await self._send(down.observation, ObservationPhase.CLOSED)
            return
        if down is None:
            self._unheld[cam.id] = down = _Down(now)
        if judge and orphan and cam.id not in self._orphaned:
            # Its box is gone and nobody holds it yet: the wall marks the tile offline now
            # rather than show the last box's "online" until a failover is done. Not for a
            # camera a live worker holds but has not reported yet (its own status follows).
            self._orphaned.add(cam.id)
            status = CameraStatus(
                camera_id=cam.id, state=CameraState.OFFLINE, url_masked=mask_url(cam.url),
                at=utcnow(), error="no worker runs this camera now",
            )  # fmt: skip
            await self._publish(CameraStatusEvent(status=status))
        if judge and down.observation is None and now - down.since >= self.grace_s(cam):
            at = utcnow()
            down.observation = Observation(
                phase=ObservationPhase.OPENED, camera_id=cam.id, rule="unheld",
                kind=IncidentKind.OFFLINE, severity=Severity.HIGH,
                title=f"Kamera {cam.name} tidak mengirim gambar: tidak ada worker yang "
                "menjalankannya",
                kecamatan=cam.kecamatan, desa=cam.desa, started_at=at, at=at,
                cause="no_worker", worker=SERVER,
            )  # fmt: skip
            log.warning("camera=%s runs on no worker: video loss", cam.id)
            await self._publish(ObservationEvent(observation=down.observation))

    async def _worker(self, worker: WorkerStatus, running: set[str], judge: bool) -> None:
        open_obs = self._lost.get(worker.name)
        held = {c.camera_id for c in worker.cameras}
        lost = worker.state == WorkerState.LOST and bool(held - running)
        if lost and open_obs is None and judge:
            at = utcnow()
            obs = Observation(
                phase=ObservationPhase.OPENED, camera_id=None, rule=f"worker:{worker.name}",
                kind=IncidentKind.OFFLINE, severity=Severity.HIGH,
                title=f"Worker {worker.name} ({worker.host}) hilang: {len(held)} kamera",
                started_at=worker.at, at=at, current_count=len(held),
                cause="worker_lost", worker=SERVER,
            )  # fmt: skip
            self._lost[worker.name] = obs
            log.warning("worker=%s lost with %d cameras", worker.name, len(held))
            await self._publish(ObservationEvent(observation=obs))
        elif not lost and open_obs is not None:
            del self._lost[worker.name]
            log.info("worker=%s back, or its cameras run elsewhere", worker.name)
            await self._send(open_obs, ObservationPhase.CLOSED)

    async def _send(self, obs: Observation, phase: ObservationPhase) -> None:
        await self._publish(
            ObservationEvent(observation=obs.model_copy(update={"phase": phase, "at": utcnow()}))
        )
