"""A local redis-server child process on a loopback port, for tests, benchmarks and trials.

Production sites run their own Redis; this starts Debian's `redis-server` with AOF on
(`appendfsync always`: a write that returned is on disk) in a folder of its own, and can kill and
restart it on the same port and data to show that no accepted event is lost.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        fsync: str = "always",
        password: str | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(
                "redis-server is not installed (Debian: apt install redis-server)"
            )
        self.binary = binary
        self.data_dir = data_dir
        self.port = port or free_port()
        self.fsync = fsync
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.data_dir), "--save", "", "--appendonly", "yes",
                "--appendfsync", self.fsync, "--protected-mode", "yes", "--daemonize", "no",
                "--logfile", str(self.data_dir / "redis.log"),
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {log}")
            if self._pong():
                return
            time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} did not answer in {timeout}s")

    def _pong(self) -> bool:
        client = redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )  # fmt: skip
        try:
            return bool(client.ping())
        except (OSError, redis.RedisError):
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown save, only what AOF already has on disk survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
