"""The cameras.yaml sections that events/ owns: OPDs, their contacts, and routing rules."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
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


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_RANGE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def time_range(value: str) -> tuple[time, time | None]:
    """ "07:30-16:00" -> (07:30, 16:00); an end of 24:00 is None (midnight, the day's end)."""
    m = _RANGE.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a time range like 07:30-16:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h2 == 24 and m2:
        raise ValueError(f"{value!r}: 24:00 is the latest end")
    start, end = time(h1, m1), (None if h2 == 24 else time(h2, m2))
    if start == end:
        raise ValueError(f"{value!r} is empty (start and end are the same)")
    return start, end


def _time_range(value: str) -> str:
    time_range(value)
    return value


TimeRange = Annotated[str, AfterValidator(_time_range)]


def duration(value: str | float) -> tuple[int, float]:
    """(days, seconds) of `90`, "15m", "4h", "3d", "1d12h": days stay apart because in working
    time a day is a working day, not 24 hours."""
    if isinstance(value, int | float):
        return 0, float(value)
    text = value.strip().replace(" ", "")
    m = _DURATION.match(text)
    if not text or not m:
        raise ValueError(f"{value!r} is not a duration like 15m, 4h, 3d or 1d12h")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return d, h * 3600.0 + mi * 60.0 + s


def _duration(value: str | float) -> str | float:
    days, seconds = duration(value)
    if days == 0 and seconds <= 0:
        raise ValueError("must be longer than zero")
    return value


Duration = Annotated[str | float, AfterValidator(_duration)]


ChatAction = Literal["acknowledge", "start", "resolve", "false_alarm"]


class Contact(Strict):
    # An id lets rosters name the contact and chat apps link to it (one-time code from the wall).
    id: Slug | None = None
    name: str = Field(min_length=1)
    role: str = ""
    phone: str | None = None
    email: str | None = None
    telegram: int | None = Field(default=None, gt=0)  # Telegram user id (or link from the wall)
    whatsapp: str | None = Field(default=None, pattern=r"^[1-9][0-9]{6,14}$")  # wa_id: 62811...
    # What the contact may answer from a chat app; "Bukan kejadian" only where it is listed.
    can: list[ChatAction] = ["acknowledge", "start", "resolve"]

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


DayPlan = dict[str, list[Slug] | Slug]  # shift name -> contact id(s) on duty in it


class RosterChange(Strict):
    """One dated exception: a swap (tukar piket), leave, an extra person on a busy day."""

    date: date  # the day the shift starts
    shift: str
    contacts: list[Slug] = Field(min_length=1)  # replaces the plan's people for that shift
    note: str = ""


class Roster(Strict):
    """Who is on duty (piket) when. Shifts are named ranges; one that ends before it starts
    runs past midnight and belongs to the day it starts. `weeks` rotate from `starts` (a
    Monday): week 1, week 2, ... then week 1 again; each maps days (mon..sun, ranges such as
    mon-fri, or daily) to shift -> contact ids. Public holidays and the site's days off use
    the `holidays` plan when there is one."""

    team: list[Contact] = []  # people who stand duty but are not in the escalation chain
    shifts: dict[Slug, TimeRange] = Field(min_length=1)
    starts: date
    weeks: list[dict[str, DayPlan]] = Field(min_length=1)
    holidays: DayPlan | None = None
    exceptions: list[RosterChange] = []

    @field_validator("starts")
    @classmethod
    def _monday(cls, value: date) -> date:
        if value.weekday() != 0:
            raise ValueError(f"{value} is a {WEEKDAYS[value.weekday()]}; the rotation starts "
                             "on a Monday")  # fmt: skip
        return value

    @field_validator("weeks")
    @classmethod
    def _days(cls, value: list[dict[str, DayPlan]]) -> list[dict[str, DayPlan]]:
        for week in value:
            for key in week:
                day_keys(key)
        return value


def day_keys(key: str) -> tuple[int, ...]:
    """Weekday numbers (Monday 0) that a roster key names: "mon", "mon-fri", "daily"."""
    key = key.strip().lower()
    if key == "daily":
        return tuple(range(7))
    first, _, last = key.partition("-")
    if first not in WEEKDAYS or (last and last not in WEEKDAYS):
        raise ValueError(f"{key!r} is not a day (mon..sun, a range such as mon-fri, or daily)")
    a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
    return tuple(range(a, b + 1)) if a <= b else (*range(a, 7), *range(0, b + 1))


class Opd(Strict):
    """A government department (Organisasi Perangkat Daerah) that answers incidents.

    Contacts are the escalation chain, in order: the first hears at once, the next when the
    OPD has not acknowledged within the route's deadline, and so on; the last is repeated.
    With a roster, whoever is on duty now comes first and the contacts follow.
    """

    id: Slug
    name: str = Field(min_length=1)
    contacts: list[Contact] = Field(min_length=1)
    webhook: Webhook | None = None
    roster: Roster | None = None

    def people(self) -> dict[str, Contact]:
        """Contacts and roster team by id."""
        team = self.roster.team if self.roster else []
        return {c.id: c for c in [*self.contacts, *team] if c.id}

    def roster_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Names in the roster that point nowhere (shifts, contact ids), with their place."""
        roster = self.roster
        if roster is None:
            return []
        problems: list[tuple[tuple[str | int, ...], str]] = []
        ids = [c.id for c in [*self.contacts, *roster.team] if c.id]
        seen: set[str] = set()
        for cid in ids:
            if cid in seen:
                problems.append((("roster", "team"), f"contact id {cid!r} is used twice"))
            seen.add(cid)

        def check(loc: tuple[str | int, ...], plan: DayPlan) -> None:
            for shift, who in plan.items():
                if shift not in roster.shifts:
                    known = ", ".join(roster.shifts)
                    problems.append(((*loc, shift), f"shift {shift!r} is not defined (shifts: "
                                     f"{known})"))  # fmt: skip
                for person in [who] if isinstance(who, str) else who:
                    if person not in seen:
                        problems.append(((*loc, shift), f"contact {person!r} is not defined "
                                         "(give it an id in contacts or roster.team)"))  # fmt: skip

        for wi, week in enumerate(roster.weeks):
            for key, plan in week.items():
                check(("roster", "weeks", wi, key), plan)
        if roster.holidays:
            check(("roster", "holidays"), roster.holidays)
        for ei, change in enumerate(roster.exceptions):
            check(("roster", "exceptions", ei), {change.shift: change.contacts})
        return problems


class RouteMatch(Strict):
    """Every listed condition must hold; an empty list matches anything."""

    kinds: list[IncidentKind] = []
    kecamatan: list[str] = []
    cameras: list[Slug] = []
    min_severity: Severity = Severity.INFO
    # When the incident started, by the site's calendar: office hours on a working day, or
    # after hours (evenings, nights, weekends, holidays).
    hours: Literal["office", "after_hours"] | None = None


class Sla(Strict):
    """How long the OPD has, from being routed the incident: to acknowledge and to resolve.
    In `working` time only office hours of working days count, and a day (3d) is a working
    day, as LAPOR! counts citizen complaints."""

    acknowledge: Duration | None = None
    resolve: Duration | None = None
    time: Literal["clock", "working"] = "clock"


class Route(Strict):
    match: RouteMatch = RouteMatch()
    opds: list[Slug] = Field(min_length=1)
    ack_deadline_s: float = Field(default=300, gt=0)
    sla: Sla | None = None
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
    # Replies back through the gateway: POST /api/chat/gateway signed with this secret
    # (X-Pantau-Signature over "<X-Pantau-Timestamp>.<body>", as Pantau signs its webhooks).
    reply_secret: str | None = Field(default=None, min_length=16)


class TelegramConfig(Strict):
    """A Telegram bot: incidents out with buttons, answers in by long polling (no public
    address needed). Make the bot with @BotFather; its token by reference: ${TELEGRAM_TOKEN}."""

    token: str = Field(pattern=r"^\d+:[A-Za-z0-9_-]{20,}$")
    api_url: str = Field(default="https://api.telegram.org", pattern=r"^https?://")
    poll_timeout_s: int = Field(default=25, ge=1, le=50)
    max_photo_bytes: int = Field(default=10_000_000, ge=100_000)  # replies' photos kept up to


class WhatsAppConfig(Strict):
    """WhatsApp Business Cloud API: template messages with quick-reply buttons out, a signed
    webhook in (POST /api/chat/whatsapp, X-Hub-Signature-256 with the app secret)."""

    phone_number_id: str = Field(pattern=r"^\d+$")
    access_token: str = Field(min_length=10)
    app_secret: str = Field(min_length=8)
    verify_token: str = Field(min_length=8)  # the webhook's GET handshake (hub.verify_token)
    template: str = Field(default="pantau_kejadian", pattern=r"^[a-z0-9_]+$")
    language: str = "id"
    api_url: str = Field(default="https://graph.facebook.com/v21.0", pattern=r"^https?://")


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
    telegram: TelegramConfig | None = None
    whatsapp: WhatsAppConfig | None = None
    silences: list[Silence] = []

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str]) -> list[str]:
        allowed = {"kind", "kecamatan", "desa", "camera_id", "severity"}
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ValueError(f"unknown {', '.join(bad)} (use {', '.join(sorted(allowed))})")
        return value


class DayOff(Strict):
    date: date
    name: str = "Libur daerah"


class CalendarConfig(Strict):
    """The site's working days: weekdays, office hours, Indonesian public holidays (from the
    `holidays` library), joint leave days (cuti bersama) and the site's own days off."""

    country: str = Field(default="ID", pattern=r"^[A-Z]{2}$")
    cuti_bersama: bool = True  # joint leave days are days off for government offices
    working_days: list[Weekday] = Field(default=["mon", "tue", "wed", "thu", "fri"], min_length=1)
    # One range for every working day, or per weekday (Friday often ends later).
    office_hours: TimeRange | dict[Weekday, TimeRange] = "08:00-16:00"
    extra_days_off: list[date | DayOff] = []  # hari jadi kabupaten, local holidays
    extra_working_days: list[date] = []  # a Saturday made a working day

    @field_validator("office_hours")
    @classmethod
    def _forward(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        for text in [value] if isinstance(value, str) else value.values():
            start, end = time_range(text)
            if end is not None and end <= start:
                raise ValueError(f"{text!r}: office hours end after they start, the same day")
        return value

    def days_off(self) -> list[DayOff]:
        return [d if isinstance(d, DayOff) else DayOff(date=d) for d in self.extra_days_off]


class ReportConfig(Strict):
    """The weekly OPD performance report: made every `weekday` at `at` (site time) for the
    week before, kept in the data directory and mailed (notify.smtp) to `recipients`."""

    enabled: bool = True
    weekday: Weekday = "mon"
    at: str = Field(default="07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    recipients: list[str] = []  # the Bupati, Sekda, Kalaksa...: e-mail addresses

    @field_validator("recipients")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _EMAIL.match(v)]
        if bad:
            raise ValueError(f"not e-mail addresses: {', '.join(bad)}")
        return value


class FalseAlarmConfig(Strict):
    """When a camera rule is flagged to admins as crying wolf: more than `flag_share` of its
    incidents closed as false alarm (7 days, or 30 while the week has too few to judge)."""

    flag_share: float = Field(default=0.3, gt=0, le=1)
    min_incidents: int = Field(default=5, ge=1)


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
