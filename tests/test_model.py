"""events.model: ids sort by time, stamps are UTC-aware, messages are frozen and versioned."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from events.model import (
    SCHEMA_VERSION,
    EventType,
    Incident,
    IncidentEvent,
    IncidentKind,
    Severity,
    new_id,
    parse_event,
    utcnow,
)


def make_incident(**kw: object) -> Incident:
    now = utcnow()
    fields: dict[str, object] = dict(
        kind=IncidentKind.CROWD,
        severity=Severity.MEDIUM,
        title="Kerumunan",
        camera_id="cam-1",
        started_at=now,
        updated_at=now,
    )
    fields.update(kw)
    return Incident(**fields)  # type: ignore[arg-type]


def test_ids_are_unique_and_time_ordered() -> None:
    ids = [new_id("inc") for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(i.startswith("inc_") and len(i) == 30 for i in ids)


def test_naive_timestamps_are_rejected_and_others_become_utc() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        make_incident(started_at=datetime(2026, 1, 1, 12, 0))
    wita = timezone(timedelta(hours=8))
    inc = make_incident(started_at=datetime(2026, 1, 1, 20, 0, tzinfo=wita))
    assert inc.started_at.utcoffset() == timedelta(0) and inc.started_at.hour == 12


def test_messages_are_frozen_and_versioned() -> None:
    inc = make_incident()
    with pytest.raises(ValidationError):
        inc.title = "x"  # type: ignore[misc]
    assert inc.schema_version == SCHEMA_VERSION
    with pytest.raises(ValidationError, match="Extra inputs"):
        make_incident(unexpected=1)


def test_event_json_round_trip() -> None:
    event = IncidentEvent(type=EventType.INCIDENT_OPENED, incident=make_incident(peak_count=7))
    back = parse_event(event.model_dump_json())
    assert back == event and isinstance(back, IncidentEvent)
    with pytest.raises(ValidationError):
        parse_event('{"type": "nope"}')
