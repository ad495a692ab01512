"""Live video benchmark: CPU per WebRTC viewer, passthrough (Pantau) vs re-encode (baseline).

    .venv/bin/python -m bench.live_bench [--quick]

One 720p H.264 camera (15 fps, keyframe every 2 s) is served by the loopback RTSP server. This
process is the wall server: it runs what `pantau run` runs for live video and answers WebRTC
offers over HTTP on loopback. Viewers are real aiortc peers in a separate process (their
decoding is not counted), which receive and decode the video for a fixed window while this
process's CPU time is measured.

- passthrough: Pantau's ingest capture (decoding for analytics, as in production) + LiveVideo,
  which relays the camera's own H.264 packets (wallboard/webrtc.py).
- re-encode: what an aiortc user writes by default: MediaPlayer(rtsp) decoding the camera,
  MediaRelay fanning the frames out, aiortc encoding H.264 once per viewer.

Reported: server CPU % of one core at 0 (capture only), 1, 2 and 4 viewers, the marginal CPU
per viewer (slope), and frames each viewer decoded. Writes bench/results/live.json.
Target: a passthrough viewer costs < 3 % of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from pydantic import BaseModel

from bench.table import print_table
from pantau.redis_server import free_port

RESULTS = Path(__file__).parent / "results"
RAMP_S = 5.0


class Offer(BaseModel):  # module level: FastAPI resolves the route's string annotations here
    sdp: str


async def viewers_client(base: str, mode: str, count: int, seconds: float) -> None:
    """Subprocess side: `count` aiortc viewers; prints frames decoded per viewer as JSON."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pcs: list[RTCPeerConnection] = []
    frames = [0] * count

    async def consume(index: int, track: Any) -> None:
        while True:
            await track.recv()
            frames[index] += 1

    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for index in range(count):
            pc = RTCPeerConnection()
            pcs.append(pc)
            pc.addTransceiver("video", direction="recvonly")
            pc.on("track", lambda t, i=index: tasks.append(asyncio.create_task(consume(i, t))))
            await pc.setLocalDescription(await pc.createOffer())
            r = await http.post(f"/offer/{mode}", json={"sdp": pc.localDescription.sdp})
            r.raise_for_status()
            await pc.setRemoteDescription(RTCSessionDescription(r.json()["sdp"], "answer"))
    await asyncio.sleep(seconds)
    print(json.dumps({"frames": frames}), flush=True)
    for task in tasks:
        task.cancel()
    for pc in pcs:
        await pc.close()


class Server:
    """The wall side: capture + LiveVideo (passthrough), or MediaPlayer + relay (re-encode)."""

    def __init__(self, rtsp_url: str) -> None:
        from aiortc.contrib.media import MediaPlayer, MediaRelay

        from ingest.config import CameraSource
        from ingest.source import CaptureSource, PacketListener
        from wallboard.webrtc import LiveVideo

        self.url = rtsp_url
        self.capture = CaptureSource("cam", CameraSource(url=rtsp_url))
        capture = self.capture

        class Packets:
            def codec(self, camera_id: str) -> str | None:
                return capture.codec

            def add_packet_listener(self, camera_id: str, listener: PacketListener) -> None:
                capture.add_packet_listener(listener)

            def remove_packet_listener(self, camera_id: str, listener: PacketListener) -> None:
                capture.remove_packet_listener(listener)

        self.live = LiveVideo(Packets())
        self._player_cls, self._relay = MediaPlayer, MediaRelay()
        self.player: Any = None
        self.pcs: list[Any] = []

    async def reencode_answer(self, offer_sdp: str) -> str:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from wallboard.webrtc import _h264_passthrough_codecs

        if self.player is None:
            self.player = self._player_cls(
                self.url, options={"rtsp_transport": "tcp", "fflags": "nobuffer"}
            )
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        track = self._relay.subscribe(self.player.video)
        # Same codec as the passthrough, so the comparison is encode vs no encode.
        pc.addTransceiver(track, direction="sendonly").setCodecPreferences(
            _h264_passthrough_codecs()
        )
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def reset(self) -> None:
        await self.live.close()
        for pc in self.pcs:
            await pc.close()
        self.pcs = []
        if self.player is not None and self.player.video is not None:
            self.player.video.stop()
        self.player = None


async def measure(
    server: Server, base: str, mode: str, count: int, window: float
) -> dict[str, Any]:
    me = psutil.Process()
    proc = None
    if count:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.live_bench", "--viewers", base, mode, str(count),
            str(RAMP_S + window), stdout=subprocess.PIPE,
        )  # fmt: skip
    await asyncio.sleep(RAMP_S)
    before, t0 = me.cpu_times(), time.perf_counter()
    await asyncio.sleep(window)
    after, elapsed = me.cpu_times(), time.perf_counter() - t0
    cpu = (after.user + after.system - before.user - before.system) / elapsed * 100
    frames: list[int] = []
    if proc is not None:
        out, _ = await proc.communicate()
        frames = json.loads(out.decode().strip().splitlines()[-1])["frames"]
    await server.reset()
    await asyncio.sleep(1.0)
    return {"mode": mode, "viewers": count, "server_cpu_pct": round(cpu, 1), "frames": frames}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    import uvicorn
    from fastapi import FastAPI

    from bench.ingest_bench import FPS, cpu_model, synthetic_clip
    from pantau.rtsp_server import RtspTestServer

    clip = synthetic_clip("720p", 1280, 720)
    rtsp = RtspTestServer({"cam": clip}).start()
    server = Server(rtsp.url("cam"))
    server.capture.start()

    app = FastAPI()

    @app.post("/offer/{mode}")
    async def offer(mode: str, body: Offer) -> dict[str, str]:
        if mode == "passthrough":
            return {"sdp": await server.live.answer("cam", body.sdp, "bench")}
        return {"sdp": await server.reencode_answer(body.sdp)}

    port = free_port()
    web = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    web_task = asyncio.create_task(web.serve())
    while not web.started:
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    window = 8.0 if args.quick else 15.0
    rows: list[dict[str, Any]] = []
    try:
        while server.capture.codec is None:
            await asyncio.sleep(0.1)
        rows.append(await measure(server, base, "passthrough", 0, window))
        for mode, counts in (("passthrough", (1, 2, 4)), ("re-encode", (1, 2))):
            for count in counts:
                rows.append(await measure(server, base, mode, count, window))
    finally:
        web.should_exit = True
        await web_task
        await server.reset()
        await asyncio.to_thread(server.capture.stop, 5)
        rtsp.stop()

    idle = rows[0]["server_cpu_pct"]
    for row in rows:
        n = row["viewers"]
        row["cpu_per_viewer_pct"] = round((row["server_cpu_pct"] - idle) / n, 2) if n else None

    def rows_of(mode: str, viewers: int) -> dict[str, Any]:
        return next(r for r in rows if r["mode"] == mode and r["viewers"] == viewers)

    slope = {
        mode: round(rows_of(mode, 2)["server_cpu_pct"] - rows_of(mode, 1)["server_cpu_pct"], 2)
        for mode in ("passthrough", "re-encode")
    }
    report = {
        "machine": {
            "cpu": cpu_model(),
            "cores": psutil.cpu_count(),
            "python": platform.python_version(),
        },
        "camera": f"720p H.264 {FPS} fps, keyframe every 2 s",
        "rows": rows,
        "marginal_cpu_per_viewer_pct": slope,
        "reencode_over_passthrough": round(slope["re-encode"] / max(slope["passthrough"], 0.01), 1),
        # The cost of one more viewer: the slope, and the average over 4 viewers. The first
        # viewer alone also carries the tap's fixed cost, which the table shows.
        "target_passthrough_viewer_below_3pct": slope["passthrough"] < 3.0
        and rows_of("passthrough", 4)["cpu_per_viewer_pct"] < 3.0,
    }
    cols = [("mode", 13), ("viewers", 8), ("server CPU %", 13), ("CPU/viewer %", 13),
            ("frames per viewer", 20)]  # fmt: skip
    print_table(cols, [
        [row["mode"], row["viewers"], row["server_cpu_pct"],
         row["cpu_per_viewer_pct"] if row["viewers"] else "-",
         ",".join(map(str, row["frames"])) or "-"]
        for row in rows
    ])  # fmt: skip
    print(f"marginal CPU per viewer (2 viewers - 1 viewer): {slope}; "
          f"re-encode / passthrough = {report['reencode_over_passthrough']}x")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "live.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--viewers", nargs=4, metavar=("BASE", "MODE", "N", "SECONDS"),
                        help=argparse.SUPPRESS)  # fmt: skip
    a = parser.parse_args()
    if a.viewers:
        asyncio.run(viewers_client(a.viewers[0], a.viewers[1], int(a.viewers[2]),
                                   float(a.viewers[3])))  # fmt: skip
    else:
        asyncio.run(main(a))
