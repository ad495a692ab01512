"""Incidents: the list, one incident, its activity log and deliveries, its snapshot and clip.
An OPD user sees only incidents routed to its OPD; others are "not found" (existence is not
told)."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response

from events.model import ClipRef, Delivery, Incident, IncidentAction, IncidentKind, IncidentState
from wallboard.access import Access
from wallboard.auth import User
from wallboard.deps import AttachmentOut, IsoTime, SlaClock, WallboardDeps, stored_file
from wallboard.errors import responses
from wallboard.session_api import _ip


def incidents_router(deps: WallboardDeps, access: Access) -> APIRouter:
    router = APIRouter(prefix="/api/incidents", tags=["incidents"], responses=responses(401))
    one = responses(404)

    async def visible_incident(incident_id: str, user: User) -> Incident:
        """The incident if this user may see it; 404 either way, so existence is not told."""
        incident = await deps.store.incident(incident_id)
        if incident is None or not access.sees(user, user.opd_id, incident):
            raise HTTPException(404, f"unknown incident {incident_id!r}")
        return incident

    @router.get("", responses=responses(422))
    async def list_incidents(
        user: Annotated[User, Depends(access.user)],
        active: bool | None = None,
        camera: str | None = None,
        kind: IncidentKind | None = None,
        state: IncidentState | None = None,
        kecamatan: str | None = None,
        opd: str | None = None,
        since: IsoTime | None = None,
        until: IsoTime | None = None,
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

    @router.get("/{incident_id}", responses=one)
    async def get_incident(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> Incident:
        return await visible_incident(incident_id, user)

    @router.get("/{incident_id}/actions", responses=one)
    async def incident_actions(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> list[IncidentAction]:
        """The activity log: routing, merges, acknowledgements, comments, state changes."""
        await visible_incident(incident_id, user)
        return await deps.store.actions(incident_id)

    @router.get("/{incident_id}/sla", responses=one)
    async def incident_sla(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> list[SlaClock]:
        """Per OPD the incident was routed to: when acknowledging and resolving are due
        (from the route's SLA; none when the route has none), met, or breached."""
        await visible_incident(incident_id, user)
        scope = access.scope(user)
        return [
            SlaClock.model_validate(row) for row in await deps.store.sla_clocks(incident_id)
            if scope in (None, row["opd_id"])
        ]  # fmt: skip

    @router.get("/{incident_id}/deliveries", responses=one)
    async def incident_deliveries(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> list[Delivery]:
        await visible_incident(incident_id, user)
        found = await deps.store.deliveries(incident_id)
        scope = access.scope(user)
        return [d for d in found if scope is None or d.opd_id == scope]

    @router.get(
        "/{incident_id}/snapshot.jpg",
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}}}, **one},
    )
    async def incident_snapshot(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> FileResponse:
        incident = await visible_incident(incident_id, user)
        path = stored_file(
            deps.snapshot_dir, incident.snapshot_ref, "no snapshot for this incident"
        )
        return FileResponse(path, media_type="image/jpeg")

    @router.get("/{incident_id}/attachments", responses=one)
    async def incident_attachments(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> list[AttachmentOut]:
        """Files sent back about the incident (photos from the field, by chat)."""
        await visible_incident(incident_id, user)
        if deps.attachments is None:
            return []
        return [AttachmentOut(**a.__dict__) for a in await deps.attachments.of(incident_id)]

    @router.get(
        "/{incident_id}/attachments/{attachment_id}",
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}, **one},
    )
    async def incident_attachment_file(
        incident_id: str, attachment_id: str, user: Annotated[User, Depends(access.user)]
    ) -> Response:
        await visible_incident(incident_id, user)
        found = [a for a in await deps.attachments.of(incident_id) if a.id == attachment_id] \
            if deps.attachments is not None else []  # fmt: skip
        if not found or deps.attachments is None:
            raise HTTPException(404, f"no attachment {attachment_id!r} on this incident")
        path = deps.attachments.path(found[0])
        if not path.is_file():
            raise HTTPException(404, f"attachment {attachment_id!r} is missing on disk")
        return FileResponse(path, media_type=found[0].content_type)

    @router.get("/{incident_id}/clip", responses=one)
    async def incident_clip(
        incident_id: str, user: Annotated[User, Depends(access.user)]
    ) -> ClipRef:
        await visible_incident(incident_id, user)
        clip = await deps.store.clip(incident_id)
        if clip is None:
            raise HTTPException(404, "no clip for this incident (yet)")
        return clip

    @router.get(
        "/{incident_id}/clip.mp4",
        response_class=Response,
        responses={
            200: {"content": {"video/mp4": {}}},
            206: {"description": "a byte range"},
            **responses(404, 503),
        },
    )
    async def incident_clip_file(
        incident_id: str, request: Request, user: Annotated[User, Depends(access.user)]
    ) -> Response:
        await visible_incident(incident_id, user)
        clip = await deps.store.clip(incident_id)
        remote = clip is not None and clip.worker is not None and deps.remote_clip is not None
        if not remote:
            path = stored_file(
                deps.clip_dir, clip.path if clip else None, "no clip for this incident"
            )
        # Range requests of one viewing are logged once (the first chunk), not per chunk.
        if request.headers.get("range", "bytes=0-").startswith("bytes=0-"):
            await deps.accounts.audit(user, "clip.watch", incident_id, ip=_ip(request))
        if remote:
            assert clip is not None and deps.remote_clip is not None
            return await deps.remote_clip(clip, request)
        return FileResponse(path, media_type="video/mp4")

    return router
