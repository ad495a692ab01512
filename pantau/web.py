"""Serving an ASGI app inside a Pantau process (the wall on the server, media on a worker)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: FastAPI, host: str, port: int) -> tuple[QuietServer, asyncio.Task[None], int]:
    """Start serving; returns the server, its task and the port bound (port 0: a free one).
    A bind error is raised here, not lost in the task."""
    server = QuietServer(
        uvicorn.Config(
            app, host=host, port=port, log_config=None, timeout_graceful_shutdown=1,
            ws_ping_interval=20,
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
