"""Soak benchmark: `pantau demo` for hours with 20 wall screens and 4 live viewers.

    .venv/bin/python -m bench.soak_bench [--hours 1] [--minutes M] [--every 60]

The demo (its loopback RTSP cameras, analytics, recording, the wall) runs as its own process, as
a site runs it. Another process holds 20 WebSocket wall clients (each reads every message and
reconnects with ?since= when cut off) and 4 WebRTC viewers (real aiortc peers decoding the
cameras' H.264). Every `--every` seconds this samples the demo process: RSS (and its children's),
open file descriptors, threads, event-loop lag p99 over the last minute (the runtime's own loop
monitor, /api/health), the SQLite database and the recordings on disk.

Targets, after the first 10 minutes (a third of a run shorter than 30 minutes): RSS grows less
than 5 MB per hour (least-squares slope), file descriptors and threads flat, loop lag p99 under
50 ms. Prints a table, writes bench/results/soak.json and docs/soak.png (matplotlib).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.ingest_bench import cpu_model
from bench.memory_map import KINDS, memory_map
from bench.table import print_table
from pantau.redis_server import free_port

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
PLOT = REPO / "docs" / "soak.png"
PASSWORD = "soak-bench-1"
TARGETS = {"rss_mb_per_h": 5.0, "loop_lag_p99_ms": 50.0}


# ---- the clients' process ------------------------------------------------------------------
async def clients(base: str, token: str, screens: int, viewers: int, status: Path) -> None:
    """Wall screens and live viewers until killed; their counts go to `status` (JSON)."""
    import websockets
    from aiortc import RTCPeerConnection, RTCSessionDescription

    counts: dict[str, Any] = {"messages": 0, "ws_reconnects": 0, "frames": [0] * viewers,
                              "viewer_restarts": 0}  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    ws_base = base.replace("http://", "ws://")

    async def screen() -> None:
        since: int | None = None
        while True:
            url = f"{ws_base}/ws" + (f"?since={since}" if since is not None else "")
            try:
                async with websockets.connect(url, additional_headers=auth, max_size=None) as ws:
                    async for raw in ws:
                        counts["messages"] += 1
                        seq = json.loads(raw).get("seq")
                        if isinstance(seq, int):
                            since = seq
            except (OSError, websockets.WebSocketException):
                pass
            counts["ws_reconnects"] += 1
            await asyncio.sleep(1)

    background: set[asyncio.Task[None]] = set()

    async def view_once(index: int, camera: str, http: httpx.AsyncClient) -> None:
        """One peer connection, until its track or connection ends."""
        pc = RTCPeerConnection()
        done = asyncio.Event()

        async def consume(track: Any) -> None:
            try:
                while True:
                    await track.recv()
                    counts["frames"][index] += 1
            except Exception:  # the track ended: reconnect
                done.set()

        def on_track(track: Any) -> None:
            task = asyncio.create_task(consume(track))
            background.add(task)
            task.add_done_callback(background.discard)

        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                done.set()

        pc.on("track", on_track)
        pc.on("connectionstatechange", on_state)
        try:
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
            r = await http.post(f"/api/cameras/{camera}/webrtc", json=offer)
            r.raise_for_status()
            await pc.setRemoteDescription(RTCSessionDescription(r.json()["sdp"], "answer"))
            await done.wait()
        except (httpx.HTTPError, OSError, ValueError):
            await asyncio.sleep(5)
        finally:
            await pc.close()

    async def viewer(index: int, camera: str, http: httpx.AsyncClient) -> None:
        while True:
            await view_once(index, camera, http)
            counts["viewer_restarts"] += 1

    async def report() -> None:
        while True:
            status.write_text(json.dumps(counts))
            await asyncio.sleep(5)

    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as http:
        cameras = [c["id"] for c in (await http.get("/api/cameras")).json()]
        tasks = [asyncio.create_task(screen()) for _ in range(screens)]
        tasks += [asyncio.create_task(viewer(i, cameras[i % len(cameras)], http))
                  for i in range(viewers)]  # fmt: skip
        tasks.append(asyncio.create_task(report()))
        await asyncio.gather(*tasks)


# ---- sampling ------------------------------------------------------------------------------
def size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                pass
    return total / 1e6


def sample(proc: psutil.Process, health: dict[str, Any], data: Path, t0: float) -> dict[str, Any]:
    with proc.oneshot():
        rss = proc.memory_info().rss
        fds = proc.num_fds()
        threads = proc.num_threads()
    children = proc.children(recursive=True)
    child_rss = 0
    for child in children:
        try:
            child_rss += child.memory_info().rss
        except psutil.Error:
            pass
    lag = health.get("loop_lag") or {}
    heap = health.get("memory") or {}
    try:
        by_kind = memory_map(proc.pid, top_files=5)
    except OSError:
        by_kind = {}
    db = sum(size_mb(data / n) for n in ("pantau.db", "pantau.db-wal", "pantau.db-shm"))
    return {
        "t_min": round((time.monotonic() - t0) / 60, 2),
        "rss_mb": rss / 1e6, "children_rss_mb": child_rss / 1e6, "children": len(children),
        "fds": fds, "threads": threads,
        "loop_lag_p99_ms": float(lag.get("p99_ms", 0.0)),
        "loop_lag_max_ms": float(lag.get("max_ms", 0.0)),
        "malloc_in_use_mb": heap.get("malloc_in_use_mb"),
        "malloc_free_kept_mb": heap.get("malloc_free_kept_mb"),
        "malloc_mmap_mb": heap.get("malloc_mmap_mb"),
        "sqlite_mb": heap.get("sqlite_mb"), "python_blocks": heap.get("python_blocks"),
        **by_kind,
        "db_mb": db, "recordings_mb": size_mb(data / "recordings"),
        "wall_clients": int(health.get("wall_clients", 0) or 0),
    }  # fmt: skip


def slope_per_hour(xs_min: list[float], ys: list[float]) -> float:
    if len(xs_min) < 2:
        return 0.0
    mx, my = sum(xs_min) / len(xs_min), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs_min)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs_min, ys, strict=True))
    return cov / var * 60 if var else 0.0


def verdict(samples: list[dict[str, Any]], total_min: float) -> dict[str, Any]:
    settle = 10.0 if total_min >= 30 else total_min / 3
    steady = [s for s in samples if s["t_min"] >= settle] or samples
    xs = [s["t_min"] for s in steady]
    out = {
        "settle_min": settle,
        "rss_mb_per_h": slope_per_hour(xs, [s["rss_mb"] for s in steady]),
        "children_rss_mb_per_h": slope_per_hour(xs, [s["children_rss_mb"] for s in steady]),
        "rss_mb_per_h_by_kind": {
            k: slope_per_hour(xs, [float(s.get(f"{k}_mb") or 0.0) for s in steady])
            for k in (*KINDS, "malloc_in_use", "malloc_free_kept", "malloc_mmap", "sqlite")
        },
        "python_blocks_per_h": slope_per_hour(
            xs, [float(s.get("python_blocks") or 0) for s in steady]
        ),
        "fds_range": [min(s["fds"] for s in steady), max(s["fds"] for s in steady)],
        "threads_range": [min(s["threads"] for s in steady), max(s["threads"] for s in steady)],
        "loop_lag_p99_ms_max": max(s["loop_lag_p99_ms"] for s in steady),
    }

    # "Flat": not growing. Pool threads and a reconnecting viewer's sockets come and go for a
    # moment, so the level is each 10-minute window's median: those may differ by 2 at most,
    # and the least-squares trend stays under 2 an hour.
    def level_spread(key: str) -> float:
        windows: dict[int, list[float]] = {}
        for s in steady:
            windows.setdefault(int(s["t_min"] // 10), []).append(s[key])
        medians = [sorted(v)[len(v) // 2] for v in windows.values()]
        return max(medians) - min(medians)

    for key in ("fds", "threads"):
        out[f"{key}_level_spread"] = level_spread(key)
        out[f"{key}_flat"] = out[f"{key}_level_spread"] <= 2 and slope_per_hour(
            xs, [s[key] for s in steady]) < 2  # fmt: skip
    out["rss_ok"] = out["rss_mb_per_h"] < TARGETS["rss_mb_per_h"]
    out["health_missed"] = max(int(s.get("health_missed", 0)) for s in samples)
    out["lag_ok"] = (
        out["loop_lag_p99_ms_max"] < TARGETS["loop_lag_p99_ms"] and out["health_missed"] == 0
    )
    return out


def plot(samples: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_min"] for s in samples]
    fig, axes = plt.subplots(3, 2, figsize=(11, 10), sharex=True)
    series = [
        (axes[0][0], "memory, MB",
         [("RSS, demo process", "rss_mb"), ("RSS, its children", "children_rss_mb")]),
        (axes[0][1], "open files / threads", [("file descriptors", "fds"), ("threads", "threads")]),
        (axes[1][0], "event-loop lag p99, ms (last minute)", [("p99", "loop_lag_p99_ms")]),
        (axes[1][1], "on disk, MB", [("SQLite", "db_mb"), ("recordings", "recordings_mb")]),
        (axes[2][0], "demo's RSS by mapping, MB",
         [(k.replace("_", " "), f"{k}_mb") for k in KINDS]),
        (axes[2][1], "malloc, MB", [("in use", "malloc_in_use_mb"),
         ("freed, kept", "malloc_free_kept_mb"), ("mmapped chunks", "malloc_mmap_mb")]),
    ]  # fmt: skip
    for ax, label, lines in series:
        for name, key in lines:
            points = [(x, s.get(key)) for x, s in zip(t, samples, strict=True)]
            points = [(x, y) for x, y in points if y is not None]
            if points:
                ax.plot([x for x, _ in points], [y for _, y in points], label=name)
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[1][0].axhline(TARGETS["loop_lag_p99_ms"], color="red", linestyle="--", linewidth=0.8)
    for ax in axes[2]:
        ax.set_xlabel("minutes")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    total_s = args.minutes * 60 if args.minutes else args.hours * 3600
    folder = Path(tempfile.mkdtemp(prefix="pantau-soak-"))
    config = folder / "cameras.yaml"
    shutil.copy(REPO / "cameras.yaml", config)
    port = free_port()
    env = {**os.environ, "PANTAU_ADMIN_PASSWORD": PASSWORD, "YOLO_OFFLINE": "1"}
    log = open(folder / "demo.log", "wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "pantau.cli", "demo", str(config), "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    status = folder / "clients.json"
    client_proc: subprocess.Popen[bytes] | None = None
    samples: list[dict[str, Any]] = []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            token = None
            for _ in range(240):
                try:
                    admin = {"username": "admin", "password": PASSWORD}
                    r = await http.post("/api/login", json=admin)
                    if r.status_code == 200:
                        token = r.json()["token"]
                        break
                except httpx.HTTPError:
                    pass
                if demo.poll() is not None:
                    raise RuntimeError(f"the demo exited: {(folder / 'demo.log').read_text()}")
                await asyncio.sleep(0.5)
            if token is None:
                raise RuntimeError("the demo did not come up in 2 minutes")
            http.headers["Authorization"] = f"Bearer {token}"
            client_proc = subprocess.Popen(
                [sys.executable, "-m", "bench.soak_bench", "--clients", base, token,
                 str(args.screens), str(args.viewers), str(status)],
                cwd=REPO, env=env,
            )  # fmt: skip
            proc = psutil.Process(demo.pid)
            t0 = time.monotonic()
            missed = 0
            data = folder / "var"
            while time.monotonic() - t0 < total_s:
                await asyncio.sleep(min(args.every, max(1.0, total_s - (time.monotonic() - t0))))
                try:
                    answer = await http.get("/api/health")
                    health = answer.json() if answer.status_code == 200 else {}
                    if not health:
                        missed += 1
                        print(f"  health check: {answer.status_code} {answer.text[:300]!r}",
                              flush=True)  # fmt: skip
                except (httpx.HTTPError, ValueError) as exc:  # counted: a finding, not a crash
                    health = {}
                    missed += 1
                    print(f"  health check failed: {exc!r}", flush=True)
                row = sample(proc, health, data, t0)
                row["health_missed"] = missed
                if status.is_file():
                    got = json.loads(status.read_text() or "{}")
                    row["ws_messages"] = got.get("messages", 0)
                    row["viewer_frames"] = sum(got.get("frames", []))
                    row["ws_reconnects"] = got.get("ws_reconnects", 0)
                samples.append(row)
                print(f"  {row['t_min']:6.1f} min  rss {row['rss_mb']:7.1f} MB  fds "
                      f"{row['fds']:4d}  threads {row['threads']:3d}  lag p99 "
                      f"{row['loop_lag_p99_ms']:6.1f} ms  screens {row['wall_clients']:2d}  "
                      f"frames {row.get('viewer_frames', 0)}", flush=True)  # fmt: skip
    finally:
        if client_proc is not None:
            client_proc.terminate()
            client_proc.wait(20)
        demo.terminate()
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
        log.close()
        if sys.exc_info()[0] is not None:  # a failed soak keeps what the demo said
            tail = (folder / "demo.log").read_text(errors="replace")[-4000:]
            print(f"the demo's log, last lines:\n{tail}", file=sys.stderr, flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d"), "minutes": total_s / 60,
        "screens": args.screens, "viewers": args.viewers, "samples": samples,
        "verdict": verdict(samples, total_s / 60), "targets": TARGETS,
    }  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--clients":
        base, token, screens, viewers, status = sys.argv[2:7]
        asyncio.run(clients(base, token, int(screens), int(viewers), Path(status)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--minutes", type=float, default=None, help="instead of --hours")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--viewers", type=int, default=4)
    args = parser.parse_args()
    out = asyncio.run(soak(args))
    v = out["verdict"]
    print(f"\n{out['machine']['cpu']}, {out['machine']['cores']} cores, "
          f"{out['minutes']:.0f} min, after the first {v['settle_min']:.0f} min:")  # fmt: skip
    print_table([("figure", 34), ("measured", 12), ("target", 10), ("ok", 8)], [
        ("RSS growth, MB/h", f"{v['rss_mb_per_h']:.2f}", "< 5", v["rss_ok"]),
        ("children RSS growth, MB/h", f"{v['children_rss_mb_per_h']:.2f}", "", ""),
        *[(f"  of it: {k.replace('_', ' ')}, MB/h", f"{g:.2f}", "", "")
          for k, g in v["rss_mb_per_h_by_kind"].items()],
        ("file descriptors (min-max)", "{}-{}".format(*v["fds_range"]), "", ""),
        ("  10-min levels spread, fds", f"{v['fds_level_spread']:g}", "<= 2", v["fds_flat"]),
        ("threads (min-max)", "{}-{}".format(*v["threads_range"]), "", ""),
        ("  10-min levels spread, threads", f"{v['threads_level_spread']:g}", "<= 2",
         v["threads_flat"]),
        ("loop lag p99, worst minute, ms", f"{v['loop_lag_p99_ms_max']:.1f}", "< 50", v["lag_ok"]),
        ("health checks unanswered in 10 s", str(v["health_missed"]), "0", v["health_missed"] == 0),
    ])  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    name = "soak.json" if out["minutes"] >= 60 else "soak_short.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2))
    if out["samples"]:
        png = PLOT if out["minutes"] >= 60 else RESULTS / "soak_short.png"
        plot(out["samples"], png, f"pantau demo, {args.screens} wall screens + {args.viewers} "
             f"WebRTC viewers, {out['minutes']:.0f} min ({out['machine']['cpu']})")  # fmt: skip
        print(f"wrote {RESULTS / name} and {png}")


if __name__ == "__main__":
    main()
