"""False-alarm feedback with real parts: incidents through the desk into SQLite, operators
closing some as "Bukan kejadian", the shares per camera rule over the wall's API and /metrics,
a flagged rule, and a false alarm's snapshot made a "normal" label in one click."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from events.config import Route
from events.desk import IncidentDesk
from events.model import ActionKind, IncidentKind, Observation, ObservationPhase, Severity
from events.store import Store
from pantau.config import load
from pantau.state_labelling import Labelling
from tests.conftest import ManualClock, bearer, serve_asgi
from wallboard.app import create_app
from wallboard.auth import Accounts, Role
from wallboard.config import UiConfig, Wall
from wallboard.deps import WallboardDeps
from wallboard.hub import Hub
from wallboard.live import LiveFrames

PASSWORD = "feedback-password-1"


async def test_false_alarm_shares_flags_and_one_click_labels(tmp_path: Path) -> None:
    config = tmp_path / "cameras.yaml"
    config.write_text(
        "storage: {data_dir: var}\ncameras:\n  - id: gudang\n    name: Gudang\n"
        "    url: rtsp://127.0.0.1:1/x\n    zones:\n"
        "      - {id: lantai, points: [[0.1, 0.4], [0.7, 0.4], [0.7, 0.9], [0.1, 0.9]]}\n"
        "  - id: pasar\n    name: Pasar\n    url: rtsp://127.0.0.1:1/y\n    zones:\n"
        "      - {id: los, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}\n",
        encoding="utf-8",
    )
    store = Store(tmp_path / "var" / "pantau.db")
    await store.open()
    snapshots = tmp_path / "var" / "snapshots"
    snapshots.mkdir(parents=True)
    frame = np.full((360, 640, 3), 120, np.uint8)
    cv2.imwrite(str(snapshots / "dry.jpg"), frame)
    clock = ManualClock(datetime.now(UTC) - timedelta(days=5))
    desk = IncidentDesk(store, lambda e: None, [Route(opds=["bpbd"])], now=clock)

    async def incident(camera: str, kind: IncidentKind, zone: str, n: int) -> str:
        obs = Observation(
            phase=ObservationPhase.OPENED, rule=f"r{n}", kind=kind, severity=Severity.HIGH,
            title=f"kejadian {n}", camera_id=camera, zone_id=zone, kecamatan=f"K{n}",
            started_at=clock.t, at=clock.t, snapshot_ref="dry.jpg",
        )  # fmt: skip
        inc = await desk.observe(obs)
        assert inc is not None
        clock.advance(600)  # over by itself, long before the next one (no correlation)
        closed = obs.model_copy(update={"phase": ObservationPhase.CLOSED, "at": clock.t})
        await desk.observe(closed)
        clock.advance(3600)
        return inc.id

    floods = [await incident("gudang", IncidentKind.FLOOD, "lantai", n) for n in range(6)]
    crowds = [await incident("pasar", IncidentKind.CROWD, "los", 10 + n) for n in range(6)]
    for inc_id in floods[:2] + crowds[:1]:
        await desk.act(inc_id, ActionKind.FALSE_ALARM, "spv")

    accounts = Accounts(store)
    tokens = {}
    for who, role in (("spv", Role.SUPERVISOR), ("op", Role.OPERATOR), ("opd", Role.OPD)):
        await accounts.add(who, PASSWORD, role, opd_id="bpbd" if role == Role.OPD else None)
        found = await accounts.login(who, PASSWORD)
        assert found is not None
        tokens[who] = found[1]

    async def no_recording(camera_id: str, at: object) -> Any:
        raise FileNotFoundError(f"no recording of {camera_id}")

    async def no_still(camera_id: str) -> None:
        return None

    class NoFrames:
        def latest_frame(self, camera_id: str) -> None:
            return None

        def watched(self, camera_id: str) -> None:
            return None

    async def nothing() -> list:  # type: ignore[type-arg]
        return []

    site = load(config)
    labelling = Labelling(lambda: site, tmp_path, tmp_path / "var", store, no_still, snapshots,
                          tmp_path / "var" / "state_models", no_recording)  # fmt: skip
    deps = WallboardDeps(
        store=store, hub=Hub(nothing, {}), live=LiveFrames(NoFrames()),  # type: ignore[arg-type]
        cameras=[], walls=[Wall(id="utama")], ui=UiConfig(), snapshot_dir=snapshots,
        clip_dir=None, health=lambda: {}, accounts=accounts, labelling=labelling,
        false_alarm_share=0.3, false_alarm_min=5,
    )  # fmt: skip
    async with (
        serve_asgi(create_app(deps)) as port,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=bearer(tokens["op"])
        ) as http,
    ):

        async def shares() -> dict[str, dict[str, object]]:
            r = await http.get("/api/false-alarms")
            assert r.status_code == 200, r.text
            return {f"{x['camera_id']}/{x['rule']}": x for x in r.json()}

        got = await shares()
        flood, crowd = got["gudang/flood@lantai"], got["pasar/crowd@los"]
        assert (flood["incidents_7d"], flood["false_alarms_7d"], flood["share_7d"]) == (6, 2, 0.333)
        assert flood["flagged"] is True and set(flood["examples"]) == set(floods[:2])
        assert (crowd["share_7d"], crowd["flagged"]) == (0.167, False)
        # marking one more as a false alarm moves the share
        await desk.act(crowds[1], ActionKind.FALSE_ALARM, "spv")
        assert (await shares())["pasar/crowd@los"]["share_7d"] == 0.333
        metrics = (await http.get("/metrics")).text
        assert 'pantau_false_alarm_share{camera="gudang",rule="flood@lantai",window="7d"} 0.333' \
            in metrics  # fmt: skip
        assert 'pantau_rule_flagged{camera="gudang",rule="flood@lantai"} 1.0' in metrics
        assert (await http.get("/api/false-alarms",
                               headers=bearer(tokens["opd"]))).status_code == 403  # fmt: skip
        # one click: the false alarm's snapshot becomes a "kering" label of its zone
        refused = await http.post(f"/api/incidents/{floods[0]}/label-normal")
        assert refused.status_code == 403  # operators do not label
        made = await http.post(f"/api/incidents/{floods[0]}/label-normal",
                               headers=bearer(tokens["spv"]))  # fmt: skip
        assert made.status_code == 201, made.text
        label = made.json()
        assert (label["state"], label["source"], label["ref"]) == ("kering", "incident", floods[0])
        assert (label["camera_id"], label["zone_id"]) == ("gudang", "lantai")
        crowd_label = await http.post(f"/api/incidents/{crowds[0]}/label-normal",
                                      headers=bearer(tokens["spv"]))  # fmt: skip
        assert crowd_label.json()["state"] == "normal"
        listed = await http.get("/api/cameras/gudang/zones/lantai/labels",
                                headers=bearer(tokens["spv"]))  # fmt: skip
        assert [x["state"] for x in listed.json()["labels"]] == ["kering"]
    await store.close()
