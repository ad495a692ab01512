"""Quiet cameras decode keyframes only, on a whole running site with real processes:
`pantau run` (one process) and `pantau server` + `pantau worker` on a real redis-server.

The cameras stream real CCTV over RTSP, built from the PETS-2009 clip: its empty plaza (the
median of the clip's frames: the walkers gone) held still, then the clip itself, people walking
in. H.264 at 10 fps with a 2 s GOP, as a cheap camera's stream.

- a still camera goes to keyframes (health and the workers panel say so, ~0.5 decoded
  frames/s); an MJPEG viewer holds it at full rate for as long as it watches; after the viewer
  leaves it goes quiet again;
- a quiet camera whose people walk in gets its crowd incident (real model), decoding every
  frame while the incident is open.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from pantau.demo_media import ffmpeg_binary
from pantau.local_fleet import LocalFleet
from pantau.rtsp_server import RtspTestServer
from tests.conftest import fleet_login, poll_fleet, shaped_site

pytestmark = pytest.mark.slow
PASSWORD = "quiet-camera-test-1"
FPS = 10

CONFIG = """\
server: {{host: 127.0.0.1, port: {web_port}}}
storage: {{data_dir: {data_dir}}}
bus: {bus}
detector: {{model: {model}}}
fleet: {{lease_ttl_s: 6, claim_interval_s: 1, heartbeat_s: 1}}
cameras:
  - {{id: diam, name: Diam, url: "{still}", kecamatan: Kota, detect_fps: 2, idle_after_s: 2}}
  - id: plaza
    name: Plaza
    url: "{walk}"
    kecamatan: Kota
    detect_fps: 5
    idle_after_s: 2
    zones:
      - {{id: all, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: crowd, zone: all, min_count: 3, for: 2, clear_after: 2, cooldown: 0}}
"""


def _encode(frames: list[np.ndarray], out: Path) -> Path:
    height, width = frames[0].shape[:2]
    proc = subprocess.Popen([
        ffmpeg_binary(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
        "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-", "-an", "-c:v", "libx264",
        "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(2 * FPS), "-keyint_min",
        str(2 * FPS), "-sc_threshold", "0", "-bf", "0", str(out),
    ], stdin=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None
    for frame in frames:
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    assert proc.wait(120) == 0
    return out


@pytest.fixture(scope="module")
def clips(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the empty plaza held still, 6 s; the empty plaza 10 s then 20 s of people)."""
    cap = cv2.VideoCapture(str(assets / "video" / "pets2009_vtest_480x360_tiodh.mp4"))
    frames = []
    while len(frames) < 400:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    empty = np.median(np.stack(frames[::8]), axis=0).astype(np.uint8)
    folder = tmp_path_factory.mktemp("quiet")
    still = _encode([empty] * (6 * FPS), folder / "still.mp4")
    walk = _encode([empty] * (10 * FPS) + frames[: 20 * FPS], folder / "walk.mp4")
    return still, walk


@pytest.fixture(params=["one-process", "scaled-out"])
def site(
    request: pytest.FixtureRequest, tmp_path: Path, model_path: Path, clips: tuple[Path, Path],
    rtsp_server: Callable[..., RtspTestServer],
) -> Iterator[tuple[str, LocalFleet]]:  # fmt: skip
    shape = str(request.param)
    rtsp = rtsp_server({"still": clips[0], "walk": clips[1]})

    def config(bus: str, web_port: int) -> str:
        return CONFIG.format(web_port=web_port, data_dir=tmp_path / "var", bus=bus,
                             model=model_path, still=rtsp.url("still"),
                             walk=rtsp.url("walk"))  # fmt: skip

    with shaped_site(shape, tmp_path, config, PASSWORD) as fleet:
        yield shape, fleet


async def decoding(http: httpx.AsyncClient, shape: str) -> dict[str, dict[str, Any]]:
    """camera -> {mode, decoded_fps}: the box's health, or the workers panel scaled out."""
    if shape == "one-process":
        return dict((await http.get("/api/health")).json()["decoding"])
    workers = (await http.get("/api/workers")).json()
    return {c["camera_id"]: {"mode": c["decode_mode"], "decoded_fps": c["decoded_fps"]}
            for w in workers for c in w["cameras"]}  # fmt: skip


async def test_quiet_cameras_decode_keyframes_until_watched_or_busy(
    site: tuple[str, LocalFleet],
) -> None:
    shape, fleet = site

    async def poll(what: str, check: Callable[[], Any], timeout: float) -> Any:
        return await poll_fleet(fleet, what, check, timeout)

    async with httpx.AsyncClient(base_url=fleet.base_url, timeout=20) as http:
        await fleet_login(http, fleet, PASSWORD)

        async def mode(camera: str, want: str) -> dict[str, Any] | None:
            got = (await decoding(http, shape)).get(camera)
            return got if got and got["mode"] == want else None

        quiet = await poll("the still camera goes quiet", lambda: mode("diam", "keyframes"), 60)
        await asyncio.sleep(6)  # a few GOPs at keyframes only
        quiet = await poll("still quiet", lambda: mode("diam", "keyframes"), 5)
        assert 0.2 <= quiet["decoded_fps"] <= 0.8, quiet  # a keyframe each 2 s, not 10 fps
        if shape == "one-process":
            metrics = (await http.get("/metrics")).text
            assert 'pantau_camera_keyframes_only{camera="diam"} 1.0' in metrics

        # An MJPEG viewer: every frame while it watches.
        seen: list[str] = []
        async with http.stream("GET", "/api/cameras/diam/mjpeg") as stream:
            assert stream.status_code == 200
            reader = stream.aiter_raw()
            started = time.monotonic()
            while time.monotonic() - started < 7:
                await asyncio.wait_for(reader.__anext__(), 5)
                if time.monotonic() - started > 1.5:
                    seen.append((await decoding(http, shape))["diam"]["mode"])
        assert seen and set(seen) == {"full"}, seen
        await poll("quiet again after the viewer left", lambda: mode("diam", "keyframes"), 20)

        # The plaza: quiet while empty, then people walk in and the crowd incident opens.
        await poll("the empty plaza goes quiet", lambda: mode("plaza", "keyframes"), 60)
        quiet_at = time.monotonic()

        async def crowd() -> dict[str, Any] | None:
            r = await http.get("/api/incidents", params={"camera": "plaza", "kind": "crowd"})
            # Quiet means no observation was open: an active one now opened since (the desk
            # may merge it into the plaza's earlier incident).
            fresh = [i for i in r.json() if i["active"] and any(s["active"] for s in i["sources"])]
            return fresh[0] if fresh else None

        opened = await poll("a crowd incident on the plaza after it went quiet", crowd, 60)
        assert time.monotonic() - quiet_at < 45  # within that loop
        assert opened["peak_count"] >= 3
        assert (await decoding(http, shape))["plaza"]["mode"] == "full"  # busy: every frame
