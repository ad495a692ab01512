"""Polls a CAP feed (e.g. BMKG's public warnings) and hands new warnings to the desk.

A feed URL may serve one CAP <alert>, or an RSS / Atom index whose items link to CAP documents
(how BMKG publishes). Only links not seen before are fetched; the desk drops a CAP identifier it
already has, so a restart that refetches everything changes nothing. Everything fetched is
parsed with defusedxml (no DTDs), and a broken document is logged and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urljoin

import defusedxml.ElementTree as SafeET
import httpx
from defusedxml import DefusedXmlException

from events.config import CapFeed
from events.intake import MAX_CAP_BYTES, IntakeError, parse_cap
from events.model import Alert
from events.region import Region

log = logging.getLogger(__name__)
_ATOM = "{http://www.w3.org/2005/Atom}"
_CAP_ROOT = (
    "{urn:oasis:names:tc:emergency:cap:1.2}alert",
    "{urn:oasis:names:tc:emergency:cap:1.1}alert",
)


def feed_links(xml: bytes, base: str) -> list[str]:
    """CAP document links listed by an RSS 2.0 or Atom index."""
    root = SafeET.fromstring(xml, forbid_dtd=True)
    links = [el.text.strip() for el in root.iter("link") if el.text and el.text.strip()]
    links += [el.get("href", "") for el in root.iter(f"{_ATOM}link") if el.get("href")]
    channel_link = root.find("channel/link")
    if channel_link is not None and channel_link.text:
        links = [link for link in links if link != channel_link.text.strip()]
    return [urljoin(base, link) for link in dict.fromkeys(links)]


class CapFeedPoller:
    def __init__(
        self,
        feed: CapFeed,
        region: Region | list[str],
        receive: Callable[[Alert], Awaitable[object]],
        client: httpx.AsyncClient | None = None,
        remember: int = 2000,
    ) -> None:
        self.feed = feed
        self.region = region
        self._receive = receive
        self._client = client or httpx.AsyncClient(timeout=15, follow_redirects=True)
        self._own_client = client is None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._etag: str | None = None
        self.received = 0

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.poll()
                except (httpx.HTTPError, SafeET.ParseError, DefusedXmlException) as exc:
                    log.warning("CAP feed %s: %s", self.feed.url, exc)
                await asyncio.sleep(self.feed.interval_s)
        finally:
            if self._own_client:
                await self._client.aclose()

    async def poll(self) -> int:
        """One round: returns how many new alerts went to the desk."""
        headers = {"If-None-Match": self._etag} if self._etag else {}
        response = await self._client.get(self.feed.url, headers=headers)
        if response.status_code == 304:
            return 0
        response.raise_for_status()
        self._etag = response.headers.get("etag")
        body = response.content[: MAX_CAP_BYTES + 1]
        root = SafeET.fromstring(body, forbid_dtd=True)
        if root.tag in _CAP_ROOT:
            return await self._take(self.feed.url, body)
        count = 0
        for link in feed_links(body, self.feed.url):
            if link in self._seen:
                continue
            try:
                doc = await self._client.get(link)
                doc.raise_for_status()
                count += await self._take(link, doc.content)
            except httpx.HTTPError as exc:
                log.warning("CAP feed %s: cannot fetch %s: %s", self.feed.url, link, exc)
                continue  # not remembered: tried again next round
        return count

    async def _take(self, link: str, body: bytes) -> int:
        self._seen[link] = None
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        try:
            alerts = parse_cap(body, self.region)
        except IntakeError as exc:
            log.warning("CAP document %s refused: %s", link, exc)
            return 0
        for alert in alerts:
            await self._receive(alert)
        self.received += len(alerts)
        return len(alerts)
