"""The wall page in a real headless Chromium: live tiles, an incident pops its camera into the
focus tile, language switch, phone layout."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from events.model import EventType, IncidentEvent
from pantau.runtime import Runtime
from tests.conftest import TEST_PASSWORD
from wallboard.auth import Role

pytestmark = pytest.mark.slow


async def login(page: object, base: str, runtime: Runtime, role: str = "operator") -> None:
    """Sign in through the page's own form, as an operator at the wall would."""
    await runtime.accounts.add(f"b-{role}", TEST_PASSWORD, Role(role), f"Budi {role}")
    await page.goto(base)  # type: ignore[attr-defined]
    await page.wait_for_selector("dialog#login[open]")  # type: ignore[attr-defined]
    await page.fill("#login-user", f"b-{role}")  # type: ignore[attr-defined]
    await page.fill("#login-pass", "wrong password")  # type: ignore[attr-defined]
    await page.click("#login-form button[type=submit]")  # type: ignore[attr-defined]
    await page.wait_for_function(  # type: ignore[attr-defined]
        "() => document.querySelector('#login-error').textContent.length > 0"
    )
    await page.fill("#login-pass", TEST_PASSWORD)  # type: ignore[attr-defined]
    await page.click("#login-form button[type=submit]")  # type: ignore[attr-defined]
    await page.wait_for_selector("body[data-connected='1']", timeout=15000)  # type: ignore[attr-defined]


async def test_wall_shows_live_tiles_and_pops_the_incident(
    running: Runtime,
    browser: object,
    tmp_path: Path,
) -> None:
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})  # type: ignore[attr-defined]
    await login(page, f"http://127.0.0.1:{running.web_port}/", running)
    assert page.url.endswith("/wall/utama")
    # The focus tile plays the camera live over WebRTC: the camera's own H.264, relayed by
    # the server without re-encoding, decoded by Chromium (a picture of the camera's size).
    await page.wait_for_function(
        "() => { const t = document.querySelector('.tile');"
        " const v = t && t.querySelector('video');"
        " return t.dataset.mode === 'webrtc' && v.videoWidth === 480 && v.currentTime > 1 }",
        timeout=40000,
    )
    live = running.video.stats()
    assert live["viewers"] == 1 and running.video.tapped_cameras() == ["plaza-cam"]
    # People on camera -> the incident is on the timeline and its camera tile is in focus.
    item = page.locator(".timeline .incident.is-active").first
    await item.wait_for(timeout=60000)
    assert "Kerumunan" in await item.inner_text()
    focus = page.locator(".grid .tile").first
    assert await focus.get_attribute("data-camera") == "plaza-cam"
    assert "alarm" in (await focus.get_attribute("class") or "")
    assert "orang" in await focus.locator(".cam-alert").inner_text()
    await page.screenshot(path=str(tmp_path / "wall.png"))

    # Detail dialog with the snapshot; the operator acknowledges the incident.
    await item.click()
    await page.wait_for_selector("dialog[open] img.snap")
    assert await page.locator("dialog[open] [data-action=resolve]").count() == 0  # supervisors'
    await page.fill("dialog[open] input.note", "Regu Satpol PP menuju lokasi")
    # The incident keeps updating (counts, peaks) while the operator types: the dialog follows
    # it without losing the note.
    updated = await running.store.incident(str(await item.get_attribute("data-incident")))
    assert updated is not None
    running.hub.publish(IncidentEvent(type=EventType.INCIDENT_UPDATED, incident=updated))
    await page.wait_for_timeout(500)
    assert await page.input_value("dialog[open] input.note") == "Regu Satpol PP menuju lokasi"
    await page.locator("dialog[open] [data-action=acknowledge]").click()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('dialog[open] .activity li')]"
        ".some(li => li.textContent.includes('Regu Satpol PP menuju lokasi'))",
        timeout=10000,
    )
    await page.locator("dialog[open] .btn.close").click()
    await page.wait_for_selector("dialog#detail[open]", state="detached", timeout=10000)
    assert "Diterima" in await item.inner_text()
    stored = await running.store.incident(str(await item.get_attribute("data-incident")))
    assert stored is not None and stored.state == "acknowledged"
    audit = await running.accounts.audit_log()
    assert any(
        a["action"] == "incident.acknowledge" and a["username"] == "b-operator" for a in audit
    )

    # Closed while an answer is on its way (a comment sent, the dialog shut at once): the
    # answer and its broadcast update the timeline but never reopen the dialog.
    async def slow_post(route: Any) -> None:
        if route.request.method == "POST":
            await asyncio.sleep(0.8)  # a slow link: the operator closes before the answer
        await route.continue_()

    await page.route("**/actions", slow_post)
    await item.click()
    await page.wait_for_selector("dialog[open] input.note")
    await page.fill("dialog[open] input.note", "Sudah di lokasi")
    await page.locator("dialog[open] [data-action=comment]").click()
    await page.locator("dialog[open] .btn.close").click()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#detail .activity li')]"
        ".some(li => li.textContent.includes('Sudah di lokasi'))"
        " || document.querySelector('#detail[open]') === null",
        timeout=10000,
    )
    await page.wait_for_timeout(1500)
    assert await page.locator("dialog#detail[open]").count() == 0
    await page.unroute("**/actions")

    # Language switch.
    assert (await page.locator("h2 [data-i18n='incidents']").inner_text()).lower() == "kejadian"
    await page.locator("#lang").click()
    assert (await page.locator("h2 [data-i18n='incidents']").inner_text()).lower() == "incidents"
    assert "Crowd" in await item.inner_text()

    # The operator pushes a preset to the wall: the grid switches (and every other screen of
    # this wall with it, through the hub).
    assert await page.get_attribute("#grid", "data-layout") == "1x1"
    await page.select_option("#view", "lebar")
    await page.wait_for_selector("#grid[data-layout='2x2']", timeout=10000)
    assert running.walls.views["utama"].by == "operator:b-operator"
    await page.close()


async def test_phone_layout_shows_incidents_without_video(
    running: Runtime,
    browser: object,
) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)  # type: ignore[attr-defined]
    await login(page, f"http://127.0.0.1:{running.web_port}/", running, "viewer")
    await page.locator(".timeline .incident").first.wait_for(timeout=60000)
    assert not await page.locator("#grid").is_visible()
    assert await page.locator(".timeline").is_visible()
    # No video grid, so no video at all: not one stream is opened for a phone on the move.
    assert await page.evaluate(
        "document.querySelectorAll('.tile img[src]').length === 0"
        " && [...document.querySelectorAll('.tile video')].every(v => !v.srcObject)"
    )
    assert running.video.stats()["viewers"] == 0
    await page.close()


async def test_incident_clip_replays_in_the_page(
    recording_runtime: Runtime, browser: object
) -> None:
    page = await browser.new_page(viewport={"width": 1600, "height": 900})  # type: ignore[attr-defined]
    await login(page, f"http://127.0.0.1:{recording_runtime.web_port}/", recording_runtime)
    # Wait until an incident has ended and its clip is announced on the WebSocket.
    await page.wait_for_function(
        "() => document.querySelector('.timeline .incident.is-ended') !== null", timeout=90000
    )
    ended = page.locator(".timeline .incident.is-ended").first
    incident_id = await ended.get_attribute("data-incident")
    for _ in range(60):
        status = await page.evaluate(
            f"fetch('/api/incidents/{incident_id}/clip').then(r => r.status)"
        )
        if status == 200:
            break
        await page.wait_for_timeout(500)
    await ended.click()
    video = page.locator("dialog[open] video.clip")
    await video.wait_for(timeout=10000)
    await page.evaluate("document.querySelector('dialog[open] video.clip').muted = true")
    await page.evaluate("document.querySelector('dialog[open] video.clip').play()")
    await page.wait_for_function(
        "() => { const v = document.querySelector('dialog[open] video.clip');"
        " return v && !v.paused && v.currentTime > 0.5 && v.readyState >= 3 }",
        timeout=20000,
    )
    await page.close()


async def test_supervisor_assigns_uses_the_map_and_sets_a_silence(
    running: Runtime, browser: object
) -> None:
    page = await browser.new_page(viewport={"width": 1600, "height": 900})  # type: ignore[attr-defined]
    await login(page, f"http://127.0.0.1:{running.web_port}/", running, "supervisor")
    # The kecamatan schematic: Kota with its camera, red once the crowd incident opens.
    kota = page.locator(".kec[data-kecamatan='Kota']")
    await kota.wait_for(timeout=10000)
    assert await kota.locator(".cam-dot").count() == 1
    item = page.locator(".timeline .incident.is-active").first
    await item.wait_for(timeout=60000)
    await page.wait_for_function(
        "() => document.querySelector(\".kec[data-kecamatan='Kota']\").dataset.severity !== 'none'"
    )
    assert "terbuka" in await kota.inner_text()
    await kota.click()  # filters the timeline to the kecamatan
    assert await page.eval_on_selector("#filters select[name=kecamatan]", "s => s.value") == "Kota"

    # Assign the incident to an OPD from the picker.
    await item.click()
    await page.wait_for_selector("dialog[open] select.owner-pick")
    await page.select_option("dialog[open] select.owner-pick", "satpol-pp")
    await page.locator("dialog[open] [data-action=assign]").click()
    await page.wait_for_function(
        "() => document.querySelector('dialog[open] dd.owner').textContent.includes('Satpol PP')",
        timeout=10000,
    )
    incident_id = str(await item.get_attribute("data-incident"))
    stored = await running.store.incident(incident_id)
    assert stored is not None and stored.owner == "satpol-pp"
    await page.locator("dialog[open] .btn.close").click()
    await page.wait_for_selector("dialog#detail[open]", state="detached", timeout=10000)

    # Silence the camera's notifications for two hours from the manage dialog.
    await page.locator("#manage").click()
    form = page.locator("dialog[open] #silence-form")
    await form.wait_for()
    await form.locator("input[name=comment]").fill("Perbaikan tiang kamera")
    await form.locator("select[name=hours]").select_option("2")
    await form.locator("select[name=camera]").select_option("plaza-cam")
    await form.locator("button[type=submit]").click()
    row = page.locator("dialog[open] tr[data-silence]")
    await row.wait_for(timeout=10000)
    assert "Perbaikan tiang kamera" in await row.inner_text()
    assert await page.locator("dialog[open] #user-form").count() == 0  # accounts: admins only
    await page.close()


SMART_CONFIG = """\
server: {{host: 127.0.0.1, port: 0}}
storage: {{data_dir: {data_dir}}}
detector: {{model: {model}}}
cameras:
  - {{id: still-a, name: Gudang A, url: "{still_a}", detect_fps: 2}}
  - id: plaza-cam
    name: Plaza
    url: "{plaza}"
    detect_fps: 2
    zones: [{{id: all, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}]
    rules: [{{type: crowd, zone: all, min_count: 99}}]
  - {{id: still-b, name: Gudang B, url: "{still_b}", detect_fps: 2}}
walls:
  - {{id: utama, layout: 2x2, cameras: [still-a, plaza-cam, still-b]}}
"""


async def test_smart_streaming_plays_busy_tiles_and_refreshes_quiet_ones(
    tmp_path: Path,
    model_path: Path,
    people_clip: Path,
    rtsp_server: object,
    browser: object,
) -> None:
    from pantau import demo_media
    from pantau.config import load

    still = tmp_path / "still.mp4"  # a camera on an empty corridor: nothing ever moves
    subprocess.run(
        [demo_media.ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i",
         "color=c=0x505860:s=640x360:r=10:d=6", *demo_media._x264_args(10), str(still)],
        check=True, timeout=60,
    )  # fmt: skip
    server = rtsp_server({"plaza": people_clip, "a": still, "b": still})  # type: ignore[operator]
    path = tmp_path / "cameras.yaml"
    path.write_text(SMART_CONFIG.format(
        data_dir=tmp_path / "var", model=model_path, plaza=server.url("plaza"),
        still_a=server.url("a"), still_b=server.url("b"),
    ), encoding="utf-8")  # fmt: skip
    runtime = Runtime(load(path), tmp_path)
    await runtime.start()
    try:
        page = await browser.new_page(viewport={"width": 1600, "height": 900})  # type: ignore[attr-defined]
        await login(page, f"http://127.0.0.1:{runtime.web_port}/", runtime, "viewer")
        mode = "t => t.dataset.mode"
        # The focus tile and the camera with people walking play live video...
        for camera in ("still-a", "plaza-cam"):
            await page.wait_for_function(
                f"() => document.querySelector(\".tile[data-camera='{camera}']\")"
                ".dataset.mode === 'webrtc'",
                timeout=40000,
            )
        # ...the quiet one shows a still from the server, refreshed now and then.
        quiet = page.locator(".tile[data-camera='still-b']")
        assert await quiet.evaluate(mode) == "still"
        src = await quiet.locator("img").get_attribute("src")
        assert src is not None and "/frame.jpg" in src
        await page.wait_for_function(
            "() => document.querySelector(\".tile[data-camera='still-b'] img\").naturalWidth > 0",
            timeout=20000,
        )
        assert set(runtime.video.stats()["cameras"]) == {"still-a", "plaza-cam"}  # type: ignore[arg-type]
        assert runtime.hub.camera_statuses()  # health reached the page's source too
        await page.close()
    finally:
        await runtime.stop()
