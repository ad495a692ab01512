"""The machine-to-machine intake: OPD systems and gateways send alerts and CAP 1.2.

Every call carries the OPD's API key (`Authorization: Bearer pnt_...` or `X-API-Key`); the key
decides the sender, so one OPD cannot speak for another. Bodies are read with a hard size limit
before parsing, and every refusal says why.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel

from events.desk import AlertReceipt, IncidentDesk
from events.intake import MAX_CAP_BYTES, MAX_JSON_BYTES, IntakeError, parse_alert_json, parse_cap
from events.region import Region
from wallboard.access import Access
from wallboard.deps import WallboardDeps
from wallboard.errors import responses

log = logging.getLogger(__name__)
_JSON = ("application/json",)
_XML = ("application/xml", "text/xml", "application/cap+xml")


class AlertAccepted(BaseModel):
    alert_id: str
    incident_id: str | None
    duplicate: bool


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it passes `limit` bytes, whatever Content-Length says."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body is larger than {limit // 1024} KiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body is larger than {limit // 1024} KiB")
    return bytes(body)


def _content_type(request: Request, allowed: tuple[str, ...]) -> None:
    value = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if value not in allowed:
        raise HTTPException(
            415, f"Content-Type must be {' or '.join(allowed)}, not {value or 'missing'!r}"
        )


def _refuse(exc: IntakeError) -> HTTPException:
    return HTTPException(exc.status, exc.reasons)


def intake_router(deps: WallboardDeps, desk: IncidentDesk, access: Access) -> APIRouter:
    """Cameras and the region are read from `deps` per request: a live reload replaces them."""

    router = APIRouter(
        prefix="/api", tags=["intake"], responses=responses(400, 401, 403, 404, 409, 413, 415, 422)
    )

    def answer(receipts: list[AlertReceipt], response: Response) -> list[AlertAccepted]:
        fresh = any(not r.duplicate for r in receipts)
        response.status_code = 201 if fresh else 200
        return [AlertAccepted(alert_id=r.alert.id, incident_id=r.incident_id,
                              duplicate=r.duplicate) for r in receipts]  # fmt: skip

    @router.post("/alerts", status_code=201, responses={200: {"description": "a duplicate"}})
    async def post_alert(
        request: Request, response: Response, opd: str = Depends(access.opd_system)
    ) -> AlertAccepted:
        """One alert from an OPD system or a citizen-report gateway. The alert is stored
        before this answers; sending the same `id` again is answered 200 and changes nothing."""
        _content_type(request, _JSON)
        body = await read_limited(request, MAX_JSON_BYTES)
        try:
            alert = parse_alert_json(body, opd, {c.id for c in deps.cameras})
        except IntakeError as exc:
            raise _refuse(exc) from exc
        receipt = await desk.receive_alert(alert)
        log.info("alert=%s from opd=%s incident=%s duplicate=%s", receipt.alert.id, opd,
                 receipt.incident_id, receipt.duplicate)  # fmt: skip
        return answer([receipt], response)[0]

    @router.post(
        "/cap",
        status_code=201,
        responses={200: {"description": "every alert in it was a duplicate"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/xml": {"schema": {"type": "string"}},
            "application/cap+xml": {"schema": {"type": "string"}},
        }}},
    )  # fmt: skip
    async def post_cap(
        request: Request, response: Response, opd: str = Depends(access.opd_system)
    ) -> list[AlertAccepted]:
        """A CAP 1.2 <alert> (e.g. a BMKG warning relayed by BPBD). DTDs and entities are
        refused. One alert per configured kecamatan the CAP areas name."""
        _content_type(request, _XML)
        body = await read_limited(request, MAX_CAP_BYTES)
        try:
            alerts = parse_cap(body, deps.region or Region.from_names(deps.kecamatan))
        except IntakeError as exc:
            log.warning("CAP from opd=%s refused: %s", opd, exc)
            raise _refuse(exc) from exc
        return answer([await desk.receive_alert(a) for a in alerts], response)

    return router
