"""Who is on duty (piket) now, per OPD: the wall's duty panel and the phone view.

Everyone signed in may see who stands duty; phone numbers go to command-center staff from
operator up (they call the piket), not to viewers. An OPD user sees its own OPD.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from events.config import Contact
from wallboard.access import Access
from wallboard.auth import Role, User
from wallboard.deps import DutyPerson, IsoTime, OpdDutyOut, WallboardDeps
from wallboard.errors import responses


def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at is not None else None


def _person(contact: Contact, phones: bool, **duty: object) -> DutyPerson:
    phone = contact.phone if phones else None
    return DutyPerson(name=contact.name, role=contact.role, phone=phone, **duty)  # type: ignore[arg-type]


def duty_router(deps: WallboardDeps, access: Access) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["duty"], responses=responses(401, 422))

    @router.get("/duty", responses=responses(404))
    async def get_duty(
        user: Annotated[User, Depends(access.user)], at: IsoTime | None = None
    ) -> list[OpdDutyOut]:
        """Per OPD: who is on duty at `at` (default now) with their shift, until the next
        change, or the first contact when nobody is rostered."""
        if deps.duty is None:
            raise HTTPException(404, "duty rosters are not available in this process")
        if at is not None and at.tzinfo is None:
            raise HTTPException(422, "at needs a time zone (e.g. 2026-12-25T10:00+08:00)")
        phones = user.role != Role.OPD and user.at_least(Role.OPERATOR)
        scope = access.scope(user)
        board = deps.duty(at or datetime.now(UTC))
        return [
            OpdDutyOut(
                opd_id=d.opd_id,
                opd_name=d.opd_name,
                on_duty=[
                    _person(
                        p.contact,
                        phones or scope == d.opd_id,
                        shift=p.shift,
                        starts=_utc(p.starts),
                        ends=_utc(p.ends),
                        note=p.note,
                    )
                    for p in d.on_duty
                ],
                first_contact=_person(d.first_contact, phones or scope == d.opd_id),
                until=_utc(d.until),
                day_off=d.day_off,
            )
            for d in board
            if scope in (None, d.opd_id)
        ]

    return router
