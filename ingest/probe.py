"""Why a camera cannot be opened, in words an operator can act on.

OpenCV only says "not opened". After a failed open the capture thread asks the camera itself:
a TCP connect (refused? unreachable?) and an RTSP DESCRIBE (404 wrong path? 401 wrong
password?). Blocking, short, and only on the failure path.
"""

from __future__ import annotations

import base64
import socket
from urllib.parse import unquote, urlsplit

RTSP_DEFAULT_PORT = 554


def diagnose(url: str, timeout: float = 3.0) -> str:
    """A short reason why `url` does not deliver a stream (never contains the password)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or RTSP_DEFAULT_PORT
    except ValueError:
        return "malformed URL"
    if not host:
        return "URL has no host"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return f"connection refused by {host}:{port} (no RTSP server on that port)"
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout:g} s (host down or firewalled)"
    except socket.gaierror:
        return f"host name {host!r} does not resolve"
    except OSError as exc:
        return f"cannot reach {host}:{port}: {exc.strerror or exc}"
    with sock:
        sock.settimeout(timeout)
        clean = parts._replace(netloc=f"{host}:{port}").geturl()
        request = f"DESCRIBE {clean} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n"
        if parts.username is not None:
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            request += f"Authorization: Basic {base64.b64encode(token.encode()).decode()}\r\n"
        try:
            sock.sendall((request + "\r\n").encode())
            status_line = sock.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        except OSError as exc:
            return f"{host}:{port} accepted the connection but did not answer RTSP: {exc}"
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("RTSP/"):
        return f"{host}:{port} does not speak RTSP"
    code = fields[1]
    if code == "404":
        return "stream path not found on the camera (RTSP 404): check the URL path"
    if code == "401":
        return "camera requires valid credentials (RTSP 401): check user and password"
    if code == "200":
        return "camera answers DESCRIBE but no video could be decoded (codec? stream busy?)"
    return f"camera answered RTSP {code} {fields[2] if len(fields) > 2 else ''}".strip()
