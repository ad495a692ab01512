"""The zone and rule editor's API (admins): read a camera's zones, lines and rules as the file
has them, save them back into cameras.yaml (validated first, the previous file kept, audited,
applied live), undo the last save.

The work is done by a `ConfigEditing` the composition root provides (pantau/config_editor.py):
this module only speaks HTTP.
"""

# No `from __future__ import annotations`: FastAPI reads these types in route signatures.
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from events.model import ReloadResult
from wallboard.access import Access
from wallboard.auth import Accounts, Role, User
from wallboard.errors import FieldError, responses
from wallboard.session_api import _ip


class EditorCamera(BaseModel):
    """A camera's editable sections as written in cameras.yaml (no ${VAR} expanded), and the
    digest of the file they were read from (send it back with the save)."""

    camera_id: str
    name: str
    file: str
    digest: str
    zones: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    rules: list[dict[str, Any]]


class CameraEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    digest: str = Field(
        min_length=64, max_length=64, description="of the file the edit started from"
    )
    zones: list[dict[str, Any]] | None = None
    lines: list[dict[str, Any]] | None = None
    rules: list[dict[str, Any]] | None = None


class UndoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    digest: str = Field(min_length=64, max_length=64, description="of the file as the page has it")


class EditorSaved(BaseModel):
    digest: str  # of the file now on disk
    backup: str  # where the previous file was kept
    diff: str  # unified diff of the change (also in the audit log)
    reload: ReloadResult


class Backup(BaseModel):
    name: str
    at: datetime
    digest: str


class EditorConflict(Exception):
    """The file changed on disk since the editor read it."""

    def __init__(self, digest: str) -> None:
        super().__init__("cameras.yaml changed on disk since the editor opened it")
        self.digest = digest


class EditorInvalid(Exception):
    """The edited file does not pass the validator; nothing was written."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(e.msg for e in errors))
        self.errors = errors


class EditorMissing(Exception):
    """No such camera in the file, or nothing to undo."""


class ConfigEditing(Protocol):
    async def read(self, camera_id: str) -> EditorCamera: ...

    async def save(self, camera_id: str, edit: CameraEdit, by: str) -> EditorSaved: ...

    async def undo(self, digest: str, by: str) -> EditorSaved: ...

    async def history(self) -> list[Backup]: ...


def editor_router(editor: ConfigEditing, access: Access, accounts: Accounts) -> APIRouter:
    router = APIRouter(
        prefix="/api/config", tags=["editor"], responses=responses(400, 401, 403, 404, 409, 422)
    )

    def admin(user: User) -> User:
        if user.role != Role.ADMIN:
            raise HTTPException(403, "editing cameras.yaml is for admins")
        return user

    async def answer(work: Any) -> EditorSaved:
        try:
            return await work  # type: ignore[no-any-return]
        except EditorConflict as exc:
            raise HTTPException(409, f"{exc}: reload the editor (now {exc.digest[:12]})") from exc
        except EditorInvalid as exc:
            raise HTTPException(422, exc.errors) from exc
        except EditorMissing as exc:
            raise HTTPException(404, str(exc)) from exc

    @router.get("/cameras/{camera_id}")
    async def read_camera(
        camera_id: str, user: Annotated[User, Depends(access.user)]
    ) -> EditorCamera:
        """The camera's zones, lines and rules as the file has them."""
        admin(user)
        try:
            return await editor.read(camera_id)
        except EditorMissing as exc:
            raise HTTPException(404, str(exc)) from exc

    @router.put("/cameras/{camera_id}")
    async def save_camera(
        camera_id: str, body: CameraEdit, request: Request,
        user: Annotated[User, Depends(access.user)],
    ) -> EditorSaved:  # fmt: skip
        """Write the camera's sections into cameras.yaml and apply them live. The validator
        of `pantau check` runs first: its errors come back as 422 with `loc` naming the
        section, item and field (e.g. ["zones", 0, "points"]) and nothing is written. A file
        changed on disk since it was read answers 409."""
        admin(user)
        saved = await answer(editor.save(camera_id, body, user.username))
        await accounts.audit(user, "config.edit", camera_id, saved.diff, ip=_ip(request))
        return saved

    @router.post("/undo")
    async def undo(
        body: UndoRequest, request: Request, user: Annotated[User, Depends(access.user)]
    ) -> EditorSaved:
        """Put back the file as it was before the last save (itself kept, so undo undoes)."""
        admin(user)
        saved = await answer(editor.undo(body.digest, user.username))
        await accounts.audit(user, "config.undo", None, saved.diff, ip=_ip(request))
        return saved

    @router.get("/history")
    async def history(user: Annotated[User, Depends(access.user)]) -> list[Backup]:
        """The kept earlier files, newest first (cameras.yaml.1, .2, ...)."""
        admin(user)
        return await editor.history()

    return router
