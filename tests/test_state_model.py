"""A camera's own zone-state classifier, trained here from labelled crops of the real indoor
flood CCTV clip: dry opening seconds vs flooded later; accuracy on held-back later frames, and
what it says over the whole clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from analytics.config import Zone
from analytics.state_model import Label, StateModel, crop, next_version, train
from tests.conftest import frames_every

FLOOR = Zone(
    id="lantai",
    name="Lantai",
    points=[(0.15, 0.42), (0.60, 0.35), (0.70, 0.47), (0.45, 0.88), (0.20, 0.85)],
)


@pytest.fixture(scope="module")
def clip(assets: Path) -> list[tuple[float, np.ndarray]]:
    """Two frames a second of the clip (t, frame)."""
    return frames_every(assets / "video" / "flood_indoor_cctv_MiyanoShiho21.mp4", 0.5)


def gudang_yaml() -> str:
    """A site of one camera, gudang, whose zone lantai is the flood clip's floor."""
    return (
        "storage: {data_dir: var}\ncameras:\n  - id: gudang\n    name: Gudang\n"
        "    url: rtsp://127.0.0.1:1/x\n    zones:\n      - {id: lantai, points: "
        f"{[list(p) for p in FLOOR.points]}}}\n"
    )


def labelled(frames: list[tuple[float, np.ndarray]]) -> list[Label]:
    # What an operator labels: the dry floor of the opening seconds, and the flooded floor
    # once the water covers it (from ~12 s); the rising water in between is left unlabelled.
    out = []
    for t, frame in frames:
        state = "kering" if t < 6 else "banjir" if t >= 12 else None
        if state:
            patch, mask = crop(frame, FLOOR)
            out.append(Label(state, t, patch, mask))
    return out


def test_a_trained_state_model_is_right_on_held_back_later_frames(
    clip: list[tuple[float, np.ndarray]], tmp_path: Path
) -> None:
    labels = labelled(clip)
    model = train(labels, "gudang", "lantai")
    ev = model.evaluation
    assert ev is not None
    assert ev.held_back["kering"] >= 3 and ev.held_back["banjir"] >= 15
    # every held-back label is later than every label of its state it trained on
    assert ev.accuracy is not None and ev.accuracy >= 0.95, ev
    assert all(v is not None and v >= 0.9 for v in ev.per_state.values()), ev.per_state
    # over the whole clip: dry at the start, banjir once the water is in, never back
    said = [(t, max(p := model.probabilities(f, FLOOR), key=p.__getitem__)) for t, f in clip]
    assert all(s == "kering" for t, s in said if t < 6)
    first_flood = min(t for t, s in said if s == "banjir")
    assert 6 <= first_flood <= 14
    assert sum(s == "banjir" for t, s in said if t >= 14) / sum(t >= 14 for t, _ in said) >= 0.95
    # versioned per camera and zone, and the same after a reload
    path = model.save(tmp_path)
    assert path == tmp_path / "gudang" / "lantai" / "v1.npz"
    assert next_version(tmp_path, "gudang", "lantai") == 2
    again = StateModel.load(path)
    frame = clip[-1][1]
    assert again.probabilities(frame, FLOOR) == pytest.approx(model.probabilities(frame, FLOOR))
    assert again.evaluation == ev


def test_one_state_is_not_enough(clip: list[tuple[float, np.ndarray]]) -> None:
    dry = [lab for lab in labelled(clip) if lab.state == "kering"]
    with pytest.raises(ValueError, match="at least two states"):
        train(dry, "gudang", "lantai")


def test_the_state_rule_and_the_flood_rule_use_an_enabled_model(
    clip: list[tuple[float, np.ndarray]], tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from analytics.config import FloodRule, StateRule
    from analytics.incidents import Transition
    from analytics.rules.flood import FloodState
    from analytics.rules.state import ZoneState
    from analytics.state_model import enable, enabled

    folder = tmp_path / "state_models"
    assert enabled(folder, "gudang", "lantai") is None  # nothing trained: classical
    model = train(labelled(clip), "gudang", "lantai")
    model.save(folder)
    with pytest.raises(FileNotFoundError):
        enable(folder, "gudang", "lantai", 7)
    assert enabled(folder, "gudang", "lantai") is None  # trained, not yet enabled
    enable(folder, "gudang", "lantai", 1)
    live = enabled(folder, "gudang", "lantai")
    assert live is not None and live.version == 1

    t0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    spec = {"type": "state", "zone": "lantai", "state": "banjir", "min_probability": 0.8,
            "for": 3, "check_every_s": 0.5}  # fmt: skip
    rule = StateRule.model_validate(spec)
    state = ZoneState(rule, FLOOR, live)
    flood = FloodState(FloodRule.model_validate({"type": "flood", "zone": "lantai", "for": 3}),
                       FLOOR, live)  # fmt: skip
    classical = FloodState(FloodRule.model_validate({"type": "flood", "zone": "lantai"}), FLOOR)
    assert (flood.method, classical.method) == ("model", "classical")
    opened: dict[str, float] = {}
    for t, frame in clip:
        at = t0 + timedelta(seconds=t)
        for name, sig in (("state", state.update(frame, t, at)),
                          ("flood", flood.update(frame, [], t, at))):  # fmt: skip
            if sig is not None and sig.transition is Transition.OPENED:
                opened.setdefault(name, t)
    # the water covers the floor from about 11.5 s (the model's first "banjir"); 3 s dwell
    assert 14 <= opened["state"] <= 15.5, opened
    assert 14 <= opened["flood"] <= 15.5, opened
    unknown = StateRule.model_validate({"type": "state", "zone": "lantai", "state": "kebakaran"})
    assert ZoneState(unknown, FLOOR, live).model is None  # a state the model does not know


async def test_pantau_train_trains_on_stored_labels_and_reports_held_back_accuracy(
    clip: list[tuple[float, np.ndarray]], tmp_path: Path
) -> None:
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta

    from events.store import Store
    from pantau.state_labels import StateLabels
    from tests.conftest import REPO

    config = tmp_path / "cameras.yaml"
    config.write_text(gudang_yaml(), encoding="utf-8")
    store = Store(tmp_path / "var" / "pantau.db")
    await store.open()
    labels = StateLabels(store, tmp_path / "var" / "state_labels")
    t0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pantau.cli", "train", str(config), "--camera", "gudang",
             "--zone", "lantai", *extra],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    try:
        for t, frame in clip:
            if t < 6:
                await labels.add("gudang", FLOOR, "kering", frame, t0 + timedelta(seconds=t),
                                 "recording", None, "spv")  # fmt: skip
        only_dry = run()
        assert only_dry.returncode == 1 and "label at least two states" in only_dry.stderr
        for t, frame in clip:
            if t >= 12:
                await labels.add("gudang", FLOOR, "banjir", frame, t0 + timedelta(seconds=t),
                                 "recording", None, "spv")  # fmt: skip
        stored = await labels.of("gudang", "lantai")
        assert len(stored) == sum(t < 6 or t >= 12 for t, _ in clip)
        assert stored[0].labelled_by == "spv" and stored[0].state == "kering"
    finally:
        await store.close()
    done = run("--enable")
    assert done.returncode == 0, done.stderr
    assert "held-back accuracy (later pictures than trained on): 100.0%" in done.stdout
    assert "banjir" in done.stdout and "(enabled)" in done.stdout
    models = tmp_path / "var" / "state_models" / "gudang" / "lantai"
    assert (models / "v1.npz").is_file() and (models / "enabled").read_text() == "1"
    again = run()  # a second training is the next version, not enabled by itself
    assert again.returncode == 0 and (models / "v2.npz").is_file()
    assert (models / "enabled").read_text() == "1"
    wrong = subprocess.run(
        [sys.executable, "-m", "pantau.cli", "train", str(config), "--camera", "gudang",
         "--zone", "atap"], cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert wrong.returncode == 1 and "has no zone 'atap'" in wrong.stderr


async def test_labelling_and_training_from_the_wall(
    clip: list[tuple[float, np.ndarray]], tmp_path: Path
) -> None:
    import httpx

    from events.store import Store
    from pantau.config import load
    from pantau.state_labelling import Labelling
    from tests.conftest import bearer, serve_asgi
    from wallboard.app import create_app
    from wallboard.auth import Accounts, Role
    from wallboard.config import UiConfig, Wall
    from wallboard.deps import WallboardDeps
    from wallboard.hub import Hub
    from wallboard.live import LiveFrames

    config = tmp_path / "cameras.yaml"
    config.write_text(gudang_yaml(), encoding="utf-8")
    site = load(config)
    store = Store(tmp_path / "var" / "pantau.db")
    await store.open()
    now = {"frame": clip[0][1]}

    async def recorded(camera_id: str, at: object) -> np.ndarray:
        raise FileNotFoundError(f"no recording of {camera_id}")

    async def still(camera_id: str) -> tuple[int, bytes] | None:  # the camera's picture now
        ok, jpeg = cv2.imencode(".jpg", now["frame"])
        return (1, jpeg.tobytes()) if ok else None

    labelling = Labelling(lambda: site, tmp_path, tmp_path / "var", store, still,
                          tmp_path / "var" / "snapshots", tmp_path / "var" / "state_models",
                          recorded)  # fmt: skip
    accounts = Accounts(store)
    tokens = {}
    for who, role in (("spv", Role.SUPERVISOR), ("op", Role.OPERATOR)):
        await accounts.add(who, "label-password-1", role)
        found = await accounts.login(who, "label-password-1")
        assert found is not None
        tokens[who] = found[1]

    class NoFrames:
        def latest_frame(self, camera_id: str) -> None:
            return None

        def watched(self, camera_id: str) -> None:
            return None

    async def nothing() -> list:  # type: ignore[type-arg]
        return []

    deps = WallboardDeps(
        store=store, hub=Hub(nothing, {}), live=LiveFrames(NoFrames()),  # type: ignore[arg-type]
        cameras=[], walls=[Wall(id="utama")], ui=UiConfig(), snapshot_dir=None, clip_dir=None,
        health=lambda: {}, accounts=accounts, labelling=labelling,
    )  # fmt: skip
    zone = "/api/cameras/gudang/zones/lantai"
    async with (
        serve_asgi(create_app(deps)) as port,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=bearer(tokens["spv"]), timeout=60
        ) as http,
    ):
        refused = await http.post(f"{zone}/labels", json={"state": "kering"},
                                  headers=bearer(tokens["op"]))  # fmt: skip
        assert refused.status_code == 403
        assert (await http.post("/api/cameras/gudang/zones/atap/labels",
                                json={"state": "kering"})).status_code == 404  # fmt: skip
        made = []
        for t, frame in clip[::2]:  # the supervisor watches the camera and presses a key
            state = "kering" if t < 6 else "banjir" if t >= 12 else None
            if state is None:
                continue
            now["frame"] = frame
            r = await http.post(f"{zone}/labels", json={"state": state, "source": "live"})
            assert r.status_code == 201, r.text
            made.append(r.json())
        assert made[0]["labelled_by"] == "spv" and made[0]["source"] == "live"
        crop_jpg = await http.get(f"/api/labels/{made[0]['id']}/crop.jpg")
        assert crop_jpg.status_code == 200 and crop_jpg.content[:2] == b"\xff\xd8"
        listed = (await http.get(f"{zone}/labels")).json()
        assert len(listed["labels"]) == len(made) and listed["enabled"] is None
        trained = await http.post(f"{zone}/train")
        assert trained.status_code == 201, trained.text
        model = trained.json()
        assert model["version"] == 1 and model["evaluation"]["accuracy"] >= 0.95
        assert (await http.post(f"{zone}/models/9/enable")).status_code == 404
        on = await http.post(f"{zone}/models/1/enable")
        assert on.status_code == 200 and on.json()["enabled"] == 1
        assert (await http.get(f"{zone}/labels")).json()["enabled"] == 1
        # delete every "banjir" label: one state left, nothing to train
        for label in made:
            if label["state"] == "banjir":
                assert (await http.delete(f"/api/labels/{label['id']}")).status_code == 200
        assert (await http.delete(f"/api/labels/{made[-1]['id']}")).status_code == 404
        again = await http.post(f"{zone}/train")
        assert again.status_code == 409 and "at least two states" in again.json()["detail"]
    audit = {(a["action"], a["username"]) for a in await accounts.audit_log(limit=500)}
    await store.close()
    assert {("label.add", "spv"), ("model.train", "spv"), ("model.enable", "spv"),
            ("label.delete", "spv")} <= audit  # fmt: skip


@pytest.mark.slow
async def test_labelling_on_the_wall_with_quick_keys(running: Any, browser: Any) -> None:
    import asyncio
    import os

    from events.model import ActionKind
    from tests.conftest import wall_page

    for _ in range(120):  # the people clip opens a crowd incident: an operator calls it false
        found = await running.store.incidents(camera_id="plaza-cam")
        if found and found[0].snapshot_ref:
            break
        await asyncio.sleep(0.5)
    else:
        pytest.fail("no crowd incident on the people clip within 60 s")
    await running.desk.act(found[0].id, ActionKind.FALSE_ALARM, "spv")
    page = await wall_page(browser, running, "supervisor", 1600, 1000)
    share = page.locator("#health li[data-camera=plaza-cam] .fa-share")  # the camera panel
    await share.wait_for(timeout=10000)
    assert "alarm palsu 100%" in await share.inner_text()
    await page.click("#label-states")
    dialog = page.locator("dialog#labels[open]")
    await dialog.locator(".lb-state[data-state=kering]").wait_for(timeout=15000)
    await dialog.locator("img.lb-still").evaluate(
        "img => img.complete || new Promise(r => img.onload = r)")  # fmt: skip
    for key, state, n in (("1", "kering", 4), ("3", "banjir", 4)):
        for i in range(1, n + 1):
            await page.keyboard.press(key)
            await dialog.locator(f".lb-state[data-state={state}]").filter(
                has_text=f"({i})").wait_for(timeout=10000)  # fmt: skip
            await asyncio.sleep(0.3)  # a newer picture for the next label
    labels = await running.store.execute("SELECT state, labelled_by, source FROM state_labels")
    assert sorted(r[0] for r in labels) == ["banjir"] * 4 + ["kering"] * 4
    assert {(r[1], r[2]) for r in labels} == {("b-supervisor", "live")}
    await dialog.locator("[data-do=train]").click()
    await dialog.locator("table.lb-eval").wait_for(timeout=30000)
    assert "Disisihkan" in await dialog.locator("table.lb-eval").inner_text()
    await dialog.locator("button[data-version='1']").click()
    await dialog.locator("button[data-version='1']", has_text="✓").wait_for(timeout=10000)
    pointer = running.data_dir / "state_models" / "plaza-cam" / "plaza" / "enabled"
    assert pointer.read_text() == "1"
    # the false alarm is on the list, its snapshot one click from a "normal" label
    row = dialog.locator("tr[data-rule='plaza-cam/crowd@plaza']")
    assert "100% (1/1)" in await row.inner_text()
    await row.locator(f"button[data-normal='{found[0].id}']").click()
    # (the zone's normal look: its most-labelled state that is not a wet one)
    await dialog.locator(".lb-state[data-state=kering]").filter(has_text="(5)").wait_for(
        timeout=10000)  # fmt: skip
    # the zone is drawn over the picture
    points = await dialog.locator("svg.lb-zone polygon").get_attribute("points")
    assert points is not None and len(points.split()) == 4
    # from an incident's snapshot: pick the incident, press 2
    await dialog.locator("button[data-source=incident]").click()
    await dialog.locator("select.lb-incident").select_option(found[0].id)
    await page.wait_for_function(
        "id => document.querySelector('#labels img.lb-still').src.includes(id)", arg=found[0].id
    )
    await dialog.locator("h3").click()  # focus off the select: quick keys again
    await page.keyboard.press("2")
    await dialog.locator(".lb-state[data-state=tergenang]").filter(has_text="(1)").wait_for(
        timeout=10000)  # fmt: skip
    # from recordings: this camera is not recorded, and the dialog says so
    await dialog.locator("button[data-source=recording]").click()
    await dialog.locator("p.error", has_text="recording").wait_for(timeout=10000)
    keep = Path(os.environ.get("PANTAU_TEST_PNG", running.base_dir))
    await dialog.locator("button[data-source=incident]").click()
    await dialog.locator("select.lb-incident").select_option(found[0].id)
    await page.screenshot(path=str(keep / "labels.png"))
    # the model switched off again: the flood rule would go back to its classical method
    await dialog.locator("[data-do=disable]").click()
    await dialog.locator("button[data-version='1']:not(.primary)").wait_for(timeout=10000)
    assert not pointer.exists()
    labels = await running.store.execute("SELECT source, ref FROM state_labels")
    assert ("incident", found[0].id) in {(r[0], r[1]) for r in labels}
    await page.close()


@pytest.mark.slow
def test_replay_runs_the_state_rule_on_the_enabled_model(
    clip: list[tuple[float, np.ndarray]], tmp_path: Path, assets: Path, model_path: Path
) -> None:
    import json
    import subprocess
    import sys

    from analytics.state_model import enable
    from tests.conftest import REPO

    train(labelled(clip), "gudang", "lantai").save(tmp_path / "var" / "state_models")
    enable(tmp_path / "var" / "state_models", "gudang", "lantai", 1)
    config = tmp_path / "cameras.yaml"
    config.write_text(
        f"storage: {{data_dir: var}}\ndetector: {{model: {model_path}}}\n"
        "cameras:\n  - id: gudang\n    name: Gudang\n    url: rtsp://127.0.0.1:1/x\n"
        "    detect_fps: 2\n    zones:\n      - {id: lantai, points: "
        f"{[list(p) for p in FLOOR.points]}}}\n"
        "    rules:\n      - {type: state, zone: lantai, state: banjir, for: 3, "
        "check_every_s: 0.5}\n      - {type: flood, zone: lantai, for: 3}\n",
        encoding="utf-8",
    )
    out = tmp_path / "replay.json"
    done = subprocess.run(
        [sys.executable, "-m", "pantau.cli", "replay", str(config),
         str(assets / "video" / "flood_indoor_cctv_MiyanoShiho21.mp4"), "--camera", "gudang",
         "--out", str(tmp_path / "chart.png"), "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    rules = {r["key"]: r for r in report["rules"]}
    (state,) = rules["state-0"]["incidents"]
    (flood,) = rules["flood-0"]["incidents"]  # the flood rule on the model too
    assert 14 <= state["opened_s"] <= 16.5 and 14 <= flood["opened_s"] <= 16.5
    series = report["series"]["state-0"]
    assert max(v for v in series if v is not None) > 0.9
    assert (tmp_path / "chart.png").stat().st_size > 10_000
