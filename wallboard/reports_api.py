"""The weekly OPD performance report on the wall: its figures (JSON, for the page and the
phone view), its charts and its PDF. For leaders (viewer accounts), supervisors and admins; an
OPD user gets its own OPD's report only (made on the fly). Operators run the desk: not theirs.
"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from events.report import WeeklyReport, previous_week
from wallboard.access import Access
from wallboard.auth import Role, User
from wallboard.deps import WallboardDeps
from wallboard.errors import responses

Week = Annotated[str, Path(pattern=r"^\d{4}-W\d{2}$", examples=["2026-W49"])]
READERS = (Role.VIEWER, Role.SUPERVISOR, Role.ADMIN, Role.OPD)


class ReportIndex(BaseModel):
    last_week: str  # the week the latest scheduled report covers
    made: list[str]  # weeks whose report was made and kept, newest first


def reports_router(deps: WallboardDeps, access: Access) -> APIRouter:
    router = APIRouter(prefix="/api/reports", tags=["reports"], responses=responses(401, 403, 404))

    def reader(user: User) -> None:
        if user.role not in READERS:
            raise HTTPException(403, "the weekly report is for leaders, supervisors and OPDs")
        if deps.reports is None:
            raise HTTPException(404, "reports are not available in this process")

    async def figures(week: str, user: User) -> WeeklyReport:
        assert deps.reports is not None
        try:
            report = await deps.reports.figures(week)
        except ValueError as exc:
            raise HTTPException(404, f"no such week {week!r}") from exc
        scope = access.scope(user)
        return report.only(scope) if scope is not None else report

    @router.get("")
    async def list_reports(user: Annotated[User, Depends(access.user)]) -> ReportIndex:
        reader(user)
        assert deps.reports is not None
        last = previous_week(deps.reports.now(), deps.reports.timezone)
        return ReportIndex(last_week=last, made=deps.reports.made())

    @router.get("/{week}", responses=responses(404, 422))
    async def get_report(
        week: Week, user: Annotated[User, Depends(access.user)]
    ) -> dict[str, object]:
        """Per OPD: routed, acknowledged within SLA, median and p90 times to acknowledge and
        to resolve (seconds), breaches, false alarms, and the 8-week trend."""
        reader(user)
        return (await figures(week, user)).as_dict()

    @router.get(
        "/{week}/report.pdf",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}, **responses(404, 422)},
    )
    async def get_report_pdf(week: Week, user: Annotated[User, Depends(access.user)]) -> Response:
        reader(user)
        assert deps.reports is not None
        name = f"laporan-kinerja-opd-{week}.pdf"
        kept = deps.reports.pdf_path(week)
        if access.scope(user) is None and kept.is_file():
            return FileResponse(kept, media_type="application/pdf", filename=name)
        from events.report_pdf import pdf_bytes  # matplotlib: only when asked

        body = await asyncio.to_thread(pdf_bytes, await figures(week, user))
        return Response(
            body,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.get(
        "/{week}/chart.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, **responses(404, 422)},
    )
    async def get_report_chart(
        week: Week,
        user: Annotated[User, Depends(access.user)],
        page: int = Query(default=0, ge=0, le=1, description="0: the week, 1: the 8-week trend"),
    ) -> Response:
        reader(user)
        from events.report_pdf import chart_png

        body = await asyncio.to_thread(chart_png, await figures(week, user), page)
        return Response(body, media_type="image/png")

    return router
