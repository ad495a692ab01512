"""Analytics benchmark, busy scenes: where each design saturates, and the detector there.

    .venv/bin/python -m bench.analytics_bench [--model PATH] [--seconds 15] [--max-cameras 40]
    .venv/bin/python -m bench.analytics_bench --scene quiet   (the older quiet-scene run;
                                                               bench/density_bench.py is the
                                                               main density figure)

- raw backend: the same model and image size, `predict` on decoded frames, batch 1 and batch 4,
  and the same frames at each clip's detect size packed into the model's input;
- recall: the same frames of each clip through the same rules at 640 px and at the detect
  size: objects found (matched by IoU >= 0.5) and incidents opened;
- saturation: cameras (the four real CCTV clips, always moving, from the loopback RTSP server)
  are added, 1, 2, then two at a time, until one is no longer sustained (>= 95 % of 5 fps
  analysed), for: Pantau at 640 px and Pantau at each scene's detect size (SIZES), both with
  today's defaults (motion gate, moving regions, ONE shared batched detector, tracking and
  rules); and the naive loop a user writes first, one `YOLO(...).predict(source=rtsp,
  stream=True)` per camera in its own thread with its own model, taking every frame it gets
  and, counted again, asking for 5 fps (vid_stride).
Reports frames/s, CPU % and p95 frame -> decision latency per row, each design's saturation
point, its detector frames/s there against raw, the ratio to the naive loop, and the CPU model.
Prints a table and writes bench/results/analytics.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil

from analytics.config import CrowdRule, DetectorConfig, MotionConfig, Rule, Zone
from analytics.detector import Detector
from analytics.engine import CameraAnalytics, CameraPlace
from bench.ingest_bench import cpu_model
from bench.table import print_table
from events.model import Observation, ObservationPhase
from ingest.config import CameraSource
from ingest.frame import Frame
from ingest.worker import CameraWorker
from pantau.demo_media import default_cache_dir, find_assets, resolve_clip
from pantau.rtsp_server import RtspTestServer

RESULTS = Path(__file__).parent / "results"
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
DETECT_FPS = 5.0
CLIPS = [  # camera i plays CLIPS[i % 4]
    "pets2009_vtest_480x360_tiodh.mp4",
    "traffic_street_cKuhn517_MIT.mp4",
    "flood_indoor_cctv_MiyanoShiho21.mp4",
    "overhead_crowd_lamminhthien.avi",
]
# The detect size an administrator picks per view (cameras[].detect_size): people close by
# need few pixels, a street a few more, a far crowd nearly the full 640.
SIZES = {
    "pets2009_vtest_480x360_tiodh.mp4": 320,
    "traffic_street_cKuhn517_MIT.mp4": 480,
    "overhead_crowd_lamminhthien.avi": 560,
    "flood_indoor_cctv_MiyanoShiho21.mp4": 320,  # the flood rule does not use the detector
}
QUIET_MOTION_S, QUIET_STILL_S = 10, 30
ZONE = Zone(id="all", points=[(0, 0), (1, 0), (1, 1), (0, 1)])
ROAD = Zone(id="road", points=[(0, 0), (1, 0), (1, 1), (0, 1)])
RULES: list[Rule] = [
    CrowdRule.model_validate({"type": "crowd", "zone": "all", "min_count": 5, "for": 2}),
    CrowdRule.model_validate(
        {"type": "crowd", "zone": "road", "min_count": 5, "for": 2,
         "classes": ["car", "motorcycle", "bus", "truck"]}
    ),
]  # fmt: skip


def size_of(clip: Path, default: int) -> int:
    """The detect size of a clip (the demo cache names clips `<stem>-<hash>-g2.mp4`)."""
    return next((v for k, v in SIZES.items() if clip.name.startswith(Path(k).stem)), default)


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def quiet_clips(n: int, source: Path) -> list[Path]:
    """CCTV as it mostly is: 10 s of people walking (the PETS clip), then 30 s of the same view
    standing still with sensor noise, looped; camera k is shifted by k * 40 / n seconds so the
    busy moments of the cameras do not all coincide."""
    from pantau.demo_media import _x264_args, ffmpeg_binary

    cap = cv2.VideoCapture(str(source))
    fps = round(cap.get(cv2.CAP_PROP_FPS) or 10)
    moving = [np.asarray(cap.read()[1], dtype=np.uint8) for _ in range(QUIET_MOTION_S * fps)]
    cap.release()
    rng = np.random.default_rng(7)
    still = moving[-1].astype(np.int16)
    frames = moving + [
        np.clip(still + rng.normal(0, 1.5, still.shape), 0, 255).astype(np.uint8)
        for _ in range(QUIET_STILL_S * fps)
    ]
    out: list[Path] = []
    for k in range(n):
        path = default_cache_dir() / f"bench-quiet-{k}of{n}-{fps}fps.mp4"
        out.append(path)
        if path.exists():
            continue
        shift = int(k * len(frames) / n)
        h, w = frames[0].shape[:2]
        proc = subprocess.Popen(
            [ffmpeg_binary(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
             "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", *_x264_args(fps), str(path)],
            stdin=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdin is not None
        for frame in frames[shift:] + frames[:shift]:
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
        if proc.wait(300) != 0:
            raise RuntimeError("ffmpeg failed to write a quiet benchmark clip")
    return out


def cpu_seconds() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


async def bench_raw(model: str, imgsz: int, seconds: float, clips: list[Path]) -> dict[str, float]:
    det = Detector(DetectorConfig(model=model, imgsz=imgsz))
    await det.start()
    cap = cv2.VideoCapture(str(clips[0]))
    frames = [np.asarray(cap.read()[1], dtype=np.uint8) for _ in range(16)]
    cap.release()
    out: dict[str, float] = {}
    for batch in (1, 4):
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            det._infer_blocking(frames[:batch])  # the backend alone, no queue, no asyncio
            done += batch
        out[f"batch{batch}_fps"] = round(done / (time.perf_counter() - t0), 2)
    # Two frames of each clip at its detect size, as a busy pipeline batches them (max_batch 8).
    mixed = []
    for clip in clips:
        cap = cv2.VideoCapture(str(clip))
        mixed += [np.asarray(cap.read()[1], dtype=np.uint8) for _ in range(2)]
        cap.release()
    sizes = [size_of(c, imgsz) for c in clips for _ in range(2)]
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 3:
        det._infer_blocking(mixed, sizes)
        done += len(mixed)
    out["sized_fps"] = round(done / (time.perf_counter() - t0), 2)
    await det.stop()
    # The same frames through ultralytics' own predict, as the naive loop runs them: what the
    # detector's direct OpenVINO path (analytics/openvino_runner.py) saves per model run.
    from ultralytics import YOLO

    model_ = YOLO(model, task="detect")
    model_.predict(frames[0], imgsz=imgsz, verbose=False)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 3:
        model_.predict(frames[done % len(frames)], imgsz=imgsz, verbose=False)
        done += 1
    out["ultralytics_predict_fps"] = round(done / (time.perf_counter() - t0), 2)
    return out


async def bench_pipeline(
    model: str,
    imgsz: int,
    server: RtspTestServer,
    n: int,
    seconds: float,
    gate: bool,
    sizes: list[int | None] | None = None,
) -> dict[str, Any]:
    det = Detector(DetectorConfig(model=model, imgsz=imgsz, max_batch=8, max_wait_ms=15))
    await det.start()
    latencies: list[float] = []
    analysed = [0] * n
    workers, engines = [], []

    async def publish(event: Observation) -> None:
        pass

    async def on_status(_: object) -> None:
        pass

    for i in range(n):
        engine = CameraAnalytics(
            CameraPlace(f"cam-{i}", f"cam {i}", None, None),
            [ZONE, ROAD],
            RULES,
            det,
            publish,
            None,
            detect_fps=DETECT_FPS,
            motion=MotionConfig(enabled=gate),
            detect_size=sizes[i] if sizes else None,
        )

        async def on_frame(frame: Frame, engine: CameraAnalytics = engine, i: int = i) -> None:
            await engine.on_frame(frame)
            analysed[i] += 1
            latencies.append(time.monotonic() - frame.captured_mono)

        worker = CameraWorker(
            f"cam-{i}",
            CameraSource(url=server.url(f"cam{i}"), detect_fps=DETECT_FPS),
            on_frame,
            on_status,
        )  # type: ignore[arg-type]
        await worker.start()
        workers.append(worker)
        engines.append(engine)
    # connect, warm up, and let each camera's region check settle (3 checks, 3 s apart)
    await asyncio.sleep(12)
    start_counts, images0, inferences0, cpu0, t0 = (
        list(analysed),
        det.stats.images,
        det.stats.inferences,
        cpu_seconds(),
        time.monotonic(),
    )
    latencies.clear()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t0
    per_cam = [(a - b) / elapsed for a, b in zip(analysed, start_counts, strict=True)]
    result = {
        "cameras": n,
        "motion_gate": gate,
        "sized": bool(sizes),
        "analysed_fps_per_cam": round(statistics.mean(per_cam), 2),
        "detector_fps": round((det.stats.images - images0) / elapsed, 2),
        "inferences_per_s": round((det.stats.inferences - inferences0) / elapsed, 2),
        "cpu_pct": round((cpu_seconds() - cpu0) / elapsed * 100, 1),
        "latency_p95_ms": round(p95(latencies) * 1000, 1),
        "sustained_cameras": sum(1 for f in per_cam if f >= 0.95 * DETECT_FPS),
    }
    for w in workers:
        await w.stop()
    await det.stop()
    return result


def bench_naive(
    model: str, imgsz: int, server: RtspTestServer, n: int, seconds: float,
    every_frame: bool = True, clips: list[Path] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """`every_frame`: the loop takes every frame it gets (sustained: it keeps up with 5 fps of
    analysis at least); else it asks ultralytics for 5 fps (vid_stride = clip fps / 5)."""
    from ultralytics import YOLO

    counts = [0] * n
    stop = threading.Event()

    def stride(i: int) -> int:
        if every_frame or clips is None:
            return 1
        cap = cv2.VideoCapture(str(clips[i]))
        fps = cap.get(cv2.CAP_PROP_FPS) or DETECT_FPS
        cap.release()
        return max(1, round(fps / DETECT_FPS))

    def loop(i: int) -> None:
        yolo = YOLO(model, task="detect")
        for _ in yolo.predict(source=server.url(f"cam{i}"), stream=True, imgsz=imgsz,
                              verbose=False, vid_stride=stride(i)):  # fmt: skip
            counts[i] += 1
            if stop.is_set():
                break

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(10)  # model load, connect
    c0, cpu0, t0 = list(counts), cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    per_cam = [(a - b) / elapsed for a, b in zip(counts, c0, strict=True)]
    stop.set()
    for t in threads:
        t.join(15)
    return {
        "cameras": n,
        "analysed_fps_per_cam": round(statistics.mean(per_cam), 2),
        "detector_fps": round(sum(per_cam), 2),
        "inferences_per_s": round(sum(per_cam), 2),  # one model run per frame
        "cpu_pct": round((cpu_seconds() - cpu0) / elapsed * 100, 1),
        "latency_p95_ms": float("nan"),  # ultralytics' stream loop does not expose capture time
        "sustained_cameras": sum(1 for f in per_cam if f >= 0.95 * DETECT_FPS),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    assets = find_assets()
    default_model = str(assets / "models/yolo11n_int8_openvino_model") if assets else "yolo11n.pt"
    parser.add_argument("--model", default=default_model)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--max-cameras", type=int, default=40, help="the search stops here")
    parser.add_argument(
        "--scene",
        choices=["busy", "quiet"],
        default="busy",
        help="busy: the four real clips, always moving; quiet: people 10 s of every 40 s",
    )
    parser.add_argument(
        "--row", metavar="DESIGN:N", default=None,
        help="one row only, e.g. 'pantau:8' (to profile a saturated pipeline: perf record -a)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.scene == "quiet":
        quiet_scene(args, assets)
        return
    cache = default_cache_dir()
    clips = [resolve_clip(c, assets, cache) for c in CLIPS]
    limit = 4 if args.quick else args.max_cameras

    def streams(n: int) -> dict[str, Path]:
        return {f"cam{i}": clips[i % len(clips)] for i in range(n)}

    def pantau(sized: bool) -> Callable[[int], dict[str, Any]]:
        def run(n: int) -> dict[str, Any]:
            sizes: list[int | None] | None = (
                [size_of(clips[i % len(clips)], args.imgsz) for i in range(n)] if sized else None
            )
            with RtspTestServer(streams(n)) as server:
                return asyncio.run(
                    bench_pipeline(args.model, args.imgsz, server, n, args.seconds, True, sizes)
                )

        return run

    def naive(every_frame: bool) -> Callable[[int], dict[str, Any]]:
        def run(n: int) -> dict[str, Any]:
            with RtspTestServer(streams(n)) as server:
                return bench_naive(args.model, args.imgsz, server, n, args.seconds, every_frame,
                                   [clips[i % len(clips)] for i in range(n)])  # fmt: skip

        return run

    # Each design gets cameras added until one is no longer sustained: its saturation point.
    designs = {"pantau": pantau(False), "pantau sized": pantau(True),
               "naive": naive(True), "naive 5fps": naive(False)}  # fmt: skip
    if args.row:
        design, _, count = args.row.rpartition(":")
        print_row(design, designs[design](int(count)))
        return
    raw = asyncio.run(bench_raw(args.model, args.imgsz, args.seconds, clips))
    print(
        f"raw backend ({args.imgsz} px): batch 1 {raw['batch1_fps']} fps, "
        f"batch 4 {raw['batch4_fps']} fps, at the clips' detect sizes {raw['sized_fps']} fps; "
        f"through ultralytics' predict {raw['ultralytics_predict_fps']} fps",
        flush=True,
    )
    recall = asyncio.run(bench_recall(args.model, args.imgsz, clips))
    rows: dict[str, list[dict[str, Any]]] = {}
    saturation: dict[str, int] = {}
    for name, run in designs.items():
        rows[name], saturation[name] = saturate(name, run, limit)
    at_saturation = {
        name: next((r for r in rows[name] if r["cameras"] == saturation[name]), rows[name][0])
        for name in designs
    }
    best_raw = max(raw["batch1_fps"], raw["batch4_fps"])
    report = {
        "cpu": cpu_model(),
        "model": args.model,
        "imgsz": args.imgsz,
        "sizes": SIZES,
        "detect_fps": DETECT_FPS,
        "cores": psutil.cpu_count(),
        "raw": raw,
        "recall": recall,
        "rows": rows,
        "saturation": saturation,
        "detector_fps_at_saturation_vs_raw": {
            "pantau": round(at_saturation["pantau"]["detector_fps"] / best_raw, 2),
            "pantau sized": round(
                at_saturation["pantau sized"]["detector_fps"] / raw["sized_fps"], 2
            ),
        },
        # Whole frames that reached the rules (a frame's crops are one frame here): the
        # stricter measure, since a crop is less than a frame of the model's work.
        "analysed_fps_at_saturation_vs_raw": {
            name: round(
                at_saturation[name]["analysed_fps_per_cam"]
                * at_saturation[name]["cameras"]
                / (best_raw if name == "pantau" else raw["sized_fps"]),
                2,
            )
            for name in ("pantau", "pantau sized")
        },
        "vs_naive": {
            name: round(saturation[name] / max(saturation["naive 5fps"], 1), 2)
            for name in ("pantau", "pantau sized")
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / ("analytics_quick.json" if args.quick else "analytics.json")).write_text(
        json.dumps(report, indent=2)
    )
    print()
    print_table(
        [("design", 14), ("sustained cameras", 19), ("detector fps there", 20), ("cpu %", 8)],
        [(name, saturation[name], at_saturation[name]["detector_fps"],
          at_saturation[name]["cpu_pct"]) for name in designs],
    )  # fmt: skip
    print(f"{cpu_model()}: detector fps at saturation vs raw "
          f"{report['detector_fps_at_saturation_vs_raw']}, analysed frames/s there vs raw "
          f"{report['analysed_fps_at_saturation_vs_raw']}; cameras vs the naive loop at 5 fps "
          f"{report['vs_naive']}")  # fmt: skip


def saturate(
    name: str, run: Callable[[int], dict[str, Any]], limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Add cameras (1, 2, then two at a time) until one is no longer sustained; then the
    count in between, so the saturation point is exact (steps of two made it up to one
    camera short, and its frames/s with it)."""
    rows: list[dict[str, Any]] = []
    best, n = 0, 1
    while n <= limit:
        row = run(n)
        rows.append(row)
        print_row(name, row)
        if row["sustained_cameras"] < n:
            if n - 1 > best:
                between = run(n - 1)
                rows.insert(-1, between)
                print_row(name, between)
                if between["sustained_cameras"] == n - 1:
                    best = n - 1
            break
        best = n
        n = 2 if n == 1 else n + 2
    return rows, best


async def bench_recall(model: str, imgsz: int, clips: list[Path]) -> list[dict[str, Any]]:
    """Does a smaller detect size lose what matters? The same 20 s of each clip at 5 fps through
    the same rules at 640 px and at the clip's detect size: objects the rules count (persons and
    vehicles) that the small size finds again (IoU >= 0.5, same class), and incidents opened."""
    det = Detector(DetectorConfig(model=model, imgsz=imgsz))
    await det.start()
    out: list[dict[str, Any]] = []
    counted = {"person", "car", "motorcycle", "bus", "truck"}
    for clip in clips:
        frames = sample_clip(clip, DETECT_FPS, 20)
        runs: dict[int, tuple[list[list[Any]], list[str]]] = {}
        for size in (imgsz, size_of(clip, imgsz)):
            opened: list[str] = []

            async def publish(event: Observation, sink: list[str] = opened) -> None:
                if event.phase == ObservationPhase.OPENED:
                    sink.append(str(event.zone_id))

            engine = CameraAnalytics(
                CameraPlace("cam", "cam", None, None), [ZONE, ROAD], RULES, det, publish, None,
                detect_fps=DETECT_FPS, motion=MotionConfig(enabled=False), detect_size=size,
            )  # fmt: skip
            per_frame = []
            for i, (t, image) in enumerate(frames):
                await engine.on_frame(Frame("cam", i + 1, t, T0 + timedelta(seconds=t), image))
                per_frame.append([d for d in engine.last_detections if d.label in counted])
            runs[size] = (per_frame, opened)
        (ref, ref_opened), (got, got_opened) = runs[imgsz], runs[size_of(clip, imgsz)]
        total = sum(len(f) for f in ref)
        found = sum(
            1
            for r_frame, g_frame in zip(ref, got, strict=True)
            for r in r_frame
            if any(g.label == r.label and g.iou(r) >= 0.5 for g in g_frame)
        )
        row = {
            "clip": clip.name,
            "size": size_of(clip, imgsz),
            "objects_per_frame_640": round(total / len(ref), 1),
            "objects_per_frame_sized": round(sum(len(f) for f in got) / len(got), 1),
            "object_recall": round(found / total, 2) if total else None,
            "incidents_640": sorted(ref_opened),
            "incidents_sized": sorted(got_opened),
        }
        out.append(row)
        print(json.dumps(row), flush=True)
    await det.stop()
    return out


def sample_clip(path: Path, fps: float, seconds: float) -> list[tuple[float, np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    native = cap.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, round(native / fps))
    frames: list[tuple[float, np.ndarray]] = []
    index = 0
    while index / native <= seconds:
        ok, image = cap.read()
        if not ok:
            break
        if index % step == 0:
            frames.append((index / native, image))
        index += 1
    cap.release()
    return frames


def quiet_scene(args: argparse.Namespace, assets: Path | None) -> None:
    """Mostly still cameras, where the motion gate is meant to pay: how many cameras each
    design keeps at 5 analysed fps."""
    counts = [2, 4] if args.quick else [2, 4, 6, 8, 12]
    clips = quiet_clips(max(counts), resolve_clip(CLIPS[0], assets, default_cache_dir()))
    rows: list[dict[str, Any]] = []
    naive_rows: list[dict[str, Any]] = []
    with RtspTestServer({f"cam{i}": clip for i, clip in enumerate(clips)}) as server:
        for n in counts:
            for sized in (False, True):
                sizes: list[int | None] | None = [SIZES[CLIPS[0]]] * n if sized else None
                row = asyncio.run(
                    bench_pipeline(args.model, args.imgsz, server, n, args.seconds, True, sizes)
                )
                rows.append(row)
                print_row("pantau" + (" sized" if sized else "") + " +gate", row)
        for n in (1, 2):
            row = bench_naive(args.model, args.imgsz, server, n, args.seconds)
            naive_rows.append(row)
            print_row("naive", row)
    report = {
        "scene": f"quiet: people {QUIET_MOTION_S} s of every {QUIET_MOTION_S + QUIET_STILL_S} s",
        "model": args.model,
        "imgsz": args.imgsz,
        "detect_fps": DETECT_FPS,
        "cores": psutil.cpu_count(),
        "pipeline": rows,
        "naive": naive_rows,
        "sustained": {
            "pantau_gate": max(r["sustained_cameras"] for r in rows if not r["sized"]),
            "pantau_sized_gate": max(r["sustained_cameras"] for r in rows if r["sized"]),
            "naive": max(r["sustained_cameras"] for r in naive_rows),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics_quiet.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report["sustained"]))


def print_row(name: str, row: dict[str, Any]) -> None:
    print(
        f"{name:13s} cams={row['cameras']:2d} analysed/cam={row['analysed_fps_per_cam']:5.2f} "
        f"detector={row['detector_fps']:5.2f} fps inferences={row['inferences_per_s']:5.2f}/s "
        f"cpu={row['cpu_pct']:5.1f}% "
        f"p95={row['latency_p95_ms']} ms sustained={row['sustained_cameras']}",
        flush=True,
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
