"""Live tiles: MJPEG made from frames that ingest already decodes (no extra camera session).

The wall sees cameras only through the narrow `FrameSource` protocol. Each camera's newest
frame is encoded to JPEG at most once per sequence number, whatever the number of viewers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

BOUNDARY = "pantauframe"


class FrameSource(Protocol):
    def latest_image(self, camera_id: str) -> tuple[int, npt.NDArray[np.uint8]] | None:
        """(sequence number, BGR image) of the camera's newest decoded frame, if any."""

    def watched(self, camera_id: str) -> None:
        """Someone asks for the camera's picture now (a quiet camera that only decodes
        keyframes goes back to every frame while it is watched)."""


class LiveFrames:
    def __init__(self, source: FrameSource, max_width: int = 960, quality: int = 75) -> None:
        self._source = source
        self._max_width = max_width
        self._quality = quality
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, bytes]] = {}

    def _encode(self, camera_id: str) -> tuple[int, bytes] | None:
        self._source.watched(camera_id)
        got = self._source.latest_image(camera_id)
        if got is None:
            return None
        seq, image = got
        with self._lock:
            cached = self._cache.get(camera_id)
        if cached is not None and cached[0] == seq:
            return cached
        height, width = image.shape[:2]
        if width > self._max_width:
            scale = self._max_width / width
            image = np.asarray(
                cv2.resize(
                    image, (self._max_width, int(height * scale)), interpolation=cv2.INTER_AREA
                ),
                dtype=np.uint8,
            )
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
        if not ok:
            return None
        encoded = (seq, data.tobytes())
        with self._lock:
            self._cache[camera_id] = encoded
        return encoded

    async def jpeg(self, camera_id: str) -> tuple[int, bytes] | None:
        return await asyncio.to_thread(self._encode, camera_id)

    async def mjpeg(self, camera_id: str, fps: float) -> AsyncIterator[bytes]:
        period = 1.0 / fps
        last_seq = -1
        while True:
            got = await self.jpeg(camera_id)
            if got is not None and got[0] != last_seq:
                last_seq, data = got
                yield (
                    (
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n"
                    ).encode()
                    + data
                    + b"\r\n"
                )
            await asyncio.sleep(period)
