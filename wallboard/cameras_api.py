"""Cameras: the list with their status, stills, MJPEG and WebRTC live video."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response, StreamingResponse

from wallboard.access import Access
from wallboard.auth import User
from wallboard.deps import CameraInfo, WallboardDeps, WebRtcOffer
from wallboard.errors import responses
from wallboard.live import BOUNDARY
from wallboard.webrtc import LiveError


def cameras_router(deps: WallboardDeps, access: Access) -> APIRouter:
    router = APIRouter(prefix="/api/cameras", tags=["cameras"], responses=responses(401))

    def camera_or_404(camera_id: str) -> CameraInfo:
        # deps.cameras, not a copy: a live reload replaces the list
        found = next((c for c in deps.cameras if c.id == camera_id), None)
        if found is None:
            raise HTTPException(404, f"unknown camera {camera_id!r}")
        return found

    @router.get("")
    async def list_cameras(user: Annotated[User, Depends(access.user)]) -> list[CameraInfo]:
        statuses = deps.hub.camera_statuses()
        return [c.model_copy(update={"status": statuses.get(c.id)}) for c in deps.cameras]

    @router.get(
        "/{camera_id}/frame.jpg",
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}, **responses(404, 503)},
    )
    async def camera_frame(camera_id: str, user: Annotated[User, Depends(access.user)]) -> Response:
        camera_or_404(camera_id)
        got = await deps.live.jpeg(camera_id)
        if got is None:
            raise HTTPException(503, "no frame from this camera yet")
        return Response(got[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @router.get(
        "/{camera_id}/mjpeg",
        response_class=StreamingResponse,
        responses={200: {"content": {"multipart/x-mixed-replace": {}}}, **responses(404, 422, 503)},
    )
    async def camera_mjpeg(
        camera_id: str,
        user: Annotated[User, Depends(access.user)],
        fps: float = Query(default=0, ge=0, le=15),
    ) -> StreamingResponse:
        camera_or_404(camera_id)
        return StreamingResponse(
            deps.live.mjpeg(camera_id, fps or deps.mjpeg_fps),
            media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            headers={"Cache-Control": "no-store"},
        )

    @router.post("/{camera_id}/webrtc", responses=responses(400, 404, 409, 415, 422, 503))
    async def camera_webrtc(
        camera_id: str, offer: WebRtcOffer, user: Annotated[User, Depends(access.user)]
    ) -> WebRtcOffer:
        """Live video: post the browser's SDP offer (receive-only, ICE gathered), get the
        answer. The camera's H.264 is relayed as it is; a 409/415 means "use the MJPEG"."""
        camera_or_404(camera_id)
        if deps.video is None:
            raise HTTPException(404, "WebRTC live video is not enabled on this server")
        try:
            sdp = await deps.video.answer(camera_id, offer.sdp, user.username)
        except LiveError as exc:
            raise HTTPException(exc.status, exc.reason) from exc
        return WebRtcOffer(sdp=sdp, type="answer")

    return router
