"""A process's resident memory by kind of mapping, from /proc/PID/smaps.

RSS that grows while malloc's in-use figure stays level is somewhere else: in Python's own
small-object arenas (pymalloc mmaps 1 MiB arenas itself, so mallinfo never sees them), in
buffers a native library maps directly, in thread stacks, or in file pages (shared libraries
and models paged in as code paths are first taken, which is not a leak: bounded by the files'
sizes). This names which.
"""

from __future__ import annotations

from pathlib import Path

ARENA_ALIGN = 64 * 1024 * 1024  # glibc's HEAP_MAX_SIZE on 64-bit: a thread arena's reservation
KINDS = ("heap", "malloc_arenas", "stacks", "anon_other", "files", "other")


def _vmas(pid: int) -> list[dict[str, object]]:
    vmas: list[dict[str, object]] = []
    current: dict[str, object] | None = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(None, 5)
        if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            start, end = (int(x, 16) for x in head[0].split("-"))
            current = {"start": start, "end": end, "perms": head[1],
                       "path": head[5] if len(head) > 5 else "", "rss": 0, "anon": 0}  # fmt: skip
            vmas.append(current)
        elif current is not None and head[0] in ("Rss:", "Anonymous:"):
            current["rss" if head[0] == "Rss:" else "anon"] = int(head[1]) * 1024
    return vmas


def _kind(vmas: list[dict[str, object]], i: int) -> str:
    v = vmas[i]
    path = str(v["path"])
    if path == "[heap]":
        return "heap"
    if path == "[stack]":
        return "stacks"
    if path.startswith("["):
        return "other"
    if path:
        return "files"
    start, end = int(str(v["start"])), int(str(v["end"]))
    nxt = vmas[i + 1] if i + 1 < len(vmas) else None
    prev = vmas[i - 1] if i else None
    # A thread arena: its usable part starts on the 64 MiB boundary and the rest of the
    # reservation follows it, inaccessible.
    if start % ARENA_ALIGN == 0 and nxt is not None and nxt["start"] == end and not nxt["path"] \
            and str(nxt["perms"]).startswith("---"):  # fmt: skip
        return "malloc_arenas"
    # A thread stack: right above its inaccessible guard page.
    if prev is not None and prev["end"] == start and not prev["path"] \
            and str(prev["perms"]).startswith("---") \
            and int(str(prev["end"])) - int(str(prev["start"])) <= 64 * 1024:  # fmt: skip
        return "stacks"
    return "anon_other"


def memory_map(pid: int, top_files: int = 0) -> dict[str, object]:
    """RSS in MB per kind (see KINDS), anonymous mappings counted, and optionally the files
    holding the most resident pages."""
    vmas = _vmas(pid)
    rss = dict.fromkeys(KINDS, 0)
    files: dict[str, int] = {}
    anon_count = 0
    for i, v in enumerate(vmas):
        kind = _kind(vmas, i)
        rss[kind] += int(str(v["rss"]))
        if kind == "anon_other":
            anon_count += 1
        if kind == "files":
            files[str(v["path"])] = files.get(str(v["path"]), 0) + int(str(v["rss"]))
    out: dict[str, object] = {f"{k}_mb": round(b / 1e6, 2) for k, b in rss.items()}
    out["anon_other_mappings"] = anon_count
    if top_files:
        biggest = sorted(files.items(), key=lambda kv: -kv[1])[:top_files]
        out["top_files_mb"] = {Path(p).name: round(b / 1e6, 2) for p, b in biggest}
    return out
