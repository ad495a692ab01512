"""Telegram answers on a whole running site, in both shapes: `pantau run` (one process, memory
bus) and `pantau server` (Redis Streams, the desk and routing on the server box). A report
comes in over HTTP, the duty officer's chat gets it, "Terima" acknowledges it as that contact
and the site's API shows it, on the server's real clock and bus."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.api_keys import ApiKeys
from events.model import ActionKind, IncidentState
from pantau.config import load
from pantau.runtime import Runtime
from tests.conftest import FakeTelegram, bearer, site_bus, staff_token

CONFIG = """\
server: {{host: 127.0.0.1, port: 0}}
storage: {{data_dir: {data_dir}}}
bus: {bus}
detector: {{model: {model}}}
notify:
  group_wait_s: 0
  telegram: {{token: "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789", api_url: "{api}",
             poll_timeout_s: 1}}
cameras:
  - {{id: gudang, name: Gudang, url: "rtsp://127.0.0.1:1/mati", kecamatan: Kota}}
opds:
  - id: bpbd
    name: BPBD
    contacts: [{{id: kalak, name: Kalaksa, telegram: 1002}}]
    roster:
      team: [{{id: regu-a, name: Regu A, telegram: 1001}}]
      shifts: {{sehari: "00:00-24:00"}}
      starts: 2026-11-30
      weeks: [{{daily: {{sehari: regu-a}}}}]
routing:
  - {{match: {{kinds: [flood]}}, opds: [bpbd], ack_deadline_s: 60}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["one-process", "scaled-out"])
async def test_terima_from_telegram_on_a_running_site(
    shape: str, tmp_path: Path, model_path: Path, telegram_api: FakeTelegram
) -> None:
    services = contextlib.ExitStack()
    bus = services.enter_context(site_bus(shape, tmp_path))
    path = tmp_path / "cameras.yaml"
    path.write_text(CONFIG.format(data_dir=tmp_path / "var", bus=bus, model=model_path,
                                  api=telegram_api.url), encoding="utf-8")  # fmt: skip
    runtime = Runtime(load(path), tmp_path, role="server" if bus != "memory" else "all")
    await runtime.start()
    try:
        _, key = await ApiKeys(runtime.store).create("dishub")
        token = await staff_token(runtime, "operator")
        base = f"http://127.0.0.1:{runtime.web_port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            r = await http.post("/api/alerts", headers={"X-API-Key": key}, json={
                "kind": "flood", "severity": "high", "title": "Air masuk gudang",
                "kecamatan": "Kota"})  # fmt: skip
            assert r.status_code == 201, r.text
            incident_id = r.json()["incident_id"]
            told = await _until(lambda: telegram_api.to(1001), "the piket is told")
            assert f"acknowledge:{incident_id}" in str(told[0]["reply_markup"])
            query = telegram_api.press(1001, f"acknowledge:{incident_id}", told[0])
            await telegram_api.wait("answerCallbackQuery", callback_query_id=query)

            async def acknowledged() -> Any:
                got = await http.get(f"/api/incidents/{incident_id}", headers=bearer(token))
                return got.json() if got.json()["state"] == IncidentState.ACKNOWLEDGED else None

            inc = await _until(acknowledged, "acknowledged on the site's API")
            assert inc["acknowledged_at"] is not None
            log = (await http.get(f"/api/incidents/{incident_id}/actions",
                                  headers=bearer(token))).json()  # fmt: skip
            assert any(a["kind"] == ActionKind.ACKNOWLEDGE and a["actor"] == "Regu A via Telegram"
                       and a["opd_id"] == "bpbd" for a in log)  # fmt: skip
    finally:
        await runtime.stop()
        services.close()


async def _until(check: Any, what: str, timeout: float = 20) -> Any:
    for _ in range(int(timeout / 0.1)):
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        await asyncio.sleep(0.1)
    pytest.fail(f"{what}: not within {timeout} s")
