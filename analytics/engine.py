"""Per-camera analytics: frame -> shared detector -> zone membership -> rules -> incident events."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, TypeVar

import cv2
import numpy as np

from analytics import regions
from analytics.camera_health import CameraHealthIncidents
from analytics.config import (
    VEHICLES,
    CrowdRule,
    FloodRule,
    Line,
    MotionConfig,
    Rule,
    StateRule,
    TamperRule,
    TrafficRule,
    Zone,
)
from analytics.detection import Detection
from analytics.detector import Detector
from analytics.incidents import Transition
from analytics.motion import MotionGate
from analytics.regions import Crop, RegionTrust
from analytics.rules.crowd import CrowdState
from analytics.rules.flood import FloodState
from analytics.rules.state import ZoneState
from analytics.rules.traffic import TrafficState
from analytics.state_model import enabled
from analytics.tracking import CameraTracker
from analytics.zones import LineCounter, ZoneSet
from events.model import (
    CameraStatus,
    IncidentKind,
    Observation,
    ObservationPhase,
    Severity,
)
from ingest.frame import Frame

log = logging.getLogger(__name__)

Publish = Callable[[Observation], Awaitable[None]]
UPDATE_EVERY_S = 10.0
SNAPSHOT_EVERY_S = 5.0


@dataclass(frozen=True)
class CameraPlace:
    camera_id: str
    name: str
    kecamatan: str | None
    desa: str | None


class _Open:
    def __init__(self, observation: Observation, mono: float) -> None:
        self.observation = observation
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
        snapshots: SnapshotSink | None,
        detect_fps: float = 5.0,
        motion: MotionConfig | None = None,
        lines: list[Line] | None = None,
        detect_size: int | None = None,
        state_models: Path | None = None,
        on_busy: Callable[[], None] | None = None,
    ) -> None:
        self.place = place
        # Told at once when motion shows or an observation opens (the camera's owner then
        # decodes every frame again); see busy() for the other way.
        self.on_busy = on_busy
        self.detect_size = detect_size  # None: the detector's imgsz
        self._zones = {z.id: z for z in zones}
        self._zone_set = ZoneSet(zones)
        self._detector = detector
        self._publish = publish
        self._snapshots = snapshots
        self._crowd = [
            CrowdState(r, self._zones[r.zone].area_m2) for r in rules if isinstance(r, CrowdRule)
        ]
        self._traffic = [TrafficState(r) for r in rules if isinstance(r, TrafficRule)]
        # Trained zone-state models (per camera and zone, when enabled): the state rules' and,
        # where there is one, the flood rule's measure.
        self._state_models = state_models
        model = functools.partial(enabled, state_models, place.camera_id)
        self._flood = [
            FloodState(r, self._zones[r.zone], model(r.zone))
            for r in rules if isinstance(r, FloodRule)
        ]  # fmt: skip
        self._states = [
            ZoneState(r, self._zones[r.zone], model(r.zone))
            for r in rules if isinstance(r, StateRule)
        ]  # fmt: skip
        for st in self._states:
            if st.model is None:
                log.warning(
                    "camera=%s state rule on zone=%s waits: no enabled model knows state %r "
                    "(pantau train)", place.camera_id, st.rule.zone, st.rule.state,
                )  # fmt: skip
        self.lines = [LineCounter(line) for line in lines or []]
        self._open: dict[str, _Open] = {}
        self.last_detections: list[Detection] = []
        self.tracker = CameraTracker(detect_fps)
        motion = motion or MotionConfig()
        self._gate = (
            MotionGate(min_fraction=motion.min_fraction, keepalive_s=motion.keepalive_s)
            if motion.enabled
            else None
        )
        self._regions = motion.regions
        self._quiet_keepalive_s = motion.quiet_keepalive_s
        self._quiet_keepalive_max_s = max(motion.quiet_keepalive_max_s, motion.quiet_keepalive_s)
        self._unchanged_checks = 0  # detector runs in a row that found the scene as before
        self._last_found: list[Detection] = []
        self._full_frame_s = motion.full_frame_s
        self._last_full_mono = float("-inf")
        self._last_check_mono = float("-inf")
        self.region_trust = RegionTrust()  # do crops find here what full frames find?
        self.region_frames = 0  # detected as motion crops
        self.crops = 0
        self.frames = 0
        self.detected = 0
        self.last_activity_mono: float | None = None  # motion (or, ungated, any object)
        tamper = next((r for r in rules if isinstance(r, TamperRule)), None)
        # Video loss is watched on every camera; picture tampering only with a tamper rule.
        self.health: CameraHealthIncidents | None = CameraHealthIncidents(
            place.camera_id, place.name, place.kecamatan, place.desa, tamper, publish
        )
        self.last_zone_counts: dict[str, dict[str, int]] = {}
        self._intake = asyncio.Lock()
        self._tail: asyncio.Future[None] | None = None  # done when the latest frame is analysed
        # Told what each rule measured on every analysed frame (a replay charts it); None live.
        self.probe: Probe | None = None

    @property
    def intake(self) -> asyncio.Lock:
        """Held by whoever must keep frames out for a moment (a reload swapping engines)."""
        return self._intake

    async def drain(self) -> None:
        """Wait until every frame handed to this engine so far is fully analysed (the caller
        has stopped handing it new ones)."""
        async with self._intake:  # FIFO: behind every frame already at the door
            tail = self._tail
        if tail is not None:
            await asyncio.shield(tail)

    def active(self, now_mono: float, hold_s: float = 3.0) -> bool:
        """Did something move on this camera in the last `hold_s` seconds?"""
        seen = self.last_activity_mono
        return seen is not None and now_mono - seen <= hold_s

    def busy(self, now_mono: float, hold_s: float) -> bool:
        """Worth every frame: motion within `hold_s`, an observation open, or a rule's dwell
        time running (a standing crowd must be timed to the frame, not to the keyframe)."""
        if self.active(now_mono, hold_s) or self._open:
            return True
        gates = [c.gate for c in self._crowd] + [t.gate for t in self._traffic]
        gates += [f.gate for f in self._flood] + [z.gate for z in self._states]
        return any(g.pending for g in gates)

    async def on_health(self, status: CameraStatus, now_mono: float) -> None:
        if self.health is not None:
            await self.health.on_health(status, now_mono)

    async def on_frame(self, frame: Frame) -> None:
        """Analyse one frame. Safe to call again before the previous call returned (the worker
        keeps up to three frames in flight): the gate sees frames in order, and tracking and
        rules run strictly in frame order whatever order the detector answers in."""
        loop = asyncio.get_running_loop()
        async with self._intake:  # FIFO: frames enter the gate in the order they came
            self.frames += 1
            pending: asyncio.Future[list[Detection]] | None = None
            checking: asyncio.Future[list[Detection]] | None = None
            check: list[Crop] | None = None
            inhibited = False
            if self.health is not None:
                await self.health.on_frame(frame)
                inhibited = self.health.inhibited  # a tampered or dead camera reports nothing else
            crops: list[Crop] | None = None
            if not inhibited:
                run_detector = True
                gate = None
                if self._gate is not None:
                    every = self._quiet_interval() if frame.sparse else None
                    gate = await asyncio.to_thread(
                        self._gate.check, frame.image, frame.captured_mono, every
                    )
                    run_detector = gate.detect
                    if gate.motion:
                        self._unchanged_checks = 0
                        self.last_activity_mono = frame.captured_mono
                        if self.on_busy is not None:
                            self.on_busy()
                if run_detector:
                    size = self.detect_size or self._detector.config.imgsz
                    now = frame.captured_mono
                    full_due = now - self._last_full_mono >= self._full_frame_s
                    planned = None
                    if gate is not None and gate.motion and self._regions:
                        planned = regions.plan(gate.regions, frame.width, frame.height, size,
                                               self.last_detections)  # fmt: skip
                    if planned and self.region_trust.trusted and not full_due:
                        crops = planned
                        pending = await self._submit_crops(frame, crops, size)
                    else:
                        self._last_full_mono = now
                        pending = await self._detector.submit(
                            frame.camera_id, frame.image, self.detect_size
                        )
                        if planned and now - self._last_check_mono >= self._full_frame_s:
                            # This frame's crops too, to compare (one frame in full_frame_s)
                            self._last_check_mono = now
                            check = planned
                            checking = await self._submit_crops(frame, planned, size,
                                                                count=False)  # fmt: skip
            previous, mine = self._tail, loop.create_future()
            self._tail = mine
        try:
            try:
                found = await pending if pending is not None else None
            finally:
                if previous is not None:
                    # shield: cancelling this frame must not cancel the earlier frame's marker
                    await asyncio.shield(previous)
            if not inhibited:
                if found is not None and crops:
                    found = regions.merge(found, crops, self.last_detections)
                if found is not None and checking is not None and check is not None:
                    self._check_regions(found, regions.merge(await checking, check,
                                                             self.last_detections))  # fmt: skip
                await self._analyse(frame, found)
        finally:
            if not mine.done():
                mine.set_result(None)

    def _quiet_interval(self) -> float:
        """A quiet camera's re-check interval: doubled by each re-check that found the scene
        as it was, up to the maximum; motion starts it over."""
        doubled = self._quiet_keepalive_s * 2.0 ** min(self._unchanged_checks, 16)
        return min(doubled, self._quiet_keepalive_max_s)

    def _check_regions(self, full: list[Detection], crops: list[Detection]) -> None:
        changed = self.region_trust.record(full, crops)
        if changed is not None:
            recall, precision = self.region_trust.agreement
            log.info("camera=%s region crops %s: they found %.0f %% of the full frames' "
                     "objects, %.0f %% of theirs were there (%d checks)", self.place.camera_id,
                     "used" if changed else "not used: whole frames", recall * 100,
                     precision * 100, self.region_trust.checks)  # fmt: skip

    async def _submit_crops(
        self, frame: Frame, crops: list[Crop], size: int, count: bool = True
    ) -> asyncio.Future[list[Detection]]:
        """Each crop to the detector at the frame's own scale (the detector packs them with
        other cameras' into the model input); one future of all they find, in frame pixels.
        `count`: a check's crops are not the camera's region frames."""
        scale = size / max(frame.width, frame.height)
        futures = []
        for c in crops:
            image = np.ascontiguousarray(frame.image[c.y0 : c.y1, c.x0 : c.x1])
            side = max(1, round(max(c.x1 - c.x0, c.y1 - c.y0) * scale))
            futures.append(await self._detector.submit(frame.camera_id, image, side))
        if count:
            self.region_frames += 1
            self.crops += len(crops)

        async def together() -> list[Detection]:
            found = await asyncio.gather(*futures)
            return [d for c, f in zip(crops, found, strict=True) for d in regions.shift(f, c)]

        return asyncio.ensure_future(together())

    async def _analyse(self, frame: Frame, found: list[Detection] | None) -> None:
        """Tracking, zones and rules for one frame; `found` is None where the gate said the
        scene is still."""
        if found is not None:
            # Only a quiet camera's re-checks back off (a busy one detects at detect_fps).
            same = frame.sparse and _same_scene(found, self._last_found)
            self._unchanged_checks = self._unchanged_checks + 1 if same else 0
            self._last_found = found
            detections = self.tracker.update(found, frame.captured_mono)
            self.last_detections = detections
            self.detected += 1
            if self._gate is None and detections:
                self.last_activity_mono = frame.captured_mono
        else:
            # A still scene: what was there is still there; rules keep their clocks running.
            detections = self.last_detections
        shapes = self._zone_set.shapes(frame.width, frame.height)
        self.last_zone_counts = {zid: dict(s.counts(detections)) for zid, s in shapes.items()}
        for index, state in enumerate(self._crowd):
            members = shapes[state.rule.zone].members(detections, set(state.rule.classes))
            signal = state.update(members, frame.captured_mono, frame.captured_at)
            if signal is not None:
                zone = self._zones[state.rule.zone]
                await self._on_signal(
                    f"crowd-{index}", IncidentKind.CROWD, state.rule.severity, zone,
                    f"Kerumunan di {zone.name or zone.id}, {self.place.name}"
                    + _density(signal.count, zone.area_m2),
                    state.threshold, state.rule.for_s, signal.transition, signal.count,
                    signal.peak, None, signal.track_ids, signal.started_at,
                    members, frame,
                )  # fmt: skip
        for index, traffic in enumerate(self._traffic):
            members = shapes[traffic.rule.zone].members(detections, set(traffic.rule.classes))
            tsig = traffic.update(
                members, self.tracker.tracks, frame.captured_mono, frame.captured_at
            )
            if tsig is not None:
                zone = self._zones[traffic.rule.zone]
                await self._on_signal(
                    f"traffic-{index}", IncidentKind.TRAFFIC, traffic.rule.severity, zone,
                    f"Kemacetan di {zone.name or zone.id}, {self.place.name}",
                    traffic.rule.min_count, traffic.rule.for_s, tsig.transition, tsig.count,
                    tsig.peak, tsig.peak_level, tsig.track_ids,
                    tsig.started_at, members, frame,
                )  # fmt: skip
        for index, flood in enumerate(self._flood):
            fsig = await asyncio.to_thread(
                flood.update, frame.image, detections, frame.captured_mono, frame.captured_at
            )
            if fsig is not None:
                zone = self._zones[flood.rule.zone]
                pct, peak = round(fsig.fraction * 100), round(fsig.peak * 100)
                await self._on_signal(
                    f"flood-{index}", IncidentKind.FLOOD, flood.rule.severity, zone,
                    f"Banjir di {zone.name or zone.id}, {self.place.name}",
                    round(flood.rule.level * 100), flood.rule.for_s, fsig.transition, pct, peak,
                    f"{peak}%", (), fsig.started_at, [], frame,
                )  # fmt: skip
        for index, zstate in enumerate(self._states):
            ssig = await asyncio.to_thread(
                zstate.update, frame.image, frame.captured_mono, frame.captured_at
            )
            if ssig is not None:
                zone = self._zones[zstate.rule.zone]
                pct, peak = round(ssig.probability * 100), round(ssig.peak * 100)
                await self._on_signal(
                    f"state-{index}", zstate.rule.kind, zstate.rule.severity, zone,
                    f"{zstate.rule.state.capitalize()} di {zone.name or zone.id}, "
                    f"{self.place.name}", round(zstate.rule.min_probability * 100),
                    zstate.rule.for_s, ssig.transition, pct, peak, zstate.rule.state, (),
                    ssig.started_at, [], frame,
                )  # fmt: skip
        for counter in self.lines:
            counter.update(detections, frame.width, frame.height, frame.captured_mono)
        if self.probe is not None:
            self.probe(frame, self._readings())

    def _readings(self) -> dict[str, float]:
        """What the rules compare with their thresholds, by rule key, for the last frame."""
        out: dict[str, float] = {}
        for zone, counts in self.last_zone_counts.items():
            out[f"zone.{zone}.persons"] = counts.get("person", 0)
            out[f"zone.{zone}.vehicles"] = sum(n for c, n in counts.items() if c in VEHICLE_CLASSES)
        for i, crowd in enumerate(self._crowd):
            out[f"crowd-{i}"] = crowd.last_count
        for i, traffic in enumerate(self._traffic):
            out[f"traffic-{i}"] = traffic.last_count
            if traffic.last_speed != float("inf"):
                out[f"traffic-{i}.speed"] = traffic.last_speed
        for i, flood in enumerate(self._flood):
            out[f"flood-{i}"] = flood.fraction
        for i, zstate in enumerate(self._states):
            out[f"state-{i}"] = zstate.probability
        tamper = self.health.tamper if self.health is not None else None
        if tamper is not None and tamper.last is not None:
            out["tamper.similarity"] = tamper.last.similarity
            out["tamper.shift"] = tamper.last.shift
            out["tamper.sharpness"] = tamper.last.sharpness
        return out

    async def _on_signal(
        self, key: str, kind: IncidentKind, severity: Severity, zone: Zone, title: str,
        threshold: int, dwell_s: float, transition: Transition, count: int, peak: int,
        level: str | None, track_ids: tuple[int, ...], started_at: datetime,
        members: list[Detection], frame: Frame,
    ) -> None:  # fmt: skip
        """One observation lifecycle for any zone rule: open, update on peaks (or every
        UPDATE_EVERY_S), close; snapshots at the opening and at new peaks."""
        now = frame.captured_at
        if transition is Transition.OPENED:
            obs = Observation(
                phase=ObservationPhase.OPENED, camera_id=self.place.camera_id, rule=key,
                kind=kind, severity=severity, title=title, zone_id=zone.id,
                kecamatan=self.place.kecamatan, desa=self.place.desa,
                started_at=started_at - timedelta(seconds=dwell_s), at=now,
                current_count=count, peak_count=peak, threshold=threshold,
                track_ids=track_ids, level=level,
            )  # fmt: skip
            if self.on_busy is not None:
                self.on_busy()
            obs = await self._with_snapshot(obs, frame, members)
            self._open[key] = _Open(obs, frame.captured_mono)
            log.info("camera=%s observation=%s %s opened count=%d zone=%s",
                     self.place.camera_id, obs.id, kind, count, zone.id)  # fmt: skip
            await self._publish(obs)
            return
        current = self._open.get(key)
        if current is None:
            return
        if transition is Transition.CLOSED:
            obs = current.observation.model_copy(
                update={"phase": ObservationPhase.CLOSED, "at": now, "current_count": count}
            )
            del self._open[key]
            log.info("camera=%s observation=%s %s closed peak=%d",
                     self.place.camera_id, obs.id, kind, obs.peak_count or 0)  # fmt: skip
            await self._publish(obs)
            return
        due = frame.captured_mono - current.last_update_mono >= UPDATE_EVERY_S
        # A higher peak than the observation shows: the frame that set it is this one.
        changed = peak > (current.observation.peak_count or 0)
        if not (changed or due or level != current.observation.level):
            return
        obs = current.observation.model_copy(
            update={
                "phase": ObservationPhase.UPDATED, "at": now, "current_count": count,
                "peak_count": max(peak, current.observation.peak_count or 0), "level": level,
                "track_ids": track_ids or current.observation.track_ids,
            }
        )  # fmt: skip
        if changed and frame.captured_mono - current.last_snapshot_mono >= SNAPSHOT_EVERY_S:
            obs = await self._with_snapshot(obs, frame, members)
            current.last_snapshot_mono = frame.captured_mono
        current.observation = obs
        current.last_update_mono = frame.captured_mono
        await self._publish(obs)

    def resume(self, observations: list[Observation], now_mono: float) -> int:
        """Take over observations another box held open for this camera (failover): each rule
        starts open under the same id, so the condition continues as the same observation when
        it still holds and closes by the rule's clear_after when it does not. Returns how many
        were taken."""
        states: dict[str, _Resumable] = {
            **{f"crowd-{i}": s for i, s in enumerate(self._crowd)},
            **{f"traffic-{i}": s for i, s in enumerate(self._traffic)},
            **{f"flood-{i}": s for i, s in enumerate(self._flood)},
            **{f"state-{i}": s for i, s in enumerate(self._states)},
        }
        taken = 0
        for obs in observations:
            state = states.get(obs.rule)
            if state is not None and obs.rule not in self._open:
                state.resume(obs.started_at, obs.peak_count or 0, now_mono)
                self._open[obs.rule] = _Open(obs, now_mono)
                taken += 1
            elif self.health is not None and self.health.resume(obs, now_mono):
                taken += 1
        return taken

    def reload_models(self) -> dict[str, str]:
        """A state model was enabled (or disabled): rules take it from the next frame, their
        clocks and open observations untouched. Returns zone -> method, for the log."""
        out: dict[str, str] = {}
        for flood in self._flood:
            flood.use_model(enabled(self._state_models, self.place.camera_id, flood.rule.zone))
            out[flood.rule.zone] = flood.method
        for zstate in self._states:
            zstate.use_model(enabled(self._state_models, self.place.camera_id, zstate.rule.zone))
            out.setdefault(zstate.rule.zone, "model" if zstate.model else "waiting")
        return out

    async def adopt(self, old: CameraAnalytics, motion_same: bool, at: datetime) -> Adopted:
        """Take over from the engine this one replaces (a live reload changed the camera's
        zones, rules or names): every rule whose definition and zone are unchanged keeps its
        state and its open observation (same id), and so do the tracker, the line counts and,
        with `motion_same`, the motion gate. Observations of rules that changed or went are
        closed at `at`: the new rule opens its own when its condition holds."""
        kept: list[str] = []
        self.tracker = old.tracker
        self.last_detections = old.last_detections
        self.last_activity_mono = old.last_activity_mono
        self.frames, self.detected = old.frames, old.detected
        if motion_same:
            self._gate = old._gate
        old_lines = {c.line.id: c for c in old.lines}
        self.lines = [
            old_lines[c.line.id] if c.line.id in old_lines and old_lines[c.line.id].line == c.line
            else c for c in self.lines
        ]  # fmt: skip
        carried: set[str] = set()
        kept += self._carry("crowd", self._crowd, old._crowd, old, carried)
        kept += self._carry("traffic", self._traffic, old._traffic, old, carried)
        kept += self._carry("flood", self._flood, old._flood, old, carried)
        kept += self._carry("state", self._states, old._states, old, carried)
        closed: list[Observation] = []
        for key, opened in old._open.items():
            if key not in carried:
                closed.append(opened.observation.model_copy(
                    update={"phase": ObservationPhase.CLOSED, "at": at}))  # fmt: skip
        old._open.clear()
        if old.health is not None and self.health is not None:
            if old.health.rule == self.health.rule and (old.health.tamper is None) == (
                self.health.tamper is None
            ):
                old.health.camera_name = self.place.name
                old.health.kecamatan, old.health.desa = self.place.kecamatan, self.place.desa
                self.health = old.health
                kept.append("health")
            else:
                closed += [o.model_copy(update={"phase": ObservationPhase.CLOSED, "at": at})
                           for o in old.health.open_observations()]  # fmt: skip
        for obs in closed:
            log.info("camera=%s observation=%s closed: its rule was changed",
                     self.place.camera_id, obs.id)  # fmt: skip
            await self._publish(obs)
        return Adopted(kept, [o.id for o in closed])

    def _carry(
        self, kind: str, mine: list[_S], theirs: list[_S], old: CameraAnalytics, carried: set[str]
    ) -> list[str]:
        """Put each unchanged rule's old state (and open observation) in place of the new one;
        rules are matched by definition, so reordering them in the file keeps them too."""
        kept, used = [], set()
        for j, state in enumerate(mine):
            for i, before in enumerate(theirs):
                zone_same = old._zones.get(before.rule.zone) == self._zones.get(state.rule.zone)
                if i in used or before.rule != state.rule or not zone_same:
                    continue
                used.add(i)
                mine[j] = before
                was, now = f"{kind}-{i}", f"{kind}-{j}"
                kept.append(now)
                if was in old._open:
                    carried.add(was)
                    opened = old._open[was]
                    opened.observation = opened.observation.model_copy(update={"rule": now})
                    self._open[now] = opened
                break
        return kept

    async def _with_snapshot(
        self, obs: Observation, frame: Frame, members: list[Detection]
    ) -> Observation:
        if self._snapshots is None:
            return obs
        name = f"{obs.id}-{frame.seq}.jpg"
        try:
            data = await asyncio.to_thread(_snapshot_jpeg, frame, members)
            await self._snapshots(name, data)
        except OSError as exc:  # a full disk, Redis away: the observation goes on without it
            log.warning("camera=%s observation=%s snapshot not written: %s",
                        self.place.camera_id, obs.id, exc)  # fmt: skip
            return obs
        return obs.model_copy(update={"snapshot_ref": name})


@dataclass
class Adopted:
    kept: list[str]  # rule keys (and "health") that continued
    closed: list[str]  # observation ids closed because their rule changed


class _RuleState(Protocol):
    @property
    def rule(self) -> CrowdRule | TrafficRule | FloodRule | StateRule: ...


_S = TypeVar("_S", bound=_RuleState)


class _Resumable(Protocol):
    def resume(self, started_at: datetime, peak: float, now_mono: float) -> None: ...


SnapshotSink = Callable[[str, bytes], Awaitable[None]]
Probe = Callable[[Frame, dict[str, float]], None]
VEHICLE_CLASSES = frozenset(VEHICLES)


def local_snapshots(folder: Path) -> SnapshotSink:
    """Snapshots written into a folder (the wall serves them from there)."""

    def write(name: str, data: bytes) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = (folder / name).with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(folder / name)

    async def sink(name: str, data: bytes) -> None:
        await asyncio.to_thread(write, name, data)

    return sink


def _snapshot_jpeg(frame: Frame, members: list[Detection]) -> bytes:
    image = frame.image.copy()
    for d in members:
        cv2.rectangle(image, (int(d.x1), int(d.y1)), (int(d.x2), int(d.y2)), (0, 0, 255), 2)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise OSError("JPEG encoding failed")
    return bytes(data.tobytes())


def _density(count: int, area_m2: float | None) -> str:
    """ " (2,4 orang/m²)" for a zone with a measured area, Indonesian decimal comma."""
    if not area_m2:
        return ""
    return f" ({count / area_m2:.1f} orang/m²)".replace(".", ",")


def _same_scene(now: list[Detection], before: list[Detection], sure: float = 0.5) -> bool:
    """Did the detector find what it found last time: each object again, of the same class,
    in about the same place (IoU >= 0.5)? A doubtful detection (below `sure`) may come and go
    between runs on a still picture without that counting as a change."""

    def covered(a: list[Detection], b: list[Detection]) -> bool:
        return all(
            d.confidence < sure or any(d.label == o.label and d.iou(o) >= 0.5 for o in b) for d in a
        )

    return covered(now, before) and covered(before, now)
