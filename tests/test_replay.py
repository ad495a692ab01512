"""Replay through the rules with real parts: the builtin clip (6 s empty, 8 s two persons, 10 s
four) through the camera's real pipeline (the real YOLO export) as `pantau replay` runs it,
against the same camera live on loopback RTSP (real H.264) where the clip loops.

- the replay opens the same incidents as the live pipeline: one per loop, the same length
  (open to close) within the sampling step, the same peak;
- the PNG chart's threshold line is where the rule's threshold is (its pixels are checked);
- the CLI refuses an unknown camera and a missing file with a clear message.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from events.model import EventType, ObservationEvent, ObservationPhase
from pantau.config import load
from pantau.local_fleet import REPO
from pantau.reloader import ConfigSource
from pantau.replay import Clip, replay
from pantau.rtsp_server import RtspTestServer
from pantau.runtime import Runtime
from tests.conftest import bearer, staff_token, wall_page

pytestmark = pytest.mark.slow

CONFIG = """\
server: {{host: 127.0.0.1, port: 0}}
storage: {{data_dir: {data_dir}}}
detector: {{model: {model}}}
motion: {{enabled: false}}
cameras:
  - id: lobby
    name: Lobby
    url: {url}
    detect_fps: 2
    zones:
      - {{id: all, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: crowd, zone: all, min_count: 3, for: 1, clear_after: 2, cooldown: 0}}
"""
CLIP_S = 24.0


def write(tmp_path: Path, model: Path, url: str) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(CONFIG.format(data_dir=tmp_path / "var", model=model, url=url))
    return path


async def test_the_replay_opens_what_the_live_pipeline_opens(
    tmp_path: Path, model_path: Path, builtin_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
) -> None:  # fmt: skip
    rtsp = rtsp_server({"lobby": builtin_clip})
    path = write(tmp_path, model_path, rtsp.url("lobby"))
    config = load(path)
    # live: the clip loops over RTSP; the rule's own observations, as the camera's box sends
    # them (the desk may merge several into one incident)
    runtime = Runtime(config, tmp_path)
    sub = await runtime.bus.subscribe("test-observations", types=frozenset({EventType.OBSERVATION}))
    opened: dict[str, datetime] = {}
    closed: list[tuple[float, float, float]] = []  # (started -> closed s, opened -> closed s, peak)

    async def watch() -> None:
        async for event in sub:
            assert isinstance(event, ObservationEvent)
            obs = event.observation
            if obs.phase is ObservationPhase.OPENED:
                opened[obs.id] = obs.at
            elif obs.phase is ObservationPhase.CLOSED and obs.id in opened:
                closed.append(((obs.at - obs.started_at).total_seconds(),
                               (obs.at - opened[obs.id]).total_seconds(),
                               float(obs.peak_count or 0)))  # fmt: skip

    watcher = asyncio.create_task(watch())
    await runtime.start()
    try:
        deadline = time.monotonic() + 3 * CLIP_S + 10
        while time.monotonic() < deadline and len(closed) < 2:
            await asyncio.sleep(0.5)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await runtime.stop()
    assert len(closed) >= 2, f"live: {closed}"
    live_length = statistics.median(c[0] for c in closed)
    live_open = statistics.median(c[1] for c in closed)
    assert {c[2] for c in closed} == {4.0}

    # replay: the same file twice in a row, as the loop plays it
    start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    clips = [Clip(builtin_clip, start), Clip(builtin_clip, start + timedelta(seconds=CLIP_S))]
    report = await replay(config, "lobby", clips)
    (rule,) = report.rules
    assert rule.key == "crowd-0" and rule.threshold == 3
    assert len(rule.incidents) == 2, rule.incidents
    first, second = rule.incidents
    # four persons from 14 s, for 1 s, sampled every 0.5 s; closes 2 s after the loop empties
    assert 14.5 <= first.opened_s <= 16.0 and first.peak == 4, first
    assert first.closed_s is not None and CLIP_S + 2 <= first.closed_s <= CLIP_S + 3.5, first
    assert abs((first.closed_s - first.started_s) - live_length) <= 1.0, (first, closed)
    assert abs((first.closed_s - first.opened_s) - live_open) <= 1.0, (first, closed)
    assert abs(second.opened_s - (first.opened_s + CLIP_S)) <= 0.6, second
    assert second.closed_s is None  # the video ends with the four still there
    assert report.frames == pytest.approx(2 * CLIP_S * 2, abs=3)
    assert report.speed > 1.0, "slower than real time"


def test_the_cli_writes_a_chart_whose_threshold_line_is_the_rules(
    tmp_path: Path, model_path: Path, builtin_clip: Path
) -> None:
    path = write(tmp_path, model_path, "rtsp://127.0.0.1:1/lobby")
    chart, data = tmp_path / "chart.png", tmp_path / "replay.json"
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pantau.cli", "replay", str(path), str(builtin_clip),
         "--camera", "lobby", "--out", str(chart), "--json", str(data)],
        cwd=REPO, env=env, text=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "crowd-0 (crowd in all, persons, threshold 3, for 1 s" in done.stdout
    assert "1 incident(s)" in done.stdout and "still open" in done.stdout
    report = json.loads(data.read_text())
    assert report["rules"][0]["incidents"][0]["peak"] == 4
    mark = report["threshold_px"]["crowd-0"]
    image = Image.open(chart).convert("RGB")
    red = (0xE8, 0x39, 0x3A)

    def reddish(row: int) -> float:
        xs = range(mark["x0"] + 2, mark["x1"] - 2)
        hits = 0
        for x in xs:
            px = image.getpixel((x, row))
            hits += sum(abs(a - b) for a, b in zip(px, red, strict=True)) < 90  # type: ignore[arg-type]
        return hits / len(xs)

    at_line = max(reddish(mark["row"] + d) for d in (-1, 0, 1))
    assert at_line > 0.3, f"no threshold line at row {mark['row']} ({at_line:.0%} red)"
    assert reddish(mark["row"] - 12) < 0.05 and reddish(mark["row"] + 12) < 0.05
    # and the refusals
    bad = subprocess.run([sys.executable, "-m", "pantau.cli", "replay", str(path),
                          str(builtin_clip), "--camera", "nope"], cwd=REPO, env=env, text=True,
                         capture_output=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "no camera 'nope'" in bad.stderr
    gone = subprocess.run([sys.executable, "-m", "pantau.cli", "replay", str(path),
                           str(tmp_path / "missing.mp4"), "--camera", "lobby"], cwd=REPO, env=env,
                          text=True, capture_output=True, timeout=60)  # fmt: skip
    assert gone.returncode == 2 and "missing.mp4: no such file" in gone.stderr


RECORDED = CONFIG.replace(
    "motion: {{enabled: false}}\n",
    "motion: {{enabled: false}}\nrecording: {{segment_s: 2, pre_roll_s: 2, post_roll_s: 2}}\n",
).replace("    detect_fps: 2\n", "    detect_fps: 2\n    record: true\n")


async def test_rule_tests_from_the_wall_on_an_incidents_clip_and_recent_recordings(
    tmp_path: Path, model_path: Path, builtin_clip: Path, browser: Any,
    rtsp_server: Callable[..., RtspTestServer],
) -> None:  # fmt: skip
    rtsp = rtsp_server({"lobby": builtin_clip})
    path = tmp_path / "cameras.yaml"
    path.write_text(RECORDED.format(data_dir=tmp_path / "var", model=model_path,
                                    url=rtsp.url("lobby")))  # fmt: skip
    runtime = Runtime(load(path), tmp_path, source=ConfigSource(path))
    await runtime.start()
    try:
        admin = await staff_token(runtime, "admin")
        operator = await staff_token(runtime, "operator")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.web_port}",
                                     timeout=30) as http:  # fmt: skip
            deadline = time.monotonic() + 90
            incident_id = None
            while incident_id is None:
                assert time.monotonic() < deadline, "no incident with a clip in 90 s"
                await asyncio.sleep(1)
                for inc in await runtime.store.incidents(limit=10):
                    if await runtime.store.clip(inc.id) is not None:
                        incident_id = inc.id
            r = await http.post("/api/replays", json={"incident_id": incident_id},
                                headers=bearer(operator))  # fmt: skip
            assert r.status_code == 403

            async def finished(body: dict[str, Any]) -> dict[str, Any]:
                r = await http.post("/api/replays", json=body, headers=bearer(admin))
                assert r.status_code == 202, r.text
                job = r.json()
                while job["state"] == "running":
                    await asyncio.sleep(0.5)
                    job = (
                        await http.get(f"/api/replays/{job['id']}", headers=bearer(admin))
                    ).json()
                assert job["state"] == "done", job
                return job

            job = await finished({"incident_id": incident_id})
            assert job["camera_id"] == "lobby" and job["source"].endswith(".mp4")
            assert any(line.startswith("crowd-0 (crowd in all") for line in job["lines"]), job
            assert job["rules"][0]["incidents"], "the clip of an incident replays without it"
            chart = await http.get(f"/api/replays/{job['id']}/chart.png", headers=bearer(admin))
            assert chart.status_code == 200 and chart.content[:8] == b"\x89PNG\r\n\x1a\n"
            recent = await finished({"camera_id": "lobby", "minutes": 1})
            assert recent["source"].startswith("recordings ")
            audit = (await http.get("/api/audit", headers=bearer(admin))).json()
            assert sum(a["action"] == "rule.replay" for a in audit) == 2

        # the same from the incident's detail on the wall
        page = await wall_page(browser, runtime, "admin", 1600, 1000)
        await page.click(f".timeline [data-incident='{incident_id}']")
        await page.click("dialog#detail [data-do=test-rules]")
        await page.wait_for_function(
            "() => { const i = document.querySelector('dialog#editor .ed-chart');"
            " return i && i.complete && i.naturalWidth > 0 }", timeout=120000,
        )  # fmt: skip
        assert "crowd-0" in await page.inner_text("dialog#editor .ed-replay-lines")
        keep = Path(os.environ.get("PANTAU_TEST_PNG", tmp_path))
        await page.screenshot(path=str(keep / "rule-test.png"))
    finally:
        await runtime.stop()
