"""Answering incidents: acknowledge, start, comment, assign, resolve, false alarm, reopen.

People act with their session (what each role may do is in wallboard/auth.py); OPD systems act
with their API key, for their OPD. Either way only on incidents they may see, and every action
lands in the incident's activity log and the audit log.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures, whose
# dependencies are locals of the router factory, so annotations must be evaluated eagerly.

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from events.desk import IncidentDesk, TransitionError, UnknownIncident
from events.model import ActionKind, Incident
from wallboard.access import Access, Actor
from wallboard.auth import Accounts, Role
from wallboard.errors import responses
from wallboard.session_api import _ip

# What an OPD system (API key) may do for its own OPD.
SYSTEM_ACTIONS = frozenset({ActionKind.ACKNOWLEDGE, ActionKind.START, ActionKind.COMMENT,
                            ActionKind.RESOLVE})  # fmt: skip


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ActionKind
    note: str = Field(default="", max_length=4000)
    owner: str | None = Field(default=None, max_length=100)
    # Staff acknowledging on behalf of one OPD (e.g. after a phone call); OPD users are fixed
    # to their own OPD.
    opd_id: str | None = Field(default=None, max_length=48)


def actions_router(desk: IncidentDesk, access: Access, accounts: Accounts) -> APIRouter:
    router = APIRouter(
        prefix="/api", tags=["incidents"], responses=responses(400, 401, 403, 404, 409, 422)
    )

    @router.post("/incidents/{incident_id}/actions")
    async def post_action(
        incident_id: str,
        action: ActionIn,
        request: Request,
        actor: Annotated[Actor, Depends(access.actor)],
    ) -> Incident:
        """Act on an incident. 403: your role may not; 404: not an incident you can see;
        409: the incident's state does not allow it."""
        if actor.user is None:
            allowed = action.kind in SYSTEM_ACTIONS
        else:
            allowed = actor.user.may(action.kind)
        if not allowed:
            who = actor.user.role if actor.user else "an OPD system"
            raise HTTPException(403, f"{who} may not {action.kind}")
        incident = await desk.store.incident(incident_id)
        if incident is None or not access.sees(actor.user, actor.opd_id, incident):
            raise HTTPException(404, f"unknown incident {incident_id!r}")
        opd = actor.opd_id if actor.user is None or actor.user.role == Role.OPD else action.opd_id
        if opd is not None and opd not in incident.routed_opds:
            raise HTTPException(422, f"opd_id: the incident is not routed to {opd!r}")
        try:
            updated = await desk.act(incident_id, action.kind, actor.name, opd_id=opd,
                                     note=action.note, owner=action.owner)  # fmt: skip
        except UnknownIncident as exc:
            raise HTTPException(404, f"unknown incident {incident_id!r}") from exc
        except TransitionError as exc:
            raise HTTPException(409, str(exc)) from exc
        await accounts.audit(actor.user, f"incident.{action.kind}", incident_id, action.note,
                             _ip(request), username=actor.name)  # fmt: skip
        return updated

    return router
