"""Serving an ASGI app inside a Pantau process (the wall on the server, media on a worker)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

# Longer than the common clients' idle pool expiry (httpx 5 s, aiohttp 15 s; nginx's own is
# 75 s): the client should be the one to close an idle connection. With uvicorn's default of
# 5 s a client reusing a connection just as the server drops it gets a bare read error on a
# POST it cannot know whether to resend (seen in CI on an alert POST).
KEEP_ALIVE_S = 75


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    tls: tuple[Path, Path] | None = None,
    trusted_proxies: list[str] | None = None,
) -> tuple[QuietServer, asyncio.Task[None], int]:
    """Start serving; returns the server, its task and the port bound (port 0: a free one).
    `tls`: (cert, key) PEM files. `trusted_proxies`: addresses whose X-Forwarded-* headers are
    believed; none by default (uvicorn would trust 127.0.0.1, so a local process could claim
    any address to the login limiter). A bind error is raised here, not lost in the task."""
    server = QuietServer(
        uvicorn.Config(
            app, host=host, port=port, log_config=None, timeout_graceful_shutdown=1,
            ws_ping_interval=20, server_header=False, timeout_keep_alive=KEEP_ALIVE_S,
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=",".join(trusted_proxies or []) or None,
            ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None,
        )
    )  # fmt: skip
    task = asyncio.create_task(server.serve(), name=f"web {host}:{port}")
    while not server.started:
        if task.done():
            await task  # raises the bind error
            raise RuntimeError(f"web server on {host}:{port} did not start")
        await asyncio.sleep(0.05)
    sockets = [s for srv in server.servers for s in srv.sockets]
    return server, task, sockets[0].getsockname()[1] if sockets else port
