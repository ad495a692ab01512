"""Scaled out, the zone-state models enabled on the server reach the worker boxes through
Redis. Per camera a hash, zone -> the enabled version with its .npz and .json; the server sets
it when a model is enabled, deletes the zone when it is disabled, and rewrites every camera's
hash from its own folder (the truth) when it starts. A worker writes a camera's models into its
own folder before it starts the camera and again when a StateModelChangedEvent says so; the
running camera then reloads them. A model is a few kilobytes: Redis carries it whole."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from analytics.state_model import disable
from events.files import write_atomic
from events.redis_bus import retrying

log = logging.getLogger(__name__)

KEY = "pantau:state_models:{}"  # hash per camera: zone -> JSON {version, npz (base64), meta}


def _safe(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def _enabled_version(where: Path) -> int | None:
    pointer = where / "enabled"
    try:
        text = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _packed(folder: Path, camera_id: str, zone_id: str, version: int) -> str:
    path = folder / camera_id / zone_id / f"v{version}.npz"
    return json.dumps({
        "version": version,
        "npz": base64.b64encode(path.read_bytes()).decode("ascii"),
        "meta": path.with_suffix(".json").read_text(encoding="utf-8"),
    })  # fmt: skip


def _enabled_here(folder: Path, camera_id: str) -> dict[str, str]:
    out: dict[str, str] = {}
    where = folder / camera_id
    if not where.is_dir():
        return out
    for zone in sorted(where.iterdir()):
        version = _enabled_version(zone) if zone.is_dir() else None
        if version is not None and (zone / f"v{version}.npz").is_file():
            out[zone.name] = _packed(folder, camera_id, zone.name, version)
    return out


def _write(
    folder: Path, camera_id: str, wanted: dict[str, dict[str, Any]], keep: set[str]
) -> list[str]:
    """Make this box's folder hold what Redis holds for the camera; the zones changed."""
    changed: list[str] = []
    for zone_id, item in wanted.items():
        where = folder / camera_id / zone_id
        version = int(item["version"])
        npz = base64.b64decode(item["npz"], validate=True)
        meta = str(item["meta"]).encode("utf-8")
        path = where / f"v{version}.npz"
        same = (path.is_file() and path.read_bytes() == npz
                and path.with_suffix(".json").is_file()
                and path.with_suffix(".json").read_bytes() == meta)  # fmt: skip
        if not same:
            write_atomic(path.with_suffix(".json"), meta)
            write_atomic(path, npz)
        if not same or _enabled_version(where) != version:
            write_atomic(where / "enabled", str(version).encode())  # last: it says "use it"
            changed.append(zone_id)
    here = folder / camera_id
    if here.is_dir():
        for zone in here.iterdir():
            gone = zone.name not in wanted and zone.name not in keep
            if zone.is_dir() and gone and _enabled_version(zone) is not None:
                disable(folder, camera_id, zone.name)
                changed.append(zone.name)
    return changed


class ModelShelf:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    # ---- the server ----------------------------------------------------------------------
    async def put(self, folder: Path, camera_id: str, zone_id: str, version: int | None) -> None:
        key = KEY.format(camera_id)
        if version is None:
            await retrying(f"HDEL {key}", lambda: self.redis.hdel(key, zone_id))
            return
        value = await asyncio.to_thread(_packed, folder, camera_id, zone_id, version)
        await retrying(f"HSET {key}", lambda: self.redis.hset(key, zone_id, value))

    async def share_all(self, folder: Path, camera_ids: list[str]) -> int:
        """Every camera's hash as the server's folder has it; the models shared."""
        shared = 0
        for camera_id in camera_ids:
            mapping = await asyncio.to_thread(_enabled_here, folder, camera_id)
            key = KEY.format(camera_id)

            async def swap(key: str = key, mapping: dict[str, str] = mapping) -> None:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.delete(key)
                    if mapping:
                        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
                    await pipe.execute()

            await retrying(f"share {key}", swap)
            shared += len(mapping)
        return shared

    # ---- a worker ------------------------------------------------------------------------
    async def take(self, folder: Path, camera_id: str) -> list[str]:
        """The camera's models from Redis into this box's folder; the zones that changed.
        A broken entry is logged and skipped (the zone keeps what it had)."""
        raw: dict[bytes | str, bytes | str] = await self.redis.hgetall(KEY.format(camera_id))  # type: ignore[misc]
        wanted: dict[str, dict[str, Any]] = {}
        broken: set[str] = set()
        for zone, value in raw.items():
            zone_id = zone.decode() if isinstance(zone, bytes) else zone
            try:
                item = json.loads(value)
                if not _safe(zone_id) or not isinstance(item, dict):
                    raise ValueError("not a zone's model")
                base64.b64decode(item["npz"], validate=True)
                int(item["version"])
            except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                log.error("camera=%s zone=%s state model in Redis is unreadable: %s",
                          camera_id, zone_id, exc)  # fmt: skip
                continue
            wanted[zone_id] = item
        if not _safe(camera_id):
            return []
        return await asyncio.to_thread(_write, folder, camera_id, wanted, broken)
