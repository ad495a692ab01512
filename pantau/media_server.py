"""A worker's media endpoint: stills, MJPEG, WebRTC answers and clips of the cameras it holds,
and frames of what it recorded (labelling).

Browsers never talk to it. The server (which logs users in) signs each request with the site's
media key from Redis (HMAC-SHA256 over method, path and an expiry a minute ahead) and proxies
stills, MJPEG and clips; for WebRTC it relays only the SDP, so the video itself flows from the
worker that captures the camera straight to the browser, and the camera sees one session.
An unsigned, expired or altered request gets 401 and nothing else.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures.

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import cv2
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from pantau.recorded_still import frame_at
from wallboard.live import BOUNDARY, LiveFrames
from wallboard.webrtc import LiveError, LiveVideo

HEADER = "X-Pantau-Media"
VALID_S = 60


def sign(secret: bytes, method: str, path: str, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + VALID_S)
    mac = hmac.new(secret, f"{method} {path} {expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def verify(secret: bytes, method: str, path: str, token: str | None) -> bool:
    if not token or "." not in token:
        return False
    expires, _, mac = token.partition(".")
    if not expires.isdigit() or int(expires) < time.time():
        return False
    want = hmac.new(secret, f"{method} {path} {expires}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, mac)


class SdpMessage(BaseModel):
    sdp: str = Field(min_length=10, max_length=100_000)
    type: Literal["offer", "answer"] = "offer"


def media_app(
    secret: bytes,
    worker: str,
    stills: LiveFrames,
    video: LiveVideo,
    holds: Callable[[str], bool],
    clip_dir: Path,
    mjpeg_fps: float = 5.0,
    recordings_dir: Path | None = None,
) -> FastAPI:
    app = FastAPI(title=f"Pantau worker {worker} media", openapi_url=None)

    @app.middleware("http")
    async def signed_only(request: Request, call_next):  # type: ignore[no-untyped-def]
        token = request.headers.get(HEADER)
        if not verify(secret, request.method, request.url.path, token):
            return Response("media requests must be signed by the server", status_code=401)
        return await call_next(request)

    def held(camera_id: str) -> None:
        if not holds(camera_id):
            raise HTTPException(404, f"camera {camera_id!r} is not on worker {worker}")

    @app.get("/media/cameras/{camera_id}/frame.jpg")
    async def frame(camera_id: str) -> Response:
        held(camera_id)
        got = await stills.jpeg(camera_id)
        if got is None:
            raise HTTPException(503, "no frame from this camera yet")
        return Response(got[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/media/cameras/{camera_id}/mjpeg")
    async def mjpeg(
        camera_id: str, fps: Annotated[float, Query(ge=0, le=15)] = 0
    ) -> StreamingResponse:
        held(camera_id)
        return StreamingResponse(
            stills.mjpeg(camera_id, fps or mjpeg_fps),
            media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        )

    @app.post("/media/cameras/{camera_id}/webrtc")
    async def webrtc(
        camera_id: str,
        offer: SdpMessage,
        x_pantau_user: Annotated[str, Header()] = "",
    ) -> SdpMessage:
        held(camera_id)
        try:
            sdp = await video.answer(camera_id, offer.sdp, x_pantau_user)
        except LiveError as exc:
            raise HTTPException(exc.status, exc.reason) from exc
        return SdpMessage(sdp=sdp, type="answer")

    @app.get("/media/cameras/{camera_id}/recorded.jpg")
    async def recorded(camera_id: str, at: datetime) -> Response:
        """A frame of this box's recordings of the camera at `at` (labelling from recordings):
        whether or not the box holds the camera now."""
        if recordings_dir is None:
            raise HTTPException(404, f"worker {worker} records nothing")
        if at.tzinfo is None:
            raise HTTPException(422, "at needs a time zone")
        try:
            image = await asyncio.to_thread(frame_at, recordings_dir, camera_id, at)
        except FileNotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise HTTPException(500, "the frame could not be encoded")
        return Response(jpeg.tobytes(), media_type="image/jpeg")

    @app.get("/media/clips/{name}")
    async def clip(name: str) -> FileResponse:
        path = (clip_dir / name).resolve()
        if path.parent != clip_dir.resolve() or not path.is_file():
            raise HTTPException(404, f"no clip {name!r} on worker {worker}")
        return FileResponse(path, media_type="video/mp4")

    @app.get("/media/health")
    async def health() -> dict[str, object]:
        return {"worker": worker, "live_video": video.stats()}

    return app
