"""Fixtures that start REAL servers on loopback (RTSP, the wallboard) and find the shared assets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from pantau import demo_media
from pantau.config import load
from pantau.redis_server import RedisServer
from pantau.rtsp_server import RtspTestServer
from pantau.runtime import Runtime

os.environ.setdefault("YOLO_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = "models/yolo11n_int8_openvino_model"
NO_SHARED = "../shared/assets (real YOLO weights and CCTV clips) is not present on this machine"


@pytest.fixture(scope="session")
def assets() -> Path:
    found = demo_media.find_assets()
    if found is None:
        pytest.skip(NO_SHARED)
    return found


@pytest.fixture(scope="session")
def model_path(assets: Path) -> Path:
    path = assets / MODEL_DIR
    if not path.is_dir():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def clip_cache() -> Path:
    return demo_media.default_cache_dir()


@pytest.fixture(scope="session")
def people_clip(clip_cache: Path) -> Path:
    """Camera-like H.264 with real people: the PETS-2009 clip, or the builtin composed clip."""
    assets = demo_media.find_assets()
    return demo_media.resolve_clip("pets2009_vtest_480x360_tiodh.mp4", assets, clip_cache)


@pytest.fixture(scope="session")
def builtin_clip(clip_cache: Path) -> Path:
    return demo_media.builtin_clip(clip_cache)


@pytest.fixture
def rtsp_server() -> Iterator[Callable[..., RtspTestServer]]:
    """Factory: start a real GStreamer RTSP server on a free loopback port."""
    started: list[RtspTestServer] = []

    def start(streams: dict[str, Path], **kwargs: object) -> RtspTestServer:
        server = RtspTestServer(streams, port=0, **kwargs).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def ffprobe() -> str:
    found = shutil.which("ffprobe")
    if found is None:
        pytest.fail("ffprobe missing: run scripts/install.sh")
    return found


CONFIG = """\
server: {{host: 127.0.0.1, port: {web_port}}}
storage: {{data_dir: {data_dir}}}
detector: {{model: {model}, imgsz: 640}}
cameras:
  - id: plaza-cam
    name: Plaza
    url: {url}
    kecamatan: Kota
    desa: Kauman
    detect_fps: 2
    zones:
      - {{id: plaza, name: Plaza, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: crowd, zone: plaza, min_count: {min_count}, for: 1, clear_after: 5}}
opds:
  - {{id: satpol-pp, name: Satpol PP, contacts: [{{name: Piket, phone: "110"}}]}}
routing:
  - {{match: {{kinds: [crowd]}}, opds: [satpol-pp]}}
walls:
  - id: utama
    layout: 1x1
    cameras: [plaza-cam]
    presets: [{{id: lebar, name: Lebar, layout: 2x2, cameras: [plaza-cam]}}]
"""


def write_config(tmp_path: Path, **kw: object) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(CONFIG.format(data_dir=tmp_path / "var", **kw), encoding="utf-8")
    return path


@pytest.fixture
async def running(
    tmp_path: Path,
    model_path: Path,
    people_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
) -> AsyncIterator[Runtime]:
    server = rtsp_server({"plaza": people_clip})
    path = write_config(
        tmp_path, web_port=0, model=model_path, url=server.url("plaza"), min_count=2
    )
    runtime = Runtime(load(path), tmp_path)
    await runtime.start()
    yield runtime
    await runtime.stop()


CLIP_CONFIG = """\
server: {{host: 127.0.0.1, port: 0}}
storage: {{data_dir: {data_dir}}}
detector: {{model: {model}}}
recording: {{segment_s: 2, pre_roll_s: 2, post_roll_s: 2}}
cameras:
  - id: lobby
    name: Lobby
    url: {url}
    detect_fps: 2
    record: true
    zones:
      - {{id: all, points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: crowd, zone: all, min_count: 3, for: 1, clear_after: 2, cooldown: 0}}
"""


@pytest.fixture
async def recording_runtime(
    tmp_path: Path,
    model_path: Path,
    builtin_clip: Path,
    rtsp_server: Callable[..., RtspTestServer],
) -> AsyncIterator[Runtime]:
    """A recording camera on the builtin clip (6 s empty, 8 s 2 persons, 10 s 4 persons): the
    crowd rule (3 persons) opens and closes once per 24 s loop, so clips get cut."""
    server = rtsp_server({"lobby": builtin_clip})
    path = tmp_path / "cameras.yaml"
    path.write_text(
        CLIP_CONFIG.format(data_dir=tmp_path / "var", model=model_path, url=server.url("lobby")),
        encoding="utf-8",
    )
    runtime = Runtime(load(path), tmp_path)
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server (AOF on) on a free loopback port, shared by the session's tests."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/install.sh --test installs it)")
    server = RedisServer(tmp_path_factory.mktemp("redis"), fsync="everysec")
    server.start()
    yield server
    server.stop()


TEST_PASSWORD = "test-password-1"


async def staff_token(runtime: Runtime, role: str = "admin", opd: str | None = None) -> str:
    """A session token of a fresh account with `role` on a running runtime."""
    from wallboard.auth import Role

    name = f"t-{role}-{opd or 'cc'}"
    await runtime.accounts.add(name, TEST_PASSWORD, Role(role), opd_id=opd)
    found = await runtime.accounts.login(name, TEST_PASSWORD)
    assert found is not None
    return found[1]


async def wall_page(
    browser: Any, runtime: Runtime, role: str, width: int = 1600, height: int = 1000
) -> Any:
    """A Chromium page signed in through the wall's own form as a fresh account of `role`."""
    from wallboard.auth import Role

    name = f"b-{role}"
    await runtime.accounts.add(name, TEST_PASSWORD, Role(role), f"Budi {role}")
    page = await browser.new_page(viewport={"width": width, "height": height})
    await page.goto(f"http://127.0.0.1:{runtime.web_port}/")
    await page.wait_for_selector("dialog#login[open]")
    await page.fill("#login-user", name)
    await page.fill("#login-pass", TEST_PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("body[data-connected='1']", timeout=15000)
    return page


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[int]:
    """Serve an ASGI app with uvicorn on a free loopback port; yields the port."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, interface="asgi3")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.02)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await task


# ---- a real SMTP server (aiosmtpd) and a clock tests move by hand ----
class Mailbox:
    """What a real SMTP server on loopback received, as parsed e-mail messages."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    from pantau.redis_server import free_port

    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


class ManualClock:
    """`now()` for the desk and the dispatcher that only moves when a test says so."""

    def __init__(self, start: datetime) -> None:
        self.t = start

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        self.t = at


# ---- a real headless Chromium (the wall page's tests) ----
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]  # and Chromium's default autoplay policy: what a wall PC's browser does


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no Chromium on this machine: run scripts/install.sh")


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture(autouse=True)
def _fresh_aioice_mdns() -> None:
    """aioice keeps one mDNS resolver per process behind a lock made on the first event loop
    that used it. A site runs one loop; the tests run one per test, so a later test's offer with
    Chromium's mDNS candidates would hit a lock of a dead loop. Start each test without it."""
    from aioice import ice

    ice._mdns.__dict__.clear()
