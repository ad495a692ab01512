"""The cameras.yaml section that ingest owns: where a camera's stream is and how to pull it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

CameraId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]


class CameraSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    detect_fps: float = Field(default=5.0, gt=0, le=30)
    open_timeout_s: float = Field(default=10.0, gt=0, le=120)
    read_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # Reconnect delays double from 0.5 s up to this cap (with jitter): a camera that comes back
    # is seen within this long, and a dead one costs one attempt per this long.
    reconnect_max_s: float = Field(default=8.0, ge=1, le=300)
    # A camera that was online counts as "reconnecting" for this long, then as "offline".
    offline_after_s: float = Field(default=30.0, ge=0, le=3600)
    transport: str = Field(default="tcp", pattern="^(tcp|udp)$")
    # "auto": a quiet camera (no motion, no open incident, nobody watching its decoded picture)
    # decodes keyframes only after `idle_after_s`, and every frame again the moment something
    # happens; "full": every frame, always. Recording and live WebRTC never decode either way.
    decode: Literal["auto", "full"] = "auto"
    idle_after_s: float = Field(default=4.0, ge=1, le=3600)
    record: bool = False  # keep the stream as segments (no re-encoding) for clips and replay
    retention_days: float | None = Field(default=None, gt=0, le=3650)  # overrides recording

    @field_validator("url")
    @classmethod
    def _rtsp(cls, value: str) -> str:
        if not value.startswith(("rtsp://", "rtsps://")):
            raise ValueError("must be an rtsp:// or rtsps:// URL")
        return value


class RecordingConfig(BaseModel):
    """Where and how segments are kept; cameras opt in with `record: true`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: str = "recordings"  # relative to storage.data_dir
    segment_s: float = Field(default=10.0, ge=1, le=600)
    retention_days: float = Field(default=7.0, gt=0, le=3650)
    # Delete the oldest segments (never held ones) while the disk is fuller than this.
    max_disk_fraction: float = Field(default=0.85, gt=0.05, le=0.99)
    max_bytes: int | None = Field(default=None, ge=1)  # optional hard budget for recordings
    pre_roll_s: float = Field(default=10.0, ge=0, le=600)
    post_roll_s: float = Field(default=10.0, ge=0, le=600)
