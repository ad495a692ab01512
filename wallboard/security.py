"""Headers every browser-facing answer carries: a strict Content-Security-Policy (no inline
script or style, nothing from elsewhere, no framing), nosniff, a referrer policy and, when the
server speaks TLS itself, HSTS.

A pure ASGI middleware: it only adds headers to `http.response.start`, so streaming answers
(MJPEG, clips) and WebSockets pass untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The wall page needs only itself: its module scripts and stylesheet, stills/MJPEG/snapshots
# (img), clips (media), the API and the WebSocket (connect; CSP3's 'self' covers ws/wss of the
# same host). WebRTC media is not fetched by URL, so no directive governs it.
WALL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# FastAPI's interactive API docs load Swagger UI / ReDoc from their CDN with an inline boot
# script; they hold no site data, so only those two pages get a policy that allows that.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
HSTS = "max-age=31536000"  # a year; no includeSubDomains: other pemda hosts are not ours


class SecurityHeaders:
    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else WALL_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in self._headers(csp):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(self, csp: str) -> list[tuple[bytes, bytes]]:
        found = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers without CSP2
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if self.hsts:
            found.append((b"strict-transport-security", HSTS.encode()))
        return found
