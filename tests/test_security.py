"""Browser-facing security over real HTTP(S): the headers every answer carries, the wall page
under its strict Content-Security-Policy in a real Chromium, and TLS from cameras.yaml."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from pantau.redis_server import free_port
from pantau.runtime import Runtime
from pantau.web import serve
from tests.test_hub import NoFrames
from wallboard.app import CameraInfo, WallboardDeps, create_app
from wallboard.auth import Accounts
from wallboard.config import UiConfig, Wall
from wallboard.hub import Hub
from wallboard.live import LiveFrames
from wallboard.security import WALL_CSP

HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pantau.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
            __import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "pantau.crt", folder / "pantau.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    return cert_path, key_path


async def deps(tmp_path: Path, hsts: bool) -> WallboardDeps:
    from events.store import Store

    store = Store(tmp_path / "sec.db")
    await store.open()

    async def none() -> list[Any]:
        return []

    return WallboardDeps(
        store=store, hub=Hub(none, {}), live=LiveFrames(NoFrames()),
        cameras=[CameraInfo(id="cam-1", name="Satu", url_masked="rtsp://h/x")],
        walls=[Wall(id="utama")], ui=UiConfig(), snapshot_dir=None, clip_dir=None,
        health=lambda: {}, accounts=Accounts(store), hsts=hsts,
    )  # fmt: skip


async def test_every_answer_carries_the_security_headers(tmp_path: Path) -> None:
    d = await deps(tmp_path, hsts=False)
    web, task, port = await serve(create_app(d), "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            answers = (("/", 307), ("/wall/utama", 200), ("/static/app.js", 200),
                       ("/api/me", 401), ("/api/nope", 404), ("/healthz", 200))  # fmt: skip
            for path, status in answers:
                r = await http.get(path)
                assert r.status_code == status, path
                assert r.headers["content-security-policy"] == WALL_CSP, path
                for name, value in HEADERS.items():
                    assert r.headers[name] == value, (path, name)
                assert "strict-transport-security" not in r.headers  # plain HTTP: no HSTS
                assert "server" not in r.headers  # no software banner
            csp = WALL_CSP.split("; ")
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
            assert "style-src 'self'" in csp and not any("unsafe" in c for c in csp)
            docs = await http.get("/docs")
            assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    finally:
        web.should_exit = True
        await task
        await d.store.close()


async def test_tls_with_hsts(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    d = await deps(tmp_path, hsts=True)
    port = free_port()
    web, task, port = await serve(create_app(d), "127.0.0.1", port, tls=(cert, key))
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=trust) as http:
            r = await http.get("/healthz")
            assert r.status_code == 200 and r.json() == {"ok": True}
            assert r.headers["strict-transport-security"] == "max-age=31536000"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            with pytest.raises(httpx.HTTPError):  # no plain HTTP on the TLS port
                await http.get("/healthz")
    finally:
        web.should_exit = True
        await task
        await d.store.close()


@pytest.mark.slow
async def test_wall_page_runs_under_its_csp(running: Runtime, browser: Any) -> None:
    """The real page, logged in, with live tiles: not one CSP violation (no inline script or
    style, nothing from elsewhere)."""
    from tests.test_wall_browser import login

    page = await browser.new_page(viewport={"width": 1600, "height": 900})
    await page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    await login(page, f"http://127.0.0.1:{running.web_port}/", running)
    await page.locator(".timeline .incident").first.wait_for(timeout=60000)
    await page.locator("#lang").click()
    await page.locator(".timeline .incident").first.click()
    await page.wait_for_selector("dialog[open] img.snap")
    await page.wait_for_timeout(2000)
    assert await page.evaluate("window.__csp") == []
    await page.close()
