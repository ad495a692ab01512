"""One body for every error the API answers, and the statuses each endpoint declares.

    {"detail": "why, in one line", "errors": [{"loc": ["query", "limit"], "msg": "...",
                                               "type": "..."}]}

`detail` is always a string a person can read (the page shows it); `errors` lists each problem
when there are several (validation, a refused alert), else it is empty.
"""

# No `from __future__ import annotations`: FastAPI reads the models in route declarations.

import re
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from events.store import StoreFull
from wallboard.webrtc import LiveError


class FieldError(BaseModel):
    loc: list[str | int] = []
    msg: str
    type: str = "invalid"


class ErrorBody(BaseModel):
    """Every error answer: `detail` says why; `errors` lists each problem (may be empty)."""

    detail: str
    errors: list[FieldError] = []


WHY = {
    400: "The request cannot be used (e.g. an unusable SDP offer, malformed XML).",
    401: "Login required, or the session / API key is not valid.",
    403: "Logged in, but this role may not do this.",
    404: "No such thing, or not visible to this user.",
    409: "In conflict with the current state (e.g. the camera's codec, a closed incident).",
    413: "The body is too large.",
    415: "Unsupported Content-Type (or media the browser cannot take).",
    422: "A field or parameter is invalid; `errors` names each.",
    429: "Too many failed logins; see Retry-After.",
    503: "Not available now (no frame yet, the camera's worker is down, the disk is full).",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """For `responses=`: the error statuses an endpoint (or a router) can answer."""
    return {code: {"model": ErrorBody, "description": WHY[code]} for code in codes}


def _body(status: int, detail: str, errors: list[FieldError] | None = None,
          headers: Mapping[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = ErrorBody(detail=detail, errors=errors or [])
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, headers=dict(headers or {})
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail: Any = exc.detail
        if isinstance(detail, list):  # several reasons (a refused alert): each one listed
            errors = [d if isinstance(d, FieldError) else FieldError(msg=str(d)) for d in detail]
            return _body(exc.status_code, "; ".join(e.msg for e in errors), errors, exc.headers)
        return _body(exc.status_code, str(detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(
                loc=list(e.get("loc", [])),
                msg=str(e.get("msg", "")),
                type=str(e.get("type", "invalid")),
            )
            for e in exc.errors()
        ]
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.loc[1:]) or e.loc[0] if e.loc else '?'}: {e.msg}"
            for e in errors
        )
        return _body(422, f"invalid request: {where}", errors)

    @app.exception_handler(StoreFull)
    async def disk_full(request: Request, exc: StoreFull) -> JSONResponse:
        # An event acknowledged is an event stored: refuse what cannot be kept, say why.
        why = "the server's disk is full: nothing was stored, send it again later"
        return _body(503, why, headers={"Retry-After": "30"})

    @app.exception_handler(LiveError)
    async def live_error(request: Request, exc: LiveError) -> JSONResponse:
        # Media that cannot be had now (camera on no worker, worker down): say why, at once.
        return _body(exc.status, exc.reason)


class MethodNotAllowed:
    """A 405 that names every documented method of the path. Starlette answers from the first
    route whose path matches, so a path served by two routers (GET /api/alerts in the records,
    POST in the intake) would say `Allow: GET` only; this answers from the OpenAPI document,
    the contract the clients read."""

    def __init__(self, app: ASGIApp, openapi: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self._openapi = openapi
        self._paths: list[tuple[re.Pattern[str], set[str]]] | None = None

    def _methods(self, path: str) -> set[str]:
        if self._paths is None:  # built on first use: the routers are all in by then
            self._paths = [
                (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"),
                 {m.upper() for m in ops if m in _METHODS})
                for template, ops in self._openapi().get("paths", {}).items()
            ]  # fmt: skip
        allowed: set[str] = set()
        for pattern, methods in self._paths:
            if pattern.match(path):
                allowed |= methods
        return allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = scope.get("method", "GET")
            allowed = self._methods(scope.get("path", ""))
            if allowed and method not in allowed and not (method == "HEAD" and "GET" in allowed):
                allow = {"Allow": ", ".join(sorted(allowed))}
                response = _body(405, f"{method} is not allowed here", headers=allow)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
