"""Camera density: how many mostly-still 720p cameras one box carries, every incident on time.

    .venv/bin/python -m bench.density_bench [--cameras 4,8,12,16,24] [--window 75] [--quick]

Cameras as cheap CCTV sends them: 1280x720 H.264 at 15 fps with a 2 s GOP (no B-frames), from
the loopback RTSP server, built from the real PETS-2009 clip: its empty plaza (the median of
the clip's frames, the walkers gone) with sensor noise, still for most of a 60 s loop, and
15 s of the real clip (people walking) once a loop. Camera k's busy period starts at a
van der Corput offset, so the busy periods of any number of cameras are spread over the loop.
Each camera has one crowd rule (4 persons for 3 s in the whole picture).

When the dwell time is met in each busy period is ground truth from the real model on every
analysed frame of the busy clip (full frames, 640 px, 5 fps, the same rule); a camera's player
starts when the RTSP server is ready, so its busy period is at a known wall time. Per
scripted busy period: did the crowd observation open, and how late after the dwell was met.

Side by side, in the same run, on the same streams:
- pantau: today's defaults (quiet cameras decode keyframes only, the detector gets the
  moving regions);
- full: the same pipeline with every frame decoded and whole frames detected (before #13);
- at one camera count (--ablate), each step alone: keyframes only, regions only;
- naive: one `YOLO(...).predict(source=rtsp, stream=True)` loop per camera in its own thread
  (its own model each), every frame it gets, the crowd rule applied to what it counts.

CPU is split by thread: decode (the capture threads), detector (the inference thread and the
backend's own threads: whatever is not Python's), rest (the event loop and its helper
threads: frame conversion, motion gate, rules). An idle camera's cost is measured on cameras
that never get busy. Prints tables and writes bench/results/density.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil

from analytics.config import CrowdRule, DetectorConfig
from analytics.detector import Detector
from analytics.incidents import Hysteresis, Transition
from bench.ingest_bench import cpu_model
from bench.table import print_table
from events.bus import MemoryBus
from events.model import EventType, ObservationEvent, ObservationPhase
from pantau.camera_host import CameraHost
from pantau.config import PantauConfig
from pantau.demo_media import default_cache_dir, ffmpeg_binary, find_assets
from pantau.rtsp_server import RtspTestServer

RESULTS = Path(__file__).parent / "results"
W, H, FPS, GOP_S = 1280, 720, 15, 2
LOOP_S, BUSY_S = 60, 15
DETECT_FPS = 5.0
MIN_COUNT, DWELL_S = 4, 3.0
ON_TIME_S = 2.0
ZONE = {"id": "all", "points": [[0, 0], [1, 0], [1, 1], [0, 1]]}
RULE = {"type": "crowd", "zone": "all", "min_count": MIN_COUNT, "for": DWELL_S,
        "clear_after": 5, "cooldown": 0}  # fmt: skip


def rule_gate() -> Hysteresis:
    """The crowd rule's own dwell, clear, cooldown and grace: ground truth and the naive loop
    judge a busy period exactly as Pantau's rule does."""
    rule = CrowdRule.model_validate(RULE)
    return Hysteresis(rule.for_s, rule.clear_after_s, rule.cooldown_s, rule.grace_s)


def offset_of(k: int) -> float:
    """Camera k's busy start in the loop: the van der Corput sequence (base 2), so the first n
    cameras' busy periods are spread evenly whatever n is."""
    x, denom, i = 0.0, 1.0, k + 1
    while i:
        denom *= 2
        x += (i % 2) / denom
        i //= 2
    return round(x * (LOOP_S - BUSY_S), 2)


# ---- the cameras ---------------------------------------------------------------------------
def _letterbox(image: np.ndarray) -> np.ndarray:
    scale = min(W / image.shape[1], H / image.shape[0])
    w, h = round(image.shape[1] * scale), round(image.shape[0] * scale)
    out = np.zeros((H, W, 3), np.uint8)
    x, y = (W - w) // 2, (H - h) // 2
    out[y : y + h, x : x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def busy_frames(source: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """(the empty plaza, BUSY_S of people) at 720p, 15 fps."""
    cap = cv2.VideoCapture(str(source))
    native = cap.get(cv2.CAP_PROP_FPS) or 10.0
    frames: list[np.ndarray] = []
    while len(frames) < 400:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    empty = _letterbox(np.median(np.stack(frames[::8]), axis=0).astype(np.uint8))
    busy = [_letterbox(frames[min(len(frames) - 1, int(i * native / FPS))])
            for i in range(BUSY_S * FPS)]  # fmt: skip
    return empty, busy


def camera_clip(k: int, empty: np.ndarray, busy: list[np.ndarray], idle: bool = False) -> Path:
    """Camera k's 60 s loop (cached): still with noise, its busy period at offset_of(k)."""
    name = f"density-{'still' if idle else k}-{W}x{H}-{FPS}fps-g{GOP_S}-l{LOOP_S}.mp4"
    path = default_cache_dir() / name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    start = LOOP_S * FPS if idle else round(offset_of(k) * FPS)  # idle: never busy
    rng = np.random.default_rng(k)
    base = empty.astype(np.int16)
    tmp = path.with_suffix(f".part{os.getpid()}.mp4")
    proc = subprocess.Popen([
        ffmpeg_binary(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
        "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-", "-an", "-c:v", "libx264",
        "-preset", "veryfast", "-profile:v", "main", "-pix_fmt", "yuv420p",
        "-g", str(GOP_S * FPS), "-keyint_min", str(GOP_S * FPS), "-sc_threshold", "0",
        "-bf", "0", "-b:v", "2M", str(tmp),
    ], stdin=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None
    noise = [np.clip(base + rng.normal(0, 1.5, base.shape), 0, 255).astype(np.uint8)
             for _ in range(8)]  # fmt: skip
    for i in range(LOOP_S * FPS):
        if 0 <= i - start < len(busy):
            frame = busy[i - start]
        else:
            frame = noise[i % len(noise)]
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    if proc.wait(600) != 0:
        raise RuntimeError("ffmpeg failed to write a density clip")
    tmp.replace(path)
    return path


def _thumb(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()


class StreamClock:
    """How far behind the script each camera's stream reaches Pantau: the wall time a busy
    frame was decoded minus the time the script put that frame on the server. The frame is
    recognised by its picture (the nearest of the busy clip's frames). That lag (the loopback
    server starts a new client at a keyframe, a real camera's network adds its own) is the
    stream's, not the pipeline's, so lateness is counted from when the dwell time was met in
    what the camera delivered."""

    # per camera, only in its busy period and while it decodes every frame: 16 cameras at
    # full rate cost about 1 % of a core (a BGR conversion and a thumbnail a sample)
    SAMPLE_EVERY_S = 2.0

    def __init__(self, empty: np.ndarray, busy: list[np.ndarray]) -> None:
        self.thumbs = np.stack([_thumb(b) for b in busy])
        self.empty = _thumb(empty)
        self.samples: dict[int, list[float]] = {}

    def frame_index(self, image: np.ndarray) -> float | None:
        """The busy clip's frame this picture shows (the middle of a run of repeated source
        frames), or None when it is not clearly a busy frame."""
        thumb = _thumb(image)
        dist = ((self.thumbs - thumb) ** 2).mean(axis=1)
        best = int(np.argmin(dist))
        if dist[best] > 0.25 * float(((self.empty - thumb) ** 2).mean()):
            return None
        same = np.flatnonzero(dist <= dist[best] + 1e-3)
        run = same[np.abs(same - best) <= len(same)]
        return float(run.mean())

    def sample(self, k: int, image: np.ndarray, decoded_at: float, t_ready: float) -> None:
        index = self.frame_index(image)
        if index is None:
            return
        sent = t_ready + offset_of(k) + index / FPS
        lag = (decoded_at - sent + LOOP_S / 2) % LOOP_S - LOOP_S / 2
        self.samples.setdefault(k, []).append(lag)

    def lag(self, k: int) -> float:
        got = self.samples.get(k)
        return statistics.median(got) if got else 0.0


async def dwell_met(model: str, busy: list[np.ndarray]) -> float:
    """Seconds into the busy period when the crowd rule's dwell time is met (full frames)."""
    det = Detector(DetectorConfig(model=model))
    await det.start()
    gate = rule_gate()
    try:
        step = round(FPS / DETECT_FPS)
        for i in range(0, len(busy), step):
            people = [d for d in await det.detect("ref", busy[i], 640) if d.label == "person"]
            if gate.update(len(people) >= MIN_COUNT, i / FPS) is Transition.OPENED:
                return i / FPS
    finally:
        await det.stop()
    raise RuntimeError("the busy clip never reaches the crowd rule")


# ---- CPU by thread -------------------------------------------------------------------------
class ThreadCpu:
    """CPU seconds of this process split into decode / rest / detector by thread."""

    def sample(self) -> dict[str, float]:
        names = {t.native_id: t.name for t in threading.enumerate()}
        out = {"decode": 0.0, "rest": 0.0, "detector": 0.0}
        for th in psutil.Process().threads():
            name = names.get(th.id, "")
            seconds = th.user_time + th.system_time
            if name.startswith("capture-"):
                out["decode"] += seconds
            elif name == "MainThread" or name.startswith("asyncio"):
                out["rest"] += seconds
            else:
                out["detector"] += seconds
        return out


# ---- the Pantau pipeline -------------------------------------------------------------------
# name -> (decode every frame, detect whole frames): what each step buys
PIPELINES = {"pantau": (False, False), "keyframes only": (False, True),
             "regions only": (True, False), "full": (True, True)}  # fmt: skip


async def run_pantau(model: str, urls: list[str], expected: list[list[float]], t_ready: float,
                     window: float, pipeline: str, clock: StreamClock | None = None,
                     warmup: float = 12.0,
                     motion: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    full_decode, whole_frames = PIPELINES[pipeline]
    cams = [{"id": f"cam-{k}", "name": f"cam {k}", "url": url, "detect_fps": DETECT_FPS,
             "decode": "full" if full_decode else "auto", "zones": [ZONE], "rules": [RULE]}
            for k, url in enumerate(urls)]  # fmt: skip
    config = PantauConfig.model_validate({
        "detector": {"model": model}, "cameras": cams,
        "motion": {"regions": not whole_frames, **(motion or {})},
    })  # fmt: skip
    bus = MemoryBus()
    opened: dict[str, list[float]] = {str(c["id"]): [] for c in cams}
    sub = await bus.subscribe("density", types=frozenset({EventType.OBSERVATION}))

    async def listen() -> None:
        async for event in sub:
            if isinstance(event, ObservationEvent):
                obs = event.observation
                if obs.phase == ObservationPhase.OPENED and obs.camera_id in opened:
                    opened[obs.camera_id].append(time.time())

    async def nowhere(name: str, data: bytes) -> None:
        return None

    async def watch_clock(host: CameraHost) -> None:
        assert clock is not None
        seen: dict[int, int] = {}
        while True:
            await asyncio.sleep(clock.SAMPLE_EVERY_S / len(cams))
            for k in range(len(cams)):
                run = host.running.get(f"cam-{k}")
                if run is None or run.worker.capture.decode_mode == "keyframes":
                    continue
                if not 0.5 < (time.time() - t_ready - offset_of(k)) % LOOP_S < BUSY_S - 0.5:
                    continue  # only busy frames can be told apart: no conversion spent outside
                if run.worker.capture.latest_seq - seen.get(k, -999) < FPS * clock.SAMPLE_EVERY_S:
                    continue
                frame = await asyncio.to_thread(run.worker.capture.latest)
                if frame is not None and not frame.sparse:
                    seen[k] = frame.seq
                    await asyncio.to_thread(clock.sample, k, frame.image,
                                            frame.captured_at.timestamp(), t_ready)  # fmt: skip

    listener = asyncio.create_task(listen())
    with tempfile.TemporaryDirectory() as tmp:
        host = CameraHost(config, Path(tmp), bus, nowhere)
        await host.start()
        for c in cams:
            await host.start_camera(str(c["id"]))
        watcher = asyncio.create_task(watch_clock(host)) if clock is not None else None
        await asyncio.sleep(warmup)  # connect, warm up, let quiet cameras go quiet
        cpu, threads = psutil.Process().cpu_times(), ThreadCpu()
        split0, t0, wall0 = threads.sample(), time.monotonic(), time.time()
        images0, inferences0 = host.detector.stats.images, host.detector.stats.inferences
        decoded0 = sum(r.worker.capture.decoded_total for r in host.running.values())
        modes: list[float] = []
        while time.monotonic() - t0 < window:
            await asyncio.sleep(1)
            keyed = sum(1 for r in host.running.values()
                        if r.worker.capture.decode_mode == "keyframes")  # fmt: skip
            modes.append(keyed / len(cams))
        elapsed = time.monotonic() - t0
        split = {k: (v - split0[k]) / elapsed * 100 for k, v in threads.sample().items()}
        total = psutil.Process().cpu_times()
        cpu_pct = (total.user + total.system - cpu.user - cpu.system) / elapsed * 100
        decoded = sum(r.worker.capture.decoded_total for r in host.running.values()) - decoded0
        images = host.detector.stats.images - images0
        inferences = host.detector.stats.inferences - inferences0
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await host.stop()
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    lags = [clock.lag(k) if clock else 0.0 for k in range(len(cams))]
    by_camera = {int(k.split("-")[1]): v for k, v in opened.items()}
    await sub.close()
    return {
        "cpu_pct": round(cpu_pct, 1), **{f"cpu_{k}_pct": round(v, 1) for k, v in split.items()},
        "decoded_fps": round(decoded / elapsed, 1),
        "detector_images_per_s": round(images / elapsed, 1),
        "inferences_per_s": round(inferences / elapsed, 1),
        "keyframe_share": round(statistics.mean(modes), 2) if modes else 0.0,
        "stream_lag_s": [round(lag, 2) for lag in lags],
        "stream_lag_samples": [len(clock.samples.get(k, [])) if clock else 0
                               for k in range(len(cams))],
        **timeliness(expected, by_camera, t_ready, wall0, wall0 + elapsed, lags),
        "uncorrected": timeliness(expected, by_camera, t_ready, wall0, wall0 + elapsed),
    }  # fmt: skip


# ---- the naive loop ------------------------------------------------------------------------
def run_naive(model: str, urls: list[str], expected: list[list[float]], t_ready: float,
              window: float) -> dict[str, Any]:  # fmt: skip
    from ultralytics import YOLO

    stop = threading.Event()
    frames = [0] * len(urls)
    opened: dict[int, list[float]] = {k: [] for k in range(len(urls))}

    def loop(k: int) -> None:
        yolo = YOLO(model, task="detect")
        gate = rule_gate()
        for result in yolo.predict(source=urls[k], stream=True, verbose=False, vid_stride=1):
            frames[k] += 1
            boxes = getattr(result, "boxes", None)
            people = sum(int(c) == 0 for c in boxes.cls.tolist()) if boxes is not None else 0
            if gate.update(people >= MIN_COUNT, time.monotonic()) is Transition.OPENED:
                opened[k].append(time.time())
            if stop.is_set():
                break

    threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(len(urls))]
    for t in threads:
        t.start()
    time.sleep(12)
    cpu = psutil.Process().cpu_times()
    f0, t0, wall0 = list(frames), time.monotonic(), time.time()
    time.sleep(window)
    elapsed = time.monotonic() - t0
    total = psutil.Process().cpu_times()
    per_cam = [(a - b) / elapsed for a, b in zip(frames, f0, strict=True)]
    stop.set()
    for t in threads:
        t.join(20)
    return {
        "cpu_pct": round((total.user + total.system - cpu.user - cpu.system) / elapsed * 100, 1),
        "decoded_fps": round(sum(per_cam), 1), "detector_images_per_s": round(sum(per_cam), 1),
        "analysed_fps_per_cam_min": round(min(per_cam), 2),
        **timeliness(expected, opened, t_ready, wall0, wall0 + elapsed),
    }  # fmt: skip


# ---- on time? ------------------------------------------------------------------------------
def timeliness(expected: list[list[float]], opened: dict[int, list[float]], t_ready: float,
               start: float, end: float,
               lags: list[float] | None = None) -> dict[str, Any]:  # fmt: skip
    """Each scripted busy period whose dwell is met inside the window (and 15 s before its
    end): opened within [-1, +15] s of it? how late? `lags`: each camera's stream lag
    (StreamClock), added to when the script met the dwell time."""
    lates: list[float] = []
    missed = 0
    for k, offsets in enumerate(expected):
        for t_met in offsets:
            loops = max(0, math.ceil((start - t_ready - t_met) / LOOP_S))
            lag = lags[k] if lags else 0.0
            while (at := t_ready + t_met + lag + loops * LOOP_S) < end - 15:
                got = [o - at for o in opened.get(k, []) if -1 <= o - at <= 15]
                if got:
                    lates.append(min(got, key=abs))
                else:
                    missed += 1
                loops += 1
    on_time = sum(1 for late in lates if late <= ON_TIME_S)
    periods = len(lates) + missed
    return {
        "busy_periods": periods, "opened": len(lates), "missed": missed,
        "on_time_share": round(on_time / periods, 3) if periods else None,
        "late_p50_s": round(statistics.median(lates), 2) if lates else None,
        "late_max_s": round(max(lates), 2) if lates else None,
        "lates_s": [round(late, 2) for late in lates],
    }  # fmt: skip


# idle_after_s (4 s) to keyframes, then re-checks after 10, 20, 40 s: 60 s apart from ~75 s on
IDLE_WARMUP_S = 90.0


async def idle_cost(model: str, url: str, n: int, window: float,
                    repeats: int = 3) -> dict[str, Any]:  # fmt: skip
    """CPU per camera that never gets busy (the same still view): today's defaults, today's
    without the re-check backoff (every quiet_keepalive_s, as before it), and full decoding;
    the median of `repeats` runs (one run moved by 0.15 % between two sessions). Measured in
    the steady state of a camera that stays quiet: after IDLE_WARMUP_S, by when it decodes
    keyframes only and its detector re-check has backed off to the longest interval."""
    variants: dict[str, tuple[str, dict[str, Any] | None]] = {
        "pantau": ("pantau", None),
        "no_backoff": ("pantau", {"quiet_keepalive_s": 10.0, "quiet_keepalive_max_s": 10.0}),
        "full": ("full", None),
    }
    out: dict[str, Any] = {"warmup_s": IDLE_WARMUP_S, "window_s": window, "cameras": n}
    for name, (pipeline, motion) in variants.items():
        runs = []
        for _ in range(repeats):
            row = await run_pantau(model, [url] * n, [[] for _ in range(n)], time.time(),
                                   window, pipeline, warmup=IDLE_WARMUP_S,
                                   motion=motion)  # fmt: skip
            runs.append(round(row["cpu_pct"] / n, 2))
        out[name] = statistics.median(runs)
        out[f"{name}_runs"] = runs
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    assets = find_assets()
    parser.add_argument("--model", default=str(assets / "models/yolo11n_int8_openvino_model")
                        if assets else "yolo11n.pt")  # fmt: skip
    parser.add_argument("--cameras", default="4,8,12,16,24")
    parser.add_argument("--window", type=float, default=75.0, help="seconds measured per row")
    parser.add_argument("--naive-max", type=int, default=8, help="largest naive run")
    parser.add_argument("--quick", action="store_true", help="4 and 8 cameras, 40 s")
    parser.add_argument("--idle-only", action="store_true", help="only an idle camera's cost")
    parser.add_argument("--out", default=None, help="results file name (bench/results/)")
    parser.add_argument("--idle-repeats", type=int, default=3)
    parser.add_argument("--skip-idle", action="store_true", help="no idle-camera runs")
    parser.add_argument("--ablate", type=int, default=8,
                        help="at this camera count also run each step alone")  # fmt: skip
    args = parser.parse_args()
    counts = [4, 8] if args.quick else [int(c) for c in args.cameras.split(",")]
    window = 40.0 if args.quick else args.window
    if assets is None:
        raise SystemExit("the shared assets (../shared/assets) are needed for the clips")
    empty, busy = busy_frames(assets / "video" / "pets2009_vtest_480x360_tiodh.mp4")
    per_idle: dict[str, Any]
    if args.idle_only:
        with RtspTestServer({"idle": camera_clip(0, empty, busy, idle=True)}) as server:
            per_idle = asyncio.run(idle_cost(args.model, server.url("idle"), 4, window,
                                             args.idle_repeats))  # fmt: skip
        print(per_idle)
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / (args.out or "density_idle.json")
        path.write_text(json.dumps({"cpu": cpu_model(), "cores": psutil.cpu_count(),
                                    "model": args.model, "idle_camera_cpu_pct": per_idle},
                                   indent=2))  # fmt: skip
        print(f"wrote {path}")
        return
    met = asyncio.run(dwell_met(args.model, busy))
    print(f"ground truth: the crowd rule's dwell is met {met:.1f} s into each busy period",
          flush=True)  # fmt: skip
    clips = [camera_clip(k, empty, busy) for k in range(max(counts))]
    idle = camera_clip(0, empty, busy, idle=True)
    rows: list[dict[str, Any]] = []
    for n in counts:
        names = ["pantau", "full", "naive"]
        if n == args.ablate:
            names[1:1] = ["keyframes only", "regions only"]
        for name in names:
            if name == "naive" and n > args.naive_max:
                continue
            # A fresh server per row: its players start together when it is ready, so the
            # scripted busy periods are at known times (a long-running server drifts a little
            # at each loop's seek).
            with RtspTestServer({f"cam{k}": clips[k] for k in range(n)}) as server:
                t_ready = time.time()
                urls = [server.url(f"cam{k}") for k in range(n)]
                expected = [[offset_of(k) + met] for k in range(n)]
                if name == "naive":
                    row = run_naive(args.model, urls, expected, t_ready, window)
                else:
                    row = asyncio.run(run_pantau(args.model, urls, expected, t_ready, window,
                                                 name, StreamClock(empty, busy)))  # fmt: skip
            row = {"pipeline": name, "cameras": n, **row}
            rows.append(row)
            print(json.dumps(row), flush=True)
    per_idle = {}
    if not args.skip_idle:
        with RtspTestServer({"idle": idle}) as server:
            per_idle = asyncio.run(idle_cost(args.model, server.url("idle"), 4, min(window, 40),
                                             args.idle_repeats))  # fmt: skip
    print()
    print_table(
        [("pipeline", 16), ("cams", 6), ("cpu %", 8), ("decode", 8), ("detect", 8), ("rest", 7),
         ("dec fps", 9), ("det img/s", 11), ("opened", 8), ("missed", 8), ("on time", 9),
         ("late p50", 10), ("late max", 10), ("lag max", 9)],
        [(r["pipeline"], r["cameras"], r["cpu_pct"], r.get("cpu_decode_pct", "-"),
          r.get("cpu_detector_pct", "-"), r.get("cpu_rest_pct", "-"), r["decoded_fps"],
          r["detector_images_per_s"], f"{r['opened']}/{r['busy_periods']}", r["missed"],
          r["on_time_share"], r["late_p50_s"], r["late_max_s"],
          max(r.get("stream_lag_s") or ["-"])) for r in rows],
    )  # fmt: skip
    if per_idle:
        print(
            f"idle 720p camera, CPU % of one core: pantau {per_idle['pantau']}, without the "
            f"re-check backoff {per_idle['no_backoff']}, full decode {per_idle['full']}"
        )
    report = {
        "cpu": cpu_model(), "cores": psutil.cpu_count(), "model": args.model,
        "camera": f"{W}x{H} H.264 {FPS} fps, GOP {GOP_S} s, busy {BUSY_S} s of every {LOOP_S} s",
        "rule": RULE, "dwell_met_s": met, "window_s": window, "rows": rows,
        "idle_camera_cpu_pct": per_idle,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    name = args.out or ("density_quick.json" if args.quick else "density.json")
    (RESULTS / name).write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / name}")


if __name__ == "__main__":
    main()
