"""What the wallboard's routers are given: the store, the hub, media sources, accounts and the
site's configuration (WallboardDeps), and the types they share."""

# No `from __future__ import annotations`: FastAPI reads these types in route signatures.

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from fastapi import HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from events.api_keys import ApiKeys
from events.attachments import Attachments
from events.desk import IncidentDesk
from events.model import CameraStatus, ClipRef, ReloadResult, WorkerStatus
from events.notify.chat_links import ChatLinks
from events.notify.gateway_replies import GatewayReplies
from events.notify.whatsapp import WhatsAppApp
from events.region import Region
from events.report_service import Reports
from events.roster import OpdDuty
from events.store import Store
from wallboard.auth import Accounts
from wallboard.config import UiConfig, Wall
from wallboard.editor_api import ConfigEditing
from wallboard.hub import Hub
from wallboard.walls import WallDirector

STATIC = Path(__file__).parent / "static"
_NUMBER = re.compile(r"^\s*[-+]?\d+(\.\d*)?([eE][-+]?\d+)?\s*$")


def _iso_only(value: object) -> object:
    # pydantic takes a number as Unix time; the API's times are ISO 8601, nothing else.
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("a time is ISO 8601 with a zone, e.g. 2026-11-23T08:00+08:00")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]


class CameraInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    kecamatan: str | None = None
    desa: str | None = None
    url_masked: str
    status: CameraStatus | None = None


class SlaClock(BaseModel):
    """An OPD's SLA on one incident (times in UTC; null: no such SLA, or not yet)."""

    opd_id: str
    routed_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    ack_due: datetime | None = None
    resolve_due: datetime | None = None
    ack_breached_at: datetime | None = None
    resolve_breached_at: datetime | None = None


class AttachmentOut(BaseModel):
    id: str
    incident_id: str
    name: str
    content_type: str
    size: int
    added_by: str
    at: datetime


class DutyPerson(BaseModel):
    name: str
    role: str = ""
    phone: str | None = None  # staff only: operators call the piket
    shift: str | None = None  # None: not rostered (the OPD's first contact)
    starts: datetime | None = None
    ends: datetime | None = None
    note: str = ""


class OpdDutyOut(BaseModel):
    opd_id: str
    opd_name: str
    on_duty: list[DutyPerson]  # empty: nobody rostered now; `first_contact` hears first
    first_contact: DutyPerson
    until: datetime | None = None  # the next shift change
    day_off: str = ""  # today's holiday or weekend name; "" on a working day


class WebRtcOffer(BaseModel):
    sdp: str = Field(min_length=10, max_length=100_000)
    type: Literal["offer", "answer"] = "offer"


class StillSource(Protocol):
    """Stills and MJPEG of a camera: made here (LiveFrames) or fetched from its worker."""

    async def jpeg(self, camera_id: str) -> tuple[int, bytes] | None: ...

    def mjpeg(self, camera_id: str, fps: float) -> AsyncIterator[bytes]: ...


class VideoSource(Protocol):
    """WebRTC answers: from this process (LiveVideo) or relayed to the camera's worker."""

    async def answer(self, camera_id: str, offer_sdp: str, user: str = "") -> str: ...


class ReplayJob(BaseModel):
    id: str
    camera_id: str
    source: str  # the clip, or the time range of recordings
    by: str
    state: Literal["running", "done", "failed"]
    started_at: datetime
    finished_at: datetime | None = None
    lines: list[str] = []  # what `pantau replay` printed: per rule, incidents opened and closed
    rules: list[dict[str, Any]] = []
    error: str | None = None


class ReplayRunning(Protocol):
    async def start(
        self, camera_id: str, clip: Path | ClipRef | None, minutes: float, by: str
    ) -> ReplayJob:
        """`clip`: a clip file here, a clip on a worker (fetched first), or None for the
        camera's last `minutes` of recordings."""
        ...

    def get(self, job_id: str) -> ReplayJob | None: ...

    def chart(self, job_id: str) -> Path | None: ...


class StateLabelling(Protocol):
    """Labels of a camera zone's state, training and enabling its model (pantau/
    state_labelling.py). Raises LookupError for what is not there, ValueError for a training
    that cannot be done."""

    async def label(self, camera_id: str, zone_id: str, state: str, source: str,
                    ref: str | None, by: str) -> dict[str, Any]: ...  # fmt: skip

    async def label_normal(self, incident_id: str, state: str | None,
                           by: str) -> dict[str, Any]: ...  # fmt: skip

    def zones(self, camera_id: str) -> list[dict[str, Any]]: ...

    async def recorded_jpeg(self, camera_id: str, at: datetime) -> bytes: ...

    async def list(self, camera_id: str, zone_id: str) -> dict[str, Any]: ...

    def crop(self, label_id: str) -> Path | None: ...

    async def remove(self, label_id: str) -> bool: ...

    async def train(self, camera_id: str, zone_id: str) -> dict[str, Any]: ...

    async def enable(self, camera_id: str, zone_id: str, version: int | None,
                     by: str = "wall") -> dict[str, str]: ...  # fmt: skip


@dataclass
class WallboardDeps:
    store: Store
    hub: Hub
    live: StillSource
    cameras: list[CameraInfo]
    walls: list[Wall]
    ui: UiConfig
    snapshot_dir: Path | None
    clip_dir: Path | None
    health: Callable[[], dict[str, object]]
    accounts: Accounts
    mjpeg_fps: float = 5.0
    video: VideoSource | None = None  # WebRTC; None where a deployment offers MJPEG only
    director: WallDirector | None = None  # wall views (presets); None: walls are fixed
    desk: IncidentDesk | None = None  # intake and answers to incidents need it
    api_keys: ApiKeys | None = None
    kecamatan: list[str] = field(default_factory=list)  # the regency's, for the page's forms
    region: Region | None = None  # what CAP areas are matched against (None: the names above)
    opds: list[dict[str, str]] = field(default_factory=list)  # {id, name}, for the page's forms
    # Scaled out: the worker boxes (the workers panel), and clips fetched from the worker
    # that cut them. None in one process.
    workers: Callable[[], Awaitable[list[WorkerStatus]]] | None = None
    remote_clip: Callable[[ClipRef, Request], Awaitable[Response]] | None = None
    hsts: bool = False  # the server speaks TLS itself: browsers are told to keep to HTTPS
    # Apply a changed cameras.yaml (argument: who asks); None where the process cannot.
    reload: Callable[[str], Awaitable[ReloadResult]] | None = None
    editor: ConfigEditing | None = None  # the zone and rule editor (admins)
    replays: ReplayRunning | None = None  # rule tests from the wall (admins, one process)
    # Who is on duty per OPD at a moment (rosters and the site calendar).
    duty: Callable[[datetime], list[OpdDuty]] | None = None
    attachments: Attachments | None = None  # photos sent back by chat
    chat_links: ChatLinks | None = None  # link codes for chat apps (supervisors)
    whatsapp: WhatsAppApp | None = None  # its webhook in
    gateway_replies: GatewayReplies | None = None  # the HTTP chat gateway's replies in
    gateway_secret: str | None = None
    reports: Reports | None = None  # the weekly OPD performance report
    labelling: StateLabelling | None = None  # zone-state labels and models (admins, supervisors)
    false_alarm_share: float = 0.3  # a camera rule above this share of false alarms is flagged
    false_alarm_min: int = 5


def stored_file(folder: Path | None, name: str | None, missing: str) -> Path:
    """A file the store refers to, only from inside its folder (a stored name is no path)."""
    if folder is None or not name:
        raise HTTPException(404, missing)
    path = (folder / name).resolve()
    if path.parent != folder.resolve() or not path.is_file():
        raise HTTPException(404, missing)
    return path
