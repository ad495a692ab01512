"""The site itself: liveness, health, Prometheus metrics, the page's configuration, the event
schemas and the worker boxes of a scaled-out site."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from events.false_alarms import honesty
from events.model import ReloadResult, WorkerStatus, json_schemas
from wallboard.access import Access
from wallboard.auth import Role, User
from wallboard.deps import WallboardDeps
from wallboard.errors import responses
from wallboard.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from wallboard.metrics import render as render_metrics
from wallboard.session_api import _ip


def system_router(deps: WallboardDeps, access: Access) -> APIRouter:
    router = APIRouter(tags=["system"])
    signed_in = responses(401)

    @router.get("/healthz")
    async def healthz() -> dict[str, bool]:
        """Liveness for monitors; details (cameras, detector) are at /api/health."""
        return {"ok": True}

    @router.get("/api/health", responses=signed_in)
    async def health(user: Annotated[User, Depends(access.user)]) -> dict[str, object]:
        return {"ok": True, **deps.health()}

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}, **responses(401, 403)},
    )
    async def metrics(user: Annotated[User, Depends(access.user)]) -> Response:
        """Prometheus text format; scrape with `Authorization: Bearer <a viewer's token>`.
        Site-wide numbers: command-center staff only, not OPD users."""
        if access.scope(user) is not None:
            raise HTTPException(403, "metrics are for command-center staff")
        incidents = await deps.store.incidents(open_or_since=datetime.now(UTC), limit=5000)
        open_ones = [i for i in incidents if not i.state.closed]
        since = datetime.now(UTC) - timedelta(hours=24)
        dead = [d for d in await deps.store.deliveries(dead_only=True) if d.at >= since]
        rules = await honesty(deps.store, datetime.now(UTC), deps.false_alarm_share,
                              deps.false_alarm_min)  # fmt: skip
        body = render_metrics(deps.health(), open_ones, dead, rules)
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    @router.get("/api/false-alarms", responses=responses(401, 403))
    async def false_alarms(user: Annotated[User, Depends(access.user)]) -> list[dict[str, object]]:
        """Per camera rule: incidents and false alarms over 7 and 30 days, their shares, and
        whether it is flagged (with the latest false alarms to look at)."""
        if access.scope(user) is not None:
            raise HTTPException(403, "false-alarm shares are for command-center staff")
        rules = await honesty(deps.store, datetime.now(UTC), deps.false_alarm_share,
                              deps.false_alarm_min)  # fmt: skip
        return [r.as_dict() for r in rules]

    @router.get("/api/ui", responses=signed_in)
    async def ui(user: Annotated[User, Depends(access.user)]) -> dict[str, object]:
        return {
            "ui": deps.ui.model_dump(),
            "walls": [w.model_dump() for w in deps.walls],
            "cameras": [c.model_dump(mode="json", exclude={"status"}) for c in deps.cameras],
            "opds": deps.opds,
            "kecamatan": deps.kecamatan,
        }

    @router.get("/api/schema", responses=signed_in)
    async def schema(user: Annotated[User, Depends(access.user)]) -> dict[str, dict[str, object]]:
        """JSON schemas of the event envelope and the records it carries."""
        return json_schemas()

    @router.get("/api/workers", responses=responses(401, 403, 503))
    async def list_workers(user: Annotated[User, Depends(access.user)]) -> list[WorkerStatus]:
        """The worker boxes of a scaled-out site: cameras held, detector fps, CPU, last
        heartbeat, state (running / lost / stopped). One process answers with an empty list."""
        if access.scope(user) is not None:
            raise HTTPException(403, "workers are for command-center staff")
        return await deps.workers() if deps.workers is not None else []

    @router.post("/api/config/reload", responses=responses(401, 403, 409, 422))
    async def reload_config(
        request: Request, user: Annotated[User, Depends(access.user)]
    ) -> ReloadResult:
        """Apply a changed cameras.yaml without a restart (as `pantau reload` and SIGHUP):
        only what changed is rebuilt. An invalid file answers 422 with the validator's
        file:line errors, and the running config stays. Admins only; audited."""
        if user.role != Role.ADMIN:
            raise HTTPException(403, "reloading the configuration is for admins")
        if deps.reload is None:
            raise HTTPException(409, "this process was not started from a file it can reload")
        result = await deps.reload(f"api:{user.username}")
        detail = "; ".join(result.lines())
        await deps.accounts.audit(user, "config.reload", result.digest, detail, ip=_ip(request))
        if not result.ok:
            raise HTTPException(422, result.errors)  # each file:line: field: message
        return result

    return router
