"""The cameras.yaml sections that events/ owns: OPDs, their contacts, and routing rules."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

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


class Opd(Strict):
    """A government department (Organisasi Perangkat Daerah) that answers incidents."""

    id: Slug
    name: str = Field(min_length=1)
    contacts: list[Contact] = Field(min_length=1)


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


class CapFeed(Strict):
    url: str = Field(pattern=r"^https?://")
    interval_s: float = Field(default=60, ge=10)


class IntakeConfig(Strict):
    # Kecamatan names CAP areas are matched against, besides those of the cameras.
    kecamatan: list[str] = []
    cap_feeds: list[CapFeed] = []
