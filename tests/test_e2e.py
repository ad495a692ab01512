"""End to end with real parts: RTSP stream -> ingest -> YOLO -> crowd rule -> bus -> SQLite and
a real WebSocket client; and `pantau run` stops cleanly on SIGTERM leaving no process behind."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil
import pytest
import websockets

from pantau.config import load
from pantau.redis_server import free_port
from pantau.rtsp_server import RtspTestServer
from pantau.runtime import Runtime
from tests.conftest import (
    REPO,
    TEST_PASSWORD,
    bearer,
    staff_token,
    write_config,
)

pytestmark = pytest.mark.slow


def http_get(url: str, token: str | None = None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, headers=bearer(token) if token else {})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, resp.read(), resp.headers.get("content-type", "")


async def test_people_on_camera_reach_the_wall_as_an_incident(running: Runtime) -> None:
    base = f"127.0.0.1:{running.web_port}"
    token = await staff_token(running, "viewer")
    async with websockets.connect(f"ws://{base}/ws", additional_headers=bearer(token)) as ws:
        snapshot = json.loads(await ws.recv())
        assert snapshot["type"] == "snapshot"
        started = time.monotonic()
        incident = None
        while time.monotonic() - started < 60:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if msg["type"] == "incident.opened":
                incident = msg["event"]["incident"]
                break
        assert incident is not None, "no incident within 60 s"
    assert incident["kind"] == "crowd" and incident["camera_id"] == "plaza-cam"
    assert incident["peak_count"] >= 2 and incident["threshold"] == 2
    assert incident["kecamatan"] == "Kota" and incident["routed_opds"] == ["satpol-pp"]

    status, body, _ = await asyncio.to_thread(http_get, f"http://{base}/api/incidents", token)
    assert status == 200 and incident["id"] in {i["id"] for i in json.loads(body)}
    _, jpeg, ctype = await asyncio.to_thread(
        http_get, f"http://{base}/api/incidents/{incident['id']}/snapshot.jpg", token
    )
    assert ctype == "image/jpeg" and jpeg[:2] == b"\xff\xd8"
    _, frame, _ = await asyncio.to_thread(
        http_get, f"http://{base}/api/cameras/plaza-cam/frame.jpg", token
    )
    assert frame[:2] == b"\xff\xd8"
    _, health, _ = await asyncio.to_thread(http_get, f"http://{base}/api/health", token)
    assert json.loads(health)["cameras"] == {"plaza-cam": "online"}
    # whether motion crops are used on the camera, and how well they agreed with whole frames
    crops = json.loads(health)["analytics"]["plaza-cam"]["region_crops"]
    assert set(crops) == {"used", "frames", "found_pct", "kept_pct", "checks"}
    assert crops["checks"] >= 1 and 0 <= crops["found_pct"] <= 100
    stored = await running.store.incident(incident["id"])
    assert stored is not None and stored.kind == "crowd"


def http_login(base: str, username: str, password: str) -> str:
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(
        f"{base}/api/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return str(json.loads(resp.read())["token"])


def wait_http(
    url: str,
    predicate: Callable[[dict], bool],  # type: ignore[type-arg]
    timeout: float,
    token: str | None = None,
) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    last: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        try:
            last = json.loads(http_get(url, token)[1])
            if predicate(last):
                return last
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting on {url}: {last}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_cleanly_on_signal(tmp_path: Path, model_path: Path, sig: int) -> None:
    rtsp_port, web_port = free_port(), free_port()
    path = write_config(
        tmp_path,
        web_port=web_port,
        model=model_path,
        url=f"rtsp://127.0.0.1:{rtsp_port}/plaza",
        min_count=2,
    )
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"demo:\n  rtsp_port: {rtsp_port}\n  streams: [{{path: plaza, clip: builtin}}]\n")
    env = {**os.environ, "YOLO_OFFLINE": "1", "PANTAU_ADMIN_PASSWORD": TEST_PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pantau.cli", "run", str(path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{web_port}/healthz", lambda h: h["ok"], 90)
        token = http_login(f"http://127.0.0.1:{web_port}", "admin", TEST_PASSWORD)
        wait_http(
            f"http://127.0.0.1:{web_port}/api/health",
            lambda h: h["cameras"].get("plaza-cam") == "online",
            90,
            token,
        )
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("gst_rtsp_serve" in " ".join(c.cmdline()) for c in children)
        threads_before = psutil.Process(proc.pid).num_threads()
        assert threads_before > 3
        t0 = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(timeout=10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert rc == 0, stderr[-2000:]
    assert took < 5.0, f"took {took:.1f} s to stop"
    _, alive = psutil.wait_procs(children, timeout=2)
    assert alive == [], f"orphans left: {[p.cmdline() for p in alive]}"
    assert "pantau stopped" in stderr


async def test_closed_incident_gets_a_playable_clip(
    recording_runtime: Runtime, tmp_path: Path, ffprobe: str
) -> None:
    runtime = recording_runtime
    token = await staff_token(runtime, "viewer")
    url = f"ws://127.0.0.1:{runtime.web_port}/ws"
    async with websockets.connect(url, additional_headers=bearer(token)) as ws:
        clip = closed = None
        deadline = time.monotonic() + 120
        while clip is None and time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if msg["type"] == "incident.closed":
                closed = msg["event"]["incident"]
            elif msg["type"] == "clip.ready":
                clip = msg["event"]["clip"]
    assert closed is not None and clip is not None, "no clip within 120 s"
    assert clip["incident_id"] == closed["id"] and clip["camera_id"] == "lobby"
    url = f"http://127.0.0.1:{runtime.web_port}/api/incidents/{closed['id']}/clip.mp4"
    status, body, ctype = await asyncio.to_thread(http_get, url, token)
    assert status == 200 and ctype == "video/mp4"
    local = tmp_path / "got.mp4"
    local.write_bytes(body)
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "format=duration:stream=codec_name",
         "-of", "json", str(local)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    info = json.loads(out.stdout)
    assert [s["codec_name"] for s in info["streams"]] == ["h264"]
    started = datetime.fromisoformat(closed["started_at"])
    ended = datetime.fromisoformat(closed["ended_at"])
    expected = (ended - started).total_seconds() + 2 + 2
    assert abs(float(info["format"]["duration"]) - expected) <= 2.5  # ±1 segment + GOP


async def test_credentials_never_reach_logs_api_or_page(
    tmp_path: Path,
    model_path: Path,
    people_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "S3cret-Pw9"
    server = rtsp_server({"plaza": people_clip}, auth=("admin", secret))
    url = server.url("plaza", with_auth=False).replace("rtsp://", "rtsp://admin:${CAM_PASS}@")
    path = write_config(tmp_path, web_port=0, model=model_path, url=url, min_count=2)
    text = path.read_text().replace("    detect_fps: 2\n", "    detect_fps: 2\n    record: true\n")
    host_path = url.split("@", 1)[1]
    wrong = f"  - {{id: wrong-pw, name: Salah, url: 'rtsp://admin:Wr0ng-{secret}@{host_path}'}}\n"
    path.write_text(text.replace("opds:\n", wrong + "opds:\n", 1))
    runtime = Runtime(load(path, {"CAM_PASS": secret}), tmp_path)
    await runtime.start()
    try:
        base = f"http://127.0.0.1:{runtime.web_port}"
        token = await staff_token(runtime)
        await asyncio.to_thread(
            wait_http, f"{base}/api/health", lambda h: h["cameras"]["plaza-cam"] == "online", 30,
            token,
        )  # fmt: skip
        await asyncio.sleep(2)  # let the recorder and the wrong-password camera log
        seen = []
        for endpoint in (
            "/api/cameras",
            "/api/ui",
            "/api/health",
            "/openapi.json",
            "/wall/utama",
            "/api/incidents",
        ):
            seen.append((await asyncio.to_thread(http_get, base + endpoint, token))[1].decode())
        ws_url = f"ws://127.0.0.1:{runtime.web_port}/ws"
        async with websockets.connect(ws_url, additional_headers=bearer(token)) as ws:
            seen.append(await ws.recv())  # type: ignore[arg-type]
        cameras = json.loads(seen[0])
        assert cameras[0]["url_masked"].startswith("rtsp://admin:***@127.0.0.1:")
        assert cameras[1]["status"]["state"] == "offline"
        assert "401" in cameras[1]["status"]["error"]
        for body in seen:
            assert secret not in body
    finally:
        await runtime.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "admin:***@" in logged
    assert secret not in logged
