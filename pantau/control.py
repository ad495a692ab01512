"""The running process's control socket: how `pantau reload` on the same box asks the running
`pantau run` or `pantau server` to act, and gets its answer back (a signal carries no answer).

A Unix socket in the data directory, mode 0600: only the account that runs Pantau (or root)
can use it, so it needs no password of its own. One JSON line in, one JSON line out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SOCKET_NAME = "pantau.sock"
MAX_REQUEST = 64 * 1024
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


class ControlServer:
    def __init__(self, path: Path, handlers: dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if len(str(self.path)) > 100:  # sun_path holds 108 bytes
            log.warning("control socket not opened: path too long (%s); use SIGHUP", self.path)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a process that was killed
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            await self._server.wait_closed()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            answer = await self._answer(reader)
            writer.write(json.dumps(answer, default=str).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            request = json.loads(line)
        except (TimeoutError, ValueError, asyncio.LimitOverrunError):
            return {"ok": False, "errors": ["not a JSON request line"]}
        if not isinstance(request, dict):
            return {"ok": False, "errors": ["not a JSON object"]}
        handler = self.handlers.get(str(request.get("command")))
        if handler is None:
            return {"ok": False, "errors": [f"unknown command {request.get('command')!r}"]}
        try:
            return await handler(request)
        except Exception as exc:  # the process goes on; the caller hears what broke
            log.exception("control command %s failed", request.get("command"))
            return {"ok": False, "errors": [f"{type(exc).__name__}: {exc}"]}


def request(path: Path, command: str, timeout_s: float = 120.0, **fields: Any) -> dict[str, Any]:
    """For the CLI (no event loop): send one command, wait for its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        sock.sendall(json.dumps({"command": command, **fields}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ValueError("the running process answered something that is not an object")
    return answer
