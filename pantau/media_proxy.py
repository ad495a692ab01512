"""The server's way to a camera's media when workers capture it (scaled out).

The owner comes from the camera's lease, its address from the worker's heartbeat; every
request is signed (pantau.media_server). Stills, MJPEG and clips are proxied through the server,
so browsers never reach a worker; WebRTC only has its SDP relayed, and the video flows from the
worker to the browser. A camera nobody holds, or a worker that is down, is a 503 with the
reason, at once (short timeouts), never a hanging request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import numpy.typing as npt
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from events.model import ClipRef, WorkerState, WorkerStatus
from pantau.fleet import Registry
from pantau.leases import CameraLeases
from pantau.media_server import HEADER, sign
from wallboard.webrtc import LiveError

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=2.0)
WORKERS_CACHE_S = 1.0


class RemoteMedia:
    def __init__(self, leases: CameraLeases, registry: Registry, secret: bytes) -> None:
        self.leases = leases
        self.registry = registry
        self.secret = secret
        self.client = httpx.AsyncClient(timeout=TIMEOUT)
        self._workers: dict[str, WorkerStatus] = {}
        self._workers_at = 0.0

    async def workers(self) -> dict[str, WorkerStatus]:
        if time.monotonic() - self._workers_at > WORKERS_CACHE_S:
            self._workers = {w.name: w for w in await self.registry.all()}
            self._workers_at = time.monotonic()
        return self._workers

    async def _worker_of(self, camera_id: str) -> WorkerStatus:
        owner = (await self.leases.owners([camera_id]))[camera_id]
        if owner is None:
            raise LiveError(503, f"camera {camera_id!r} is not running on any worker now")
        return await self._running(owner.worker, f"camera {camera_id!r}")

    async def _running(self, name: str, what: str) -> WorkerStatus:
        worker = (await self.workers()).get(name)
        if worker is None or worker.state != WorkerState.RUNNING or not worker.media_url:
            raise LiveError(503, f"{what} is on worker {name}, which is not running")
        return worker

    def _headers(self, method: str, path: str) -> dict[str, str]:
        return {HEADER: sign(self.secret, method, path)}

    async def _get(self, worker: WorkerStatus, path: str) -> httpx.Response:
        try:
            return await self.client.get(
                f"{worker.media_url}{path}", headers=self._headers("GET", path)
            )
        except httpx.HTTPError as exc:
            raise LiveError(503, f"worker {worker.name} does not answer: {exc}") from exc

    # ---- the wall's StillSource ----------------------------------------------------------
    async def jpeg(self, camera_id: str) -> tuple[int, bytes] | None:
        worker = await self._worker_of(camera_id)
        reply = await self._get(worker, f"/media/cameras/{camera_id}/frame.jpg")
        if reply.status_code != 200:
            return None
        return 0, reply.content

    async def mjpeg(self, camera_id: str, fps: float) -> AsyncIterator[bytes]:
        worker = await self._worker_of(camera_id)
        path = f"/media/cameras/{camera_id}/mjpeg"
        url = f"{worker.media_url}{path}?fps={fps}"
        try:
            async with self.client.stream(
                "GET", url, headers=self._headers("GET", path), timeout=httpx.Timeout(None)
            ) as reply:
                if reply.status_code != 200:
                    return
                async for chunk in reply.aiter_raw():
                    yield chunk
        except httpx.HTTPError as exc:
            log.info("camera=%s mjpeg from worker=%s ended: %s", camera_id, worker.name, exc)

    # ---- the wall's VideoSource ----------------------------------------------------------
    async def answer(self, camera_id: str, offer_sdp: str, user: str = "") -> str:
        worker = await self._worker_of(camera_id)
        path = f"/media/cameras/{camera_id}/webrtc"
        try:
            reply = await self.client.post(
                f"{worker.media_url}{path}",
                json={"sdp": offer_sdp, "type": "offer"},
                headers={**self._headers("POST", path), "X-Pantau-User": user},
                timeout=httpx.Timeout(30.0, connect=2.0),
            )
        except httpx.HTTPError as exc:
            raise LiveError(503, f"worker {worker.name} does not answer: {exc}") from exc
        if reply.status_code != 200:
            raise LiveError(reply.status_code, _reason(reply))
        return str(reply.json()["sdp"])

    def stats(self) -> dict[str, object]:
        return {"relayed_by": "workers"}

    async def close(self) -> None:
        await self.client.aclose()

    # ---- recordings -----------------------------------------------------------------------
    async def recorded(self, camera_id: str, at: datetime) -> npt.NDArray[np.uint8]:
        """A frame of the camera's recordings at `at`, from whichever worker box recorded it
        then (a camera moves between boxes: the one holding it now is asked first).
        FileNotFoundError when every running worker says it has none; LiveError 503 when one
        that might have it does not answer."""
        owner = (await self.leases.owners([camera_id]))[camera_id]
        running = [w for w in (await self.workers()).values()
                   if w.state == WorkerState.RUNNING and w.media_url]  # fmt: skip
        running.sort(key=lambda w: (owner is None or w.name != owner.worker, w.name))
        path = f"/media/cameras/{camera_id}/recorded.jpg"
        unanswered: list[str] = []
        for worker in running:
            try:
                reply = await self.client.get(f"{worker.media_url}{path}",
                                              params={"at": at.isoformat()},
                                              headers=self._headers("GET", path))  # fmt: skip
            except httpx.HTTPError as exc:
                unanswered.append(f"{worker.name} ({exc})")
                continue
            if reply.status_code == 200:
                image = cv2.imdecode(np.frombuffer(reply.content, np.uint8), cv2.IMREAD_COLOR)
                if image is not None:
                    return np.asarray(image, np.uint8)
            elif reply.status_code != 404:
                unanswered.append(f"{worker.name} ({reply.status_code} {_reason(reply)})")
        if unanswered:
            raise LiveError(503, f"no recording of {camera_id} at {at.isoformat()} found; "
                                 f"not answering: {', '.join(unanswered)}")  # fmt: skip
        raise FileNotFoundError(f"no worker box has a recording of {camera_id} at "
                                f"{at.isoformat()}")  # fmt: skip

    # ---- clips ---------------------------------------------------------------------------
    async def download_clip(self, clip: ClipRef, dest: Path) -> None:
        """The whole clip file from the worker that cut it, into `dest` (a rule test)."""
        if not clip.worker:
            raise LiveError(404, "the clip has no worker")
        worker = await self._running(clip.worker, "the recording of this clip")
        path = f"/media/clips/{clip.path}"
        url = f"{worker.media_url}{path}"
        try:
            async with self.client.stream("GET", url, headers=self._headers("GET", path)) as r:
                if r.status_code != 200:
                    raise LiveError(r.status_code, "the worker has no such clip")
                with dest.open("wb") as f:
                    async for chunk in r.aiter_bytes():
                        await asyncio.to_thread(f.write, chunk)
        except httpx.HTTPError as exc:
            raise LiveError(503, f"worker {worker.name} does not answer: {exc}") from exc

    async def clip(self, clip: ClipRef, request: Request) -> Response:
        """The clip file from the worker that cut it, Range requests passed through."""
        if not clip.worker:
            raise LiveError(404, "the clip has no worker")
        worker = await self._running(clip.worker, "the recording of this clip")
        path = f"/media/clips/{clip.path}"
        headers = self._headers("GET", path)
        if "range" in request.headers:
            headers["Range"] = request.headers["range"]
        try:
            upstream = await self.client.send(
                self.client.build_request("GET", f"{worker.media_url}{path}", headers=headers),
                stream=True,
            )
        except httpx.HTTPError as exc:
            raise LiveError(503, f"worker {worker.name} does not answer: {exc}") from exc
        if upstream.status_code not in (200, 206):
            await upstream.aclose()
            raise LiveError(upstream.status_code, "the worker has no such clip")
        passed = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() in ("content-length", "content-range", "accept-ranges", "etag")
        }

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        return StreamingResponse(
            body(), status_code=upstream.status_code, media_type="video/mp4", headers=passed
        )


def _reason(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("detail", reply.text))
    except ValueError:
        return reply.text[:200]
