"""RTSP URL masking: credentials never reach logs, events, the API or the page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*)(:[^@/\s]*)?@")


def mask_url(url: str) -> str:
    """rtsp://admin:secret@10.0.0.5/stream -> rtsp://admin:***@10.0.0.5/stream"""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if parts.password is not None else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_text(text: str) -> str:
    """Mask any URL credentials inside free text (error messages from OpenCV/FFmpeg)."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", text)
