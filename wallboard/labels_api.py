"""Labelling a camera zone's state from the wall (admins and supervisors): label the camera's
picture now, a recorded moment or an incident's snapshot as one of the zone's states, train
the camera's own model, look at its held-back accuracy, enable it."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from wallboard.access import Access
from wallboard.auth import Role, User
from wallboard.deps import StateLabelling, WallboardDeps
from wallboard.errors import responses
from wallboard.session_api import _ip
from wallboard.webrtc import LiveError

State = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[\w -]+$")]


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: State
    source: str = Field(default="live", pattern=r"^(live|recording|incident)$")
    ref: str | None = Field(default=None, max_length=64)  # incident id, or an ISO time


class NormalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: State | None = None


def labels_router(deps: WallboardDeps, access: Access) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["labels"],
                       responses=responses(400, 401, 403, 404, 409, 422, 503))  # fmt: skip

    def staff(user: User) -> StateLabelling:
        access.need(user, Role.SUPERVISOR)
        if deps.labelling is None:
            raise HTTPException(404, "labelling is not available in this process")
        return deps.labelling

    @router.get("/cameras/{camera_id}/label-zones")
    async def label_zones(
        camera_id: str, user: Annotated[User, Depends(access.user)]
    ) -> list[dict[str, object]]:
        """The camera's zones (their points, 0..1 of the picture), to pick one to label."""
        try:
            return staff(user).zones(camera_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc

    @router.get("/cameras/{camera_id}/recorded.jpg", response_class=Response,
                responses={200: {"content": {"image/jpeg": {}}}})  # fmt: skip
    async def recorded_picture(
        camera_id: str, at: datetime, user: Annotated[User, Depends(access.user)]
    ) -> Response:
        """The camera's recorded picture at `at` (with its time zone), as a recording label
        would take it: here, or from the worker box that recorded it."""
        if at.tzinfo is None:
            raise HTTPException(422, "at needs a time zone (e.g. 2026-11-23T08:00+08:00)")
        try:
            jpeg = await staff(user).recorded_jpeg(camera_id, at)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        except LiveError as exc:
            raise HTTPException(exc.status, exc.reason) from exc
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @router.get("/cameras/{camera_id}/zones/{zone_id}/labels")
    async def list_labels(
        camera_id: str, zone_id: str, user: Annotated[User, Depends(access.user)]
    ) -> dict[str, object]:
        """The zone's labels (oldest first), its model versions and the enabled one."""
        try:
            return await staff(user).list(camera_id, zone_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc

    @router.post("/cameras/{camera_id}/zones/{zone_id}/labels", status_code=201)
    async def add_label(
        camera_id: str, zone_id: str, body: LabelIn, request: Request,
        user: Annotated[User, Depends(access.user)],
    ) -> dict[str, object]:  # fmt: skip
        """Label a picture of the zone: `live` (the camera now), `recording` (ref: ISO time),
        `incident` (ref: its id; its snapshot)."""
        labelling = staff(user)
        try:
            made = await labelling.label(camera_id, zone_id, body.state.strip(), body.source,
                                         body.ref, user.username)  # fmt: skip
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        except LiveError as exc:  # scaled out: no worker answers for its recordings
            raise HTTPException(exc.status, exc.reason) from exc
        await deps.accounts.audit(user, "label.add", f"{camera_id}/{zone_id}",
                                  f"{body.state} ({body.source})", _ip(request))  # fmt: skip
        return made

    @router.post("/incidents/{incident_id}/label-normal", status_code=201)
    async def label_false_alarm(
        incident_id: str, request: Request, user: Annotated[User, Depends(access.user)],
        body: NormalIn | None = None,
    ) -> dict[str, object]:  # fmt: skip
        """One click on a false alarm: its snapshot becomes a "normal" label of its zone."""
        labelling = staff(user)
        try:
            made = await labelling.label_normal(incident_id, body.state if body else None,
                                                user.username)  # fmt: skip
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        await deps.accounts.audit(user, "label.add", incident_id, f"{made['state']} (incident)",
                                  _ip(request))  # fmt: skip
        return made

    @router.get("/labels/{label_id}/crop.jpg", response_class=FileResponse,
                responses={200: {"content": {"image/jpeg": {}}}})  # fmt: skip
    async def label_crop(
        label_id: str, user: Annotated[User, Depends(access.user)]
    ) -> FileResponse:
        path = staff(user).crop(label_id)
        if path is None:
            raise HTTPException(404, f"no label {label_id!r}")
        return FileResponse(path, media_type="image/jpeg")

    @router.delete("/labels/{label_id}")
    async def delete_label(
        label_id: str, request: Request, user: Annotated[User, Depends(access.user)]
    ) -> dict[str, bool]:
        if not await staff(user).remove(label_id):
            raise HTTPException(404, f"no label {label_id!r}")
        await deps.accounts.audit(user, "label.delete", label_id, ip=_ip(request))
        return {"deleted": True}

    @router.post("/cameras/{camera_id}/zones/{zone_id}/train", status_code=201)
    async def train_model(
        camera_id: str, zone_id: str, request: Request,
        user: Annotated[User, Depends(access.user)],
    ) -> dict[str, object]:  # fmt: skip
        """Train the next version on the labels; its held-back accuracy per state comes back.
        It is not used until it is enabled."""
        labelling = staff(user)
        try:
            made = await labelling.train(camera_id, zone_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from exc
        await deps.accounts.audit(user, "model.train", f"{camera_id}/{zone_id}",
                                  f"v{made['version']}", _ip(request))  # fmt: skip
        return made

    @router.post("/cameras/{camera_id}/zones/{zone_id}/models/{version}/enable")
    async def enable_model(
        camera_id: str, zone_id: str, version: int, request: Request,
        user: Annotated[User, Depends(access.user)],
    ) -> dict[str, object]:  # fmt: skip
        """The zone's rules use this version from the next frame (scaled out: the camera's
        worker takes it from Redis within a second)."""
        return await switch(camera_id, zone_id, version, request, user)

    @router.post("/cameras/{camera_id}/zones/{zone_id}/models/disable")
    async def disable_model(
        camera_id: str, zone_id: str, request: Request,
        user: Annotated[User, Depends(access.user)],
    ) -> dict[str, object]:  # fmt: skip
        """No model for the zone: a flood rule goes back to its classical method, a state
        rule waits for a model."""
        return await switch(camera_id, zone_id, None, request, user)

    async def switch(
        camera_id: str, zone_id: str, version: int | None, request: Request, user: User
    ) -> dict[str, object]:
        labelling = staff(user)
        try:
            methods = await labelling.enable(camera_id, zone_id, version, user.username)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        except LiveError as exc:
            raise HTTPException(exc.status, exc.reason) from exc
        action, what = ("model.enable", f"v{version}") if version else ("model.disable", "")
        await deps.accounts.audit(user, action, f"{camera_id}/{zone_id}", what, _ip(request))
        return {"enabled": version, "methods": methods}

    return router
