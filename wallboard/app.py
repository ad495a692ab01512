"""The wallboard's FastAPI app: REST API, WebSocket and the wall page."""

# No `from __future__ import annotations` here: FastAPI reads the route signatures, whose
# dependencies are locals of the router factory, so annotations must be evaluated eagerly.

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Protocol

from fastapi import (
    Depends,
    FastAPI,
    HTTPException,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from events.api_keys import ApiKeys
from events.desk import IncidentDesk
from events.model import (
    Alert,
    CameraStatus,
    ClipRef,
    Delivery,
    Incident,
    IncidentAction,
    IncidentKind,
    IncidentState,
    WorkerStatus,
    json_schemas,
)
from events.region import Region
from events.scoreboard import scoreboard
from events.store import Store
from wallboard.access import Access
from wallboard.actions_api import actions_router
from wallboard.auth import Accounts, User
from wallboard.config import UiConfig, Wall
from wallboard.hub import Hub
from wallboard.intake_api import intake_router
from wallboard.live import BOUNDARY
from wallboard.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from wallboard.metrics import render as render_metrics
from wallboard.security import SecurityHeaders
from wallboard.session_api import _ip, session_router
from wallboard.silences_api import silences_router
from wallboard.walls import WallDirector
from wallboard.walls_api import walls_router
from wallboard.webrtc import LiveError

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
HEARTBEAT_S = 15.0


class CameraInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    kecamatan: str | None = None
    desa: str | None = None
    url_masked: str
    status: CameraStatus | None = None


class WebRtcOffer(BaseModel):
    sdp: str = Field(min_length=10, max_length=100_000)
    type: Literal["offer", "answer"] = "offer"


class StillSource(Protocol):
    """Stills and MJPEG of a camera: made here (LiveFrames) or fetched from its worker."""

    async def jpeg(self, camera_id: str) -> tuple[int, bytes] | None: ...

    def mjpeg(self, camera_id: str, fps: float) -> AsyncIterator[bytes]: ...


class VideoSource(Protocol):
    """WebRTC answers: from this process (LiveVideo) or relayed to the camera's worker."""

    async def answer(self, camera_id: str, offer_sdp: str, user: str = "") -> str: ...


@dataclass
class WallboardDeps:
    store: Store
    hub: Hub
    live: StillSource
    cameras: list[CameraInfo]
    walls: list[Wall]
    ui: UiConfig
    snapshot_dir: Path | None
    clip_dir: Path | None
    health: Callable[[], dict[str, object]]
    accounts: Accounts
    mjpeg_fps: float = 5.0
    video: VideoSource | None = None  # WebRTC; None where a deployment offers MJPEG only
    director: WallDirector | None = None  # wall views (presets); None: walls are fixed
    desk: IncidentDesk | None = None  # intake and answers to incidents need it
    api_keys: ApiKeys | None = None
    kecamatan: list[str] = field(default_factory=list)  # the regency's, for the page's forms
    region: Region | None = None  # what CAP areas are matched against (None: the names above)
    opds: list[dict[str, str]] = field(default_factory=list)  # {id, name}, for the page's forms
    # Scaled out: the worker boxes (the workers panel), and clips fetched from the worker
    # that cut them. None in one process.
    workers: Callable[[], Awaitable[list[WorkerStatus]]] | None = None
    remote_clip: Callable[[ClipRef, Request], Awaitable[Response]] | None = None
    hsts: bool = False  # the server speaks TLS itself: browsers are told to keep to HTTPS


def _stored_file(folder: Path | None, name: str | None, missing: str) -> Path:
    """A file the store refers to, only from inside its folder (a stored name is no path)."""
    if folder is None or not name:
        raise HTTPException(404, missing)
    path = (folder / name).resolve()
    if path.parent != folder.resolve() or not path.is_file():
        raise HTTPException(404, missing)
    return path


def create_app(deps: WallboardDeps) -> FastAPI:
    app = FastAPI(title="Pantau wallboard", version="0.1.0")
    app.add_middleware(SecurityHeaders, hsts=deps.hsts)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    cameras = {c.id: c for c in deps.cameras}
    access = Access(deps.accounts, deps.api_keys)

    @app.exception_handler(LiveError)
    async def live_error(request: Request, exc: LiveError) -> JSONResponse:
        # Media that cannot be had now (camera on no worker, worker down): say why, at once.
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)

    async def visible_incident(incident_id: str, user: User) -> Incident:
        """The incident if this user may see it; 404 either way, so existence is not told."""
        incident = await deps.store.incident(incident_id)
        if incident is None or not access.sees(user, user.opd_id, incident):
            raise HTTPException(404, f"unknown incident {incident_id!r}")
        return incident

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        first = deps.walls[0].id if deps.walls else "1"
        return RedirectResponse(f"/wall/{first}")

    @app.get("/wall/{wall_id}", include_in_schema=False)
    async def wall_page(wall_id: str) -> FileResponse:
        # A wall by its id, or by its number in the configuration (/wall/1, /wall/2, ...).
        numbered = wall_id.isdigit() and 1 <= int(wall_id) <= len(deps.walls)
        if deps.walls and wall_id not in {w.id for w in deps.walls} and not numbered:
            raise HTTPException(404, f"no wall {wall_id!r} in the configuration")
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        """Liveness for monitors; details (cameras, detector) are at /api/health."""
        return {"ok": True}

    @app.get("/api/health")
    async def health(user: Annotated[User, Depends(access.user)]) -> dict[str, object]:
        return {"ok": True, **deps.health()}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(user: Annotated[User, Depends(access.user)]) -> Response:
        """Prometheus text format; scrape with `Authorization: Bearer <a viewer's token>`.
        Site-wide numbers: command-center staff only, not OPD users."""
        if access.scope(user) is not None:
            raise HTTPException(403, "metrics are for command-center staff")
        incidents = await deps.store.incidents(open_or_since=datetime.now(UTC), limit=5000)
        open_ones = [i for i in incidents if not i.state.closed]
        since = datetime.now(UTC) - timedelta(hours=24)
        dead = [d for d in await deps.store.deliveries(dead_only=True) if d.at >= since]
        body = render_metrics(deps.health(), open_ones, dead)
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    @app.get("/api/ui")
    async def ui(user: Annotated[User, Depends(access.user)]) -> dict[str, object]:
        return {
            "ui": deps.ui.model_dump(),
            "walls": [w.model_dump() for w in deps.walls],
            "cameras": [c.model_dump(mode="json", exclude={"status"}) for c in deps.cameras],
            "opds": deps.opds,
            "kecamatan": deps.kecamatan,
        }

    @app.get("/api/cameras")
    async def list_cameras(user: Annotated[User, Depends(access.user)]) -> list[CameraInfo]:
        statuses = deps.hub.camera_statuses()
        return [c.model_copy(update={"status": statuses.get(c.id)}) for c in deps.cameras]

    def camera_or_404(camera_id: str) -> CameraInfo:
        if camera_id not in cameras:
            raise HTTPException(404, f"unknown camera {camera_id!r}")
        return cameras[camera_id]

    @app.get("/api/cameras/{camera_id}/frame.jpg")
    async def camera_frame(camera_id: str, user: Annotated[User, Depends(access.user)]) -> Response:
        camera_or_404(camera_id)
        got = await deps.live.jpeg(camera_id)
        if got is None:
            raise HTTPException(503, "no frame from this camera yet")
        return Response(got[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/cameras/{camera_id}/mjpeg")
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

    @app.post("/api/cameras/{camera_id}/webrtc")
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

    @app.get("/api/incidents")
    async def list_incidents(
        user: Annotated[User, Depends(access.user)],
        active: bool | None = None,
        camera: str | None = None,
        kind: IncidentKind | None = None,
        state: IncidentState | None = None,
        kecamatan: str | None = None,
        opd: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> list[Incident]:
        for stamp in (since, until):
            if stamp is not None and stamp.tzinfo is None:
                raise HTTPException(
                    422, "since/until need a time zone (e.g. 2026-11-23T08:00+08:00)"
                )
        scope = access.scope(user)
        if scope is not None and opd not in (None, scope):
            return []
        return await deps.store.incidents(
            active=active, camera_id=camera, kind=kind, state=state, kecamatan=kecamatan,
            opd_id=scope or opd, since=since, until=until, limit=limit,
        )  # fmt: skip

    @app.get("/api/incidents/{incident_id}/actions")
    async def incident_actions(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> list[IncidentAction]:
        """The activity log: routing, merges, acknowledgements, comments, state changes."""
        await visible_incident(incident_id, user)
        return await deps.store.actions(incident_id)

    @app.get("/api/incidents/{incident_id}/deliveries")
    async def incident_deliveries(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> list[Delivery]:
        await visible_incident(incident_id, user)
        found = await deps.store.deliveries(incident_id)
        scope = access.scope(user)
        return [d for d in found if scope is None or d.opd_id == scope]

    @app.get("/api/deliveries")
    async def list_deliveries(
        user: Annotated[User, Depends(access.user)],
        status: Literal["dead"] | None = None,
        hours: float = Query(default=24, gt=0, le=24 * 90),
        limit: int = Query(default=200, ge=1, le=1000),
    ) -> list[Delivery]:
        """Notification outcomes, newest first; `status=dead` for the ones that gave up."""
        since = datetime.now(UTC) - timedelta(hours=hours)
        found = await deps.store.deliveries(dead_only=status == "dead", limit=limit)
        scope = access.scope(user)
        return [d for d in found if d.at >= since and scope in (None, d.opd_id)]

    @app.get("/api/alerts")
    async def list_alerts(
        user: Annotated[User, Depends(access.user)], limit: int = Query(default=100, ge=1, le=1000)
    ) -> list[Alert]:
        """Alerts received; an OPD user sees the ones its OPD sent."""
        scope = access.scope(user)
        found = await deps.store.alerts(limit=limit)
        return [a for a in found if scope in (None, a.sender)]

    @app.get("/api/scoreboard")
    async def get_scoreboard(
        user: Annotated[User, Depends(access.user)],
        weeks: int = Query(default=8, ge=1, le=104),
    ) -> list[dict[str, object]]:
        """Per OPD and ISO week: incidents routed, answered, and p50/p90 seconds to acknowledge
        and to resolve, counted from when the OPD was told. An OPD user sees its own rows."""
        scope = access.scope(user)
        rows = await scoreboard(deps.store, deps.ui.timezone, weeks)
        return [s.as_dict() for s in rows if scope in (None, s.opd_id)]

    @app.get("/api/schema")
    async def schema(user: Annotated[User, Depends(access.user)]) -> dict[str, dict[str, object]]:
        """JSON schemas of the event envelope and the records it carries."""
        return json_schemas()

    @app.get("/api/incidents/{incident_id}")
    async def get_incident(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> Incident:
        return await visible_incident(incident_id, user)

    @app.get("/api/incidents/{incident_id}/snapshot.jpg")
    async def incident_snapshot(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> FileResponse:
        incident = await visible_incident(incident_id, user)
        path = _stored_file(
            deps.snapshot_dir, incident.snapshot_ref, "no snapshot for this incident"
        )
        return FileResponse(path, media_type="image/jpeg")

    @app.get("/api/incidents/{incident_id}/clip")
    async def incident_clip(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> ClipRef:
        await visible_incident(incident_id, user)
        clip = await deps.store.clip(incident_id)
        if clip is None:
            raise HTTPException(404, "no clip for this incident (yet)")
        return clip

    @app.get("/api/incidents/{incident_id}/clip.mp4")
    async def incident_clip_file(
        incident_id: str, request: Request, user: Annotated[User, Depends(access.user)]
    ) -> Response:
        await visible_incident(incident_id, user)
        clip = await deps.store.clip(incident_id)
        remote = clip is not None and clip.worker is not None and deps.remote_clip is not None
        if not remote:
            path = _stored_file(
                deps.clip_dir, clip.path if clip else None, "no clip for this incident"
            )
        # Range requests of one viewing are logged once (the first chunk), not per chunk.
        if request.headers.get("range", "bytes=0-").startswith("bytes=0-"):
            await deps.accounts.audit(user, "clip.watch", incident_id, ip=_ip(request))
        if remote:
            assert clip is not None and deps.remote_clip is not None
            return await deps.remote_clip(clip, request)
        return FileResponse(path, media_type="video/mp4")

    @app.get("/api/workers")
    async def list_workers(user: Annotated[User, Depends(access.user)]) -> list[WorkerStatus]:
        """The worker boxes of a scaled-out site: cameras held, detector fps, CPU, last
        heartbeat, state (running / lost / stopped). One process answers with an empty list."""
        if access.scope(user) is not None:
            raise HTTPException(403, "workers are for command-center staff")
        return await deps.workers() if deps.workers is not None else []

    app.include_router(session_router(deps.accounts, access))
    app.include_router(silences_router(deps.store, access, deps.accounts))
    if deps.director is not None:
        app.include_router(walls_router(deps.walls, deps.director, access, deps.accounts))
    if deps.desk is not None:
        app.include_router(actions_router(deps.desk, access, deps.accounts))
    if deps.desk is not None and deps.api_keys is not None:
        region = deps.region or Region.from_names(deps.kecamatan)
        app.include_router(intake_router(deps.desk, access, set(cameras), region))

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, since: int | None = None) -> None:
        user = await access.ws_user(websocket)
        await websocket.accept()
        if user is None:
            # Accepted, then closed with a reason: the page learns it must log in (a refused
            # handshake would look like a network fault and be retried forever).
            await websocket.close(code=1008, reason="login required")
            return
        client, first = await deps.hub.connect(since, access.scope(user))

        async def pump() -> None:
            for message in first:
                await websocket.send_text(message)
            while True:
                try:
                    message = await asyncio.wait_for(client.queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    message = deps.hub.heartbeat()
                await websocket.send_text(message)

        async def listen() -> None:
            # The page sends nothing yet; reading is how a closed socket is noticed at once.
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = [asyncio.create_task(c) for c in (pump(), listen(), client.cut_off.wait())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[2] in done:
                await websocket.close(code=1013, reason="too slow: reconnect with ?since=")
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            deps.hub.disconnect(client)

    return app
