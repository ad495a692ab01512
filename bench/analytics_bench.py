"""Analytics benchmark: raw detector throughput vs the full pipeline vs the naive baseline.

    .venv/bin/python -m bench.analytics_bench [--model PATH] [--seconds 15] [--quick]

- raw backend: the same model and image size, `predict` on decoded frames, batch 1 and batch 4;
- pipeline: N cameras (real CCTV clips from the loopback RTSP server) through Pantau's ingest
  workers, motion gate, ONE shared batched detector, tracking and rules, at detect_fps 5,
  with and without the motion gate;
- naive: what a user writes first, one `YOLO(...).predict(source=rtsp, stream=True)` loop per
  camera in its own thread, each with its own model.
Reports frames/s, CPU %, p95 frame -> decision latency, and how many cameras are sustained at
5 fps (a camera is sustained when >= 95 % of its 5 fps reach the rules). Prints a table and
writes bench/results/analytics.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil

from analytics.config import CrowdRule, DetectorConfig, MotionConfig, Zone
from analytics.detector import Detector
from analytics.engine import CameraAnalytics, CameraPlace
from events.model import IncidentEvent
from ingest.config import CameraSource
from ingest.frame import Frame
from ingest.worker import CameraWorker
from pantau.demo_media import default_cache_dir, find_assets, resolve_clip
from pantau.rtsp_server import RtspTestServer

RESULTS = Path(__file__).parent / "results"
DETECT_FPS = 5.0
CLIPS = [
    "pets2009_vtest_480x360_tiodh.mp4",
    "traffic_street_cKuhn517_MIT.mp4",
    "overhead_crowd_lamminhthien.avi",
    "flood_indoor_cctv_MiyanoShiho21.mp4",
]
QUIET_MOTION_S, QUIET_STILL_S = 10, 30
ZONE = Zone(id="all", points=[(0, 0), (1, 0), (1, 1), (0, 1)])
RULE = CrowdRule.model_validate({"type": "crowd", "zone": "all", "min_count": 5, "for": 2})


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


async def bench_raw(model: str, imgsz: int, seconds: float, clip: Path) -> dict[str, float]:
    det = Detector(DetectorConfig(model=model, imgsz=imgsz))
    await det.start()
    cap = cv2.VideoCapture(str(clip))
    frames = [np.asarray(cap.read()[1], dtype=np.uint8) for _ in range(16)]
    cap.release()
    out: dict[str, float] = {}
    for batch in (1, 4):
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            det._infer_blocking(frames[:batch])  # the backend alone, no queue, no asyncio
            done += batch
        out[f"batch{batch}_fps"] = round(done / (time.perf_counter() - t0), 2)
    await det.stop()
    return out


async def bench_pipeline(
    model: str, imgsz: int, server: RtspTestServer, n: int, seconds: float, gate: bool
) -> dict[str, Any]:
    det = Detector(DetectorConfig(model=model, imgsz=imgsz, max_batch=8, max_wait_ms=15))
    await det.start()
    latencies: list[float] = []
    analysed = [0] * n
    workers, engines = [], []

    async def publish(event: IncidentEvent) -> None:
        pass

    async def on_status(_: object) -> None:
        pass

    for i in range(n):
        engine = CameraAnalytics(
            CameraPlace(f"cam-{i}", f"cam {i}", None, None),
            [ZONE],
            [RULE],
            det,
            publish,
            None,
            detect_fps=DETECT_FPS,
            motion=MotionConfig(enabled=gate),
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
    await asyncio.sleep(6)  # connect, warm up
    start_counts, images0, cpu0, t0 = (
        list(analysed),
        det.stats.images,
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
        "analysed_fps_per_cam": round(statistics.mean(per_cam), 2),
        "detector_fps": round((det.stats.images - images0) / elapsed, 2),
        "cpu_pct": round((cpu_seconds() - cpu0) / elapsed * 100, 1),
        "latency_p95_ms": round(p95(latencies) * 1000, 1),
        "sustained_cameras": sum(1 for f in per_cam if f >= 0.95 * DETECT_FPS),
    }
    for w in workers:
        await w.stop()
    await det.stop()
    return result


def bench_naive(
    model: str, imgsz: int, server: RtspTestServer, n: int, seconds: float
) -> dict[str, Any]:
    from ultralytics import YOLO

    counts = [0] * n
    stop = threading.Event()

    def loop(i: int) -> None:
        yolo = YOLO(model, task="detect")
        for _ in yolo.predict(
            source=server.url(f"cam{i}"), stream=True, imgsz=imgsz, verbose=False, vid_stride=1
        ):
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
    parser.add_argument(
        "--scene",
        choices=["busy", "quiet"],
        default="busy",
        help="busy: the four real clips, always moving; quiet: people 10 s of every 40 s",
    )
    args = parser.parse_args()
    if args.scene == "quiet":
        quiet_scene(args, assets)
        return
    counts = [1, 2] if args.quick else [1, 2, 4, 8]
    cache = default_cache_dir()
    clips = [resolve_clip(c, assets, cache) for c in CLIPS]
    raw = asyncio.run(bench_raw(args.model, args.imgsz, args.seconds, clips[0]))
    print(
        f"raw backend ({args.imgsz} px): batch 1 {raw['batch1_fps']} fps, "
        f"batch 4 {raw['batch4_fps']} fps"
    )
    rows: list[dict[str, Any]] = []
    naive_rows: list[dict[str, Any]] = []
    biggest = max(counts)
    with RtspTestServer({f"cam{i}": clips[i % len(clips)] for i in range(biggest)}) as server:
        for n in counts:
            for gate in (False, True):
                row = asyncio.run(
                    bench_pipeline(args.model, args.imgsz, server, n, args.seconds, gate)
                )
                rows.append(row)
                print_row("pantau" + (" +gate" if gate else ""), row)
        for n in counts[:3]:
            row = bench_naive(args.model, args.imgsz, server, n, args.seconds)
            naive_rows.append(row)
            print_row("naive", row)
    best_pipeline = max(r["detector_fps"] for r in rows if not r["motion_gate"])
    report = {
        "model": args.model,
        "imgsz": args.imgsz,
        "detect_fps": DETECT_FPS,
        "cores": psutil.cpu_count(),
        "raw": raw,
        "pipeline": rows,
        "naive": naive_rows,
        "pipeline_vs_raw": round(best_pipeline / max(raw["batch1_fps"], raw["batch4_fps"]), 2),
        "sustained": {
            "pantau": max(r["sustained_cameras"] for r in rows if not r["motion_gate"]),
            "pantau_gate": max(r["sustained_cameras"] for r in rows if r["motion_gate"]),
            "naive": max(r["sustained_cameras"] for r in naive_rows),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("pipeline_vs_raw", "sustained")}))


def quiet_scene(args: argparse.Namespace, assets: Path | None) -> None:
    """Mostly still cameras, where the motion gate is meant to pay: how many cameras each
    design keeps at 5 analysed fps."""
    counts = [2, 4] if args.quick else [2, 4, 6, 8]
    clips = quiet_clips(max(counts), resolve_clip(CLIPS[0], assets, default_cache_dir()))
    rows: list[dict[str, Any]] = []
    naive_rows: list[dict[str, Any]] = []
    with RtspTestServer({f"cam{i}": clip for i, clip in enumerate(clips)}) as server:
        for n in counts:
            row = asyncio.run(bench_pipeline(args.model, args.imgsz, server, n, args.seconds, True))
            rows.append(row)
            print_row("pantau +gate", row)
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
            "pantau_gate": max(r["sustained_cameras"] for r in rows),
            "naive": max(r["sustained_cameras"] for r in naive_rows),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics_quiet.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report["sustained"]))


def print_row(name: str, row: dict[str, Any]) -> None:
    print(
        f"{name:13s} cams={row['cameras']:2d} analysed/cam={row['analysed_fps_per_cam']:5.2f} "
        f"detector={row['detector_fps']:5.2f} fps cpu={row['cpu_pct']:5.1f}% "
        f"p95={row['latency_p95_ms']} ms sustained={row['sustained_cameras']}",
        flush=True,
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
