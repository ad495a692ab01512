"""Rule tests from the wall ("Uji aturan", admins): replay an incident's clip, or a camera's
last minutes of recording, through the camera's rules as cameras.yaml now has them, and show
what they would have done with the chart. The run itself is `pantau replay` in its own process
(pantau/replay_jobs.py), so the live cameras keep their detector."""

# No `from __future__ import annotations`: FastAPI reads these types in route signatures.
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from events.model import ClipRef
from wallboard.access import Access
from wallboard.auth import Role, User
from wallboard.deps import ReplayJob, ReplayRunning, WallboardDeps, stored_file
from wallboard.errors import responses
from wallboard.session_api import _ip


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    incident_id: str | None = Field(default=None, description="replay this incident's clip")
    camera_id: str | None = Field(default=None, description="or this camera's last minutes")
    minutes: float = Field(default=2.0, gt=0, le=60)


def replay_router(deps: WallboardDeps, jobs: ReplayRunning, access: Access) -> APIRouter:
    router = APIRouter(
        prefix="/api/replays", tags=["editor"], responses=responses(400, 401, 403, 404)
    )

    def admin(user: User) -> None:
        if user.role != Role.ADMIN:
            raise HTTPException(403, "rule tests are for admins")

    @router.post("", status_code=202, responses=responses(409, 422))
    async def start_replay(
        body: ReplayRequest, request: Request, user: Annotated[User, Depends(access.user)]
    ) -> ReplayJob:
        """Start a rule test; poll GET /api/replays/{id} until it is done. Audited."""
        admin(user)
        clip_path: Path | ClipRef | None = None
        scaled_out = deps.remote_clip is not None
        if body.incident_id is not None:
            incident = await deps.store.incident(body.incident_id)
            if incident is None or incident.camera_id is None:
                raise HTTPException(404, "no camera incident with this id")
            clip = await deps.store.clip(body.incident_id)
            if clip is None:
                raise HTTPException(409, "this incident has no clip (its camera is not recorded)")
            if clip.worker is not None and scaled_out:  # fetched from that worker first
                clip_path = clip
            else:
                clip_path = stored_file(deps.clip_dir, clip.path, "the clip file is gone")
            camera_id = incident.camera_id
        elif body.camera_id is not None:
            if body.camera_id not in {c.id for c in deps.cameras}:
                raise HTTPException(404, f"unknown camera {body.camera_id!r}")
            if scaled_out:
                why = "scaled out, recordings stay on the workers: test the rules on an incident"
                raise HTTPException(409, why)
            camera_id = body.camera_id
        else:
            raise HTTPException(422, "give an incident_id or a camera_id")
        job = await jobs.start(camera_id, clip_path, body.minutes, user.username)
        await deps.accounts.audit(user, "rule.replay", camera_id, job.source, ip=_ip(request))
        return job

    @router.get("/{job_id}")
    async def replay_state(job_id: str, user: Annotated[User, Depends(access.user)]) -> ReplayJob:
        admin(user)
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no such rule test (they are kept for the last 20)")
        return job

    @router.get(
        "/{job_id}/chart.png",
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}},
    )
    async def replay_chart(
        job_id: str, user: Annotated[User, Depends(access.user)]
    ) -> FileResponse:
        admin(user)
        path = jobs.chart(job_id)
        if path is None:
            raise HTTPException(404, "no chart (yet) for this rule test")
        return FileResponse(path, media_type="image/png")

    return router
