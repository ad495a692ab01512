"""Files written whole or not at all: a crash mid-write leaves the old file (or none), never
half of one, because the bytes go to a temporary file that then replaces the target."""

from __future__ import annotations

from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
