"""A scaled-out site on this one machine, for tests and benchmarks: real `pantau server` and
`pantau worker` processes on one cameras.yaml, each logging to its own file. What they talk
to (redis-server, the RTSP cameras) the caller starts; killing and pausing are plain signals
on `procs`, as an operator's `kill -9` would be."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from pantau.redis_server import free_port

REPO = Path(__file__).resolve().parents[1]


class LocalFleet:
    def __init__(self, folder: Path, config: Path, web_port: int, env: dict[str, str]) -> None:
        self.folder, self.config, self.web_port = folder, config, web_port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {**os.environ, "YOLO_OFFLINE": "1", **env}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """`python -m pantau.cli <args> <config>`, logging to <folder>/<name>.log (appended,
        so a restarted worker keeps the history of its earlier lives)."""
        with open(self.folder / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pantau.cli", *args, str(self.config)],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.procs[name] = proc
        return proc

    def server(self) -> subprocess.Popen[bytes]:
        return self.spawn("server", "server")

    def worker(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        listen = f"127.0.0.1:{free_port()}"
        return self.spawn(name, "worker", "--name", name, "--media-listen", listen, *extra)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a paused one cannot hear SIGTERM
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}"
            for p in sorted(self.folder.glob("*.log"))
        )


def holders(workers: list[dict[str, Any]]) -> dict[str, str]:
    """camera -> the running worker that reports it online with frames (/api/workers)."""
    return {
        c["camera_id"]: w["name"]
        for w in workers
        if w["state"] == "running"
        for c in w["cameras"]
        if c["state"] == "online" and c["input_fps"] > 0
    }


async def until(
    what: str, check: Callable[[], Awaitable[Any]], timeout: float, fleet: LocalFleet,
    every: float = 0.25,
) -> Any:  # fmt: skip
    """Poll `check` (an HTTP error counts as "not yet") until it is truthy; TimeoutError with
    the processes' logs otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = await check()
        except httpx.HTTPError:
            got = None
        if got:
            return got
        await asyncio.sleep(every)
    raise TimeoutError(f"{what}: not within {timeout} s\n{fleet.logs(1500)}")
