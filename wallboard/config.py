"""The cameras.yaml sections that the wallboard owns: server, page settings and wall layouts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from events.model import IncidentKind, Severity

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]
LAYOUT_TILES = {"1x1": 1, "2x2": 4, "3x3": 9, "4x4": 16}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(Strict):
    """PEM files; the key readable only by Pantau's user."""

    cert: str
    key: str


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # HTTPS from Pantau itself (with HSTS); without it, put a TLS reverse proxy in front.
    tls: TlsConfig | None = None
    # Reverse proxies whose X-Forwarded-For / -Proto are believed (the login limiter and the
    # audit log then see the operator's address, not the proxy's). Empty: nobody's.
    trusted_proxies: list[str] = Field(default_factory=list)


class UiConfig(Strict):
    title: str = "Command Center"
    # The operator's zone: WIB (Asia/Jakarta), WITA (Asia/Makassar) or WIT (Asia/Jayapura).
    timezone: Literal["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"] = "Asia/Jakarta"
    language: Literal["id", "en"] = "id"
    # Live tiles: "smart" plays WebRTC video only for tiles with motion, an open incident or
    # the focus, and refreshes the others with a still every `idle_refresh_s` (as Frigate);
    # "live" plays every tile; "mjpeg" is "smart" without WebRTC (MJPEG for the busy tiles).
    streaming: Literal["smart", "live", "mjpeg"] = "smart"
    idle_refresh_s: float = Field(default=10.0, ge=1, le=300)
    max_live_viewers: int = Field(default=64, ge=0, le=1024)


Layout = Literal["1x1", "2x2", "3x3", "4x4"]


class Preset(Strict):
    """A named view a wall can be switched to: by an operator, or by a trigger."""

    id: Slug
    name: str = ""
    layout: Layout = "2x2"
    cameras: list[Slug] = []


class PresetTrigger(Strict):
    """Switch the wall to `preset` when a matching incident opens (Milestone's rules). An empty
    list matches anything; with `revert`, the wall returns to its own layout once every incident
    that switched it has closed (unless an operator chose a view meanwhile)."""

    preset: Slug
    kinds: list[IncidentKind] = []
    min_severity: Severity | None = None
    cameras: list[Slug] = []
    kecamatan: list[str] = []
    revert: bool = True


class Wall(Strict):
    """One wall screen, served at /wall/<id> (or /wall/<number>)."""

    id: Slug
    name: str = ""
    layout: Layout = "2x2"
    cameras: list[Slug] = []
    presets: list[Preset] = []
    on_incident: list[PresetTrigger] = []  # first match wins
