"""Issue 5 end to end on the real runtime: RTSP camera -> YOLO -> desk on a REDIS bus -> signed
webhook to the OPD; a citizen report over the intake API merges into the same incident, the
wall hears it over the WebSocket, and the OPD acknowledges over the API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import websockets

from events.api_keys import ApiKeys
from events.notify.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from pantau.config import load
from pantau.redis_server import RedisServer
from pantau.rtsp_server import RtspTestServer
from pantau.runtime import Runtime
from tests.conftest import bearer, staff_token
from tests.test_notify import Receiver, receiver  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

CONFIG = """\
server: {{host: 127.0.0.1, port: 0}}
storage: {{data_dir: {data_dir}}}
bus: {bus}
detector: {{model: {model}}}
notify:
  base_url: https://pantau.example.go.id
  group_wait_s: 0
cameras:
  - id: plaza-cam
    name: Plaza
    url: {url}
    kecamatan: Kota
    desa: Kauman
    detect_fps: 2
    zones:
      - {{id: plaza, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: crowd, zone: plaza, min_count: 2, for: 1, clear_after: 30}}
opds:
  - id: satpol-pp
    name: Satpol PP
    contacts: [{{name: Piket, phone: "110"}}]
    webhook: {{url: "http://127.0.0.1:{hook_port}/satpol", secret: s3cret}}
routing:
  - {{match: {{kinds: [crowd]}}, opds: [satpol-pp]}}
"""


async def test_camera_and_citizen_become_one_incident_delivered_and_acknowledged(
    tmp_path: Path,
    model_path: Path,
    people_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
    redis_server: RedisServer,
    receiver: Receiver,  # noqa: F811
) -> None:
    cam = rtsp_server({"plaza": people_clip})
    path = tmp_path / "cameras.yaml"
    path.write_text(CONFIG.format(
        data_dir=tmp_path / "var", bus=redis_server.url, model=model_path,
        url=cam.url("plaza"), hook_port=receiver.port,
    ))  # fmt: skip
    runtime = Runtime(load(path), tmp_path)
    await runtime.start()
    try:
        base = f"127.0.0.1:{runtime.web_port}"
        _, key = await ApiKeys(runtime.store).create("satpol-pp", "gateway lapor")
        token = await staff_token(runtime, "viewer")
        async with (
            websockets.connect(f"ws://{base}/ws", additional_headers=bearer(token)) as ws,
            httpx.AsyncClient(base_url=f"http://{base}", timeout=10, headers=bearer(token)) as http,
        ):
            assert json.loads(await ws.recv())["type"] == "snapshot"
            opened = None
            deadline = time.monotonic() + 60
            while opened is None and time.monotonic() < deadline:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if msg["type"] == "incident.opened":
                    opened = msg["event"]["incident"]
            assert opened is not None and opened["routed_opds"] == ["satpol-pp"]

            title = "Massa berkumpul di alun-alun"
            report = {"id": "lapor-77", "source": "citizen", "kind": "crowd", "title": title,
                      "camera_id": "plaza-cam"}  # fmt: skip
            r = await http.post("/api/alerts", json=report, headers={"X-API-Key": key})
            assert r.status_code == 201 and r.json()["incident_id"] == opened["id"]
            merged = None
            while merged is None:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                inc = msg["event"].get("incident") if msg["type"].startswith("incident.") else None
                if inc and inc["id"] == opened["id"] and len(inc["sources"]) == 2:
                    merged = inc
            assert [s["kind"] for s in merged["sources"]] == ["camera", "citizen"]

            async with asyncio.timeout(20):
                while not receiver.requests:
                    await asyncio.sleep(0.1)
            _, headers, body = receiver.requests[0]
            stamp = headers[TIMESTAMP_HEADER.lower()]
            assert headers[SIGNATURE_HEADER.lower()] == sign("s3cret", stamp, body)
            assert json.loads(body)["incidents"][0]["id"] == opened["id"]

            ack = await http.post(
                f"/api/incidents/{opened['id']}/actions",
                json={"kind": "acknowledge", "note": "Regu meluncur"},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
            async with asyncio.timeout(10):
                while True:
                    deliveries = (
                        await http.get(f"/api/incidents/{opened['id']}/deliveries")
                    ).json()
                    if any(d["status"] == "sent" for d in deliveries):
                        break
                    await asyncio.sleep(0.2)
            board = (await http.get("/api/scoreboard")).json()
            row = next(s for s in board if s["opd_id"] == "satpol-pp")
            assert row["routed"] == 1 and row["acknowledged"] == 1 and row["ack_p50_s"] >= 0
    finally:
        await runtime.stop()
