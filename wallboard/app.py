"""The wallboard's FastAPI app: the routers of each domain, one error body, security headers.

Each router module owns its endpoints and declares what they answer (response models and every
error status); errors share one body (wallboard/errors.py).
"""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from wallboard.access import Access
from wallboard.actions_api import actions_router
from wallboard.cameras_api import cameras_router
from wallboard.chat_api import chat_router
from wallboard.deps import (  # re-exported: what callers build an app from
    STATIC,
    CameraInfo,
    StillSource,
    VideoSource,
    WallboardDeps,
    WebRtcOffer,
)
from wallboard.duty_api import duty_router
from wallboard.editor_api import editor_router
from wallboard.errors import MethodNotAllowed
from wallboard.errors import install as install_errors
from wallboard.incidents_api import incidents_router
from wallboard.intake_api import intake_router
from wallboard.labels_api import labels_router
from wallboard.pages_api import pages_router
from wallboard.records_api import records_router
from wallboard.replay_api import replay_router
from wallboard.reports_api import reports_router
from wallboard.security import SecurityHeaders
from wallboard.session_api import session_router
from wallboard.silences_api import silences_router
from wallboard.system_api import system_router
from wallboard.walls_api import walls_router
from wallboard.ws_api import ws_router

__all__ = ["CameraInfo", "StillSource", "VideoSource", "WallboardDeps", "WebRtcOffer", "create_app"]


def create_app(deps: WallboardDeps) -> FastAPI:
    app = FastAPI(title="Pantau wallboard", version="0.1.0")
    app.add_middleware(SecurityHeaders, hsts=deps.hsts)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_errors(app)
    access = Access(deps.accounts, deps.api_keys)
    app.include_router(pages_router(deps))
    app.include_router(system_router(deps, access))
    app.include_router(cameras_router(deps, access))
    app.include_router(incidents_router(deps, access))
    app.include_router(records_router(deps, access))
    app.include_router(session_router(deps.accounts, access))
    app.include_router(silences_router(deps.store, access, deps.accounts))
    app.include_router(duty_router(deps, access))
    app.include_router(chat_router(deps, access))
    app.include_router(reports_router(deps, access))
    app.include_router(labels_router(deps, access))
    if deps.director is not None:
        app.include_router(walls_router(deps, deps.director, access, deps.accounts))
    if deps.desk is not None:
        app.include_router(actions_router(deps.desk, access, deps.accounts))
    if deps.desk is not None and deps.api_keys is not None:
        app.include_router(intake_router(deps, deps.desk, access))
    if deps.editor is not None:
        app.include_router(editor_router(deps.editor, access, deps.accounts))
    if deps.replays is not None:
        app.include_router(replay_router(deps, deps.replays, access))
    app.include_router(ws_router(deps, access))
    app.add_middleware(MethodNotAllowed, openapi=app.openapi)
    return app
