"""Who is asking: FastAPI dependencies that turn a request into a user (or an OPD system) and
decide what it may see. Every data endpoint depends on one of these; nothing is public but the
page shell, the login, and a bare liveness check.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def _bearer(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization") or ""
    return (auth[7:].strip() or None) if auth.lower().startswith("bearer ") else None


def _token(headers: Mapping[str, str], cookies: Mapping[str, str]) -> tuple[str | None, bool]:
    """(token, is_api_key) from X-API-Key, Authorization: Bearer, or the session cookie."""
    key = headers.get("x-api-key")
    if key:
        return key, True
    value = _bearer(headers)
    if value:
        return value, value.startswith(API_KEY_PREFIX)
    return cookies.get(SESSION_COOKIE), False


def _refuse(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


class Access:
    def __init__(self, accounts: Accounts, api_keys: ApiKeys | None) -> None:
        self.accounts = accounts
        self.api_keys = api_keys

    async def user(self, request: Request) -> User:
        """Dependency: a logged-in person (401 otherwise)."""
        token, is_key = _token(request.headers, request.cookies)
        found = None if is_key else await self.accounts.session(token)
        if found is None:
            raise _refuse("login required")
        request.state.user = found
        return found

    async def ws_user(self, websocket: WebSocket) -> User | None:
        token, is_key = _token(websocket.headers, websocket.cookies)
        return None if is_key else await self.accounts.session(token)

    def session_token(self, request: Request) -> str | None:
        token, is_key = _token(request.headers, request.cookies)
        return None if is_key else token

    async def _opd_of(self, key: str | None) -> str:
        opd = await self.api_keys.verify(key) if self.api_keys is not None else None
        if opd is None:
            raise _refuse("API key is not valid or was revoked")
        return opd

    async def opd_system(self, request: Request) -> str:
        """Dependency: the OPD whose API key came with the request (X-API-Key or Bearer)."""
        key = request.headers.get("x-api-key") or _bearer(request.headers)
        if not key:
            raise _refuse("an API key is required (Authorization: Bearer <key>)")
        return await self._opd_of(key)

    async def actor(self, request: Request) -> Actor:
        """Dependency: a person, or an OPD system with its API key."""
        token, is_key = _token(request.headers, request.cookies)
        if is_key and self.api_keys is not None:
            opd = await self._opd_of(token)
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
