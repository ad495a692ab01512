"""CAP feed poller against a real HTTP server on loopback serving an RSS index and CAP files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from events.cap_feed import CapFeedPoller, feed_links
from events.config import CapFeed, Route, RouteMatch
from events.desk import IncidentDesk
from events.model import IncidentState
from events.store import Store
from tests.conftest import serve_asgi
from tests.test_intake_api import LAUGHS, XXE, cap


class Site:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        self.port = 0

    async def app(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            return
        self.hits.append(scope["path"])
        body = self.files.get(scope["path"])
        await send({"type": "http.response.start", "status": 200 if body else 404,
                    "headers": [(b"content-type", b"application/xml")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body or b"not found"})

    def rss(self, *names: str) -> None:
        items = "".join(f"<item><title>{n}</title><link>/cap/{n}.xml</link></item>" for n in names)
        self.files["/rss.xml"] = (
            f"<?xml version='1.0'?><rss version='2.0'><channel><title>BMKG</title>"
            f"<link>https://bmkg.example/</link>{items}</channel></rss>"
        ).encode()


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    s = Site()
    async with serve_asgi(s.app) as port:
        s.port = port
        yield s


def test_feed_links_from_rss_and_atom() -> None:
    atom = (b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><link href='a.xml'/></entry>"
            b"<entry><link href='https://x/b.xml'/></entry></feed>")  # fmt: skip
    assert feed_links(atom, "https://bmkg.example/feed/") == [
        "https://bmkg.example/feed/a.xml",
        "https://x/b.xml",
    ]


async def test_poller_takes_new_warnings_once_and_follows_cancels(
    site: Site, tmp_path: Path
) -> None:
    store = Store(tmp_path / "cap.db")
    await store.open()
    desk = IncidentDesk(store, lambda e: None, [Route(match=RouteMatch(), opds=["bpbd"])])
    site.files["/cap/w1.xml"] = cap("W1")
    site.files["/cap/drill.xml"] = cap("D1", status="Exercise")
    site.files["/cap/xxe.xml"] = XXE
    site.files["/cap/lol.xml"] = LAUGHS
    site.rss("w1", "drill", "xxe", "lol", "missing")
    poller = CapFeedPoller(
        CapFeed(url=f"http://127.0.0.1:{site.port}/rss.xml"), ["Kuta"], desk.receive_alert
    )
    assert await poller.poll() == 2  # the XXE and billion-laughs documents are refused
    incidents = await store.incidents()
    assert sorted(i.exercise for i in incidents) == [False, True]
    real = next(i for i in incidents if not i.exercise)
    assert real.kecamatan == "Kuta" and real.routed_opds == ("bpbd",)

    site.hits.clear()
    assert await poller.poll() == 0
    assert site.hits == ["/rss.xml", "/cap/missing.xml"]  # seen documents are not fetched again

    site.files["/cap/c1.xml"] = cap(
        "C1", msg="Cancel", refs="bmkg@bmkg.go.id,W1,2026-11-23T14:00:00+08:00"
    )
    site.rss("w1", "drill", "c1")
    assert await poller.poll() == 1
    after = await store.incident(real.id)
    assert after is not None and after.state == IncidentState.RESOLVED and not after.active
    await store.close()
