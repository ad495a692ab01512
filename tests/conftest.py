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
from pantau.local_fleet import LocalFleet, until
from pantau.redis_server import RedisServer, free_port
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


def frames_every(path: Path, step_s: float) -> list[tuple[float, Any]]:
    """(seconds, BGR frame) of a clip, one frame every `step_s` of video time."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames, index = [], 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        if index % round(fps * step_s) == 0:
            frames.append((index / fps, image))
        index += 1
    cap.release()
    return frames


@contextlib.contextmanager
def site_bus(shape: str, tmp_path: Path) -> Iterator[str]:
    """The bus of a running site in `shape`: "memory" for one process, a fresh real
    redis-server for "scaled-out" (the test skips where none is installed)."""
    if shape != "scaled-out":
        yield "memory"
        return
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/install.sh --test installs it)")
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        yield redis.url
    finally:
        redis.stop()


@contextlib.contextmanager
def shaped_site(
    shape: str, tmp_path: Path, config: Callable[[str, int], str], password: str
) -> Iterator[LocalFleet]:
    """A whole site as real processes: `pantau run`, or `pantau server` + worker box-a on
    Redis; `config(bus, web_port)` is its cameras.yaml."""
    with site_bus(shape, tmp_path) as bus:
        web_port = free_port()
        path = tmp_path / "cameras.yaml"
        path.write_text(config(bus, web_port), encoding="utf-8")
        fleet = LocalFleet(tmp_path, path, web_port, {"PANTAU_ADMIN_PASSWORD": password})
        if bus == "memory":
            fleet.spawn("site", "run")
        else:
            fleet.server()
            fleet.worker("box-a")
        try:
            yield fleet
        finally:
            fleet.stop()


async def poll_fleet(fleet: LocalFleet, what: str, check: Callable[[], Any], timeout: float) -> Any:
    """`until`, failing the test (with the processes' logs) when time is up."""
    try:
        return await until(what, check, timeout, fleet)
    except TimeoutError as exc:
        pytest.fail(str(exc))


async def fleet_login(http: Any, fleet: LocalFleet, password: str) -> None:
    """Log `http` (an httpx client on the site) in as admin once the site answers."""

    async def attempt() -> str | None:
        r = await http.post("/api/login", json={"username": "admin", "password": password})
        return r.json()["token"] if r.status_code == 200 else None

    http.headers["Authorization"] = f"Bearer {await poll_fleet(fleet, 'site up', attempt, 90)}"


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


# ---- a loopback server speaking the Telegram Bot API's HTTP protocol ----
class FakeTelegram:
    """Telegram's Bot API on loopback, as aiosmtpd stands in for a mail server: the bot's
    requests are recorded, and the test plays the officers (button presses, replies, photos)
    by queueing updates that getUpdates (long polling) hands out."""

    BOT = {"id": 4242, "is_bot": True, "first_name": "Pantau", "username": "pantau_bot"}

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.photos: dict[int, bytes] = {}  # message id -> the photo the bot sent
        self.outbox: list[dict[str, Any]] = []  # messages the bot sent, as Telegram has them
        self.files: dict[str, bytes] = {}  # file_id -> bytes the bot may download
        self._updates: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._ids = 0
        self.url = ""

    def _next(self) -> int:
        self._ids += 1
        return self._ids

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _file(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(body=self.files[request.match_info["path"]])

    async def _method(self, request: Any) -> Any:
        import json
        import time

        from aiohttp import web

        method = request.match_info["method"]
        form = await request.post()
        fields: dict[str, Any] = {}
        for key, value in form.items():
            if hasattr(value, "file"):
                fields[key] = value.file.read()
            else:
                fields[key] = json.loads(value) if key == "reply_markup" else value
        for key, value in list(fields.items()):  # "attach://<part>": a file sent in the form
            if isinstance(value, str) and value.startswith("attach://"):
                fields[key] = fields.pop(value.removeprefix("attach://"))
        self.calls.append((method, fields))
        result: Any = True
        if method == "getMe":
            result = self.BOT
        elif method == "getUpdates":
            offset = int(fields.get("offset") or 0)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._updates:
                self._new.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), float(fields.get("timeout") or 0))
            result = list(self._updates)
        elif method in ("sendPhoto", "sendMessage"):
            mid = self._next()
            chat = {"id": int(fields["chat_id"]), "type": "private"}
            msg: dict[str, Any] = {"message_id": mid, "date": int(time.time()),
                                   "from": self.BOT, "chat": chat}  # fmt: skip
            if method == "sendPhoto":
                self.photos[mid] = fields["photo"]
                msg["photo"] = [{"file_id": f"sent{mid}", "file_unique_id": "u",
                                 "width": 640, "height": 360}]  # fmt: skip
                msg["caption"] = fields.get("caption", "")
            else:
                msg["text"] = fields.get("text", "")
            if "reply_markup" in fields:
                msg["reply_markup"] = fields["reply_markup"]
            self.outbox.append(msg)
            result = msg
        elif method in ("editMessageCaption", "editMessageText", "editMessageReplyMarkup"):
            result = {"message_id": int(fields["message_id"]), "date": int(time.time()),
                      "chat": {"id": int(fields["chat_id"]), "type": "private"},
                      "text": fields.get("text") or fields.get("caption") or ""}  # fmt: skip
        elif method == "getFile":
            fid = fields["file_id"]
            result = {"file_id": fid, "file_unique_id": fid, "file_size": len(self.files[fid]),
                      "file_path": fid}  # fmt: skip
        return web.json_response({"ok": True, "result": result})

    # ---- the officers ----
    def _push(self, update: dict[str, Any]) -> None:
        update["update_id"] = self._next()
        self._updates.append(update)
        self._new.set()

    @staticmethod
    def person(user_id: int, name: str = "Petugas") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": name}

    def press(self, user_id: int, data: str, message: dict[str, Any] | None) -> str:
        query_id = f"q{self._ids + 1}"
        query: dict[str, Any] = {"id": query_id, "from": self.person(user_id),
                                 "chat_instance": "c1", "data": data}  # fmt: skip
        if message is not None:
            query["message"] = message
        self._push({"callback_query": query})
        return query_id

    def say(self, user_id: int, text: str, reply_to: dict[str, Any] | None = None) -> None:
        import time

        msg: dict[str, Any] = {"message_id": self._next(), "date": int(time.time()),
                               "chat": {"id": user_id, "type": "private"},
                               "from": self.person(user_id), "text": text}  # fmt: skip
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        self._push({"message": msg})

    def send_photo(self, user_id: int, data: bytes, reply_to: dict[str, Any], caption: str) -> None:
        import time

        fid = f"photo{self._next()}"
        self.files[fid] = data
        msg = {"message_id": self._next(), "date": int(time.time()), "caption": caption,
               "chat": {"id": user_id, "type": "private"}, "from": self.person(user_id),
               "photo": [{"file_id": fid, "file_unique_id": fid, "width": 800, "height": 600,
                          "file_size": len(data)}], "reply_to_message": reply_to}  # fmt: skip
        self._push({"message": msg})

    def sent(self, method: str, **match: Any) -> list[dict[str, Any]]:
        return [f for m, f in self.calls if m == method
                and all(str(f.get(k)) == str(v) for k, v in match.items())]  # fmt: skip

    async def wait(self, method: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = self.sent(method, **match)
            if found:
                return found[-1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"the bot did not call {method} {match} in {timeout} s: "
                             f"{[m for m, _ in self.calls]}")  # fmt: skip

    def to(self, chat_id: int) -> list[dict[str, Any]]:
        """Messages the bot sent to a chat, oldest first."""
        return [m for m in self.outbox if m["chat"]["id"] == chat_id]


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()
