"""Incident clips: concatenate and trim recorded segments without re-encoding.

The result is one MP4 with H.264 and `+faststart`, so a browser plays it while downloading.
Cuts land on keyframes (stream copy cannot cut between them): a clip may start up to one
keyframe interval earlier than asked, never later.
"""

from __future__ import annotations

import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

from ingest.segments import Segment


class ClipError(RuntimeError):
    pass


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


def concat_list(segments: list[Segment], start: datetime, end: datetime) -> str:
    lines = ["ffconcat version 1.0"]
    for i, seg in enumerate(segments):
        lines.append(f"file {_quote(seg.path.resolve())}")
        if i == 0 and start > seg.start_at:
            lines.append(f"inpoint {(start - seg.start_at).total_seconds():.3f}")
        if i == len(segments) - 1 and end < seg.end_at:
            lines.append(f"outpoint {(end - seg.start_at).total_seconds():.3f}")
    return "\n".join(lines) + "\n"


def cut_clip(
    ffmpeg: str,
    segments: list[Segment],
    start: datetime,
    end: datetime,
    out: Path,
    timeout_s: float = 120,
) -> Path:
    """Blocking: write `out` from the segments covering [start, end]. Run it in a thread."""
    if not segments:
        raise ClipError("no recorded segments cover the requested time")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".part.mp4")
    with tempfile.NamedTemporaryFile("w", suffix=".ffconcat", delete=False) as fh:
        fh.write(concat_list(segments, start, end))
        listing = Path(fh.name)
    try:
        result = subprocess.run(
            [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
             "-f", "concat", "-safe", "0", "-i", str(listing),
             "-map", "0:v:0", "-c", "copy", "-movflags", "+faststart", str(tmp)],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )  # fmt: skip
    finally:
        listing.unlink(missing_ok=True)
    if result.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise ClipError(f"ffmpeg could not cut the clip: {result.stderr.strip()[-300:]}")
    tmp.replace(out)
    return out
