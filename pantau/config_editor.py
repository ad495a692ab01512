"""Saving the wall editor's zones, lines and rules into cameras.yaml: checked by the same
validator as `pantau check` before anything is written, never over a file that changed on disk
since the editor read it, the previous file kept (cameras.yaml.1 ... .N), written atomically,
then applied with a live reload. What the administrator wrote elsewhere in the file stays
byte for byte (pantau/yaml_splice.py)."""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from events.model import ReloadResult
from pantau.config import ConfigError
from pantau.reloader import ConfigSource, digest
from pantau.yaml_splice import SECTIONS, SpliceError, camera_index, edit_camera, read_camera
from wallboard.editor_api import (
    Backup,
    CameraEdit,
    EditorCamera,
    EditorConflict,
    EditorInvalid,
    EditorMissing,
    EditorSaved,
)
from wallboard.errors import FieldError

Reload = Callable[[str], Awaitable[ReloadResult]]
_PROBLEM = re.compile(r"^[^:]+:(?P<line>\d+): (?P<field>[^:]+): (?P<msg>.*)$")
_FIELD = re.compile(r"^cameras\[(?P<cam>\d+)\]\.(?P<section>zones|lines|rules)\[(?P<item>\d+)\]"
                    r"(?:\.(?P<rest>.+))?$")  # fmt: skip


class ConfigEditor:
    def __init__(self, source: ConfigSource, reload: Reload, keep: int = 10) -> None:
        self.source = source
        self.reload = reload
        self.keep = keep
        self._lock = asyncio.Lock()

    @property
    def path(self) -> Path:
        return self.source.path

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    async def _text(self) -> str:
        return await asyncio.to_thread(self.path.read_text, encoding="utf-8")

    async def read(self, camera_id: str) -> EditorCamera:
        text = await self._text()
        try:
            # From the text alone: a file someone broke by hand still opens (its errors show
            # at the next save).
            name, sections = read_camera(text, camera_id)
        except SpliceError as exc:
            raise EditorMissing(str(exc)) from exc
        return EditorCamera(camera_id=camera_id, name=name, file=self.path.name,
                            digest=digest(text), **sections)  # fmt: skip

    async def save(self, camera_id: str, edit: CameraEdit, by: str) -> EditorSaved:
        async with self._lock:
            text = await self._text()
            if digest(text) != edit.digest:
                raise EditorConflict(digest(text))
            sections = {k: v for k in SECTIONS if (v := getattr(edit, k)) is not None}
            try:
                new = edit_camera(text, camera_id, sections)
                index = camera_index(text, camera_id)
            except SpliceError as exc:
                raise EditorMissing(str(exc)) from exc
            return await self._write(text, new, f"editor:{by}", index)

    async def undo(self, digest_now: str, by: str) -> EditorSaved:
        async with self._lock:
            text = await self._text()
            if digest(text) != digest_now:
                raise EditorConflict(digest(text))
            previous = self._backup(1)
            if not previous.is_file():
                raise EditorMissing("nothing to undo: no earlier file kept")
            old = await asyncio.to_thread(previous.read_text, encoding="utf-8")
            return await self._write(text, old, f"editor undo:{by}", None)

    async def history(self) -> list[Backup]:
        def scan() -> list[Backup]:
            out = []
            for n in range(1, self.keep + 1):
                p = self._backup(n)
                if p.is_file():
                    at = datetime.fromtimestamp(p.stat().st_mtime, UTC)
                    out.append(Backup(name=p.name, at=at, digest=digest(p.read_text("utf-8"))))
            return out

        return await asyncio.to_thread(scan)

    async def _write(self, text: str, new: str, by: str, index: int | None) -> EditorSaved:
        try:
            await asyncio.to_thread(self.source.parse, new)
        except ConfigError as exc:
            raise EditorInvalid([_field_error(p, index) for p in exc.problems]) from exc
        diff = "".join(difflib.unified_diff(
            text.splitlines(keepends=True), new.splitlines(keepends=True),
            f"{self.path.name} (before)", self.path.name,
        ))  # fmt: skip
        if new == text:
            result = ReloadResult(ok=True, by=by, digest=digest(text))
            return EditorSaved(digest=digest(text), backup="", diff="", reload=result)
        await asyncio.to_thread(self._rotate_and_write, new)
        return EditorSaved(digest=digest(new), backup=self._backup(1).name, diff=diff,
                           reload=await self.reload(by))  # fmt: skip

    def _rotate_and_write(self, new: str) -> None:
        oldest = self._backup(self.keep)
        oldest.unlink(missing_ok=True)
        for n in range(self.keep - 1, 0, -1):
            if self._backup(n).is_file():
                self._backup(n).replace(self._backup(n + 1))
        shutil.copy2(self.path, self._backup(1))
        # Atomic: the running process, `pantau check` or a person's editor never sees half a file.
        mode = self.path.stat().st_mode & 0o777
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(new)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _field_error(problem: str, index: int | None) -> FieldError:
    """`cameras.yaml:14: cameras[0].zones[1].points: ...` -> loc ["zones", 1, "points"] for the
    camera being edited, so the page puts it beside that field."""
    m = _PROBLEM.match(problem)
    if m is None:
        return FieldError(msg=problem)
    f = _FIELD.match(m["field"])
    if f is None or index is None or int(f["cam"]) != index:
        return FieldError(msg=problem)
    loc: list[str | int] = [f["section"], int(f["item"])]
    if f["rest"]:
        loc += [int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", f["rest"]) if p]
    return FieldError(loc=loc, msg=problem)
