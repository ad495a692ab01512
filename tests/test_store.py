"""SQLite store: WAL, idempotent appends, incident upserts, queries, durable across reopen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from events.model import EventType, IncidentEvent, IncidentKind
from events.store import Store
from tests.test_model import make_incident


async def test_append_is_idempotent_and_durable(tmp_path: Path) -> None:
    store = Store(tmp_path / "p.db")
    await store.open()
    inc = make_incident()
    opened = IncidentEvent(type=EventType.INCIDENT_OPENED, incident=inc)
    assert await store.append(opened) is True
    assert await store.append(opened) is False  # same event id: stored once
    closed = IncidentEvent(
        type=EventType.INCIDENT_CLOSED,
        incident=inc.model_copy(
            update={
                "active": False,
                "ended_at": inc.updated_at,
                "updated_at": inc.updated_at + timedelta(seconds=5),
            }
        ),
    )
    await store.append(closed)
    await store.close()

    again = Store(tmp_path / "p.db")
    await again.open()
    assert await again.count_events() == 2
    got = await again.incident(inc.id)
    assert got is not None and got.active is False
    assert await again.incidents(active=True) == []
    await again.close()


async def test_queries_by_camera_kind_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "q.db")
    await store.open()
    base = make_incident()
    for i, cam in enumerate(["a", "b", "a"]):
        inc = make_incident(camera_id=cam, started_at=base.started_at + timedelta(minutes=i))
        await store.append(IncidentEvent(type=EventType.INCIDENT_OPENED, incident=inc))
    assert [i.camera_id for i in await store.incidents()] == ["a", "b", "a"]  # newest first
    assert len(await store.incidents(camera_id="a")) == 2
    assert len(await store.incidents(kind=IncidentKind.FLOOD)) == 0
    assert len(await store.incidents(since=base.started_at + timedelta(seconds=30))) == 2
    await store.close()


async def test_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    store = Store(tmp_path / "w.db")
    await store.open()
    await store.close()
    mode = sqlite3.connect(tmp_path / "w.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_queries_by_kecamatan_state_and_open_or_recent(tmp_path: Path) -> None:
    from events.model import IncidentState

    store = Store(tmp_path / "k.db")
    await store.open()
    base = make_incident()
    a = make_incident(kecamatan="Kuta")
    b = make_incident(kecamatan="Mengwi", state=IncidentState.RESOLVED,
                      updated_at=base.updated_at - timedelta(hours=3))  # fmt: skip
    for inc in (a, b):
        await store.append(IncidentEvent(type=EventType.INCIDENT_OPENED, incident=inc))
    assert [i.id for i in await store.incidents(kecamatan="Kuta")] == [a.id]
    assert [i.id for i in await store.incidents(state=IncidentState.RESOLVED)] == [b.id]
    recent = await store.incidents(open_or_since=base.updated_at - timedelta(hours=1))
    assert [i.id for i in recent] == [a.id]  # b is closed and older than the hour
    await store.close()


async def test_page_cache_stays_bounded_as_the_database_grows(tmp_path: Path) -> None:
    """SQLite's default page cache (2 MB) fills at the database's growth rate: RSS that rises
    for the first half hour of every run. The store's connection keeps to its own budget."""
    from pantau.heap import sqlite_memory_mb

    store = Store(tmp_path / "p.db")
    await store.open()
    before = sqlite_memory_mb()
    if before is None:
        pytest.skip("this Python's sqlite3 does not expose sqlite3_status64")
    incidents = [make_incident() for _ in range(40)]
    for round_ in range(100):  # 4,000 updates of ~1.3 KB: a database of ~6 MB
        title = f"Kerumunan {round_} " + "x" * 900
        events = [
            IncidentEvent(type=EventType.INCIDENT_UPDATED,
                          incident=inc.model_copy(update={"title": title}))
            for inc in incidents
        ]  # fmt: skip
        await store.commit(events)  # type: ignore[arg-type]
    grown = (sqlite_memory_mb() or 0.0) - before
    assert (tmp_path / "p.db").stat().st_size + (tmp_path / "p.db-wal").stat().st_size > 4e6
    # ~1.9 MB with SQLite's default cache, ~0.85 MB with the store's (1 MiB of pages).
    assert 0.5 < grown < 1.3, grown
    await store.close()
