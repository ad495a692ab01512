"""Ingest benchmark: decode and recording cost per camera, frame age, vs what a user would do.

    .venv/bin/python -m bench.ingest_bench [--quick] [--seconds 8]

For N cameras (1, 4, 8, 16) of 720p and 1080p H.264 (15 fps, keyframe every 2 s) served by the
loopback RTSP server it measures:
  - decode: per-camera input fps achieved, CPU % per camera of the Pantau process while a
    consumer samples each camera at detect_fps (5), and frame age (capture -> consumer) p50/p95;
  - recording: CPU % per camera of the `ffmpeg -c copy` segment recorders;
and, in the same run, the baselines a user would pick instead: a recorder that re-encodes
(libx264 veryfast) and a capture loop that queues every frame (instead of a latest-frame slot).
Prints a table and writes bench/results/ingest.json. The RTSP server runs on the same machine
and its CPU is reported separately.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import queue
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import psutil

from ingest.config import CameraSource, RecordingConfig
from ingest.recorder import SegmentRecorder
from ingest.segments import SegmentIndex
from ingest.source import CaptureSource
from pantau.demo_media import default_cache_dir
from pantau.rtsp_server import RtspTestServer

RESULTS = Path(__file__).parent / "results"
FPS = 15
DETECT_FPS = 5
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def synthetic_clip(name: str, width: int, height: int) -> Path:
    """A 20 s camera-like H.264 clip (moving test pattern), made once and cached."""
    out = default_cache_dir() / f"bench-{name}-{FPS}fps.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
             "-i", f"testsrc2=size={width}x{height}:rate={FPS}:duration=20",
             "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(2 * FPS),
             "-bf", "0", "-b:v", "2M" if height <= 720 else "4M", str(out)],
            check=True,
        )  # fmt: skip
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def bench_decode(
    server: RtspTestServer, n: int, seconds: float, latest_slot: bool
) -> dict[str, Any]:
    """Pantau's capture (latest-frame slot) or the naive queue-every-frame loop."""
    me = psutil.Process()
    ages: list[float] = []
    stop = threading.Event()
    sources: list[CaptureSource] = []
    queues: list[queue.Queue[tuple[float, object]]] = []
    threads: list[threading.Thread] = []
    counts = [0] * n
    if latest_slot:
        for i in range(n):
            src = CaptureSource(f"cam-{i}", CameraSource(url=server.url(f"cam{i}")))
            src.start()
            sources.append(src)
    else:

        def naive(i: int) -> None:
            cap = cv2.VideoCapture(server.url(f"cam{i}"), cv2.CAP_FFMPEG)
            while not stop.is_set():
                ok, image = cap.read()
                if not ok:
                    break
                counts[i] += 1
                queues[i].put((time.monotonic(), image))  # what a first attempt does
            cap.release()

        for i in range(n):
            queues.append(queue.Queue())
            t = threading.Thread(target=naive, args=(i,), daemon=True)
            t.start()
            threads.append(t)
    time.sleep(4)  # connect, first keyframe, the initial burst
    last_seq = [0] * n
    cpu0, t0 = cpu_seconds([me]), time.monotonic()
    start_counts = [s.latest_seq for s in sources] if latest_slot else list(counts)
    while time.monotonic() - t0 < seconds:
        tick = time.monotonic()
        for i in range(n):
            if latest_slot:
                frame = sources[i].latest()
                if frame is not None and frame.seq != last_seq[i]:
                    last_seq[i] = frame.seq
                    ages.append(time.monotonic() - frame.captured_mono)
            else:
                try:
                    captured, _ = queues[i].get_nowait()
                    ages.append(time.monotonic() - captured)
                except queue.Empty:
                    pass
        time.sleep(max(0.0, 1.0 / DETECT_FPS - (time.monotonic() - tick)))
    elapsed = time.monotonic() - t0
    cpu = (cpu_seconds([me]) - cpu0) / elapsed * 100
    if latest_slot:
        end_counts = [s.latest_seq for s in sources]
        for src in sources:
            src.stop(5)
    else:
        end_counts = list(counts)
        stop.set()
        for t in threads:
            t.join(5)
    fps = [(e - s) / elapsed for s, e in zip(start_counts, end_counts, strict=True)]
    p50, p95 = percentiles(ages)
    return {
        "decode_fps_per_cam": round(statistics.mean(fps), 1),
        "cpu_pct_per_cam": round(cpu / n, 1),
        "frame_age_p50_ms": round(p50 * 1000, 1),
        "frame_age_p95_ms": round(p95 * 1000, 1),
    }


async def bench_record(
    server: RtspTestServer, n: int, seconds: float, tmp: Path, reencode: bool
) -> dict[str, Any]:
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    if reencode:  # the baseline: a recorder that transcodes
        procs = [subprocess.Popen(
            [ffmpeg, "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
             "-i", server.url(f"cam{i}"), "-c:v", "libx264", "-preset", "veryfast",
             "-f", "segment", "-segment_time", "10", str(tmp / f"re{i}-%03d.mp4")])
            for i in range(n)]  # fmt: skip
        await asyncio.sleep(3)
        ps = [psutil.Process(p.pid) for p in procs]
        c0, t0 = cpu_seconds(ps), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = (cpu_seconds(ps) - c0) / (time.monotonic() - t0) * 100
        for p in procs:
            p.terminate()
            p.wait(5)
        return {"cpu_pct_per_cam": round(cpu / n, 2)}
    index = SegmentIndex(tmp / f"seg-{n}.db")
    recorders = [
        SegmentRecorder(
            f"cam-{i}",
            CameraSource(url=server.url(f"cam{i}")),
            RecordingConfig(segment_s=10),
            tmp,
            index,
            ffmpeg,
        )
        for i in range(n)
    ]
    for r in recorders:
        await r.start()
    await asyncio.sleep(3)
    ps = [psutil.Process(r.pid) for r in recorders if r.pid]
    c0, t0 = cpu_seconds(ps), time.monotonic()
    await asyncio.sleep(seconds)
    cpu = (cpu_seconds(ps) - c0) / (time.monotonic() - t0) * 100
    restarts = sum(r.restarts for r in recorders)
    for r in recorders:
        await r.stop()
    index.close()
    if restarts:
        raise RuntimeError(f"{restarts} recorder restarts during the measurement")
    return {"cpu_pct_per_cam": round(cpu / n, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--quick", action="store_true", help="1 and 4 cameras of 720p only")
    args = parser.parse_args()
    counts = [1, 4] if args.quick else [1, 4, 8, 16]
    sizes = ["720p"] if args.quick else ["720p", "1080p"]
    tmp = Path(RESULTS / "tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        clip = synthetic_clip(size, *SIZES[size])
        for n in counts:
            with RtspTestServer({f"cam{i}": clip for i in range(n)}) as server:
                assert server.pid is not None
                srv = psutil.Process(server.pid)
                s0, t0 = cpu_seconds([srv]), time.monotonic()
                record = asyncio.run(bench_record(server, n, args.seconds, tmp, reencode=False))
                decode = bench_decode(server, n, args.seconds, latest_slot=True)
                server_cpu = (cpu_seconds([srv]) - s0) / (time.monotonic() - t0) * 100
                row: dict[str, Any] = {
                    "size": size,
                    "cameras": n,
                    **{f"decode_{k}": v for k, v in decode.items()},
                    "record_cpu_pct_per_cam": record["cpu_pct_per_cam"],
                    "rtsp_server_cpu_pct": round(server_cpu, 1),
                }
                if (size, n) == ("720p", 8 if not args.quick else 4):
                    naive = bench_decode(server, n, args.seconds, latest_slot=False)
                    re = asyncio.run(bench_record(server, 1, args.seconds, tmp, reencode=True))
                    row["baseline_queue_frame_age_p95_ms"] = naive["frame_age_p95_ms"]
                    row["baseline_reencode_record_cpu_pct_per_cam"] = re["cpu_pct_per_cam"]
            rows.append(row)
            print_row(row)
    shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": psutil.cpu_count(),
            "python": platform.python_version(),
            "opencv": cv2.__version__,
        },
        "camera_fps": FPS,
        "detect_fps": DETECT_FPS,
        "seconds": args.seconds,
        "rows": rows,
    }
    (RESULTS / "ingest.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {RESULTS / 'ingest.json'}")


HEADER = (
    "size",
    "cams",
    "decode fps/cam",
    "decode CPU%/cam",
    "age p50 ms",
    "age p95 ms",
    "record CPU%/cam",
    "server CPU%",
)


def print_row(row: dict[str, Any]) -> None:
    if row["cameras"] == 1 and row["size"] == "720p":
        print(" | ".join(HEADER))
    print(
        " | ".join(
            str(v)
            for v in (
                row["size"],
                row["cameras"],
                row["decode_decode_fps_per_cam"],
                row["decode_cpu_pct_per_cam"],
                row["decode_frame_age_p50_ms"],
                row["decode_frame_age_p95_ms"],
                row["record_cpu_pct_per_cam"],
                row["rtsp_server_cpu_pct"],
            )
        )
    )
    if "baseline_queue_frame_age_p95_ms" in row:
        print(
            f"   baseline (queue every frame) age p95 ms: {row['baseline_queue_frame_age_p95_ms']}"
            f" | baseline (re-encoding recorder) CPU%/cam: "
            f"{row['baseline_reencode_record_cpu_pct_per_cam']}"
        )


if __name__ == "__main__":
    main()
