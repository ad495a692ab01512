"""The zone and rule editor with real parts: a running Pantau on loopback RTSP (real H.264, the
real YOLO export), its HTTP API, and the wall page in a real headless Chromium drawing on the
camera's real still. The file on disk is checked byte by byte against the original.

- Chromium adds a zone, drags its corner, saves: the file has the new polygon and every line of
  the original (comments, ${VAR}s, alignment); the running camera has the zone at once;
- a bow-tie polygon shows the validator's message beside the zone and leaves the file as it was;
- over the API: a stale digest is 409, an invalid threshold 422 naming the field, only admins
  edit, every save is audited with its diff, the old file is kept and undo brings it back.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pantau.config import load
from pantau.reloader import ConfigSource
from pantau.rtsp_server import RtspTestServer
from pantau.runtime import Runtime
from tests.conftest import bearer, staff_token, wall_page

pytestmark = pytest.mark.slow

CONFIG = """\
# Kabupaten test site. Everything here is the administrator's: comments stay.
server: {{host: 127.0.0.1, port: 0}}
storage: {{data_dir: {data_dir}}}   # next to this file
detector: {{model: {model}}}

cameras:
  - id: plaza                  # the square in front of the kantor bupati
    name: Plaza
    url: {url}
    kecamatan: Kota
    detect_fps: 2
    zones:
      - id: all
        name: Seluruh plaza
        points: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]   # the whole picture
    rules:
      - type: crowd
        zone: all
        min_count: 30          # never on this clip: nothing opens while we edit
        for: 2                 # seconds
        clear_after: 5
opds:
  - {{id: satpol-pp, name: Satpol PP, contacts: [{{name: Piket, phone: "${{PIKET_PHONE:-110}}"}}]}}
routing:
  - {{match: {{kinds: [crowd]}}, opds: [satpol-pp]}}
"""


@pytest.fixture
async def site(
    tmp_path: Path, model_path: Path, people_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
) -> AsyncIterator[tuple[Runtime, Path]]:  # fmt: skip
    rtsp = rtsp_server({"plaza": people_clip})
    path = tmp_path / "cameras.yaml"
    path.write_text(CONFIG.format(data_dir=tmp_path / "var", model=model_path,
                                  url=rtsp.url("plaza")), encoding="utf-8")  # fmt: skip
    runtime = Runtime(load(path), tmp_path, source=ConfigSource(path))
    await runtime.start()
    try:
        yield runtime, path
    finally:
        await runtime.stop()


def kept_every_line(original: str, now: str, changed: set[str]) -> None:
    """Every line of the original is still there, in order, but those the edit changed."""
    lines = iter(now.splitlines())
    for line in original.splitlines():
        if line in changed:
            continue
        assert any(line == other for other in lines), f"lost or moved: {line!r}"


async def test_the_api_saves_validates_refuses_stale_edits_and_undoes(
    site: tuple[Runtime, Path],
) -> None:
    runtime, path = site
    original = path.read_bytes()
    admin, operator = await staff_token(runtime, "admin"), await staff_token(runtime, "operator")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.web_port}") as http:
        r = await http.get("/api/config/cameras/plaza", headers=bearer(operator))
        assert r.status_code == 403
        cam = (await http.get("/api/config/cameras/plaza", headers=bearer(admin))).json()
        assert cam["rules"][0]["min_count"] == 30 and cam["zones"][0]["id"] == "all"
        assert (
            await http.get("/api/config/cameras/nope", headers=bearer(admin))
        ).status_code == 404

        bad = {"digest": cam["digest"], "rules": [{**cam["rules"][0], "min_count": 0}]}
        r = await http.put("/api/config/cameras/plaza", json=bad, headers=bearer(admin))
        assert r.status_code == 422
        error = r.json()["errors"][0]
        assert error["loc"] == ["rules", 0, "min_count"], r.json()
        assert "greater than or equal to 1" in error["msg"]
        assert path.read_bytes() == original

        edit = {"digest": cam["digest"], "rules": [{**cam["rules"][0], "min_count": 25}]}
        r = await http.put("/api/config/cameras/plaza", json=edit, headers=bearer(operator))
        assert r.status_code == 403 and path.read_bytes() == original
        r = await http.put("/api/config/cameras/plaza", json=edit, headers=bearer(admin))
        assert r.status_code == 200, r.text
        saved = r.json()
        assert saved["reload"]["ok"] and saved["reload"]["changed"] == {
            "cameras_reanalysed": ["plaza"]
        }
        text = path.read_text()
        assert "        min_count: 25          # never on this clip" in text
        kept_every_line(original.decode(), text, {
            "        min_count: 30          # never on this clip: nothing opens while we edit"
        })  # fmt: skip
        assert (path.parent / "cameras.yaml.1").read_bytes() == original
        assert runtime.config.cameras[0].rules[0].min_count == 25  # type: ignore[union-attr]
        assert runtime.host is not None
        assert runtime.host.running["plaza"].analytics._crowd[0].rule.min_count == 25

        # the page still has the old digest: refused, nothing written
        r = await http.put("/api/config/cameras/plaza", json=edit, headers=bearer(admin))
        assert r.status_code == 409 and path.read_text() == text
        audit = (await http.get("/api/audit", headers=bearer(admin))).json()
        entry = next(a for a in audit if a["action"] == "config.edit")
        assert entry["target"] == "plaza" and "+        min_count: 25" in entry["detail"]

        r = await http.post("/api/config/undo", json={"digest": saved["digest"]},
                            headers=bearer(admin))  # fmt: skip
        assert r.status_code == 200, r.text
        assert path.read_bytes() == original
        assert runtime.config.cameras[0].rules[0].min_count == 30  # type: ignore[union-attr]
        history = (await http.get("/api/config/history", headers=bearer(admin))).json()
        assert [h["name"] for h in history] == ["cameras.yaml.1", "cameras.yaml.2"]


async def handle_box(page: Any, selector: str) -> tuple[float, float]:
    box = await page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


async def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    await page.mouse.move(*start)
    await page.mouse.down()
    for k in range(1, 6):  # a person's drag: several moves, not a jump
        await page.mouse.move(start[0] + (end[0] - start[0]) * k / 5,
                              start[1] + (end[1] - start[1]) * k / 5)  # fmt: skip
    await page.mouse.up()


async def test_chromium_draws_a_zone_on_the_still_and_saves_it(
    site: tuple[Runtime, Path], browser: Any, tmp_path: Path
) -> None:
    runtime, path = site
    original = path.read_text()
    page = await wall_page(browser, runtime, "admin", 1600, 1000)
    # a frame from the camera first (the still the editor draws on)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.web_port}") as http:
        token = await staff_token(runtime, "viewer")
        for _ in range(60):
            r = await http.get("/api/cameras/plaza/frame.jpg", headers=bearer(token))
            if r.status_code == 200:
                break
            await asyncio.sleep(0.5)
    await page.click("#edit-zones")
    await page.wait_for_selector("dialog#editor[open] polygon.ed-zone")
    await page.wait_for_function("() => document.querySelector('.ed-still').naturalWidth > 0")
    assert await page.locator("polygon.ed-zone[data-id=all]").count() == 1

    await page.click("[data-do=add-zone]")
    await page.wait_for_selector("polygon.ed-zone.sel[data-id=zona-2]")
    await page.fill("dialog#editor input[name=name]", "Tangga")
    await page.press("dialog#editor input[name=name]", "Tab")
    stage = await page.locator(".ed-overlay").bounding_box()
    corner = await handle_box(page, "circle.ed-handle[data-point='2']")  # (0.65, 0.65)
    target = (stage["x"] + stage["width"] * 0.9, stage["y"] + stage["height"] * 0.8)
    await drag(page, corner, target)
    await page.select_option("dialog#editor select[name=new-rule]", "crowd")
    await page.click("[data-do=add-rule]")  # on the selected zone
    new_rule = page.locator("dialog#editor .ed-block:has(h4)").last.locator("input[name=min_count]")
    await new_rule.fill("4")
    await new_rule.press("Tab")
    await page.click("[data-do=save]")
    await page.wait_for_function(
        "() => document.querySelector('.ed-message').textContent.includes('diterapkan')",
        timeout=15000,
    )
    keep = Path(os.environ.get("PANTAU_TEST_PNG", tmp_path))
    await page.screenshot(path=str(keep / "editor.png"))
    text = path.read_text()
    kept_every_line(original, text, set())
    zone = next(z for z in runtime.config.cameras[0].zones if z.id == "zona-2")
    assert zone.name == "Tangga"
    (x, y) = zone.points[2]
    assert abs(x - 0.9) < 0.02 and abs(y - 0.8) < 0.02, zone.points
    assert zone.points[0] == (0.35, 0.35) and zone.points[1] == (0.65, 0.35)
    assert "- {id: zona-2, name: Tangga, points: [[0.35, 0.35], [0.65, 0.35], [0.9" in text
    assert "      - {type: crowd, min_count: 4, for: 5, clear_after: 10, zone: zona-2}" in text
    assert runtime.host is not None
    assert runtime.host.running["plaza"].analytics._crowd[1].rule.zone == "zona-2"

    # a bow tie: corner 2 dragged past corner 1's side -> the validator's words beside it
    corner = await handle_box(page, "circle.ed-handle[data-point='2']")
    target = (stage["x"] + stage["width"] * 0.2, stage["y"] + stage["height"] * 0.5)
    await drag(page, corner, target)
    await page.click("[data-do=save]")
    error = page.locator("dialog#editor .ed-block .ed-error")
    await error.first.wait_for(timeout=10000)
    assert "crosses itself" in await error.first.inner_text()
    assert await page.locator("polygon.ed-zone.bad[data-id=zona-2]").count() == 1
    await page.screenshot(path=str(keep / "editor-invalid.png"))
    assert path.read_text() == text, "an invalid zone was written"
    await page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, upright
    await page.screenshot(path=str(keep / "editor-tablet.png"))
