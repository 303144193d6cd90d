"""Drive the real Application offline: real Update objects through the Bot API stand-in.

Tests, benchmarks and the demo-in-Telegram checks use this; nothing here touches the
network. A ``TgUser`` types, taps and reads like a person in a private chat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.app import build_application
from bot.handlers import PASTES_KEY
from bot.pastes import Pastes
from bot.settings import Settings
from bot.throttle import Limits
from storage.store import Store
from tests.support.api_standin import BotApiStandin, StandinRequest

TOKEN = "123456:TEST-token-for-the-offline-stand-in"


def offline_settings(db: Path | str, **extra: Any) -> Settings:
    return Settings(_env_file=None, mentorbot_db=db, **extra)  # type: ignore[call-arg]


@asynccontextmanager
async def running_app(
    store: Store, standin: BotApiStandin | None = None, *, flood_limits: Limits | None = None,
    **extra: Any
) -> AsyncIterator[tuple[Application, BotApiStandin]]:  # type: ignore[type-arg]
    """An initialised Application (post_init run) wired to ``store`` and a stand-in.

    ``TgUser`` hands updates to the Application directly, past the update processor and so
    past the flood gate; send through ``app.update_processor`` to meet it.
    """
    standin = standin or BotApiStandin(token=TOKEN)
    if store.db.dialect == "postgresql":  # a PostgreSQL database names its key store
        extra.setdefault("mentorbot_keystore", store.db.keystore)
    app = build_application(
        offline_settings(store.db.path, **extra),
        store=store,
        flood_limits=flood_limits,
        request=StandinRequest(standin),
        updates_request=StandinRequest(standin),
        token=TOKEN,
    )
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)
    try:
        yield app, standin
    finally:
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


@dataclass
class TgUser:
    app: Application  # type: ignore[type-arg]
    standin: BotApiStandin
    user_id: int
    first_name: str = "Robin"
    username: str | None = None

    def __post_init__(self) -> None:
        self._seen = len(self.standin.sent_messages(self.user_id))

    async def _process(self, update: dict[str, Any]) -> None:
        await self.app.process_update(Update.de_json(update, self.app.bot))

    async def send(self, text: str) -> list[dict[str, Any]]:
        """One message, and then a pause: a long one is not left waiting for more parts."""
        update = self.standin.text_message(
            self.user_id, text, first_name=self.first_name, username=self.username
        )
        await self._process(update)
        await self.pause()
        return self.new()

    async def paste(self, text: str, *, pause: bool = True) -> list[dict[str, Any]]:
        """A long paste, arriving in parts as Telegram's apps send it."""
        for update in self.standin.paste(
            self.user_id, text, first_name=self.first_name, username=self.username
        ):
            await self._process(update)
        if pause:
            await self.pause()
        return self.new()

    async def pause(self) -> None:
        """Time passes: a paste still waiting for parts is handled as it stands."""
        pastes = self.app.bot_data.get(PASTES_KEY)
        if isinstance(pastes, Pastes):
            await pastes.expire(self.user_id)

    async def tap(self, label: str) -> list[dict[str, Any]]:
        message_id, data = self.find_button(label)
        await self._process(self.standin.callback_query(self.user_id, data, message_id))
        return self.new()

    async def press(self, data: str, message_id: int | None = None) -> list[dict[str, Any]]:
        await self._process(self.standin.callback_query(self.user_id, data, message_id))
        return self.new()

    async def raw(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        await self._process(update)
        await self.pause()
        return self.new()

    async def join(self, code: str, answer: str = "Yes") -> list[dict[str, Any]]:
        """Open an invite link and answer the four consent questions."""
        await self.send(f"/start {code}")
        await self.tap("Yes, keep them")
        replies: list[dict[str, Any]] = []
        for _ in range(3):
            replies = await self.tap(answer)
        return replies

    def new(self) -> list[dict[str, Any]]:
        """Messages the bot sent to this chat since the last look."""
        sent = self.standin.sent_messages(self.user_id)
        fresh, self._seen = sent[self._seen :], len(sent)
        return fresh

    def last_texts(self, messages: list[dict[str, Any]]) -> str:
        return "\n".join(m.get("text", "") for m in messages)

    def find_button(self, label: str) -> tuple[int, str]:
        for message in reversed(self.standin.sent_messages(self.user_id)):
            current = self.standin.message(self.user_id, message["message_id"]) or message
            markup = current.get("reply_markup") or {}
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if button.get("text") == label:
                        return message["message_id"], button["callback_data"]
        raise LookupError(f"no {label!r} button in the chat")
