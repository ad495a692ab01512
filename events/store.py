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
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from events.model import (
    ActionEvent,
    ActionKind,
    Alert,
    AlertEvent,
    AnyEvent,
    ClipReadyEvent,
    ClipRef,
    Delivery,
    DeliveryEvent,
    Incident,
    IncidentAction,
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
    """
    ALTER TABLE incidents ADD COLUMN desa TEXT;
    CREATE INDEX incidents_state ON incidents(state, kind);
    CREATE INDEX incidents_kecamatan ON incidents(kecamatan, started_at);
    CREATE TABLE incident_sources (
        ref TEXT PRIMARY KEY,
        incident_id TEXT NOT NULL
    );
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        sender TEXT NOT NULL,
        external_id TEXT,
        incident_id TEXT,
        received_at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE UNIQUE INDEX alerts_external ON alerts(sender, external_id);
    CREATE INDEX alerts_received ON alerts(received_at);
    CREATE TABLE actions (
        id TEXT PRIMARY KEY,
        incident_id TEXT NOT NULL,
        at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX actions_incident ON actions(incident_id, at);
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        incident_id TEXT NOT NULL,
        opd_id TEXT NOT NULL,
        status TEXT NOT NULL,
        at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX deliveries_incident ON deliveries(incident_id, at);
    CREATE INDEX deliveries_status ON deliveries(status, at);
    CREATE TABLE incident_opds (
        incident_id TEXT NOT NULL,
        opd_id TEXT NOT NULL,
        routed_at TEXT NOT NULL,
        delivered_at TEXT,
        acknowledged_at TEXT,
        resolved_at TEXT,
        PRIMARY KEY (incident_id, opd_id)
    );
    CREATE INDEX incident_opds_opd ON incident_opds(opd_id, routed_at);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        opd_id TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        label TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE silences (
        id TEXT PRIMARY KEY,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    """,
    # The wallboard's people: accounts, login sessions and the audit log live in the same
    # database so one backup holds everything; wallboard/auth.py is their only user.
    """
    CREATE TABLE users (
        username TEXT PRIMARY KEY,
        password TEXT NOT NULL,
        role TEXT NOT NULL,
        opd_id TEXT,
        display_name TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        username TEXT,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT NOT NULL DEFAULT '',
        ip TEXT
    );
    CREATE INDEX audit_at ON audit(at);
    """,
    # SLA clocks per (incident, OPD): when it was due, and when it was found breached.
    """
    ALTER TABLE incident_opds ADD COLUMN ack_due TEXT;
    ALTER TABLE incident_opds ADD COLUMN resolve_due TEXT;
    ALTER TABLE incident_opds ADD COLUMN ack_breached_at TEXT;
    ALTER TABLE incident_opds ADD COLUMN resolve_breached_at TEXT;
    """,
    # Chat apps: who a chat user is (linked by a one-time code), which message told which
    # incident (answers and replies find it), and files people sent back (photos).
    """
    CREATE TABLE chat_links (
        channel TEXT NOT NULL,
        external_id TEXT NOT NULL,
        opd_id TEXT NOT NULL,
        contact_id TEXT NOT NULL,
        linked_at TEXT NOT NULL,
        PRIMARY KEY (channel, external_id)
    );
    CREATE TABLE chat_codes (
        code TEXT PRIMARY KEY,
        opd_id TEXT NOT NULL,
        contact_id TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        created_by TEXT NOT NULL
    );
    CREATE TABLE chat_messages (
        channel TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        incident_id TEXT NOT NULL,
        opd_id TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        PRIMARY KEY (channel, chat_id, message_id)
    );
    CREATE INDEX chat_messages_incident ON chat_messages(incident_id);
    CREATE TABLE attachments (
        id TEXT PRIMARY KEY,
        incident_id TEXT NOT NULL,
        name TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        added_by TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX attachments_incident ON attachments(incident_id, at);
    """,
    # Operators' labels of a camera zone's state (trained into that camera's own model).
    """
    CREATE TABLE state_labels (
        id TEXT PRIMARY KEY,
        camera_id TEXT NOT NULL,
        zone_id TEXT NOT NULL,
        state TEXT NOT NULL,
        taken_at TEXT NOT NULL,
        source TEXT NOT NULL,
        ref TEXT,
        polygon TEXT NOT NULL,
        labelled_by TEXT NOT NULL,
        labelled_at TEXT NOT NULL
    );
    CREATE INDEX state_labels_zone ON state_labels(camera_id, zone_id, taken_at);
    """,
]


# SQLite's page cache per connection, in KiB. Its default (2 MB) fills at the rate the database
# grows, about 5 MB an hour at a busy site, so for the first half hour RSS rises with it (the
# soak read it: sqlite3_status64 1.0 -> 2.3 MB from minute 9 to 30) and it then holds pages
# that are read once. What the desk reads again and again is the B-trees' inner pages and the
# tail of the events table: far less than 1 MiB; the rest comes from the OS page cache.
CACHE_KIB = 1024


class StoreFull(OSError):
    """SQLite could not write: the disk (or its quota) is full. Nothing of the write was
    kept (the transaction rolled back); the same write succeeds once there is space."""


def _utc(at: datetime | None) -> str | None:
    """A bound for a query on stored times, which are UTC ISO strings: compared as text, a
    bound in another zone would be hours off."""
    return at.astimezone(UTC).isoformat() if at is not None else None


def _cannot_write(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)
    return "disk is full" in str(exc) or "disk I/O error" in str(exc)


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        self.full = False  # the last write failed for want of disk space

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._conn is not None, "store is not open"
            try:
                return fn(self._conn)
            except sqlite3.OperationalError as exc:
                if not _cannot_write(exc):
                    raise
                self.full = True
                raise StoreFull(f"the disk is full, nothing was stored ({exc})") from exc

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def open(self) -> None:
        def do_open() -> sqlite3.Connection:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
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
        return (await self.commit([event]))[0]

    async def commit(
        self, events: list[AnyEvent], links: tuple[tuple[str, str], ...] = ()
    ) -> list[bool]:
        """Store events, and source -> incident links, in ONE transaction (all or nothing).

        Returns, per event, whether it was new. Returns only after COMMIT (synchronous=FULL).
        """

        def write(conn: sqlite3.Connection) -> list[bool]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                fresh = [_write_event(conn, e) for e in events]
                conn.executemany(
                    "INSERT OR IGNORE INTO incident_sources(ref, incident_id) VALUES (?, ?)", links
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a full disk may have rolled it back already
                    conn.execute("ROLLBACK")
                raise
            self.full = False
            return fresh

        return await self._run(write)

    async def incident(self, incident_id: str) -> Incident | None:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT body FROM incidents WHERE id = ?", (incident_id,)
            ).fetchall()
        )
        return Incident.model_validate_json(rows[0][0]) if rows else None

    async def incident_for_source(self, ref: str) -> Incident | None:
        """The incident a detection or alert was merged into (or opened)."""
        rows = await self._run(
            lambda c: c.execute(
                """SELECT i.body FROM incident_sources s JOIN incidents i ON i.id = s.incident_id
                   WHERE s.ref = ?""",
                (ref,),
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
        kecamatan: str | None = None,
        opd_id: str | None = None,
        open_or_since: datetime | None = None,
        limit: int = 200,
    ) -> list[Incident]:
        """Incidents, newest first. `open_or_since`: not closed, or updated since that time."""
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("started_at >=", _utc(since)),
            ("started_at <", _utc(until)),
            ("camera_id =", camera_id),
            ("kind =", str(kind) if kind else None),
            ("state =", str(state) if state else None),
            ("active =", int(active) if active is not None else None),
            ("kecamatan =", kecamatan),
            ("id IN (SELECT incident_id FROM incident_opds WHERE opd_id =", opd_id),
        ):
            if value is not None:
                clauses.append(f"{column} ?" + (")" if column.startswith("id IN") else ""))
                params.append(value)
        if open_or_since is not None:
            clauses.append("(state NOT IN ('resolved', 'false_alarm') OR updated_at >= ?)")
            params.append(_utc(open_or_since))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT body FROM incidents {where} ORDER BY started_at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = await self._run(lambda c: c.execute(sql, params).fetchall())
        return [Incident.model_validate_json(r[0]) for r in rows]

    async def clip(self, incident_id: str) -> ClipRef | None:
        """The incident's clip, or the clip of a camera detection merged into it."""
        rows = await self._run(
            lambda c: c.execute(
                """SELECT body FROM clips WHERE incident_id = ? OR incident_id IN
                   (SELECT ref FROM incident_sources WHERE incident_id = ?)
                   ORDER BY incident_id = ? DESC LIMIT 1""",
                (incident_id, incident_id, incident_id),
            ).fetchall()
        )
        return ClipRef.model_validate_json(rows[0][0]) if rows else None

    async def alert(self, alert_id: str) -> Alert | None:
        rows = await self._run(
            lambda c: c.execute("SELECT body FROM alerts WHERE id = ?", (alert_id,)).fetchall()
        )
        return Alert.model_validate_json(rows[0][0]) if rows else None

    async def alert_by_external(self, sender: str, external_id: str) -> Alert | None:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT body FROM alerts WHERE sender = ? AND external_id = ?",
                (sender, external_id),
            ).fetchall()
        )
        return Alert.model_validate_json(rows[0][0]) if rows else None

    async def alerts(self, *, since: datetime | None = None, limit: int = 200) -> list[Alert]:
        sql = "SELECT body FROM alerts WHERE received_at >= ? ORDER BY received_at DESC LIMIT ?"
        start = _utc(since) or ""
        rows = await self._run(lambda c: c.execute(sql, (start, limit)).fetchall())
        return [Alert.model_validate_json(r[0]) for r in rows]

    async def actions(self, incident_id: str) -> list[IncidentAction]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT body FROM actions WHERE incident_id = ? ORDER BY at, id", (incident_id,)
            ).fetchall()
        )
        return [IncidentAction.model_validate_json(r[0]) for r in rows]

    async def deliveries(
        self, incident_id: str | None = None, *, dead_only: bool = False, limit: int = 500
    ) -> list[Delivery]:
        clauses, params = [], []
        if incident_id is not None:
            clauses.append("incident_id = ?")
            params.append(incident_id)
        if dead_only:
            clauses.append("status = 'dead'")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT body FROM deliveries {where} ORDER BY at DESC, id DESC LIMIT {int(limit)}"
        rows = await self._run(lambda c: c.execute(sql, params).fetchall())
        return [Delivery.model_validate_json(r[0]) for r in rows]

    async def response_times(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[str | None, ...]]:
        """Per routed incident: (opd, routed_at, delivered_at, acknowledged_at, resolved_at,
        ack_due, resolve_due, ack_breached_at, resolve_breached_at); false alarms left out."""
        sql = """SELECT o.opd_id, o.routed_at, o.delivered_at, o.acknowledged_at, o.resolved_at,
                        o.ack_due, o.resolve_due, o.ack_breached_at, o.resolve_breached_at
                 FROM incident_opds o JOIN incidents i ON i.id = o.incident_id
                 WHERE o.routed_at >= ? AND o.routed_at < ? AND i.state != 'false_alarm'
                 ORDER BY o.routed_at"""
        # Stored times are UTC ISO strings: bounds must be too, or the text order lies.
        start = since.astimezone(UTC).isoformat() if since else ""
        end = until.astimezone(UTC).isoformat() if until else "9999"
        return await self._run(lambda c: c.execute(sql, (start, end)).fetchall())

    async def false_alarms(self, *, since: datetime, until: datetime) -> dict[str, int]:
        """Per OPD: incidents routed to it in [since, until) that were closed as false alarm."""
        rows = await self.execute(
            """SELECT o.opd_id, COUNT(*) FROM incident_opds o
               JOIN incidents i ON i.id = o.incident_id
               WHERE i.state = 'false_alarm' AND o.routed_at >= ? AND o.routed_at < ?
               GROUP BY o.opd_id""",
            (since.astimezone(UTC).isoformat(), until.astimezone(UTC).isoformat()),
        )
        return {str(o): int(str(n)) for o, n in rows}

    async def set_sla(
        self, incident_id: str, opd_id: str, ack_due: datetime | None,
        resolve_due: datetime | None,
    ) -> None:  # fmt: skip
        await self.execute(
            "UPDATE incident_opds SET ack_due = ?, resolve_due = ? WHERE incident_id = ? "
            "AND opd_id = ?",
            (ack_due.astimezone(UTC).isoformat() if ack_due else None,
             resolve_due.astimezone(UTC).isoformat() if resolve_due else None, incident_id,
             opd_id),
        )  # fmt: skip

    async def sla_clocks(self, incident_id: str | None = None) -> list[dict[str, str | None]]:
        """SLA clocks: of one incident, or every running one (open incident, a due time, not
        yet met nor found breached) when None."""
        cols = ("incident_id", "opd_id", "routed_at", "acknowledged_at", "resolved_at",
                "ack_due", "resolve_due", "ack_breached_at", "resolve_breached_at")  # fmt: skip
        select = "SELECT " + ", ".join(f"o.{c}" for c in cols) + " FROM incident_opds o "
        params: tuple[object, ...] = ()
        if incident_id is not None:
            sql, params = select + "WHERE o.incident_id = ? ORDER BY o.routed_at", (incident_id,)
        else:
            sql = (
                select
                + """JOIN incidents i ON i.id = o.incident_id
                 WHERE i.state NOT IN ('resolved', 'false_alarm')
                   AND ((o.ack_due IS NOT NULL AND o.acknowledged_at IS NULL
                         AND o.ack_breached_at IS NULL)
                     OR (o.resolve_due IS NOT NULL AND o.resolved_at IS NULL
                         AND o.resolve_breached_at IS NULL))"""
            )
        rows = await self.execute(sql, params)
        return [dict(zip(cols, (None if v is None else str(v) for v in r), strict=True))
                for r in rows]  # fmt: skip

    async def save_silence(self, silence_id: str, starts_at: str, ends_at: str, body: str) -> None:
        await self.execute(
            "INSERT OR REPLACE INTO silences(id, starts_at, ends_at, body) VALUES (?, ?, ?, ?)",
            (
                silence_id,
                _utc(datetime.fromisoformat(starts_at)),
                _utc(datetime.fromisoformat(ends_at)),
                body,
            ),
        )

    async def silence_bodies(self, at: datetime | None = None) -> list[str]:
        """Silences (as stored JSON) in force at `at`, or all that have not ended when None."""
        stamp = _utc(at or datetime.now(UTC))
        sql = "SELECT body FROM silences WHERE ends_at > ?" + (" AND starts_at <= ?" if at else "")
        rows = await self.execute(sql, (stamp, stamp) if at else (stamp,))
        return [str(r[0]) for r in rows]

    async def unanswered(self) -> list[tuple[str, str]]:
        """(incident, OPD) pairs routed but not yet acknowledged, of incidents still open."""
        sql = """SELECT o.incident_id, o.opd_id FROM incident_opds o
                 JOIN incidents i ON i.id = o.incident_id
                 WHERE o.acknowledged_at IS NULL AND o.resolved_at IS NULL
                   AND i.state NOT IN ('resolved', 'false_alarm') ORDER BY o.routed_at"""
        rows = await self._run(lambda c: c.execute(sql).fetchall())
        return [(str(a), str(b)) for a, b in rows]

    async def count_events(self) -> int:
        rows = await self._run(lambda c: c.execute("SELECT COUNT(*) FROM events").fetchall())
        return int(rows[0][0])

    async def execute(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """One statement in its own transaction (for the small tables: keys, silences)."""

        def run(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
            cur = conn.execute(sql, params)
            return cur.fetchall()

        return await self._run(run)


def _write_event(conn: sqlite3.Connection, event: AnyEvent) -> bool:
    cur = conn.execute(
        "INSERT OR IGNORE INTO events(id, type, at, body) VALUES (?, ?, ?, ?)",
        (event.id, str(event.type), event.at.isoformat(), event.model_dump_json()),
    )
    if cur.rowcount != 1:
        return False
    if isinstance(event, IncidentEvent):
        _upsert_incident(conn, event.incident)
    elif isinstance(event, ClipReadyEvent):
        clip = event.clip
        conn.execute(
            "INSERT OR REPLACE INTO clips(incident_id, camera_id, body) VALUES (?, ?, ?)",
            (clip.incident_id, clip.camera_id, clip.model_dump_json()),
        )
    elif isinstance(event, AlertEvent):
        a = event.alert
        conn.execute(
            """INSERT INTO alerts(id, sender, external_id, received_at, body) VALUES (?,?,?,?,?)
               ON CONFLICT(id) DO UPDATE SET body = excluded.body""",
            (a.id, a.sender, a.external_id, a.received_at.isoformat(), a.model_dump_json()),
        )
    elif isinstance(event, ActionEvent):
        _write_action(conn, event.action)
    elif isinstance(event, DeliveryEvent):
        d = event.delivery
        conn.execute(
            "INSERT OR REPLACE INTO deliveries(id, incident_id, opd_id, status, at, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (d.id, d.incident_id, d.opd_id, str(d.status), d.at.isoformat(), d.model_dump_json()),
        )
        if d.status == "sent":
            conn.execute(
                "UPDATE incident_opds SET delivered_at = ? WHERE incident_id = ? AND opd_id = ? "
                "AND delivered_at IS NULL",
                (d.at.isoformat(), d.incident_id, d.opd_id),
            )
    return True


def _write_action(conn: sqlite3.Connection, action: IncidentAction) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO actions(id, incident_id, at, body) VALUES (?, ?, ?, ?)",
        (action.id, action.incident_id, action.at.isoformat(), action.model_dump_json()),
    )
    at, inc = action.at.isoformat(), action.incident_id
    # Per-OPD response times for the scoreboard: an action for one OPD counts for that OPD; a
    # command-center action (no OPD) counts for every OPD the incident was routed to.
    scope, params = ("AND opd_id = ?", (action.opd_id,)) if action.opd_id else ("", ())
    if action.kind == ActionKind.ROUTED and action.opd_id:
        conn.execute(
            "INSERT OR IGNORE INTO incident_opds(incident_id, opd_id, routed_at) VALUES (?,?,?)",
            (inc, action.opd_id, at),
        )
    elif action.kind in (ActionKind.ACKNOWLEDGE, ActionKind.START):
        conn.execute(
            f"UPDATE incident_opds SET acknowledged_at = ? WHERE incident_id = ? {scope} "
            "AND acknowledged_at IS NULL",
            (at, inc, *params),
        )
    elif action.kind in (ActionKind.RESOLVE, ActionKind.FALSE_ALARM):
        conn.execute(
            "UPDATE incident_opds SET resolved_at = ?, acknowledged_at = "
            "COALESCE(acknowledged_at, ?) WHERE incident_id = ? AND resolved_at IS NULL",
            (at, at, inc),
        )
    elif action.kind == ActionKind.REOPEN:
        conn.execute("UPDATE incident_opds SET resolved_at = NULL WHERE incident_id = ?", (inc,))
    elif action.kind in (ActionKind.SLA_ACK_BREACHED, ActionKind.SLA_RESOLVE_BREACHED):
        column = "ack" if action.kind == ActionKind.SLA_ACK_BREACHED else "resolve"
        conn.execute(
            f"UPDATE incident_opds SET {column}_breached_at = COALESCE({column}_breached_at, ?) "
            f"WHERE incident_id = ? {scope}",
            (at, inc, *params),
        )


def _upsert_incident(conn: sqlite3.Connection, inc: Incident) -> None:
    conn.execute(
        """INSERT INTO incidents(id, kind, state, active, camera_id, kecamatan, desa, started_at,
                                 updated_at, body)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET state=excluded.state, active=excluded.active,
               kind=excluded.kind, kecamatan=excluded.kecamatan, desa=excluded.desa,
               updated_at=excluded.updated_at, body=excluded.body
           WHERE excluded.updated_at >= incidents.updated_at""",
        (
            inc.id,
            str(inc.kind),
            str(inc.state),
            int(inc.active),
            inc.camera_id,
            inc.kecamatan,
            inc.desa,
            inc.started_at.isoformat(),
            inc.updated_at.isoformat(),
            inc.model_dump_json(),
        ),
    )
