"""Keeps the C heap from hoarding memory the process already freed.

Decoded frames are megabytes each and are freed at frame rate by many threads. glibc's malloc
raises its mmap threshold after the first such free, so from then on frames come from the
per-thread arenas, and memory freed there stays with the process: measured in the soak run,
malloc held 220 MB free after 3 minutes and 310 MB after 6, while what was in use stayed at
370 MB (RSS grew with it). Two remedies, both standard for long-running glibc services: fewer
arenas (M_ARENA_MAX, before the threads start) and a periodic malloc_trim(0), which hands the
free pages of every arena back to the kernel; and a fixed mmap threshold, so that frames never
enter the arenas at all (the first hour with the two remedies alone: +27 MB/h, the freed-but-
kept part growing 50 -> 85 MB). Neither exists off glibc; there this is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc malloc.h
M_MMAP_THRESHOLD = -3
# Buffers from this size up (a 480x360 BGR frame is 518 KB, a 720p one 2.7 MB) are mmapped and
# go back to the kernel when freed, instead of fragmenting the arenas: a fixed threshold also
# stops glibc from raising it after the first free.
MMAP_THRESHOLD = 256 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]  # fmt: skip


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        libc.malloc_trim.restype = ctypes.c_int
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def _sqlite_status() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """sqlite3_status64 of the SQLite library Python's sqlite3 module runs on (loaded already:
    dlopen of the module finds it again, linked in or as libsqlite3)."""
    try:
        import _sqlite3

        status = ctypes.CDLL(_sqlite3.__file__).sqlite3_status64
    except (ImportError, OSError, AttributeError):
        return None
    status.restype = ctypes.c_int
    status.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int64),
                       ctypes.POINTER(ctypes.c_int64), ctypes.c_int]  # fmt: skip
    return status


_SQLITE_STATUS = _sqlite_status()
SQLITE_STATUS_MEMORY_USED = 0  # sqlite3.h: every connection's page cache, schema and statements


def limit_arenas(count: int | None = None) -> bool:
    """Cap malloc's arenas and fix its mmap threshold (call before threads start;
    MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ in the environment win)."""
    if _LIBC is None:
        return False
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    count = count or max(2, min(4, os.cpu_count() or 2))
    return bool(_LIBC.mallopt(M_ARENA_MAX, count))


def mallinfo() -> dict[str, float]:
    """glibc's own view of the heap, in MB; empty where there is no glibc."""
    if _LIBC is None:
        return {}
    info = _LIBC.mallinfo2()
    return {
        "malloc_in_use_mb": round(info.uordblks / 1e6, 1),
        "malloc_free_kept_mb": round(info.fordblks / 1e6, 1),
        "malloc_mmap_mb": round(info.hblkhd / 1e6, 1),
    }


def sqlite_memory_mb() -> float | None:
    """What SQLite holds in this process (all connections), in MB; None where unknown."""
    if _SQLITE_STATUS is None:
        return None
    current, highest = ctypes.c_int64(0), ctypes.c_int64(0)
    if _SQLITE_STATUS(SQLITE_STATUS_MEMORY_USED, current, highest, 0) != 0:
        return None
    return round(current.value / 1e6, 2)


def rss_mb() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path("/proc/self/statm").read_text().split()
        return round(int(fields[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)
    return 0.0


class HeapKeeper:
    """Trims the heap every `every_s` (in a thread: it takes each arena's lock in turn)."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self.trims = 0
        self.released_mb = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if _LIBC is not None:
            self._task = asyncio.create_task(self._run(), name="heap-trim")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await asyncio.to_thread(self.trim)

    def trim(self) -> None:
        assert _LIBC is not None
        before = rss_mb()
        started = time.monotonic()
        _LIBC.malloc_trim(0)
        self.trims += 1
        self.released_mb += max(0.0, before - rss_mb())
        log.debug("heap trimmed in %.1f ms", (time.monotonic() - started) * 1000)

    def state(self) -> dict[str, float | None]:
        # Python's own objects live in pymalloc arenas that mallinfo does not see: their
        # count of allocated blocks says whether growth is Python's or native.
        return {"rss_mb": rss_mb(), **mallinfo(), "sqlite_mb": sqlite_memory_mb(),
                "python_blocks": sys.getallocatedblocks(), "trims": self.trims,
                "trim_released_mb": round(self.released_mb, 1)}  # fmt: skip
