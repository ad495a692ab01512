"""Two-way Telegram with real parts: aiogram talking HTTP to a loopback server that speaks the
Bot API (long polling included), SQLite, the dispatcher on a clock the test moves."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from events.attachments import Attachments
from events.config import NotifyConfig, Opd, Route, TelegramConfig
from events.desk import IncidentDesk
from events.model import (
    ActionKind,
    AnyEvent,
    IncidentKind,
    IncidentState,
    Observation,
    ObservationPhase,
    Severity,
)
from events.notify.chat_answers import ChatAnswers
from events.notify.chat_links import ChatLinks
from events.notify.dispatcher import Dispatcher
from events.notify.telegram import TelegramBot
from events.scoreboard import compute
from events.store import Store
from tests.conftest import FakeTelegram, ManualClock

WITA = ZoneInfo("Asia/Makassar")
TOKEN = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789"
PIKET, KALAK, STRANGER, NEWCOMER = 1001, 1002, 9999, 3003
BPBD = Opd.model_validate({
    "id": "bpbd", "name": "BPBD",
    "contacts": [
        {"id": "kalak", "name": "Kalaksa", "telegram": KALAK,
         "can": ["acknowledge", "start", "resolve", "false_alarm"]},
        {"id": "sari", "name": "Sari"},
    ],
    # the duty officer (piket) hears first: Regu A by day, nobody rostered at night
    "roster": {"team": [{"id": "regu-a", "name": "Regu A", "telegram": PIKET}],
               "shifts": {"pagi": "07:00-19:00"}, "starts": "2026-11-30",
               "weeks": [{"daily": {"pagi": "regu-a"}}]},
})  # fmt: skip


def jpeg(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, "JPEG")
    return out.getvalue()


@dataclass
class Site:
    store: Store
    desk: IncidentDesk
    dispatcher: Dispatcher
    bot: TelegramBot
    links: ChatLinks
    attachments: Attachments
    clock: ManualClock
    published: list[AnyEvent]

    async def feed(self) -> None:
        while self.published:
            await self.dispatcher.handle(self.published.pop(0))

    async def tick(self, seconds: float = 0) -> None:
        await self.feed()
        self.clock.advance(seconds)
        await self.dispatcher.tick()
        await self.dispatcher.drain()
        await self.feed()

    async def until(self, what: str, check: Any, timeout: float = 10) -> Any:
        for _ in range(int(timeout / 0.05)):
            await self.feed()
            got = check()
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return got
            await asyncio.sleep(0.05)
        pytest.fail(f"{what}: not within {timeout} s")


@pytest.fixture
async def site(tmp_path: Path, telegram_api: FakeTelegram) -> AsyncGenerator[Site, None]:
    store = Store(tmp_path / "t.db")
    await store.open()
    clock = ManualClock(datetime(2026, 12, 1, 10, 0, tzinfo=WITA))
    published: list[AnyEvent] = []

    async def publish(event: AnyEvent) -> None:
        published.append(event)

    routes = [Route(opds=["bpbd"], ack_deadline_s=120)]
    desk = IncidentDesk(store, publish, routes, now=clock)
    dispatcher = Dispatcher(store, publish, [BPBD], routes, NotifyConfig(group_wait_s=0),
                            timezone="Asia/Makassar", now=clock)  # fmt: skip
    links = ChatLinks(store, [BPBD])
    attachments = Attachments(store, tmp_path / "attachments")
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    (snapshots / "gudang.jpg").write_bytes(jpeg((40, 90, 160)))
    config = TelegramConfig(token=TOKEN, api_url=telegram_api.url, poll_timeout_s=1)
    bot = TelegramBot(config, links, ChatAnswers(desk, attachments), snapshots, "Asia/Makassar")
    dispatcher.apps.append(bot)
    await links.load()
    await bot.start()
    yield Site(store, desk, dispatcher, bot, links, attachments, clock, published)
    await bot.stop()
    await dispatcher.stop()
    await store.close()


def flood(clock: ManualClock, place: str = "Kota") -> Observation:
    return Observation(
        phase=ObservationPhase.OPENED, rule="flood-0", kind=IncidentKind.FLOOD,
        severity=Severity.HIGH, title="Air masuk gudang logistik", camera_id=f"cam-{place}",
        kecamatan=place, started_at=clock.t, at=clock.t, snapshot_ref="gudang.jpg",
    )  # fmt: skip


def labels(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["text"] for row in rows for b in row]


async def test_terima_acknowledges_as_the_contact_and_stops_escalation(
    site: Site, telegram_api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    inc = await site.desk.observe(flood(site.clock))
    assert inc is not None
    await site.tick()
    (told,) = telegram_api.to(PIKET)
    assert telegram_api.photos[told["message_id"]] == jpeg((40, 90, 160))  # the snapshot
    assert "Banjir" in told["caption"] and "Air masuk gudang logistik" in told["caption"]
    assert labels(told) == ["Terima", "Tangani", "Selesai"]  # no "Bukan kejadian" for a piket
    deliveries = await site.store.deliveries(inc.id)
    assert [(d.channel, d.status) for d in deliveries] == [("telegram", "sent")]

    query = telegram_api.press(PIKET, f"acknowledge:{inc.id}", told)
    answered = await telegram_api.wait("answerCallbackQuery", callback_query_id=query)
    assert answered["text"] == "Tercatat: Diterima oleh Regu A."
    acked = await site.until("acknowledged", lambda: site.store.incident(inc.id))
    assert acked.state == IncidentState.ACKNOWLEDGED
    (ack,) = [a for a in await site.store.actions(inc.id) if a.kind == ActionKind.ACKNOWLEDGE]
    assert (ack.actor, ack.opd_id, ack.at) == ("Regu A via Telegram", "bpbd", site.clock.t)
    edited = await telegram_api.wait("editMessageCaption", message_id=told["message_id"])
    assert "Diterima oleh Regu A" in edited["caption"]
    assert [b["text"] for row in edited["reply_markup"]["inline_keyboard"] for b in row] == [
        "Tangani", "Selesai"]  # fmt: skip
    # the deadline passes: the Kalaksa is not woken, the piket already answered
    await site.tick(300)
    assert telegram_api.to(KALAK) == []
    assert not [a for a in await site.store.actions(inc.id) if a.kind == ActionKind.ESCALATED]
    (week,) = compute(await site.store.response_times(), "Asia/Makassar")
    assert (week.routed, week.acknowledged, week.unanswered) == (1, 1, 0)

    # a reply is a comment, a photo reply an attachment, both as the contact
    telegram_api.say(PIKET, "Tim menuju lokasi, 2 pompa dibawa", reply_to=told)
    await telegram_api.wait("sendMessage", text="Catatan tersimpan di kejadian.")
    field_photo = jpeg((200, 30, 30))
    telegram_api.send_photo(PIKET, field_photo, reply_to=told, caption="Air setinggi lutut")
    await telegram_api.wait("sendMessage", text="Foto tersimpan di kejadian.")
    comments = [a for a in await site.store.actions(inc.id) if a.kind == ActionKind.COMMENT]
    assert comments[0].note == "Tim menuju lokasi, 2 pompa dibawa"
    assert comments[1].note.endswith(": Air setinggi lutut") and comments[1].actor.startswith(
        "Regu A"
    )
    (att,) = await site.attachments.of(inc.id)
    assert site.attachments.path(att).read_bytes() == field_photo
    assert att.added_by == "Regu A via Telegram" and att.content_type == "image/jpeg"

    # role: a piket may not close it as a false alarm; the Kalaksa may
    query = telegram_api.press(PIKET, f"false_alarm:{inc.id}", told)
    refused = await telegram_api.wait("answerCallbackQuery", callback_query_id=query)
    assert refused["text"] == "Peran Anda tidak boleh: Bukan kejadian." and refused["show_alert"]
    query = telegram_api.press(KALAK, f"false_alarm:{inc.id}", told)
    await telegram_api.wait("answerCallbackQuery", callback_query_id=query)
    closed = await site.until("false alarm", lambda: _state(site, inc.id, "false_alarm"))
    assert closed.state == IncidentState.FALSE_ALARM


async def _state(site: Site, incident_id: str, state: str) -> Any:
    found = await site.store.incident(incident_id)
    return found if found is not None and found.state == state else None


async def test_an_unknown_telegram_user_is_refused_and_logged(
    site: Site, telegram_api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    inc = await site.desk.observe(flood(site.clock))
    assert inc is not None
    await site.tick()
    (told,) = telegram_api.to(PIKET)
    caplog.set_level(logging.WARNING, logger="events.notify.telegram")
    query = telegram_api.press(STRANGER, f"resolve:{inc.id}", told)
    refused = await telegram_api.wait("answerCallbackQuery", callback_query_id=query)
    assert "belum terdaftar" in refused["text"]
    telegram_api.say(STRANGER, "halo", reply_to=told)
    await telegram_api.wait("sendMessage", chat_id=STRANGER)
    found = await site.store.incident(inc.id)
    assert found is not None and found.state == IncidentState.NEW
    assert [a.kind for a in await site.store.actions(inc.id)].count(ActionKind.RESOLVE) == 0
    assert site.bot.refused == 2
    assert any(f"telegram user={STRANGER}" in r.getMessage() for r in caplog.records)
    # the escalation still runs: nobody answered
    await site.tick(121)
    assert len(telegram_api.to(KALAK)) == 1


async def test_a_one_time_code_links_a_telegram_account_to_a_contact(
    site: Site, telegram_api: FakeTelegram
) -> None:
    sari = BPBD.people()["sari"]
    assert site.links.chat_of("telegram", "bpbd", sari) is None
    code, _ = await site.links.new_code("bpbd", "sari", "supervisor-1")
    telegram_api.say(NEWCOMER, "/start WRONGCODE")
    await telegram_api.wait("sendMessage", chat_id=NEWCOMER)
    assert "tidak dikenal" in telegram_api.sent("sendMessage", chat_id=NEWCOMER)[-1]["text"]
    telegram_api.say(NEWCOMER, f"/start {code.lower()}")
    linked = await telegram_api.wait("sendMessage", chat_id=NEWCOMER, timeout=10)
    for _ in range(100):
        if "Tertaut" in linked["text"]:
            break
        await asyncio.sleep(0.05)
        linked = telegram_api.sent("sendMessage", chat_id=NEWCOMER)[-1]
    assert linked["text"].startswith("Tertaut sebagai Sari (BPBD)")
    assert site.links.chat_of("telegram", "bpbd", sari) == str(NEWCOMER)
    # the code is spent; the link survives a restart (it is in SQLite)
    again = ChatLinks(site.store, [BPBD])
    await again.load()
    user = again.user("telegram", str(NEWCOMER))
    assert user is not None and user.contact.name == "Sari"
    assert await again.redeem("telegram", "5555", code) is None
