"""Per-OPD API keys for the intake API. Only a hash is kept: a stolen database holds no key.

Keys are 32 random bytes, so a plain SHA-256 is enough (no password stretching needed: there
is nothing to guess). The key is shown once, when it is made (`pantau apikey create`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from events.model import new_id, utcnow
from events.store import Store

PREFIX = "pnt_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    opd_id: str
    label: str
    created_at: str
    revoked_at: str | None


class ApiKeys:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, opd_id: str, label: str = "") -> tuple[ApiKeyInfo, str]:
        """A new key for an OPD; returns its record and the key itself (shown only now)."""
        key = PREFIX + secrets.token_urlsafe(32)
        info = ApiKeyInfo(new_id("key"), opd_id, label or opd_id, utcnow().isoformat(), None)
        await self.store.execute(
            "INSERT INTO api_keys(id, opd_id, hash, label, created_at) VALUES (?, ?, ?, ?, ?)",
            (info.id, opd_id, hash_key(key), info.label, info.created_at),
        )
        return info, key

    async def verify(self, key: str | None) -> str | None:
        """The OPD id a live key belongs to, or None."""
        if not key or not key.startswith(PREFIX) or len(key) > 200:
            return None
        digest = hash_key(key)
        rows = await self.store.execute(
            "SELECT hash, opd_id FROM api_keys WHERE hash = ? AND revoked_at IS NULL", (digest,)
        )
        # The lookup is by hash; compare_digest keeps the final check constant-time anyway.
        for stored, opd_id in rows:
            if hmac.compare_digest(str(stored), digest):
                return str(opd_id)
        return None

    async def revoke(self, key_id: str) -> bool:
        rows = await self.store.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
            (utcnow().isoformat(), key_id),
        )
        return bool(rows)

    async def list(self) -> list[ApiKeyInfo]:
        rows = await self.store.execute(
            "SELECT id, opd_id, label, created_at, revoked_at FROM api_keys ORDER BY created_at"
        )
        return [
            ApiKeyInfo(
                str(r[0]), str(r[1]), str(r[2]), str(r[3]), None if r[4] is None else str(r[4])
            )
            for r in rows
        ]
