"""The typed context handlers receive: the service without dictionary lookups."""

from __future__ import annotations

from telegram.ext import Application, CallbackContext, ExtBot

from conversations.service import Service

SERVICE_KEY = "service"


class BotContext(CallbackContext[ExtBot[None], dict, dict, dict]):  # type: ignore[type-arg]
    def __init__(
        self,
        application: Application,  # type: ignore[type-arg]
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)

    @property
    def service(self) -> Service:
        return self.bot_data[SERVICE_KEY]  # type: ignore[no-any-return]
