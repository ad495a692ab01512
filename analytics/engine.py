"""Per-camera analytics: frame -> shared detector -> zone membership -> rules -> incident events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import cv2

from analytics.camera_health import CameraHealthIncidents
from analytics.config import CrowdRule, MotionConfig, Rule, TamperRule, Zone
from analytics.detection import Detection
from analytics.detector import Detector
from analytics.incidents import Transition
from analytics.motion import MotionGate
from analytics.rules.crowd import CrowdSignal, CrowdState
from analytics.tracking import CameraTracker
from analytics.zones import ZoneSet
from events.model import CameraStatus, EventType, Incident, IncidentEvent, IncidentKind
from ingest.frame import Frame

log = logging.getLogger(__name__)

Publish = Callable[[IncidentEvent], Awaitable[None]]
UPDATE_EVERY_S = 10.0
SNAPSHOT_EVERY_S = 5.0


@dataclass(frozen=True)
class CameraPlace:
    camera_id: str
    name: str
    kecamatan: str | None
    desa: str | None


class _OpenCrowd:
    def __init__(self, incident: Incident, mono: float) -> None:
        self.incident = incident
        self.last_update_mono = mono
        self.last_snapshot_mono = mono


class CameraAnalytics:
    def __init__(
        self,
        place: CameraPlace,
        zones: list[Zone],
        rules: list[Rule],
        detector: Detector,
        publish: Publish,
        snapshot_dir: Path | None,
        detect_fps: float = 5.0,
        motion: MotionConfig | None = None,
    ) -> None:
        self.place = place
        self._zones = {z.id: z for z in zones}
        self._zone_set = ZoneSet(zones)
        self._detector = detector
        self._publish = publish
        self._snapshot_dir = snapshot_dir
        self._crowd = [CrowdState(r) for r in rules if isinstance(r, CrowdRule)]
        self._open: dict[int, _OpenCrowd] = {}
        self.last_detections: list[Detection] = []
        self.tracker = CameraTracker(detect_fps)
        motion = motion or MotionConfig()
        self._gate = (
            MotionGate(min_fraction=motion.min_fraction, keepalive_s=motion.keepalive_s)
            if motion.enabled
            else None
        )
        self.frames = 0
        self.detected = 0
        tamper = next((r for r in rules if isinstance(r, TamperRule)), None)
        self.health = (
            CameraHealthIncidents(
                place.camera_id, place.name, place.kecamatan, place.desa, tamper, publish
            )
            if tamper is not None
            else None
        )
        self.last_zone_counts: dict[str, dict[str, int]] = {}

    async def on_health(self, status: CameraStatus, now_mono: float) -> None:
        if self.health is not None:
            await self.health.on_health(status, now_mono)

    async def on_frame(self, frame: Frame) -> None:
        self.frames += 1
        if self.health is not None:
            await self.health.on_frame(frame)
            if self.health.inhibited:
                return  # a tampered or dead camera reports nothing else
        if self._gate is not None:
            gate = await asyncio.to_thread(self._gate.check, frame.image, frame.captured_mono)
            run_detector = gate.detect
        else:
            run_detector = True
        if run_detector:
            found = await self._detector.detect(frame.camera_id, frame.image)
            detections = self.tracker.update(found, frame.captured_mono)
            self.last_detections = detections
            self.detected += 1
        else:
            # A still scene: what was there is still there; rules keep their clocks running.
            detections = self.last_detections
        shapes = self._zone_set.shapes(frame.width, frame.height)
        self.last_zone_counts = {zid: dict(s.counts(detections)) for zid, s in shapes.items()}
        for index, state in enumerate(self._crowd):
            members = shapes[state.rule.zone].members(detections, set(state.rule.classes))
            signal = state.update(members, frame.captured_mono, frame.captured_at)
            if signal is not None:
                await self._on_crowd(index, state.rule, signal, members, frame)

    async def _on_crowd(
        self,
        index: int,
        rule: CrowdRule,
        signal: CrowdSignal,
        members: list[Detection],
        frame: Frame,
    ) -> None:
        zone = self._zones[rule.zone]
        now = frame.captured_at
        if signal.transition is Transition.OPENED:
            incident = Incident(
                kind=IncidentKind.CROWD,
                severity=rule.severity,
                title=f"Kerumunan di {zone.name or zone.id}, {self.place.name}",
                camera_id=self.place.camera_id,
                zone_id=zone.id,
                kecamatan=self.place.kecamatan,
                desa=self.place.desa,
                started_at=signal.started_at - timedelta(seconds=rule.for_s),
                updated_at=now,
                current_count=signal.count,
                peak_count=signal.peak,
                threshold=rule.min_count,
                track_ids=signal.track_ids,
            )
            incident = await self._with_snapshot(incident, frame, members)
            self._open[index] = _OpenCrowd(incident, frame.captured_mono)
            log.info(
                "camera=%s incident=%s crowd opened count=%d zone=%s",
                self.place.camera_id,
                incident.id,
                signal.count,
                zone.id,
            )
            await self._publish(IncidentEvent(type=EventType.INCIDENT_OPENED, incident=incident))
            return
        current = self._open.get(index)
        if current is None:
            return
        if signal.transition is Transition.CLOSED:
            incident = current.incident.model_copy(
                update={
                    "active": False,
                    "ended_at": now,
                    "updated_at": now,
                    "current_count": signal.count,
                }
            )
            del self._open[index]
            log.info(
                "camera=%s incident=%s crowd closed peak=%d",
                self.place.camera_id,
                incident.id,
                incident.peak_count or 0,
            )
            await self._publish(IncidentEvent(type=EventType.INCIDENT_CLOSED, incident=incident))
            return
        due = frame.captured_mono - current.last_update_mono >= UPDATE_EVERY_S
        if not (signal.new_peak or due):
            return
        incident = current.incident.model_copy(
            update={
                "updated_at": now,
                "current_count": signal.count,
                "peak_count": signal.peak,
                "track_ids": signal.track_ids or current.incident.track_ids,
            }
        )
        if signal.new_peak and frame.captured_mono - current.last_snapshot_mono >= SNAPSHOT_EVERY_S:
            incident = await self._with_snapshot(incident, frame, members)
            current.last_snapshot_mono = frame.captured_mono
        current.incident = incident
        current.last_update_mono = frame.captured_mono
        await self._publish(IncidentEvent(type=EventType.INCIDENT_UPDATED, incident=incident))

    async def _with_snapshot(
        self, incident: Incident, frame: Frame, members: list[Detection]
    ) -> Incident:
        if self._snapshot_dir is None:
            return incident
        path = self._snapshot_dir / f"{incident.id}.jpg"
        try:
            await asyncio.to_thread(_write_snapshot, path, frame, members)
        except OSError:
            log.exception(
                "camera=%s incident=%s snapshot not written", self.place.camera_id, incident.id
            )
            return incident
        return incident.model_copy(update={"snapshot_ref": path.name})


def _write_snapshot(path: Path, frame: Frame, members: list[Detection]) -> None:
    image = frame.image.copy()
    for d in members:
        cv2.rectangle(image, (int(d.x1), int(d.y1)), (int(d.x2), int(d.y2)), (0, 0, 255), 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise OSError("JPEG encoding failed")
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)
