"""The wall page itself: / and /wall/{id} (by id or by number)."""

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

from wallboard.deps import STATIC, WallboardDeps


def pages_router(deps: WallboardDeps) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def root() -> RedirectResponse:
        first = deps.walls[0].id if deps.walls else "1"
        return RedirectResponse(f"/wall/{first}")

    @router.get("/wall/{wall_id}")
    async def wall_page(wall_id: str) -> FileResponse:
        # A wall by its id, or by its number in the configuration (/wall/1, /wall/2, ...).
        numbered = wall_id.isdigit() and 1 <= int(wall_id) <= len(deps.walls)
        if deps.walls and wall_id not in {w.id for w in deps.walls} and not numbered:
            raise HTTPException(404, f"no wall {wall_id!r} in the configuration")
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    return router
