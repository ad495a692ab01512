"""Inbound alerts: the JSON payload OPD systems and citizen gateways POST, and CAP 1.2 XML.

Both become `Alert`s. Validation errors are for people (`field: reason`), raised as
`IntakeError` with the HTTP status the API answers. CAP is parsed with defusedxml and any DTD
is refused, so no XXE, no external fetch and no entity expansion (billion laughs).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from events.model import (
    Alert,
    AlertMsgType,
    AlertStatus,
    IncidentKind,
    Severity,
    SourceKind,
    UtcDatetime,
    utcnow,
)
from events.region import CapArea, Region

MAX_JSON_BYTES = 64 * 1024
MAX_CAP_BYTES = 512 * 1024
CLOCK_SKEW = timedelta(minutes=10)
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class IntakeError(ValueError):
    def __init__(self, status: int, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.status = status
        self.reasons = reasons


class AlertIn(BaseModel):
    """What an OPD system or a citizen-report gateway sends to POST /api/alerts."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: (
        Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\w.:@/-]+$")]
        | None
    ) = None
    source: Literal["opd", "citizen"] = "opd"
    kind: IncidentKind
    severity: Severity = Severity.MEDIUM
    title: Annotated[Text, StringConstraints(max_length=200)]
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    kecamatan: Annotated[Text, StringConstraints(max_length=100)] | None = None
    desa: Annotated[Text, StringConstraints(max_length=100)] | None = None
    camera_id: Annotated[Text, StringConstraints(max_length=48)] | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    reporter: Annotated[str, StringConstraints(max_length=200)] | None = None
    status: AlertStatus = AlertStatus.ACTUAL
    msg_type: AlertMsgType = AlertMsgType.ALERT
    references: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(
        default=[], max_length=50
    )
    sent_at: UtcDatetime | None = None
    expires_at: UtcDatetime | None = None


def parse_alert_json(
    body: bytes, sender: str, cameras: set[str], now: datetime | None = None
) -> Alert:
    """Validate a JSON alert from `sender` (the OPD its API key belongs to)."""
    now = now or utcnow()
    if len(body) > MAX_JSON_BYTES:
        raise IntakeError(413, [f"body is larger than {MAX_JSON_BYTES // 1024} KiB"])
    try:
        payload = AlertIn.model_validate_json(body)
    except ValidationError as exc:
        raise IntakeError(_status(exc), [_reason(e) for e in exc.errors()]) from exc
    problems = []
    if (payload.lat is None) != (payload.lon is None):
        problems.append("lat, lon: give both or neither")
    if not (payload.kecamatan or payload.desa or payload.camera_id or payload.lat is not None):
        problems.append("location: give at least one of kecamatan, desa, camera_id or lat/lon")
    if payload.camera_id and payload.camera_id not in cameras:
        problems.append(f"camera_id: unknown camera {payload.camera_id!r}")
    sent = payload.sent_at or now
    if sent > now + CLOCK_SKEW:
        problems.append("sent_at: is in the future")
    if payload.expires_at is not None and payload.expires_at <= sent:
        problems.append("expires_at: must be after sent_at")
    if payload.msg_type != AlertMsgType.ALERT and not payload.references:
        problems.append(f"references: a {payload.msg_type} must name the alert ids it replaces")
    if payload.msg_type != AlertMsgType.ALERT and not payload.id:
        problems.append(f"id: a {payload.msg_type} needs its own id")
    if problems:
        raise IntakeError(422, problems)
    return Alert(
        source=SourceKind(payload.source), sender=sender, external_id=payload.id,
        kind=payload.kind, severity=payload.severity, title=payload.title,
        description=payload.description, kecamatan=payload.kecamatan, desa=payload.desa,
        camera_id=payload.camera_id, lat=payload.lat, lon=payload.lon, reporter=payload.reporter,
        status=payload.status, msg_type=payload.msg_type, references=tuple(payload.references),
        sent_at=sent, received_at=now, expires_at=payload.expires_at,
    )  # fmt: skip


def _status(exc: ValidationError) -> int:
    # Broken JSON is a 400; JSON that says the wrong things is a 422.
    return 400 if any(e["type"] == "json_invalid" for e in exc.errors()) else 422


def _reason(err: object) -> str:
    e = err if isinstance(err, dict) else {}
    loc = ".".join(str(p) for p in e.get("loc", ())) or "body"
    if e.get("type") == "extra_forbidden":
        return f"{loc}: unknown field"
    if e.get("type") == "missing":
        return f"{loc}: required"
    if e.get("type") == "json_invalid":
        return f"body: not valid JSON ({e.get('ctx', {}).get('error', 'parse error')})"
    return f"{loc}: {e.get('msg', 'invalid')}"


# ---- CAP 1.2 ----------------------------------------------------------------------------------
_CAP_NS = ("urn:oasis:names:tc:emergency:cap:1.2", "urn:oasis:names:tc:emergency:cap:1.1")
_CAP_SEVERITY = {
    "extreme": Severity.CRITICAL,
    "severe": Severity.HIGH,
    "moderate": Severity.MEDIUM,
    "minor": Severity.LOW,
    "unknown": Severity.MEDIUM,
}
_CAP_STATUS = {
    "actual": AlertStatus.ACTUAL,
    "exercise": AlertStatus.EXERCISE,
    "test": AlertStatus.TEST,
    "system": AlertStatus.TEST,
    "draft": AlertStatus.TEST,
}
_KIND_WORDS: list[tuple[IncidentKind, tuple[str, ...]]] = [
    (IncidentKind.FLOOD, ("banjir", "flood", "rob", "genangan", "tsunami")),
    (IncidentKind.LANDSLIDE, ("longsor", "landslide", "tanah gerak")),
    (IncidentKind.FIRE, ("kebakaran", "fire", "karhutla")),
    (
        IncidentKind.WEATHER,
        ("hujan", "cuaca", "angin", "petir", "badai", "weather", "storm", "rain"),
    ),
]


def cap_kind(text: str) -> IncidentKind:
    low = text.lower()
    for kind, words in _KIND_WORDS:
        if any(re.search(rf"\b{re.escape(w)}", low) for w in words):
            return kind
    return IncidentKind.ALERT


def parse_cap(xml: bytes, region: Region | list[str], now: datetime | None = None) -> list[Alert]:
    """A CAP 1.2 <alert> -> one Alert per kecamatan of the region its areas mean (by geocode,
    polygon or exact name: see events/region.py), or one Alert for the whole regency / no
    place.

    `external_id` is `identifier|kecamatan`, so an Update/Cancel (which references CAP
    identifiers) finds the alerts it replaces kecamatan by kecamatan.
    """
    now = now or utcnow()
    if len(xml) > MAX_CAP_BYTES:
        raise IntakeError(413, [f"CAP document is larger than {MAX_CAP_BYTES // 1024} KiB"])
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise IntakeError(
            400, [f"CAP: refused ({type(exc).__name__}): DTDs and entities are not allowed"]
        ) from exc
    except ParseError as exc:
        raise IntakeError(400, [f"CAP: not well-formed XML ({exc})"]) from exc
    ns = next((n for n in _CAP_NS if root.tag == f"{{{n}}}alert"), None)
    if ns is None:
        raise IntakeError(422, [f"CAP: root element is {root.tag!r}, not a CAP 1.2 <alert>"])

    def text(el: Element, name: str) -> str | None:
        child = el.find(f"{{{ns}}}{name}")
        return child.text.strip() if child is not None and child.text else None

    problems = [
        f"CAP: <{f}> is required"
        for f in ("identifier", "sender", "sent", "status", "msgType")
        if not text(root, f)
    ]
    if problems:
        raise IntakeError(422, problems)
    identifier, sender = text(root, "identifier"), text(root, "sender")
    assert identifier and sender
    status = _CAP_STATUS.get((text(root, "status") or "").lower())
    msg = (text(root, "msgType") or "").lower()
    if status is None:
        raise IntakeError(422, [f"CAP: unknown <status> {text(root, 'status')!r}"])
    if msg not in ("alert", "update", "cancel"):
        raise IntakeError(
            422, [f"CAP: <msgType> {text(root, 'msgType')!r} is not an alert, update or cancel"]
        )
    sent = _cap_time(text(root, "sent"), "sent")
    infos = root.findall(f"{{{ns}}}info")
    info = next((i for i in infos if (text(i, "language") or "").lower().startswith("id")), None)
    info = info if info is not None else (infos[0] if infos else None)
    if info is None and msg != "cancel":
        raise IntakeError(422, ["CAP: an alert or update needs an <info> block"])
    event = (text(info, "event") if info is not None else None) or "Peringatan"
    headline = (text(info, "headline") if info is not None else None) or event
    expires = (
        _cap_time(text(info, "expires"), "expires")
        if info is not None and text(info, "expires")
        else None
    )
    if isinstance(region, list):
        region = Region.from_names(region)

    def texts(el: Element, name: str) -> tuple[str, ...]:
        return tuple(c.text.strip() for c in el.findall(f"{{{ns}}}{name}") if c.text)

    areas = [
        CapArea(
            desc=text(a, "areaDesc") or "",
            geocodes=tuple((text(g, "value") or "") for g in a.findall(f"{{{ns}}}geocode")),
            polygons=texts(a, "polygon"),
            circles=texts(a, "circle"),
        )
        for a in (info.findall(f"{{{ns}}}area") if info is not None else [])
    ]
    refs = [r.split(",")[1] for r in (text(root, "references") or "").split() if r.count(",") >= 1]
    matched: list[str | None] = list(region.match(areas).kecamatan)
    matched = matched or [None]  # the whole regency, or a place that is not one of ours
    return [
        Alert(
            source=SourceKind.CAP,
            sender=sender,
            external_id=f"{identifier}|{kec or ''}",
            kind=cap_kind(f"{event} {headline}"),
            severity=_CAP_SEVERITY.get(
                ((text(info, "severity") if info is not None else None) or "unknown").lower(),
                Severity.MEDIUM,
            ),
            title=headline[:200],
            description=((text(info, "description") if info is not None else None) or "")[:4000],
            kecamatan=kec,
            status=status,
            msg_type=AlertMsgType(msg),
            references=tuple(f"{r}|{kec or ''}" for r in refs),
            sent_at=sent,
            received_at=now,
            expires_at=expires,
        )
        for kec in matched
    ]


def _cap_time(value: str | None, field: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(value or "")
    except ValueError as exc:
        raise IntakeError(422, [f"CAP: <{field}> {value!r} is not a CAP date-time"]) from exc
    if stamp.tzinfo is None:
        raise IntakeError(422, [f"CAP: <{field}> {value!r} has no time zone"])
    return stamp
