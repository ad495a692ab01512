"""Owns the loopback RTSP server process (GStreamer, see gst_rtsp_serve.py) for demo and tests."""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

log = logging.getLogger(__name__)

SCRIPT = Path(__file__).with_name("gst_rtsp_serve.py")


def gst_python() -> str:
    """The interpreter that has GStreamer's introspection bindings (Debian's python3-gi)."""
    explicit = os.environ.get("PANTAU_GST_PYTHON")
    if explicit:
        return explicit
    for candidate in ("/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("no python3 with GStreamer bindings found (apt-get install python3-gi)")


class RtspServerError(RuntimeError):
    pass


class RtspTestServer:
    """A real RTSP server on loopback that loops H.264 files as live camera streams."""

    def __init__(
        self,
        streams: dict[str, Path],
        port: int = 0,
        host: str = "127.0.0.1",
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.streams = streams
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.auth = auth
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_lines: deque[str] = deque(maxlen=20)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def url(self, path: str, with_auth: bool = True) -> str:
        if self.port is None:
            raise RtspServerError("server is not running")
        cred = f"{self.auth[0]}:{self.auth[1]}@" if self.auth and with_auth else ""
        return f"rtsp://{cred}{self.host}:{self.port}/{path}"

    def start(self, timeout: float = 20.0) -> RtspTestServer:
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the process. Call it from a long-lived thread: the child is bound to the
        spawning thread's life (PR_SET_PDEATHSIG) so it can never outlive a killed parent."""
        args = [gst_python(), str(SCRIPT), "--host", self.host, "--port", str(self.requested_port)]
        for path, file in self.streams.items():
            args += ["--stream", f"{path}={file}"]
        if self.auth:
            args += ["--auth", f"{self.auth[0]}:{self.auth[1]}"]
        self._proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert self._proc.stdout is not None
        # Drain stderr for the server's whole life: a full pipe would block GStreamer.
        threading.Thread(
            target=self._drain, args=(self._proc,), daemon=True, name="rtsp-stderr"
        ).start()

    def wait_ready(self, timeout: float = 20.0) -> RtspTestServer:
        """Block until the server listens (call it off the event loop)."""
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._proc.stdout], [], [], 0.2)
            if ready:
                line = self._proc.stdout.readline()
                break
            if self._proc.poll() is not None:
                break
        if not line.startswith(b"READY "):
            err = self._stderr_tail()
            self.stop()
            raise RtspServerError(f"RTSP server did not start: {err or 'timed out'}")
        self.port = int(line.split()[1])
        log.info(
            "rtsp server pid=%d listening on %s:%d streams=%s",
            self._proc.pid,
            self.host,
            self.port,
            ",".join(self.streams),
        )
        return self

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            text = raw.decode(errors="replace").rstrip()
            if text:
                self._stderr_lines.append(text)
                log.debug("rtsp server: %s", text)

    def _stderr_tail(self) -> str:
        if self._proc is not None:
            try:
                self._proc.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
        return " | ".join(self._stderr_lines)[-500:]

    def stop(self, timeout: float = 3.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        self.port = None

    def __enter__(self) -> RtspTestServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
