"""What happened around the incidents: notification deliveries, alerts received, and the OPD
response scoreboard. An OPD user sees its own OPD's."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from events.model import Alert, Delivery
from events.scoreboard import scoreboard
from wallboard.access import Access
from wallboard.auth import User
from wallboard.deps import WallboardDeps
from wallboard.errors import responses


def records_router(deps: WallboardDeps, access: Access) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["records"], responses=responses(401, 422))

    @router.get("/deliveries")
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

    @router.get("/alerts")
    async def list_alerts(
        user: Annotated[User, Depends(access.user)], limit: int = Query(default=100, ge=1, le=1000)
    ) -> list[Alert]:
        """Alerts received; an OPD user sees the ones its OPD sent."""
        scope = access.scope(user)
        found = await deps.store.alerts(limit=limit)
        return [a for a in found if scope in (None, a.sender)]

    @router.get("/scoreboard")
    async def get_scoreboard(
        user: Annotated[User, Depends(access.user)],
        weeks: int = Query(default=8, ge=1, le=104),
    ) -> list[dict[str, object]]:
        """Per OPD and ISO week: incidents routed, answered, and p50/p90 seconds to acknowledge
        and to resolve, counted from when the OPD was told. An OPD user sees its own rows."""
        scope = access.scope(user)
        rows = await scoreboard(deps.store, deps.ui.timezone, weeks)
        return [s.as_dict() for s in rows if scope in (None, s.opd_id)]

    return router
