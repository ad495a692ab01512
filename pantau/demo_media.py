"""Footage for the demo and tests: the shared CCTV clips, or a clip made from ultralytics' images.

Clips are re-encoded ONCE into a cache as camera-like H.264 (keyframe every 2 s, no B-frames),
so a viewer joining the loopback stream gets a picture within about two seconds. Serving them
afterwards copies packets only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

BUILTIN = "builtin"
KEYFRAME_S = 2


def find_assets() -> Path | None:
    """The shared test assets: $PANTAU_ASSETS, or ../shared/assets beside the checkout."""
    explicit = os.environ.get("PANTAU_ASSETS")
    candidates = [Path(explicit)] if explicit else []
    candidates += [
        Path.cwd().parent / "shared" / "assets",
        Path(__file__).resolve().parents[2] / "shared" / "assets",
    ]
    for candidate in candidates:
        if (candidate / "video").is_dir():
            return candidate
    return None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pantau" / "demo"


def ffmpeg_binary() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise RuntimeError("ffmpeg not found (apt-get install ffmpeg)")
    return found


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def _x264_args(fps: float) -> list[str]:
    gop = max(1, round(fps * KEYFRAME_S))
    return [
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "main",
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-bf",
        "0",
        "-movflags",
        "+faststart",
    ]


def camera_like(source: Path, cache_dir: Path) -> Path:
    """Re-encode a clip once into camera-like H.264 MP4 (cached by content hash)."""
    out = cache_dir / f"{source.stem}-{_digest(source)}-g{KEYFRAME_S}.mp4"
    if out.exists():
        return out
    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    cap.release()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".part{os.getpid()}.mp4")  # two processes may build the same clip
    cmd = [ffmpeg_binary(), "-v", "error", "-y", "-i", str(source), *_x264_args(fps), str(tmp)]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, timeout=600)
    tmp.replace(out)
    log.info("demo clip %s prepared as %s", source.name, out)
    return out


def _ultralytics_images() -> list[Path]:
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    images = [assets / "zidane.jpg", assets / "bus.jpg"]
    missing = [p for p in images if not p.exists()]
    if missing:
        raise RuntimeError(f"ultralytics sample images missing: {missing}")
    return images


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Letterbox an image into width x height on a dark background."""
    canvas = np.full((height, width, 3), 24, dtype=np.uint8)
    scale = min(width / image.shape[1], height / image.shape[0])
    w, h = int(image.shape[1] * scale), int(image.shape[0] * scale)
    resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    x, y = (width - w) // 2, (height - h) // 2
    canvas[y : y + h, x : x + w] = resized
    return canvas


def builtin_clip(cache_dir: Path, fps: int = 10) -> Path:
    """A 24 s loop with real people: empty scene, zidane.jpg (2 persons), bus.jpg (4 persons).

    The slow zoom makes it a moving picture; the empty part lets incidents close again.
    """
    out = cache_dir / f"builtin-people-{fps}fps-g{KEYFRAME_S}.mp4"
    if out.exists():
        return out
    width, height = 960, 540
    zidane, bus = (np.asarray(cv2.imread(str(p)), dtype=np.uint8) for p in _ultralytics_images())
    empty = np.full((height, width, 3), 40, dtype=np.uint8)
    cv2.putText(empty, "Pantau demo", (60, 280), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (90, 90, 90), 3)
    scenes = [(empty, 6), (_fit(zidane, width, height), 8), (_fit(bus, width, height), 10)]
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".part{os.getpid()}.mp4")  # two processes may build the same clip
    cmd = [
        ffmpeg_binary(),
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "-",
        *_x264_args(fps),
        str(tmp),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for image, seconds in scenes:
        frames = seconds * fps
        for i in range(frames):
            zoom = 1.0 + 0.06 * i / frames
            matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0, zoom)
            proc.stdin.write(cv2.warpAffine(image, matrix, (width, height)).tobytes())
    proc.stdin.close()
    if proc.wait(timeout=600) != 0:
        raise RuntimeError("ffmpeg failed to compose the builtin demo clip")
    tmp.replace(out)
    log.info("builtin demo clip composed at %s", out)
    return out


def resolve_clip(clip: str, assets: Path | None, cache_dir: Path) -> Path:
    """The camera-like file to stream for a demo clip name (falls back to the builtin clip)."""
    if clip != BUILTIN:
        for candidate in ([assets / "video" / clip] if assets else []) + [Path(clip)]:
            if candidate.is_file():
                return camera_like(candidate, cache_dir)
        log.warning(
            "demo clip %s not found (no ../shared/assets here?): using the builtin clip", clip
        )
    return builtin_clip(cache_dir)
