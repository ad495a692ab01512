"""Login, logout, who am I, and (for admins) accounts and the audit log."""

# No `from __future__ import annotations` here: FastAPI reads the route signatures, whose
# dependencies are locals of the router factory, so annotations must be evaluated eagerly.

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from events.model import ActionKind
from wallboard.access import Access
from wallboard.auth import ACTION_ROLES, SESSION_COOKIE, Accounts, Role, User
from wallboard.errors import responses


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,31}$")
    password: str = Field(min_length=10, max_length=256)
    role: Role
    display_name: str = Field(default="", max_length=100)
    opd_id: str | None = Field(default=None, max_length=48)


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def session_router(accounts: Accounts, access: Access) -> APIRouter:
    router = APIRouter(
        prefix="/api", tags=["session"], responses=responses(400, 401, 403, 404, 409, 422, 429)
    )

    @router.post("/login")
    async def login(body: LoginIn, request: Request, response: Response) -> dict[str, object]:
        """Password login; sets an HttpOnly session cookie and returns the token for API use.
        Five failures of one account from one address in five minutes (or thirty of any
        accounts from one address) answer 429 for a while."""
        ip = _ip(request) or "?"
        wait = accounts.limiter.retry_after(body.username, ip)
        if wait > 0:
            await accounts.audit(
                None, "login.limited", body.username, ip=ip, username=body.username
            )
            raise HTTPException(429, "too many failed logins: wait and try again",
                                headers={"Retry-After": str(int(wait) + 1)})  # fmt: skip
        found = await accounts.login(body.username, body.password)
        if found is None:
            accounts.limiter.failed(body.username, ip)
            await accounts.audit(None, "login.failed", body.username, ip=ip, username=body.username)
            raise HTTPException(401, "wrong username or password")
        user, token = found
        accounts.limiter.succeeded(body.username, ip)
        await accounts.audit(user, "login", ip=ip)
        response.set_cookie(
            SESSION_COOKIE, token, httponly=True, samesite="strict", path="/",
            secure=request.url.scheme == "https", max_age=int(accounts.idle_s),
        )  # fmt: skip
        return {"user": user.public(), "token": token}

    @router.post("/logout")
    async def logout(
        request: Request, response: Response, user: Annotated[User, Depends(access.user)]
    ) -> dict[str, bool]:
        token = access.session_token(request)
        if token:
            await accounts.logout(token)
        await accounts.audit(user, "logout", ip=_ip(request))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return {"ok": True}

    @router.get("/me")
    async def me(user: Annotated[User, Depends(access.user)]) -> dict[str, object]:
        return {**user.public(), "can": sorted(str(a) for a in _allowed(user))}

    @router.get("/audit")
    async def audit(
        user: Annotated[User, Depends(access.user)], limit: int = 200
    ) -> list[dict[str, object]]:
        """Who logged in, acted on incidents, exported or watched clips (admins only)."""
        access.need(user, Role.ADMIN)
        return await accounts.audit_log(min(max(limit, 1), 1000))

    @router.get("/users")
    async def users(user: Annotated[User, Depends(access.user)]) -> list[dict[str, object]]:
        access.need(user, Role.ADMIN)
        return [{**u.public(), "disabled": off} for u, off in await accounts.all()]

    @router.get("/people")
    async def people(user: Annotated[User, Depends(access.user)]) -> list[dict[str, object]]:
        """Who an incident can be assigned to: active accounts, names and roles only.
        Operators and above (the ones who assign)."""
        if user.role == Role.OPD or not user.at_least(Role.OPERATOR):
            raise HTTPException(403, "for operators and above")
        return [u.public() for u, off in await accounts.all() if not off and u.role != Role.VIEWER]

    @router.delete("/users/{username}")
    async def disable_user(
        username: str, request: Request, user: Annotated[User, Depends(access.user)]
    ) -> dict[str, object]:
        """Disable an account and end its sessions (kept for the audit log)."""
        access.need(user, Role.ADMIN)
        if username == user.username:
            raise HTTPException(409, "an administrator cannot disable their own account")
        if not await accounts.disable(username):
            raise HTTPException(404, f"no account {username!r}")
        await accounts.audit(user, "user.disable", username, ip=_ip(request))
        return {"username": username, "disabled": True}

    @router.post("/users", status_code=201)
    async def add_user(
        body: UserIn, request: Request, user: Annotated[User, Depends(access.user)]
    ) -> dict[str, object]:
        access.need(user, Role.ADMIN)
        try:
            made = await accounts.add(body.username, body.password, body.role,
                                      body.display_name, body.opd_id)  # fmt: skip
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        await accounts.audit(user, "user.set", body.username, str(body.role), _ip(request))
        return made.public()

    return router


def _allowed(user: User) -> list[ActionKind]:
    return [a for a in ACTION_ROLES if user.may(a)]
