"""A camera zone's own state model on a running site, in both shapes, with real processes:
`pantau run` (one process) and `pantau server` + `pantau worker` boxes on a real redis-server.
The camera streams the real indoor flood CCTV clip over RTSP (dry opening seconds, flooded
from ~12 s, looped) and is recorded.

- labels from the camera now and from its recordings at a chosen time, through the server
  (scaled out, the picture comes from the worker box that has it);
- the `state` rule waits without a model; a model trained on the clip and enabled on the
  server opens a flood incident from the running camera (scaled out: the worker took it from
  Redis within its claim, no restart);
- disabling it reaches the box; a worker that takes the camera over later gets the model
  before the camera starts there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from analytics.state_model import enabled, train
from pantau.local_fleet import LocalFleet, holders
from pantau.rtsp_server import RtspTestServer
from tests.conftest import fleet_login, frames_every, poll_fleet, shaped_site
from tests.test_state_model import FLOOR, labelled

pytestmark = pytest.mark.slow
PASSWORD = "state-site-test-1"

CONFIG = """\
server: {{host: 127.0.0.1, port: {web_port}}}
storage: {{data_dir: {data_dir}}}
bus: {bus}
detector: {{model: {model}}}
recording: {{segment_s: 2, pre_roll_s: 1, post_roll_s: 1}}
fleet: {{lease_ttl_s: 6, claim_interval_s: 1, heartbeat_s: 1}}
cameras:
  - id: gudang
    name: Gudang
    url: {url}
    kecamatan: Kota
    detect_fps: 2
    record: true
    zones:
      - {{id: lantai, name: Lantai, points: {points}}}
    rules:
      - {{type: state, zone: lantai, state: banjir, min_probability: 0.8, for: 2,
          clear_after: 2, cooldown: 0, check_every_s: 0.5}}
"""


@pytest.fixture
def clip_frames(assets: Path) -> list[tuple[float, Any]]:
    return frames_every(assets / "video" / "flood_indoor_cctv_MiyanoShiho21.mp4", 0.5)


@pytest.fixture(params=["one-process", "scaled-out"])
def site(
    request: pytest.FixtureRequest, tmp_path: Path, model_path: Path, assets: Path,
    rtsp_server: Callable[..., RtspTestServer],
) -> Iterator[tuple[str, LocalFleet]]:  # fmt: skip
    shape = str(request.param)
    rtsp = rtsp_server({"gudang": assets / "video" / "flood_indoor_cctv_MiyanoShiho21.mp4"})

    def config(bus: str, web_port: int) -> str:
        return CONFIG.format(web_port=web_port, data_dir=tmp_path / "var", bus=bus,
                             model=model_path, url=rtsp.url("gudang"),
                             points=[list(p) for p in FLOOR.points])  # fmt: skip

    with shaped_site(shape, tmp_path, config, PASSWORD) as fleet:
        yield shape, fleet


async def test_a_model_enabled_on_the_server_drives_the_running_camera(
    site: tuple[str, LocalFleet], clip_frames: list[tuple[float, Any]], tmp_path: Path
) -> None:
    shape, fleet = site
    var = tmp_path / "var"
    zone = "/api/cameras/gudang/zones/lantai"

    async def poll(what: str, check: Callable[[], Any], timeout: float) -> Any:
        return await poll_fleet(fleet, what, check, timeout)

    async with httpx.AsyncClient(base_url=fleet.base_url, timeout=20) as http:
        await fleet_login(http, fleet, PASSWORD)

        async def frame() -> bool:
            return (await http.get("/api/cameras/gudang/frame.jpg")).status_code == 200

        await poll("the camera's picture", frame, 90)

        # A label from the camera now, through the server (scaled out: from box-a).
        live = await http.post(f"{zone}/labels", json={"state": "kering", "source": "live"})
        assert live.status_code == 201, live.text
        crop = await http.get(f"/api/labels/{live.json()['id']}/crop.jpg")
        assert crop.status_code == 200 and crop.content[:2] == b"\xff\xd8"

        # A label from the recordings at a chosen time (a few seconds ago, once recorded).
        async def recorded() -> tuple[str, bytes] | None:
            at = (datetime.now(UTC) - timedelta(seconds=6)).isoformat()
            r = await http.get("/api/cameras/gudang/recorded.jpg", params={"at": at})
            return (at, r.content) if r.status_code == 200 else None

        at, jpeg = await poll("a recorded picture", recorded, 60)
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (360, 640)
        rec = await http.post(f"{zone}/labels", json={"state": "kering", "source": "recording",
                                                     "ref": at})  # fmt: skip
        assert rec.status_code == 201, rec.text
        assert rec.json()["source"] == "recording" and rec.json()["ref"] == at
        never = await http.get("/api/cameras/gudang/recorded.jpg",
                               params={"at": "2020-01-01T08:00:00+08:00"})  # fmt: skip
        assert never.status_code == 404 and "2020-01-01" in never.json()["detail"], never.text
        naive = await http.get("/api/cameras/gudang/recorded.jpg",
                               params={"at": "2026-12-01T08:00:00"})  # fmt: skip
        assert naive.status_code == 422

        # No model yet: the state rule waits, nothing opens.
        incidents = await http.get("/api/incidents", params={"camera": "gudang"})
        assert incidents.json() == []
        model = train(labelled(clip_frames), "gudang", "lantai", version=1)
        model.save(var / "state_models")  # trained on the server (as `pantau train` does)
        on = await http.post(f"{zone}/models/1/enable")
        assert on.status_code == 200, on.text
        enabled_at = datetime.now(UTC)

        async def flood() -> dict[str, Any] | None:
            r = await http.get("/api/incidents", params={"camera": "gudang", "kind": "flood"})
            return r.json()[0] if r.json() else None

        # A 54 s loop, flooded from ~12 s: within a loop and the dwell time of enabling.
        opened = await poll("the state rule opens a flood incident", flood, 90)
        assert opened["zone_id"] == "lantai"
        assert datetime.fromisoformat(opened["started_at"]) >= enabled_at - timedelta(seconds=3)
        listed = (await http.get(f"{zone}/labels")).json()
        assert listed["enabled"] == 1 and len(listed["labels"]) == 2

        if shape == "one-process":
            off = await http.post(f"{zone}/models/disable")
            assert off.status_code == 200 and off.json()["methods"] == {"lantai": "waiting"}
            assert enabled(var / "state_models", "gudang", "lantai") is None
            return

        # Scaled out: box-a wrote the model into its own folder; disabling reaches it.
        box_a = var / "workers" / "box-a" / "state_models"
        assert (box_a / "gudang" / "lantai" / "enabled").read_text() == "1"
        assert (await http.post(f"{zone}/models/disable")).status_code == 200

        async def gone() -> bool:
            return enabled(box_a, "gudang", "lantai") is None

        await poll("box-a drops the disabled model", gone, 15)
        # Enabled again, then box-a stops and box-b takes the camera: it gets the model from
        # Redis before the camera starts there.
        assert (await http.post(f"{zone}/models/1/enable")).status_code == 200

        async def back() -> bool:
            return enabled(box_a, "gudang", "lantai") is not None

        await poll("box-a takes the model again", back, 15)
        fleet.procs["box-a"].terminate()
        fleet.procs["box-a"].wait(20)
        fleet.worker("box-b")

        async def on_b() -> bool:
            r = await http.get("/api/workers")
            return holders(r.json()).get("gudang") == "box-b"

        await poll("box-b holds the camera", on_b, 60)
        box_b = var / "workers" / "box-b" / "state_models"
        taken = enabled(box_b, "gudang", "lantai")
        assert taken is not None and taken.version == 1
