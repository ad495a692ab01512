"""People on the wall: accounts, roles, login sessions, login rate limit, and the audit log.

Roles (each includes the one before it, except `opd`):
- viewer: sees the wall, incidents, cameras and clips;
- operator: also acknowledges, starts, comments and assigns;
- supervisor: also resolves, marks false alarms and reopens;
- admin: also manages accounts and sees the audit log;
- opd: a department's own user: sees only incidents routed to its OPD, and answers them
  (acknowledge, start, comment) for that OPD.

Passwords are stored as scrypt hashes. A session is a random token in an HttpOnly cookie (or a
Bearer header for other screens); only its SHA-256 is stored. Sessions end after `idle_s`
without use. Failed logins are limited per account and per address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from events.model import ActionKind
from events.store import Store, StoreFull

SESSION_COOKIE = "pantau_session"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    OPD = "opd"


_RANK = {Role.VIEWER: 0, Role.OPD: 0, Role.OPERATOR: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}
ACTION_ROLES: dict[ActionKind, frozenset[Role]] = {
    ActionKind.ACKNOWLEDGE: frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, Role.OPD}),
    ActionKind.START: frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, Role.OPD}),
    ActionKind.COMMENT: frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, Role.OPD}),
    ActionKind.ASSIGN: frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN}),
    ActionKind.RESOLVE: frozenset({Role.SUPERVISOR, Role.ADMIN}),
    ActionKind.FALSE_ALARM: frozenset({Role.SUPERVISOR, Role.ADMIN}),
    ActionKind.REOPEN: frozenset({Role.SUPERVISOR, Role.ADMIN}),
}


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    display_name: str
    opd_id: str | None = None

    def at_least(self, role: Role) -> bool:
        """Rank check for the staff roles; an OPD user ranks as a viewer."""
        return _RANK[self.role] >= _RANK[role]

    def may(self, action: ActionKind) -> bool:
        return self.role in ACTION_ROLES.get(action, frozenset())

    def public(self) -> dict[str, object]:
        return {"username": self.username, "role": str(self.role),
                "display_name": self.display_name, "opd_id": self.opd_id}  # fmt: skip


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), dklen=32, n=int(n), r=int(r), p=int(p)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


# A hash to check against when the account does not exist: the answer takes as long either way.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


class LoginLimiter:
    """Failed logins, counted per (account, address) and per address.

    - An account from one address: `attempts` failures in `window_s`, then 429 for that pair
      only. One operator who keeps mistyping behind the command center's NAT locks out himself
      at that address, not his colleagues, and a guesser gets 5 tries per account per window.
    - One address over all accounts: `address_attempts` failures (password spraying: a few
      tries at many accounts), then 429 for everyone there. Set well above what a room of
      operators mistypes in a window.
    A success clears its pair, not the address's count.
    """

    def __init__(
        self, attempts: int = 5, window_s: float = 300.0, address_attempts: int = 30
    ) -> None:
        self.attempts = attempts
        self.address_attempts = address_attempts
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"pair:{username.lower()}@{address}", f"addr:{address}"

    def retry_after(self, username: str, address: str) -> float:
        now = time.monotonic()
        wait = 0.0
        pair, addr = self._keys(username, address)
        for key, limit in ((pair, self.attempts), (addr, self.address_attempts)):
            q = self._failures.get(key)
            while q and now - q[0] > self.window_s:
                q.popleft()
            if not q:
                self._failures.pop(key, None)  # the table does not grow with old addresses
            elif len(q) >= limit:
                wait = max(wait, self.window_s - (now - q[-limit]))
        return wait

    def failed(self, username: str, address: str) -> None:
        for key in self._keys(username, address):
            self._failures.setdefault(key, deque()).append(time.monotonic())

    def succeeded(self, username: str, address: str) -> None:
        self._failures.pop(self._keys(username, address)[0], None)


TOUCH_S = 60.0  # how often a session's last_seen_at is written


class Accounts:
    def __init__(self, store: Store, idle_s: float = 12 * 3600) -> None:
        self.store = store
        self.idle_s = idle_s
        self.limiter = LoginLimiter()

    async def add(
        self, username: str, password: str, role: Role, display_name: str = "",
        opd_id: str | None = None,
    ) -> User:  # fmt: skip
        if role == Role.OPD and not opd_id:
            raise ValueError("an opd user needs --opd")
        if len(password) < 10:
            raise ValueError("the password needs at least 10 characters")
        hashed = await asyncio.to_thread(hash_password, password)
        await self.store.execute(
            """INSERT INTO users(username, password, role, opd_id, display_name, created_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(username) DO UPDATE SET password = excluded.password,
                 role = excluded.role, opd_id = excluded.opd_id,
                 display_name = excluded.display_name, disabled = 0""",
            (username, hashed, str(role), opd_id, display_name or username, _now()),
        )
        return User(username, role, display_name or username, opd_id if role == Role.OPD else None)

    async def disable(self, username: str) -> bool:
        rows = await self.store.execute(
            "UPDATE users SET disabled = 1 WHERE username = ? RETURNING username", (username,)
        )
        await self.store.execute("DELETE FROM sessions WHERE username = ?", (username,))
        return bool(rows)

    async def all(self) -> list[tuple[User, bool]]:
        rows = await self.store.execute(
            "SELECT username, role, display_name, opd_id, disabled FROM users ORDER BY username"
        )
        return [
            (User(str(u), Role(str(r)), str(d), str(o) if o else None), bool(x))
            for u, r, d, o, x in rows
        ]

    async def _user(self, username: str) -> tuple[User, str] | None:
        rows = await self.store.execute(
            "SELECT role, display_name, opd_id, password FROM users "
            "WHERE username = ? AND disabled = 0",
            (username,),
        )
        if not rows:
            return None
        role, name, opd, hashed = rows[0]
        return User(username, Role(str(role)), str(name), str(opd) if opd else None), str(hashed)

    async def login(self, username: str, password: str) -> tuple[User, str] | None:
        """A new session token for good credentials, else None. Rate limiting is the caller's."""
        found = await self._user(username)
        hashed = found[1] if found else _DUMMY_HASH
        ok = await asyncio.to_thread(check_password, password, hashed)
        if not ok or found is None:
            return None
        token = secrets.token_urlsafe(32)
        now = _now()
        await self.store.execute(
            "INSERT INTO sessions(token_hash, username, created_at, last_seen_at) VALUES (?,?,?,?)",
            (_token_hash(token), username, now, now),
        )
        return found[0], token

    async def session(self, token: str | None) -> User | None:
        if not token or len(token) > 200:
            return None
        digest = _token_hash(token)
        cutoff = (datetime.now(UTC) - timedelta(seconds=self.idle_s)).isoformat()
        rows = await self.store.execute(
            """SELECT u.username, u.role, u.display_name, u.opd_id, s.last_seen_at FROM sessions s
               JOIN users u ON u.username = s.username
               WHERE s.token_hash = ? AND s.last_seen_at >= ? AND u.disabled = 0""",
            (digest, cutoff),
        )
        if not rows:
            return None
        u, role, name, opd, seen = rows[0]
        # The idle clock moves at most once a minute (not a write per request), and a full
        # disk does not log anyone out: the session is still good, only its clock waits.
        touch = min(TOUCH_S, self.idle_s / 10)
        if datetime.fromisoformat(str(seen)) < datetime.now(UTC) - timedelta(seconds=touch):
            with contextlib.suppress(StoreFull):
                await self.store.execute(
                    "UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?", (_now(), digest)
                )
        return User(str(u), Role(str(role)), str(name), str(opd) if opd else None)

    async def logout(self, token: str) -> None:
        await self.store.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))

    async def audit(
        self, user: User | None, action: str, target: str | None = None, detail: str = "",
        ip: str | None = None, username: str | None = None,
    ) -> None:  # fmt: skip
        await self.store.execute(
            "INSERT INTO audit(at, username, action, target, detail, ip) VALUES (?,?,?,?,?,?)",
            (_now(), user.username if user else username, action, target, detail[:1000], ip),
        )

    async def audit_log(self, limit: int = 200) -> list[dict[str, object]]:
        rows = await self.store.execute(
            "SELECT at, username, action, target, detail, ip FROM audit ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        keys = ("at", "username", "action", "target", "detail", "ip")
        return [dict(zip(keys, r, strict=True)) for r in rows]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()
