"""The ways a notice leaves Pantau: signed webhook, e-mail over SMTP, an HTTP chat gateway.

A channel makes ONE attempt and raises `DeliveryFailed` when it did not get through; retries,
backoff and the dead letter are the dispatcher's, so every channel behaves the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import httpx

from events.config import ChatGateway, Smtp, Webhook
from events.notify.message import Notice

SIGNATURE_HEADER = "X-Pantau-Signature"
TIMESTAMP_HEADER = "X-Pantau-Timestamp"


class DeliveryFailed(Exception):
    pass


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>` (the timestamp stops replays)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _check(response: httpx.Response) -> None:
    if response.status_code >= 300:
        raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}")


class WebhookChannel:
    name = "webhook"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, notice: Notice, webhook: Webhook, delivery_id: str) -> None:
        body = json.dumps(notice.payload(), ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        headers = {
            **webhook.headers,
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": delivery_id,  # the same notice retried keeps its key
            TIMESTAMP_HEADER: stamp,
        }
        if webhook.secret:
            headers[SIGNATURE_HEADER] = sign(webhook.secret, stamp, body)
        try:
            _check(await self.client.post(webhook.url, content=body, headers=headers))
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


class ChatChannel:
    name = "chat"

    def __init__(self, client: httpx.AsyncClient, gateway: ChatGateway) -> None:
        self.client = client
        self.gateway = gateway

    def render(self, notice: Notice, phone: str) -> str:
        values = {
            "phone": phone,
            "text": notice.subject + "\n\n" + notice.text,
            "incident_url": notice.link(notice.incidents[0]),
            "opd": notice.opd_id,
        }
        body = self.gateway.body
        for key, value in values.items():
            # JSON-escape without the quotes: the template already has them.
            body = body.replace("{" + key + "}", json.dumps(value, ensure_ascii=False)[1:-1])
        return body

    async def send(self, notice: Notice, phone: str, delivery_id: str) -> None:
        try:
            response = await self.client.request(
                self.gateway.method,
                self.gateway.url,
                content=self.render(notice, phone).encode(),
                headers={"Content-Type": "application/json", **self.gateway.headers},
            )
            _check(response)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


class EmailChannel:
    name = "email"

    def __init__(self, smtp: Smtp) -> None:
        self.smtp = smtp

    def build(self, notice: Notice, to: str) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = notice.subject
        msg["From"] = self.smtp.sender
        msg["To"] = to
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.smtp.sender.split("@")[1])
        msg.set_content(notice.text)
        return msg

    async def send(self, notice: Notice, to: str, delivery_id: str) -> None:
        message = self.build(notice, to)
        # smtplib blocks: it runs on a worker thread, never on the event loop.
        try:
            await asyncio.to_thread(self._send_blocking, message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc

    def _send_blocking(self, message: EmailMessage) -> None:
        send_mail(self.smtp, message)


def send_mail(cfg: Smtp, message: EmailMessage) -> None:
    """One message over SMTP (implicit TLS or STARTTLS, login when configured). Blocks: run it
    on a worker thread. Raises OSError or smtplib.SMTPException when it did not go."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if cfg.ssl:
        smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
    with smtp:
        if cfg.starttls and not cfg.ssl:
            smtp.starttls(context=context)
        if cfg.username:
            smtp.login(cfg.username, cfg.password or "")
        smtp.send_message(message)
