"""SQLite store (WAL) for incidents and events.

One connection lives on one dedicated thread: SQLite work never runs on the event loop, and
writes are serialised without lock juggling. `append` returns only after COMMIT, so an event that
was accepted is durable before anyone acknowledges it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from events.model import (
    AnyEvent,
    ClipReadyEvent,
    ClipRef,
    Incident,
    IncidentEvent,
    IncidentKind,
    IncidentState,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS: list[str] = [
    """
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX events_at ON events(at);
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        active INTEGER NOT NULL,
        camera_id TEXT,
        kecamatan TEXT,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX incidents_started ON incidents(started_at);
    CREATE INDEX incidents_camera ON incidents(camera_id, started_at);
    """,
    """
    CREATE TABLE clips (
        incident_id TEXT PRIMARY KEY,
        camera_id TEXT NOT NULL,
        body TEXT NOT NULL
    );
    """,
]


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._conn is not None, "store is not open"
            return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def open(self) -> None:
        def do_open() -> sqlite3.Connection:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                conn.execute("BEGIN")
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
                conn.execute("COMMIT")
                log.info("store=%s migrated to schema %d", self.path, number)
            return conn

        self._conn = await asyncio.get_running_loop().run_in_executor(self._pool, do_open)

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(lambda c: c.close())
            self._conn = None
        self._pool.shutdown(wait=True)

    async def append(self, event: AnyEvent) -> bool:
        """Store an event (idempotent by id). Returns False when it was already stored."""

        def write(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO events(id, type, at, body) VALUES (?, ?, ?, ?)",
                    (event.id, str(event.type), event.at.isoformat(), event.model_dump_json()),
                )
                fresh = cur.rowcount == 1
                if fresh and isinstance(event, IncidentEvent):
                    _upsert_incident(conn, event.incident)
                elif fresh and isinstance(event, ClipReadyEvent):
                    conn.execute(
                        "INSERT OR REPLACE INTO clips(incident_id, camera_id, body) VALUES (?,?,?)",
                        (
                            event.clip.incident_id,
                            event.clip.camera_id,
                            event.clip.model_dump_json(),
                        ),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return fresh

        return await self._run(write)

    async def incident(self, incident_id: str) -> Incident | None:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT body FROM incidents WHERE id = ?", (incident_id,)
            ).fetchall()
        )
        return Incident.model_validate_json(rows[0][0]) if rows else None

    async def incidents(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        camera_id: str | None = None,
        kind: IncidentKind | None = None,
        state: IncidentState | None = None,
        active: bool | None = None,
        limit: int = 200,
    ) -> list[Incident]:
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("started_at >=", since.isoformat() if since else None),
            ("started_at <", until.isoformat() if until else None),
            ("camera_id =", camera_id),
            ("kind =", str(kind) if kind else None),
            ("state =", str(state) if state else None),
            ("active =", int(active) if active is not None else None),
        ):
            if value is not None:
                clauses.append(f"{column} ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT body FROM incidents {where} ORDER BY started_at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = await self._run(lambda c: c.execute(sql, params).fetchall())
        return [Incident.model_validate_json(r[0]) for r in rows]

    async def clip(self, incident_id: str) -> ClipRef | None:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT body FROM clips WHERE incident_id = ?", (incident_id,)
            ).fetchall()
        )
        return ClipRef.model_validate_json(rows[0][0]) if rows else None

    async def count_events(self) -> int:
        rows = await self._run(lambda c: c.execute("SELECT COUNT(*) FROM events").fetchall())
        return int(rows[0][0])


def _upsert_incident(conn: sqlite3.Connection, inc: Incident) -> None:
    conn.execute(
        """INSERT INTO incidents(id, kind, state, active, camera_id, kecamatan, started_at,
                                 updated_at, body)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET state=excluded.state, active=excluded.active,
               updated_at=excluded.updated_at, body=excluded.body
           WHERE excluded.updated_at >= incidents.updated_at""",
        (
            inc.id,
            str(inc.kind),
            str(inc.state),
            int(inc.active),
            inc.camera_id,
            inc.kecamatan,
            inc.started_at.isoformat(),
            inc.updated_at.isoformat(),
            inc.model_dump_json(),
        ),
    )
