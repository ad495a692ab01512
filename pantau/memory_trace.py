"""Where memory goes in a long run: an opt-in trace for soak runs and for a site that reports
a growing process (PANTAU_MEMORY_TRACE=/path/trace.jsonl).

Every `every_s` it appends one JSON line: the RSS, what Python's allocator traced (tracemalloc),
what glibc's malloc holds (mallinfo2: in use, free but kept, mmapped), and the source lines whose
traced memory grew most since the first line. RSS rising with the traced total flat points at
native code (codec, inference runtime) or at allocator fragmentation; both rising, at Python.
Tracing costs CPU and memory, so it is off unless asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

from pantau.heap import mallinfo, rss_mb

log = logging.getLogger(__name__)


class MemoryTrace:
    def __init__(self, path: Path, every_s: float = 300.0, top: int = 25) -> None:
        self.path = path
        self.every_s = every_s
        self.top = top
        self._baseline: tracemalloc.Snapshot | None = None
        self._task: asyncio.Task[None] | None = None
        self._t0 = time.monotonic()
        self._frames = 1

    @classmethod
    def from_env(cls) -> MemoryTrace | None:
        path = os.environ.get("PANTAU_MEMORY_TRACE")
        if not path:
            return None
        every = float(os.environ.get("PANTAU_MEMORY_TRACE_EVERY", "300"))
        return cls(Path(path), every_s=every)

    async def start(self) -> None:
        self._frames = max(1, int(os.environ.get("PANTAU_MEMORY_TRACE_FRAMES", "1")))
        tracemalloc.start(self._frames)
        self._t0 = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="memory-trace")
        log.warning("memory trace on: %s every %.0f s (costs CPU and memory)", self.path,
                    self.every_s)  # fmt: skip

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        tracemalloc.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            # A snapshot of a large heap takes seconds: never on the loop.
            line = await asyncio.to_thread(self._line)
            with self.path.open("a") as f:
                f.write(json.dumps(line) + "\n")

    def _line(self) -> dict[str, Any]:
        snap = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(False, tracemalloc.__file__),))  # fmt: skip
        current, peak = tracemalloc.get_traced_memory()
        line: dict[str, Any] = {
            "t_min": round((time.monotonic() - self._t0) / 60, 2),
            "rss_mb": rss_mb(),
            "traced_mb": current / 1e6,
            "traced_peak_mb": peak / 1e6,
            **mallinfo(),
        }
        if self._baseline is None:
            self._baseline = snap
            line["top"] = [
                {"where": str(s.traceback[0]), "mb": s.size / 1e6, "count": s.count}
                for s in snap.statistics("lineno")[: self.top]
            ]
        else:
            # With deeper tracebacks, group by the whole stack: the line that allocates (a dict
            # insert, a list append) says little, its callers name the holder.
            key = "traceback" if self._frames > 1 else "lineno"
            line["grew"] = [
                {"where": str(d.traceback[-1]), "mb": d.size / 1e6, "diff_mb": d.size_diff / 1e6,
                 "count_diff": d.count_diff,
                 **({"stack": [str(f) for f in d.traceback]} if self._frames > 1 else {})}
                for d in snap.compare_to(self._baseline, key)[: self.top]
            ]  # fmt: skip
            # Growth spread over many stacks adds up per file: the module that holds it.
            line["grew_by_file"] = [
                {"file": str(d.traceback[-1].filename), "diff_mb": d.size_diff / 1e6,
                 "count_diff": d.count_diff}
                for d in snap.compare_to(self._baseline, "filename")[: self.top]
            ]  # fmt: skip
        return line
