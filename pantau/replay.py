"""Replay through the rules: a video file, or a camera's own recordings for a time range, run
through that camera's real pipeline (motion gate, detector, tracker, zones, rules) as fast as
the machine allows. Says, per rule, the incidents it would have opened and closed, and keeps
what every rule measured on every analysed frame for the chart (pantau/replay_chart.py).

Frames are taken as the live worker takes them: the latest decoded frame every 1/detect_fps
of the video's own time, so dwell times and clear_after behave as they would live.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np

from analytics.config import CrowdRule, FloodRule, StateRule, TamperRule, TrafficRule
from analytics.detector import Detector
from analytics.engine import CameraAnalytics, CameraPlace
from events.model import Observation, ObservationPhase
from ingest.frame import Frame
from ingest.segments import SegmentIndex
from pantau.config import Camera, PantauConfig

log = logging.getLogger(__name__)


@dataclass
class Incident:
    rule: str
    kind: str
    started_s: float  # the condition began (opened_s - the rule's `for`)
    opened_s: float
    closed_s: float | None  # None: still open when the video ended
    peak: float


@dataclass
class RuleReport:
    key: str  # crowd-0, traffic-0, flood-0, tamper
    type: str
    zone: str | None
    measure: str  # what the value is: persons, vehicles, flooded share, ...
    threshold: float
    for_s: float
    clear_after_s: float
    cooldown_s: float
    incidents: list[Incident] = field(default_factory=list)


@dataclass
class ReplayReport:
    camera_id: str
    source: str
    started_at: datetime  # the video's first frame, in wall time
    frames: int  # analysed
    duration_s: float  # of video
    wall_s: float  # it took
    rules: list[RuleReport]
    times: list[float]  # seconds from the start, per analysed frame
    series: dict[str, list[float | None]]  # reading name -> value per analysed frame

    @property
    def speed(self) -> float:
        return self.duration_s / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "camera_id": self.camera_id, "source": self.source,
            "started_at": self.started_at.isoformat(), "frames": self.frames,
            "duration_s": round(self.duration_s, 2), "wall_s": round(self.wall_s, 2),
            "speed_x": round(self.speed, 2),
            "rules": [{**r.__dict__, "incidents": [i.__dict__ for i in r.incidents]}
                      for r in self.rules],
            "times": self.times, "series": self.series,
        }  # fmt: skip


def rule_reports(camera: Camera) -> list[RuleReport]:
    """The camera's rules as the engine keys them, with what each measures."""
    out: list[RuleReport] = []
    zones = {z.id: z for z in camera.zones}
    crowd = [r for r in camera.rules if isinstance(r, CrowdRule)]
    for i, r in enumerate(crowd):
        level = r.threshold(zones[r.zone].area_m2)
        out.append(RuleReport(f"crowd-{i}", "crowd", r.zone, "persons", level, r.for_s,
                              r.clear_after_s, r.cooldown_s))  # fmt: skip
    traffic = [r for r in camera.rules if isinstance(r, TrafficRule)]
    for i, t in enumerate(traffic):
        out.append(RuleReport(f"traffic-{i}", "traffic", t.zone, "vehicles", t.min_count,
                              t.for_s, t.clear_after_s, t.cooldown_s))  # fmt: skip
    flood = [r for r in camera.rules if isinstance(r, FloodRule)]
    for i, f in enumerate(flood):
        out.append(RuleReport(f"flood-{i}", "flood", f.zone, "flooded share", f.level,
                              f.for_s, f.clear_after_s, f.cooldown_s))  # fmt: skip
    states = [r for r in camera.rules if isinstance(r, StateRule)]
    for i, st in enumerate(states):
        what = f"P({st.state})"
        out.append(RuleReport(f"state-{i}", "state", st.zone, what, st.min_probability,
                              st.for_s, st.clear_after_s, st.cooldown_s))  # fmt: skip
    tamper = next((r for r in camera.rules if isinstance(r, TamperRule)), None)
    if tamper is not None:
        out.append(RuleReport("tamper", "tamper", None, "similarity (below: camera moved)",
                              tamper.moved_similarity, tamper.for_s, tamper.clear_after_s,
                              tamper.cooldown_s))  # fmt: skip
    return out


# ---- where the frames come from --------------------------------------------------------------
@dataclass
class Clip:
    path: Path
    started_at: datetime  # wall time of its first frame


def recordings(config: PantauConfig, base_dir: Path, camera_id: str, start: datetime,
               end: datetime) -> list[Clip]:  # fmt: skip
    """The camera's recorded segments that overlap [start, end], oldest first."""
    folder = (base_dir / config.storage.data_dir).resolve() / config.recording.dir
    return recordings_in(folder, camera_id, start, end)


def recordings_in(data: Path, camera_id: str, start: datetime, end: datetime) -> list[Clip]:
    """The same from a recordings folder (its segments.db), e.g. a worker box's own."""
    index_path = data / "segments.db"
    if not index_path.is_file():
        raise FileNotFoundError(f"no recordings at {data} (is the camera recorded?)")
    index = SegmentIndex(index_path)
    try:
        found = index.overlapping(camera_id, start, end)
    finally:
        index.close()
    if not found:
        raise FileNotFoundError(f"no recording of {camera_id} between {start} and {end}")
    return [Clip(s.path, s.start_at) for s in found if s.path.is_file()]


def _frames(clips: list[Clip], fps: float, start: datetime, end: datetime | None
            ) -> Iterator[tuple[float, np.ndarray]]:  # fmt: skip
    """(seconds since `start`, BGR image) of the latest frame at every 1/fps of video time."""
    period, next_at = 1.0 / fps, 0.0
    for clip in clips:
        with av.open(str(clip.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            offset = (clip.started_at - start).total_seconds()
            for frame in container.decode(stream):
                if frame.pts is None or frame.time_base is None:
                    continue
                t = offset + float(frame.pts * frame.time_base)
                if t < 0 or (end is not None and start + timedelta(seconds=t) > end):
                    continue
                if t + 1e-6 < next_at:
                    continue
                next_at = max(next_at + period, t)  # a gap (between segments): go on from here
                yield t, frame.to_ndarray(format="bgr24")


async def replay(
    config: PantauConfig, camera_id: str, clips: list[Clip], start: datetime | None = None,
    end: datetime | None = None, state_models: Path | None = None,
) -> ReplayReport:  # fmt: skip
    """`start`..`end`: the part of the clips to run (default: all of them). `state_models`:
    the site's trained zone-state models, so state rules (and flood rules on a model) replay
    as they run."""
    camera = next((c for c in config.cameras if c.id == camera_id), None)
    if camera is None:
        raise KeyError(f"no camera {camera_id!r} in the file")
    start = start or clips[0].started_at
    reports = rule_reports(camera)
    by_key = {r.key: r for r in reports}
    times: list[float] = []
    series: dict[str, list[float | None]] = {}
    opened: dict[str, tuple[Incident, RuleReport]] = {}

    def seconds(at: datetime) -> float:
        return round((at - start).total_seconds(), 3)

    async def publish(obs: Observation) -> None:
        report = by_key.get(obs.rule)
        if report is None:
            return  # video loss: a replay has no "camera offline"
        if obs.phase is ObservationPhase.OPENED:
            inc = Incident(obs.rule, str(obs.kind), seconds(obs.started_at), seconds(obs.at),
                           None, float(obs.peak_count or 0))  # fmt: skip
            report.incidents.append(inc)
            opened[obs.id] = (inc, report)
        elif obs.id in opened:
            inc, _ = opened[obs.id]
            inc.peak = max(inc.peak, float(obs.peak_count or 0))
            if obs.phase is ObservationPhase.CLOSED:
                inc.closed_s = seconds(obs.at)
                del opened[obs.id]

    def probe(frame: Frame, readings: dict[str, float]) -> None:
        times.append(round((frame.captured_at - start).total_seconds(), 3))
        for name in readings.keys() | series.keys():
            column = series.setdefault(name, [None] * (len(times) - 1))
            column.append(readings.get(name))

    detector = Detector(config.detector)
    await detector.start()
    place = CameraPlace(camera.id, camera.name, camera.kecamatan, camera.desa)
    engine = CameraAnalytics(
        place, camera.zones, camera.rules, detector, publish, None,
        detect_fps=camera.detect_fps, motion=config.motion, lines=camera.lines,
        detect_size=camera.detect_size, state_models=state_models,
    )  # fmt: skip
    engine.probe = probe
    began = time.monotonic()
    frames = 0
    last_t = 0.0
    source = _frames(clips, camera.detect_fps, start, end)
    try:
        while True:
            got = await asyncio.to_thread(next, source, None)  # decoding: off the loop
            if got is None:
                break
            t, image = got
            frames += 1
            last_t = t
            # The video's own clock stands in for the capture clock (the rules' dwell times).
            await engine.on_frame(Frame(camera.id, frames, t, start + timedelta(seconds=t), image))
    finally:
        await detector.stop()
    wall = time.monotonic() - began
    log.info("camera=%s replayed %d frames of %.0f s in %.1f s", camera.id, frames, last_t, wall)
    return ReplayReport(camera.id, ", ".join(c.path.name for c in clips), start, frames,
                        last_t, wall, reports, times, series)  # fmt: skip


def file_clip(path: Path) -> Clip:
    """A video file: its first frame is taken as now minus its length (there is no better)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with av.open(str(path)) as container:
        length = float(container.duration or 0) / av.time_base
    return Clip(path, datetime.now(UTC) - timedelta(seconds=length))
