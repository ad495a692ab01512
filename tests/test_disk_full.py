"""A full disk under a running site: the data directory on a small tmpfs made by the test (as
root). Recordings are freed first; when SQLite cannot write, intake answers 503 with the reason,
the wall keeps serving and says so (health, /metrics, an incident for Diskominfo), and all of
it resumes by itself when space returns: every alert answered 201 is stored, none answered 503
is, and the database passes its integrity check."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from events.api_keys import ApiKeys
from events.model import IncidentKind
from pantau.config import load
from pantau.rtsp_server import RtspTestServer
from pantau.runtime import Runtime
from tests.conftest import staff_token

pytestmark = pytest.mark.slow
SIZE_MB = 64

CONFIG = """\
server: {{host: 127.0.0.1, port: 0}}
storage: {{data_dir: {data_dir}, warn_free_mb: 20}}
detector: {{model: {model}}}
recording: {{segment_s: 2, pre_roll_s: 1, post_roll_s: 1, max_disk_fraction: 0.85}}
cameras:
  - id: lobby
    name: Lobby
    url: {url}
    kecamatan: Kota
    detect_fps: 1
    record: true
opds:
  - {{id: bpbd, name: BPBD, contacts: [{{name: Piket, phone: "112"}}]}}
  - {{id: diskominfo, name: Diskominfo, contacts: [{{name: NOC, phone: "111"}}]}}
routing:
  - {{match: {{kinds: [system, offline, tamper]}}, opds: [diskominfo]}}
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path, leave_mb: float) -> None:
    """Write `path` until the disk has `leave_mb` free (0: until it is full)."""
    import shutil

    chunk = b"\0" * (256 * 1024)
    try:
        with open(path, "ab") as f:
            while shutil.disk_usage(path.parent).free > leave_mb * 1024 * 1024 + len(chunk):
                f.write(chunk)
                f.flush()
            while leave_mb == 0:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:  # ENOSPC: as full as it gets
        pass


async def until(what: str, check: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        await asyncio.sleep(0.5)
    pytest.fail(f"{what}: not within {timeout} s")


async def test_a_full_disk_refuses_loses_nothing_and_recovers(
    small_disk: Path,
    tmp_path: Path,
    model_path: Path,
    builtin_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
) -> None:
    rtsp = rtsp_server({"lobby": builtin_clip})
    data = small_disk / "var"
    config = tmp_path / "cameras.yaml"
    config.write_text(CONFIG.format(data_dir=data, model=model_path, url=rtsp.url("lobby")))
    runtime = Runtime(load(config), tmp_path)
    await runtime.start()

    accepted: list[str] = []
    refused: list[str] = []
    try:
        _, key = await ApiKeys(runtime.store).create("bpbd")
        token = await staff_token(runtime)
        base = f"http://127.0.0.1:{runtime.web_port}"
        async with (
            httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=20) as opd,
            httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=20
            ) as staff,  # fmt: skip
        ):
            n = 0

            async def post() -> int:
                nonlocal n
                n += 1
                alert = {"id": f"disk-{n}", "source": "opd", "kind": "flood", "severity": "high",
                         "title": f"Banjir {n}", "kecamatan": "Kota"}  # fmt: skip
                r = await opd.post("/api/alerts", json=alert)
                if r.status_code in (200, 201):
                    accepted.append(alert["id"])
                else:
                    assert r.status_code == 503, r.text
                    assert "disk is full" in r.json()["detail"] and r.headers["retry-after"]
                    refused.append(alert["id"])
                return r.status_code

            assert await post() == 201
            segments = data / "recordings" / "lobby"
            await until("segments recorded", lambda: len(list(segments.glob("*.mp4"))) >= 4, 60)
            first = sorted(p.name for p in segments.glob("*.mp4"))[0]

            # Nearly full: recordings go first (the oldest segments), and an incident says so.
            fill(small_disk / "ballast-1", leave_mb=SIZE_MB * 0.12)
            await until("oldest segments freed",
                        lambda: not (segments / first).exists(), 30)  # fmt: skip

            async def disk_incident() -> list[object]:
                return await runtime.store.incidents(kind=IncidentKind.SYSTEM)

            found = await until("a disk incident", disk_incident, 20)
            assert found[0].routed_opds == ("diskominfo",)  # type: ignore[index,attr-defined]
            assert await post() == 201

            # Full: intake refuses with the reason; the wall goes on and says "disk full".
            fill(small_disk / "ballast-2", leave_mb=0)
            codes = [await post() for _ in range(8)]
            assert 503 in codes, codes
            assert (await staff.get("/api/incidents")).status_code == 200
            assert runtime.health()["disk"]["full"]  # type: ignore[index]
            text = (await staff.get("/metrics")).text
            assert "pantau_disk_full 1.0" in text

            async def wall_says_full() -> bool:
                # What a wall screen gets on connecting: the disk's state, full.
                import websockets

                url = f"ws://127.0.0.1:{runtime.web_port}/ws"
                auth = {"Authorization": f"Bearer {token}"}
                async with websockets.connect(url, additional_headers=auth) as ws:
                    snapshot = json.loads(await ws.recv())
                return bool(snapshot["state"].get("disk", {}).get("full"))

            await until("the wall told the disk is full", wall_says_full, 15)

            # Space is back: everything resumes by itself.
            for ballast in small_disk.glob("ballast-*"):
                ballast.unlink()

            async def intake_again() -> bool:
                return await post() == 201

            await until("intake storing again", intake_again, 30)
            await until("health says the disk has room",
                        lambda: not runtime.health()["disk"]["full"], 20)  # type: ignore[index]  # fmt: skip

            async def disk_incident_closed() -> bool:
                return all(not i.active for i in await disk_incident())

            await until("the disk incident closed", disk_incident_closed, 30)
    finally:
        await runtime.stop()

    # Nothing accepted was lost, nothing refused was kept, and the database is sound.
    from events.store import Store

    store = Store(data / "pantau.db")
    await store.open()
    try:
        stored = {a.external_id for a in await store.alerts(limit=10_000)}
        assert set(accepted) <= stored, set(accepted) - stored
        assert not (set(refused) & stored), set(refused) & stored
        assert await store.execute("PRAGMA integrity_check") == [("ok",)]
    finally:
        await store.close()
    assert len(accepted) >= 3 and refused, (accepted, refused)
