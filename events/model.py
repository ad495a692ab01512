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
    FIRE = "fire"
    ACCIDENT = "accident"
    LANDSLIDE = "landslide"
    WEATHER = "weather"
    ALERT = "alert"  # anything reported that fits no other kind
    SYSTEM = "system"  # Pantau's own servers: a disk filling up


class IncidentState(StrEnum):
    """The operator workflow (Milestone-style), separate from whether the condition still holds."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"

    @property
    def closed(self) -> bool:
        return self in (IncidentState.RESOLVED, IncidentState.FALSE_ALARM)


class SourceKind(StrEnum):
    CAMERA = "camera"
    OPD = "opd"
    CITIZEN = "citizen"
    CAP = "cap"


class Source(Message):
    """One thing that reported an incident: a camera's detection, an OPD or citizen alert, CAP."""

    kind: SourceKind
    ref: str  # the detection's or the alert's id
    name: str  # camera id, OPD id, gateway or CAP sender
    at: UtcDatetime
    summary: str = ""
    active: bool = True  # a detection still holds; an alert is neither cancelled nor expired


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
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    sources: tuple[Source, ...] = ()
    owner: str | None = None
    # CAP status Test/Exercise: kept and shown, never routed as real.
    exercise: bool = False
    acknowledged_at: UtcDatetime | None = None
    closed_at: UtcDatetime | None = None


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
    input_fps: float = 0.0  # frames the camera sends
    decoded_fps: float = 0.0  # frames decoded: all of them, or about one a GOP on keyframes
    decode_mode: str | None = None  # "full" or "keyframes" (a quiet camera)
    dropped_fps: float = 0.0  # decoded but not analysed
    last_frame_age_s: float | None = None
    reconnects: int = 0
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    error: str | None = None
    worker: str | None = None  # the box capturing it; None: this process
    lease_token: int | None = None


class ClipRef(Message):
    incident_id: str  # the observation (source ref) it was cut for
    camera_id: str
    path: str
    start_at: UtcDatetime
    end_at: UtcDatetime
    worker: str | None = None  # the box that holds the file (None: this process)


class ObservationPhase(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"


class Observation(Message):
    """What a camera's analytics (or the server's camera watch) saw: one condition of one rule,
    opened, updated and closed under one id. Only the desk turns observations into incidents.

    `worker` and `lease_token` say who made it under which camera lease: the desk drops an
    observation whose token is older than the camera's current one (a cut-off worker that came
    back), so two owners can never both speak for a camera.
    """

    id: str = Field(default_factory=lambda: new_id("obs"))
    phase: ObservationPhase
    camera_id: str | None  # None: about a box, not a camera (a worker lost)
    rule: str  # which rule of the camera: "crowd-0", "traffic-1", "tamper", "offline", ...
    kind: IncidentKind
    severity: Severity
    title: str
    zone_id: str | None = None
    kecamatan: str | None = None
    desa: str | None = None
    started_at: UtcDatetime
    at: UtcDatetime  # when this phase was seen
    current_count: int | None = None
    peak_count: int | None = None
    threshold: int | None = None
    level: str | None = None
    cause: str | None = None
    track_ids: tuple[int, ...] = ()
    snapshot_ref: str | None = None
    worker: str = "local"
    lease_token: int | None = None  # None: not made under a camera lease (one process, server)

    @property
    def active(self) -> bool:
        return self.phase != ObservationPhase.CLOSED


class WorkerState(StrEnum):
    RUNNING = "running"
    LOST = "lost"  # no heartbeat within its TTL: dead, hung or cut off from Redis
    STOPPED = "stopped"  # said goodbye (a clean shutdown)


class WorkerCamera(Message):
    camera_id: str
    lease_token: int
    state: CameraState
    input_fps: float = 0.0
    decoded_fps: float = 0.0
    decode_mode: str | None = None  # "full", or "keyframes" while the camera is quiet
    last_frame_age_s: float | None = None
    active: bool = False  # motion now (the wall plays it live)


class WorkerStatus(Message):
    """A worker box's heartbeat: what it holds and how it is doing (the workers panel)."""

    name: str
    state: WorkerState = WorkerState.RUNNING
    host: str
    pid: int
    capacity: int | None = None  # None: no limit
    cameras: tuple[WorkerCamera, ...] = ()
    detector_fps: float = 0.0  # images analysed per second
    cpu_percent: float = 0.0  # of one core, this process
    media_url: str | None = None  # where the server fetches its media (signed requests)
    started_at: UtcDatetime
    at: UtcDatetime


class ClipRequest(Message):
    """The desk asks the box recording a camera for the clip of an ended observation."""

    observation_id: str
    incident_id: str  # the desk's incident the observation belongs to: the clip is for it
    camera_id: str
    start_at: UtcDatetime  # the condition's own span; the recorder adds pre- and post-roll
    end_at: UtcDatetime


class AlertStatus(StrEnum):
    ACTUAL = "actual"
    EXERCISE = "exercise"
    TEST = "test"


class AlertMsgType(StrEnum):
    """CAP's msgType: an Update or Cancel names the alerts it replaces in `references`."""

    ALERT = "alert"
    UPDATE = "update"
    CANCEL = "cancel"


class Alert(Message):
    """An inbound report: an OPD system, a citizen-report gateway, or a CAP 1.2 warning."""

    id: str = Field(default_factory=lambda: new_id("alt"))
    source: SourceKind
    sender: str  # OPD id for OPD/citizen gateways; the CAP <sender>
    external_id: str | None = None  # the sender's own id (CAP identifier): idempotency key
    kind: IncidentKind
    severity: Severity
    title: str
    description: str = ""
    kecamatan: str | None = None
    desa: str | None = None
    camera_id: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    reporter: str | None = None  # a citizen's name/phone as the gateway gave it
    status: AlertStatus = AlertStatus.ACTUAL
    msg_type: AlertMsgType = AlertMsgType.ALERT
    references: tuple[str, ...] = ()  # external ids this Update/Cancel replaces
    sent_at: UtcDatetime
    received_at: UtcDatetime = Field(default_factory=utcnow)
    expires_at: UtcDatetime | None = None


class ActionKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    START = "start"  # -> in progress
    RESOLVE = "resolve"
    FALSE_ALARM = "false_alarm"
    REOPEN = "reopen"
    ASSIGN = "assign"
    COMMENT = "comment"
    # written by the system, not by people:
    ROUTED = "routed"
    NOTIFIED = "notified"
    ESCALATED = "escalated"
    MUTED = "muted"  # routed, but not notified: silence, inhibition or duplicate
    MERGED = "merged"
    SLA_ACK_BREACHED = "sla_ack_breached"  # not acknowledged within the route's SLA
    SLA_RESOLVE_BREACHED = "sla_resolve_breached"  # not resolved within it


class IncidentAction(Message):
    """One line of an incident's activity log (who did what, when)."""

    id: str = Field(default_factory=lambda: new_id("act"))
    incident_id: str
    kind: ActionKind
    actor: str  # a user name, "opd:<id>" or "system"
    at: UtcDatetime = Field(default_factory=utcnow)
    opd_id: str | None = None  # the OPD the actor acts for
    note: str = Field(default="", max_length=4000)
    owner: str | None = None  # for ASSIGN


class DeliveryStatus(StrEnum):
    SENT = "sent"
    RETRYING = "retrying"
    DEAD = "dead"  # gave up after the last try: shown on the wall


class Delivery(Message):
    """The outcome of one notification to one OPD contact over one channel."""

    id: str = Field(default_factory=lambda: new_id("dlv"))
    incident_id: str
    opd_id: str
    channel: str  # webhook | email | chat
    target: str  # where it went, without secrets
    status: DeliveryStatus
    attempts: int
    at: UtcDatetime = Field(default_factory=utcnow)
    step: int = 0  # escalation step that sent it (0 = first notice)
    error: str | None = None


class EventType(StrEnum):
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_UPDATED = "incident.updated"
    INCIDENT_CLOSED = "incident.closed"
    CAMERA_STATUS = "camera.status"
    CLIP_READY = "clip.ready"
    ALERT_RECEIVED = "alert.received"
    INCIDENT_ACTION = "incident.action"
    DELIVERY = "notification.delivery"
    OBSERVATION = "observation"
    CLIP_REQUEST = "clip.request"
    CONFIG_CHANGED = "config.changed"
    STATE_MODEL_CHANGED = "state_model.changed"


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


class AlertEvent(Message):
    type: Literal[EventType.ALERT_RECEIVED] = EventType.ALERT_RECEIVED
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: UtcDatetime = Field(default_factory=utcnow)
    alert: Alert


class ActionEvent(Message):
    type: Literal[EventType.INCIDENT_ACTION] = EventType.INCIDENT_ACTION
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: UtcDatetime = Field(default_factory=utcnow)
    action: IncidentAction


class DeliveryEvent(Message):
    type: Literal[EventType.DELIVERY] = EventType.DELIVERY
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: UtcDatetime = Field(default_factory=utcnow)
    delivery: Delivery


class ObservationEvent(Message):
    type: Literal[EventType.OBSERVATION] = EventType.OBSERVATION
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: UtcDatetime = Field(default_factory=utcnow)
    observation: Observation


class ClipRequestEvent(Message):
    type: Literal[EventType.CLIP_REQUEST] = EventType.CLIP_REQUEST
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: UtcDatetime = Field(default_factory=utcnow)
    request: ClipRequest


class ConfigChangedEvent(Message):
    """cameras.yaml was reloaded on the server: workers take the new text from Redis (never
    from the event, which pages also see), pages fetch the new camera and wall lists."""

    type: Literal[EventType.CONFIG_CHANGED] = EventType.CONFIG_CHANGED
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: UtcDatetime = Field(default_factory=utcnow)
    digest: str  # sha256 of the file's text
    by: str  # who or what reloaded it: "SIGHUP", "pantau reload", "editor:<user>"
    cameras: list[str] = []  # the cameras whose settings changed


class StateModelChangedEvent(Message):
    """A camera zone's state model was enabled (version) or disabled (None) on the server:
    workers that hold the camera take its models from Redis (never from the event)."""

    type: Literal[EventType.STATE_MODEL_CHANGED] = EventType.STATE_MODEL_CHANGED
    id: str = Field(default_factory=lambda: new_id("evt"))
    at: UtcDatetime = Field(default_factory=utcnow)
    camera_id: str
    zone_id: str
    version: int | None
    by: str


class ReloadResult(BaseModel):
    """What a reload of cameras.yaml answered (`pantau reload`, SIGHUP, the API, the editor)."""

    ok: bool
    by: str
    at: UtcDatetime = Field(default_factory=utcnow)
    digest: str | None = None
    errors: list[str] = []  # file:line: field: message, as `pantau check` prints them
    changed: dict[str, list[str]] = {}  # ConfigDiff.summary() of what was applied
    restart_needed: list[str] = []  # sections changed in the file but running as before
    cameras: dict[str, object] = {}  # per camera: what happened to it

    def lines(self) -> list[str]:
        """For a terminal and the log."""
        if not self.ok:
            return ["cameras.yaml not applied, the running config stays:", *self.errors]
        out = []
        shown = {k: v for k, v in self.changed.items() if k != "restart_needed"}
        if not shown and not self.restart_needed:
            out.append("no change")
        for key, names in shown.items():
            out.append(f"{key.replace('_', ' ')}: {', '.join(names)}")
        for name in self.restart_needed:
            out.append(f"{name}: changed in the file, needs a restart (running as before)")
        return out


AnyEvent = (
    IncidentEvent
    | CameraStatusEvent
    | ClipReadyEvent
    | AlertEvent
    | ActionEvent
    | DeliveryEvent
    | ObservationEvent
    | ClipRequestEvent
    | ConfigChangedEvent
    | StateModelChangedEvent
)
Event = Annotated[AnyEvent, Field(discriminator="type")]
_event_adapter: TypeAdapter[AnyEvent] = TypeAdapter(Event)


def parse_event(raw: str | bytes) -> AnyEvent:
    """Decode one event from its JSON form (the form it has on Redis and on the WebSocket)."""
    return _event_adapter.validate_json(raw)


def json_schemas() -> dict[str, dict[str, object]]:
    """The published JSON schemas: the event envelope and the records inside it."""
    return {
        "event": _event_adapter.json_schema(),
        **{
            model.__name__.lower(): model.model_json_schema()
            for model in (
                Incident,
                Alert,
                IncidentAction,
                Delivery,
                CameraStatus,
                ClipRef,
                Observation,
                ClipRequest,
            )
        },
    }
