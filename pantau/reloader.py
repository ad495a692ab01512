"""Reading cameras.yaml again while running: where the file comes from, and what a reload
answers (`pantau reload`, SIGHUP, the API and the editor all get the same answer).

The answer names what was applied, what needs a restart (kept at its running value until
then) and, for an invalid file, the validator's file:line errors; an invalid file changes
nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from events.model import ReloadResult
from pantau.config import ConfigError, PantauConfig, parse
from pantau.config_diff import ConfigDiff

__all__ = ["ConfigSource", "ReloadResult", "digest", "running_config"]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class ConfigSource:
    """The file a process was started with, read the way it was read at start (the same
    environment for ${VAR}s, the same --port)."""

    path: Path
    env: Mapping[str, str] | None = None
    port: int | None = None

    def read(self) -> tuple[str, PantauConfig]:
        """The text and the validated config; raises ConfigError as `pantau check` does."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:  # as `load` words it
            raise ConfigError([f"{self.path}: cannot read: {exc.strerror or exc}"]) from exc
        return text, self.parse(text)

    def parse(self, text: str) -> PantauConfig:
        """Another box's copy of the file (the server's, from Redis), with this box's env."""
        return self.overridden(parse(text, self.path.name, self.path.parent, self.env))

    def overridden(self, config: PantauConfig) -> PantauConfig:
        if self.port is None:
            return config
        server = config.server.model_copy(update={"port": self.port})
        return config.model_copy(update={"server": server})


def running_config(old: PantauConfig, new: PantauConfig, diff: ConfigDiff) -> PantauConfig:
    """The config the process runs after a reload: the new file, except the sections that
    need a restart, which keep their running values (reported, not half-applied)."""
    return new.model_copy(update={name: getattr(old, name) for name in diff.restart_needed})
