"""Wall views over the API: what each wall shows, and operators pushing a preset to a wall."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from wallboard.access import Access
from wallboard.auth import Accounts, Role, User
from wallboard.deps import WallboardDeps
from wallboard.errors import responses
from wallboard.session_api import _ip
from wallboard.walls import UnknownView, WallDirector

# No `from __future__ import annotations`: FastAPI must evaluate these signatures (see app.py).


class ViewChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: str | None  # None: the wall's own layout


def walls_router(
    deps: WallboardDeps, director: WallDirector, access: Access, accounts: Accounts
) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["walls"], responses=responses(400, 401, 403, 404, 422))

    @router.get("/walls")
    async def list_walls(user: Annotated[User, Depends(access.user)]) -> list[dict[str, object]]:
        """Every wall with its layout, its presets and the view it shows now."""
        return [
            {**w.model_dump(mode="json"), "view": director.views[w.id].public(w.id)}
            for w in deps.walls  # read per request: a live reload replaces the list
        ]

    @router.post("/walls/{wall_id}/view")
    async def choose_view(
        wall_id: str,
        body: ViewChoice,
        request: Request,
        user: Annotated[User, Depends(access.user)],
    ) -> dict[str, object]:
        """Put a wall on one of its presets (or back on its own layout): every screen of that
        wall switches at once. Operators and above."""
        if user.role == Role.OPD or not user.at_least(Role.OPERATOR):
            raise HTTPException(403, "switching walls is for operators")
        try:
            view = director.choose(wall_id, body.preset, user.username)
        except UnknownView as exc:
            raise HTTPException(404, str(exc)) from exc
        await accounts.audit(user, "wall.view", wall_id, detail=body.preset or "", ip=_ip(request))
        return view.public(wall_id)

    return router
