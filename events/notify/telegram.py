"""Two-way Telegram through aiogram: each routed incident goes to the contact's chat with its
snapshot and buttons (Terima, Tangani, Selesai, Bukan kejadian where the contact may); answers
come back by long polling (getUpdates), so a pemda network without a public address works.

A button press or a reply acts as the contact that Telegram user is (cameras.yaml or a link
code from the wall); anyone else is refused and logged. The pressed message is updated with
who did what and when, and keeps only the buttons that still make sense.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from pathlib import Path

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from events.config import Contact, TelegramConfig
from events.model import Incident, utcnow
from events.notify.channels import DeliveryFailed
from events.notify.chat_answers import BUTTONS, REFUSED, ChatAnswers, buttons_for
from events.notify.chat_links import ChatLinks
from events.notify.message import Notice

log = logging.getLogger(__name__)
APP = "Telegram"
CAPTION_MAX = 1024  # Telegram's limit for a photo's caption
TEXT_MAX = 4096


def keyboard(incident: Incident, can: list[str] | None) -> InlineKeyboardMarkup | None:
    actions = buttons_for(incident, can)
    if not actions:
        return None
    row = [
        InlineKeyboardButton(text=BUTTONS[a], callback_data=f"{a}:{incident.id}") for a in actions
    ]
    return InlineKeyboardMarkup(inline_keyboard=[row[:2], row[2:]] if len(row) > 2 else [row])


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TelegramBot:
    name = "telegram"

    def __init__(
        self,
        config: TelegramConfig,
        links: ChatLinks,
        answers: ChatAnswers,
        snapshot_dir: Path | None,
        timezone: str,
    ) -> None:
        self.config = config
        self.links = links
        self.answers = answers
        self.snapshot_dir = snapshot_dir
        self.timezone = timezone
        session = AiohttpSession(api=TelegramAPIServer.from_base(config.api_url))
        self.bot = Bot(config.token, session=session)
        self.dispatcher = Dispatcher()
        router = Router(name="pantau")
        router.callback_query.register(self._on_button)
        router.message.register(self._on_message)
        self.dispatcher.include_router(router)
        self._task: asyncio.Task[None] | None = None
        self.refused = 0  # updates from Telegram users who are nobody here

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(
            self.dispatcher.start_polling(
                self.bot,
                polling_timeout=self.config.poll_timeout_s,
                handle_signals=False,
                close_bot_session=False,
                allowed_updates=["message", "callback_query"],
            ),
            name="telegram-polling",
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.bot.session.close()

    # ---- out ----------------------------------------------------------------------------
    def chat_of(self, opd_id: str, contact: Contact) -> str | None:
        return self.links.chat_of("telegram", opd_id, contact)

    async def send(self, notice: Notice, chat_id: str, contact: Contact, delivery_id: str) -> None:
        """One message per incident (its buttons act on it). Raises DeliveryFailed."""
        for incident in notice.incidents:
            text = notice.subject + "\n\n"
            if notice.reason:
                text += notice.reason + ".\n"
            elif notice.step:
                text += f"BELUM ADA TANGGAPAN (eskalasi ke-{notice.step}).\n"
            text += notice.describe(incident)
            markup = keyboard(incident, list(contact.can))
            photo = self._snapshot(incident)
            try:
                if photo is not None:
                    sent = await self.bot.send_photo(
                        int(chat_id), BufferedInputFile(photo, "snapshot.jpg"),
                        caption=_fit(text, CAPTION_MAX), reply_markup=markup,
                    )  # fmt: skip
                else:
                    sent = await self.bot.send_message(
                        int(chat_id), _fit(text, TEXT_MAX), reply_markup=markup
                    )
            except (TelegramAPIError, TelegramNetworkError) as exc:
                raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
            await self.links.remember(
                "telegram", chat_id, str(sent.message_id), incident.id, notice.opd_id
            )

    def _snapshot(self, incident: Incident) -> bytes | None:
        name = incident.snapshot_ref
        if not name or self.snapshot_dir is None or "/" in name:
            return None
        path = self.snapshot_dir / name
        return path.read_bytes() if path.is_file() else None

    # ---- in -----------------------------------------------------------------------------
    def _refuse(self, user_id: int, username: str | None) -> None:
        self.refused += 1
        log.warning("telegram user=%s (@%s) refused: not a contact of any OPD", user_id, username)

    async def _on_button(self, query: CallbackQuery) -> None:
        user = self.links.user("telegram", str(query.from_user.id))
        if user is None:
            self._refuse(query.from_user.id, query.from_user.username)
            await query.answer(_fit(REFUSED, 200), show_alert=True)
            return
        action, _, incident_id = (query.data or "").partition(":")
        outcome = await self.answers.press(user, incident_id, action, APP)
        await query.answer(_fit(outcome.text, 200), show_alert=not outcome.ok)
        message = query.message
        if outcome.incident is None or not isinstance(message, Message):
            return
        markup = keyboard(outcome.incident, list(user.contact.can))
        stamp = Notice.local_time(utcnow(), self.timezone)
        status = f"\n\n✅ {outcome.text.removeprefix('Tercatat: ').rstrip('.')}, {stamp}"
        with contextlib.suppress(TelegramAPIError, TelegramNetworkError):
            if not outcome.ok:
                await message.edit_reply_markup(reply_markup=markup)
            elif message.photo:
                caption = _fit((message.caption or "") + status, CAPTION_MAX)
                await message.edit_caption(caption=caption, reply_markup=markup)
            else:
                await message.edit_text(_fit((message.text or "") + status, TEXT_MAX),
                                        reply_markup=markup)  # fmt: skip

    async def _on_message(self, message: Message) -> None:
        sender = message.from_user
        if sender is None:
            return
        chat = str(message.chat.id)
        text = (message.text or "").strip()
        if text.startswith(("/start", "/link")):
            await self._link(message, str(sender.id), text)
            return
        user = self.links.user("telegram", str(sender.id))
        if user is None:
            self._refuse(sender.id, sender.username)
            await message.reply(REFUSED)
            return
        quoted = message.reply_to_message
        incident_id = (
            await self.links.incident_of("telegram", chat, str(quoted.message_id))
            if quoted is not None
            else await self.links.last_incident("telegram", chat)
        )
        if incident_id is None:
            await message.reply("Balas (reply) pesan kejadian untuk menambah catatan atau foto.")
            return
        if message.photo:
            best = message.photo[-1]
            if best.file_size and best.file_size > self.config.max_photo_bytes:
                await message.reply("Foto terlalu besar.")
                return
            buffer = io.BytesIO()
            try:
                await self.bot.download(best, destination=buffer)
            except (TelegramAPIError, TelegramNetworkError) as exc:
                log.warning("telegram photo from user=%s not downloaded: %s", sender.id, exc)
                await message.reply("Foto tidak dapat diambil, coba kirim lagi.")
                return
            outcome = await self.answers.photo(
                user, incident_id, buffer.getvalue(), "image/jpeg", message.caption or "", APP
            )
        else:
            outcome = await self.answers.comment(user, incident_id, text, APP)
        await message.reply(outcome.text)

    async def _link(self, message: Message, sender: str, text: str) -> None:
        parts = text.split()
        known = self.links.user("telegram", sender)
        if len(parts) < 2:
            await message.reply(f"Anda terdaftar sebagai {known.label}." if known else REFUSED)
            return
        linked = await self.links.redeem("telegram", sender, parts[1])
        if linked is None:
            await message.reply("Kode tidak dikenal atau sudah kedaluwarsa. Minta kode baru.")
            return
        await message.reply(
            f"Tertaut sebagai {linked.label}. Kejadian untuk OPD Anda akan dikirim ke sini; "
            "tekan tombolnya untuk menjawab, balas pesannya untuk catatan atau foto."
        )
