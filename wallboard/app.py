"""The wallboard's FastAPI app: REST API, WebSocket and the wall page."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict

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
    json_schemas,
)
from events.scoreboard import scoreboard
from events.store import Store
from wallboard.config import UiConfig, Wall
from wallboard.hub import Hub
from wallboard.intake_api import intake_router
from wallboard.live import BOUNDARY, LiveFrames

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


@dataclass
class WallboardDeps:
    store: Store
    hub: Hub
    live: LiveFrames
    cameras: list[CameraInfo]
    walls: list[Wall]
    ui: UiConfig
    snapshot_dir: Path | None
    clip_dir: Path | None
    health: Callable[[], dict[str, object]]
    mjpeg_fps: float = 5.0
    desk: IncidentDesk | None = None  # intake and OPD answers need it
    api_keys: ApiKeys | None = None
    kecamatan: list[str] = field(default_factory=list)  # names CAP areas are matched against


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
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    cameras = {c.id: c for c in deps.cameras}

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        first = deps.walls[0].id if deps.walls else "1"
        return RedirectResponse(f"/wall/{first}")

    @app.get("/wall/{wall_id}", include_in_schema=False)
    async def wall_page(wall_id: str) -> FileResponse:
        if deps.walls and wall_id not in {w.id for w in deps.walls}:
            raise HTTPException(404, f"no wall {wall_id!r} in the configuration")
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"ok": True, **deps.health()}

    @app.get("/api/ui")
    async def ui() -> dict[str, object]:
        return {
            "ui": deps.ui.model_dump(),
            "walls": [w.model_dump() for w in deps.walls],
            "cameras": [c.model_dump(mode="json", exclude={"status"}) for c in deps.cameras],
        }

    @app.get("/api/cameras")
    async def list_cameras() -> list[CameraInfo]:
        statuses = deps.hub.camera_statuses()
        return [c.model_copy(update={"status": statuses.get(c.id)}) for c in deps.cameras]

    def camera_or_404(camera_id: str) -> CameraInfo:
        if camera_id not in cameras:
            raise HTTPException(404, f"unknown camera {camera_id!r}")
        return cameras[camera_id]

    @app.get("/api/cameras/{camera_id}/frame.jpg")
    async def camera_frame(camera_id: str) -> Response:
        camera_or_404(camera_id)
        got = await deps.live.jpeg(camera_id)
        if got is None:
            raise HTTPException(503, "no frame from this camera yet")
        return Response(got[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/cameras/{camera_id}/mjpeg")
    async def camera_mjpeg(
        camera_id: str, fps: float = Query(default=0, ge=0, le=15)
    ) -> StreamingResponse:
        camera_or_404(camera_id)
        return StreamingResponse(
            deps.live.mjpeg(camera_id, fps or deps.mjpeg_fps),
            media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/api/incidents")
    async def list_incidents(
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
        return await deps.store.incidents(
            active=active, camera_id=camera, kind=kind, state=state, kecamatan=kecamatan,
            opd_id=opd, since=since, until=until, limit=limit,
        )  # fmt: skip

    @app.get("/api/incidents/{incident_id}/actions")
    async def incident_actions(incident_id: str) -> list[IncidentAction]:
        """The activity log: routing, merges, acknowledgements, comments, state changes."""
        return await deps.store.actions(incident_id)

    @app.get("/api/incidents/{incident_id}/deliveries")
    async def incident_deliveries(incident_id: str) -> list[Delivery]:
        return await deps.store.deliveries(incident_id)

    @app.get("/api/deliveries")
    async def list_deliveries(
        status: Literal["dead"] | None = None,
        hours: float = Query(default=24, gt=0, le=24 * 90),
        limit: int = Query(default=200, ge=1, le=1000),
    ) -> list[Delivery]:
        """Notification outcomes, newest first; `status=dead` for the ones that gave up."""
        since = datetime.now(UTC) - timedelta(hours=hours)
        found = await deps.store.deliveries(dead_only=status == "dead", limit=limit)
        return [d for d in found if d.at >= since]

    @app.get("/api/alerts")
    async def list_alerts(limit: int = Query(default=100, ge=1, le=1000)) -> list[Alert]:
        return await deps.store.alerts(limit=limit)

    @app.get("/api/scoreboard")
    async def get_scoreboard(
        weeks: int = Query(default=8, ge=1, le=104),
    ) -> list[dict[str, object]]:
        """Per OPD and ISO week: incidents routed, answered, and p50/p90 seconds to acknowledge
        and to resolve, counted from when the OPD was told."""
        return [s.as_dict() for s in await scoreboard(deps.store, deps.ui.timezone, weeks)]

    @app.get("/api/schema")
    async def schema() -> dict[str, dict[str, object]]:
        """JSON schemas of the event envelope and the records it carries."""
        return json_schemas()

    @app.get("/api/incidents/{incident_id}")
    async def get_incident(incident_id: str) -> Incident:
        incident = await deps.store.incident(incident_id)
        if incident is None:
            raise HTTPException(404, f"unknown incident {incident_id!r}")
        return incident

    @app.get("/api/incidents/{incident_id}/snapshot.jpg")
    async def incident_snapshot(incident_id: str) -> FileResponse:
        incident = await deps.store.incident(incident_id)
        name = incident.snapshot_ref if incident is not None else None
        path = _stored_file(deps.snapshot_dir, name, "no snapshot for this incident")
        return FileResponse(path, media_type="image/jpeg")

    @app.get("/api/incidents/{incident_id}/clip")
    async def incident_clip(incident_id: str) -> ClipRef:
        clip = await deps.store.clip(incident_id)
        if clip is None:
            raise HTTPException(404, "no clip for this incident (yet)")
        return clip

    @app.get("/api/incidents/{incident_id}/clip.mp4")
    async def incident_clip_file(incident_id: str) -> FileResponse:
        clip = await deps.store.clip(incident_id)
        path = _stored_file(deps.clip_dir, clip.path if clip else None, "no clip for this incident")
        return FileResponse(path, media_type="video/mp4")

    if deps.desk is not None and deps.api_keys is not None:
        app.include_router(intake_router(deps.desk, deps.api_keys, set(cameras), deps.kecamatan))

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, since: int | None = None) -> None:
        await websocket.accept()
        client, first = await deps.hub.connect(since)

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
