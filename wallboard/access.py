"""Who is asking: FastAPI dependencies that turn a request into a user (or an OPD system) and
decide what it may see. Every data endpoint depends on one of these; nothing is public but the
page shell, the login, and a bare liveness check.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request, WebSocket

from events.api_keys import PREFIX as API_KEY_PREFIX
from events.api_keys import ApiKeys
from events.model import Incident
from wallboard.auth import SESSION_COOKIE, Accounts, Role, User


@dataclass(frozen=True)
class Actor:
    """Whoever acts on an incident: a logged-in person, or an OPD system by its API key."""

    name: str  # username, or opd:<id> for a system
    opd_id: str | None
    user: User | None


def _token(headers: dict[str, str] | object, cookies: dict[str, str]) -> tuple[str | None, bool]:
    """(token, is_api_key) from the session cookie, Authorization: Bearer or X-API-Key."""
    get = getattr(headers, "get")  # noqa: B009  (starlette Headers)
    key = get("x-api-key")
    if key:
        return key, True
    auth = get("authorization") or ""
    if auth.lower().startswith("bearer "):
        value = auth[7:].strip()
        return value, value.startswith(API_KEY_PREFIX)
    return cookies.get(SESSION_COOKIE), False


class Access:
    def __init__(self, accounts: Accounts, api_keys: ApiKeys | None) -> None:
        self.accounts = accounts
        self.api_keys = api_keys

    async def user(self, request: Request) -> User:
        """Dependency: a logged-in person (401 otherwise)."""
        token, is_key = _token(request.headers, request.cookies)
        found = None if is_key else await self.accounts.session(token)
        if found is None:
            raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Bearer"})
        request.state.user = found
        return found

    async def ws_user(self, websocket: WebSocket) -> User | None:
        token, is_key = _token(websocket.headers, websocket.cookies)
        return None if is_key else await self.accounts.session(token)

    async def actor(self, request: Request) -> Actor:
        """Dependency: a person, or an OPD system with its API key."""
        token, is_key = _token(request.headers, request.cookies)
        if is_key and self.api_keys is not None:
            opd = await self.api_keys.verify(token)
            if opd is None:
                raise HTTPException(401, "API key is not valid or was revoked",
                                    headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
            return Actor(f"opd:{opd}", opd, None)
        user = await self.user(request)
        return Actor(user.username, user.opd_id, user)

    @staticmethod
    def need(user: User, role: Role) -> None:
        if not user.at_least(role):
            raise HTTPException(403, f"needs the {role} role (you are {user.role})")

    @staticmethod
    def sees(user: User | None, opd_id: str | None, incident: Incident) -> bool:
        """OPD users and OPD systems see only incidents routed to their OPD."""
        if user is not None and user.role != Role.OPD:
            return True
        return opd_id is not None and opd_id in incident.routed_opds

    @staticmethod
    def scope(user: User) -> str | None:
        """The OPD a user's lists are limited to, or None for the command center's staff."""
        return user.opd_id if user.role == Role.OPD else None
