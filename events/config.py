"""The cameras.yaml sections that events/ owns: OPDs, their contacts, and routing rules."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from events.model import IncidentKind, Severity

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{2,19}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Contact(Strict):
    name: str = Field(min_length=1)
    role: str = ""
    phone: str | None = None
    email: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.match(value):
            raise ValueError("not a phone number (digits, optional leading +)")
        return value


class Webhook(Strict):
    """An OPD system that takes incidents as signed JSON POSTs."""

    url: str = Field(pattern=r"^https?://")
    # HMAC-SHA256 key for the X-Pantau-Signature header; by reference: ${BPBD_WEBHOOK_SECRET}.
    secret: str | None = None
    headers: dict[str, str] = {}


class Opd(Strict):
    """A government department (Organisasi Perangkat Daerah) that answers incidents.

    Contacts are the escalation chain, in order: the first hears at once, the next when the
    OPD has not acknowledged within the route's deadline, and so on; the last is repeated.
    """

    id: Slug
    name: str = Field(min_length=1)
    contacts: list[Contact] = Field(min_length=1)
    webhook: Webhook | None = None


class RouteMatch(Strict):
    """Every listed condition must hold; an empty list matches anything."""

    kinds: list[IncidentKind] = []
    kecamatan: list[str] = []
    cameras: list[Slug] = []
    min_severity: Severity = Severity.INFO


class Route(Strict):
    match: RouteMatch = RouteMatch()
    opds: list[Slug] = Field(min_length=1)
    ack_deadline_s: float = Field(default=300, gt=0)
    # Like Alertmanager's `continue`: keep matching later routes after this one.
    continue_: bool = Field(default=False, alias="continue")


class Silence(Strict):
    """A maintenance window: matching incidents are kept and shown but nobody is notified."""

    id: Slug
    starts_at: datetime
    ends_at: datetime
    author: str = Field(min_length=1)
    comment: str = ""
    kinds: list[IncidentKind] = []
    kecamatan: list[str] = []
    cameras: list[Slug] = []
    opds: list[Slug] = []

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-12-01T08:00:00+08:00")
        return value

    @model_validator(mode="after")
    def _order(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Smtp(Strict):
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    ssl: bool = False  # implicit TLS (port 465)
    timeout_s: float = Field(default=15, gt=0)


class ChatGateway(Strict):
    """Any HTTP chat gateway (WhatsApp or Telegram bridges): the request is a template.

    `{phone}`, `{text}`, `{incident_url}` and `{opd}` are filled in (JSON-escaped in `body`).
    """

    url: str = Field(pattern=r"^https?://")
    method: str = Field(default="POST", pattern=r"^(POST|PUT)$")
    headers: dict[str, str] = {}
    body: str = '{"to": "{phone}", "message": "{text}"}'


class NotifyConfig(Strict):
    base_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://")
    # Like Alertmanager: a new group waits group_wait for company, later news of the same group
    # waits group_interval, so one storm gives one message per OPD.
    group_by: list[str] = ["kind", "kecamatan"]
    group_wait_s: float = Field(default=30, ge=0)
    group_interval_s: float = Field(default=300, ge=0)
    repeat_interval_s: float = Field(default=1800, gt=0)  # last contact reminded this often
    max_tries: int = Field(default=6, ge=1, le=20)
    retry_base_s: float = Field(default=2, gt=0)
    smtp: Smtp | None = None
    chat: ChatGateway | None = None
    silences: list[Silence] = []

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str]) -> list[str]:
        allowed = {"kind", "kecamatan", "desa", "camera_id", "severity"}
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ValueError(f"unknown {', '.join(bad)} (use {', '.join(sorted(allowed))})")
        return value


class CapFeed(Strict):
    url: str = Field(pattern=r"^https?://")
    interval_s: float = Field(default=60, ge=10)


KECAMATAN_CODE = r"^\d{2}\.\d{2}\.\d{2}$"


class KecamatanPlace(Strict):
    name: str = Field(min_length=1)
    code: str | None = Field(default=None, pattern=KECAMATAN_CODE)  # kode wilayah, 52.03.07


class Kabupaten(Strict):
    name: str = Field(min_length=1)  # "Lombok Timur" (without "Kabupaten")
    code: str | None = Field(default=None, pattern=r"^\d{2}\.\d{2}$")  # 52.03


class IntakeConfig(Strict):
    # The regency and its kecamatan that CAP areas are matched against (by Kemendagri code,
    # then the cameras' coordinates inside CAP polygons, then exact names), besides the
    # cameras' kecamatan: a name, or {name, code}.
    kabupaten: Kabupaten | None = None
    kecamatan: list[str | KecamatanPlace] = []
    cap_feeds: list[CapFeed] = []

    def places(self) -> list[KecamatanPlace]:
        return [
            k if isinstance(k, KecamatanPlace) else KecamatanPlace(name=k) for k in self.kecamatan
        ]
