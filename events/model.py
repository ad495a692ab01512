"""The shared vocabulary: versioned, frozen JSON messages that cross package boundaries.

Everything on the bus is one of these pydantic models; never a tuple, a dict or a pickle.
All `*_at` stamps are timezone-aware UTC.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 1

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_id_lock = threading.Lock()
_last_id_ms = 0
_last_id_rand = 0


def new_id(prefix: str) -> str:
    """A time-ordered unique id (ULID layout: 48-bit ms time + 80 random bits, Crockford base32).

    Monotonic within one process: ids made in the same millisecond still sort in creation order.
    """
    global _last_id_ms, _last_id_rand
    with _id_lock:
        ms = int(time.time() * 1000)
        if ms <= _last_id_ms:
            ms = _last_id_ms
            rand = _last_id_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_id_ms, _last_id_rand = ms, rand
    value = (ms << 80) | (rand & ((1 << 80) - 1))
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: int = SCHEMA_VERSION


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class IncidentKind(StrEnum):
    CROWD = "crowd"
    TRAFFIC = "traffic"
    FLOOD = "flood"
    TAMPER = "tamper"
    OFFLINE = "offline"
    ALERT = "alert"


class IncidentState(StrEnum):
    """The operator workflow (Milestone-style), separate from whether the condition still holds."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"


class Incident(Message):
    id: str = Field(default_factory=lambda: new_id("inc"))
    kind: IncidentKind
    severity: Severity
    state: IncidentState = IncidentState.NEW
    title: str
    camera_id: str | None = None
    zone_id: str | None = None
    kecamatan: str | None = None
    desa: str | None = None
    started_at: UtcDatetime
    updated_at: UtcDatetime
    ended_at: UtcDatetime | None = None
    active: bool = True
    current_count: int | None = None
    peak_count: int | None = None
    threshold: int | None = None
    track_ids: tuple[int, ...] = ()
    cause: str | None = None  # e.g. tamper: black / covered / defocus / moved / frozen
    level: str | None = None  # e.g. traffic: lancar / padat / macet
    snapshot_ref: str | None = None
    routed_opds: tuple[str, ...] = ()


class CameraState(StrEnum):
    STARTING = "starting"
    ONLINE = "online"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    STOPPED = "stopped"


class CameraStatus(Message):
    camera_id: str
    state: CameraState
    url_masked: str
    at: UtcDatetime
    input_fps: float = 0.0
    dropped_fps: float = 0.0
    last_frame_age_s: float | None = None
    reconnects: int = 0
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    error: str | None = None


class ClipRef(Message):
    incident_id: str
    camera_id: str
    path: str
    start_at: UtcDatetime
    end_at: UtcDatetime


class EventType(StrEnum):
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_UPDATED = "incident.updated"
    INCIDENT_CLOSED = "incident.closed"
    CAMERA_STATUS = "camera.status"
    CLIP_READY = "clip.ready"


class IncidentEvent(Message):
    type: Literal[EventType.INCIDENT_OPENED, EventType.INCIDENT_UPDATED, EventType.INCIDENT_CLOSED]
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: UtcDatetime = Field(default_factory=utcnow)
    incident: Incident


class CameraStatusEvent(Message):
    type: Literal[EventType.CAMERA_STATUS] = EventType.CAMERA_STATUS
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: UtcDatetime = Field(default_factory=utcnow)
    status: CameraStatus


class ClipReadyEvent(Message):
    type: Literal[EventType.CLIP_READY] = EventType.CLIP_READY
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: UtcDatetime = Field(default_factory=utcnow)
    clip: ClipRef


Event = Annotated[IncidentEvent | CameraStatusEvent | ClipReadyEvent, Field(discriminator="type")]

AnyEvent = IncidentEvent | CameraStatusEvent | ClipReadyEvent
_event_adapter: TypeAdapter[AnyEvent] = TypeAdapter(Event)


def parse_event(raw: str | bytes) -> AnyEvent:
    """Decode one event from its JSON form (the form it has on Redis and on the WebSocket)."""
    return _event_adapter.validate_json(raw)
