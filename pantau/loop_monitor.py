"""How late the event loop runs what is due: the one number that says whether something
blocking (decode, inference, SQLite, a slow handler) slipped onto the loop.

A task sleeps `interval_s` and measures how much later than asked it woke; the last minute of
those delays gives p50/p99/max for /api/health and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque


class LoopMonitor:
    def __init__(self, interval_s: float = 0.1, window_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self._lags: deque[tuple[float, float]] = deque()  # (monotonic, seconds late)
        self.window_s = window_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval_s)
            now = time.monotonic()
            self._lags.append((now, max(0.0, now - asked - self.interval_s)))
            while self._lags and now - self._lags[0][0] > self.window_s:
                self._lags.popleft()

    def stats(self) -> dict[str, float]:
        """Lag over the last window, in milliseconds."""
        lags = sorted(lag for _, lag in self._lags)
        if not lags:
            return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "samples": 0}

        def pct(q: float) -> float:
            return round(lags[min(len(lags) - 1, int(q * len(lags)))] * 1000, 2)

        return {"p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(lags[-1] * 1000, 2),
                "samples": len(lags)}  # fmt: skip
