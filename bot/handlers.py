"""One handler per purpose; each maps an update to the service and renders the response.

Handlers only ever accept private chats: reflections are personal, and a group would
show one person's prompts to others.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.context import BotContext
from bot.pastes import Pastes
from bot.render import MENU_VERSION, acknowledge, send
from conversations.catalogue import load_texts
from conversations.service import Response, Sender

log = logging.getLogger(__name__)

PRIVATE = filters.ChatType.PRIVATE
NEW_MESSAGE = filters.UpdateType.MESSAGE

_UNSUPPORTED = (
    (filters.Sticker.ALL, "sticker"),
    (filters.PHOTO, "photo"),
    (filters.VOICE | filters.AUDIO, "voice message"),
    (filters.VIDEO | filters.VIDEO_NOTE | filters.ANIMATION, "video"),
    (filters.Document.ALL, "file"),
    (filters.LOCATION | filters.VENUE, "location"),
    (filters.CONTACT, "contact"),
)


PASTES_KEY = "pastes"


def pastes_of(context: BotContext) -> Pastes:
    pastes = context.bot_data.get(PASTES_KEY)
    if pastes is None:
        pastes = context.bot_data[PASTES_KEY] = Pastes()
    return pastes  # type: ignore[no-any-return]


async def _in_chat(context: BotContext, chat_id: int, work: Any) -> None:
    in_chat = getattr(context.application.update_processor, "in_chat", None)
    if in_chat is None:  # not our processor: one update at a time anyway
        await work()
        return
    await in_chat(chat_id, work)


async def finish_paste(update: Update, context: BotContext) -> None:
    """Anything else from a chat handles the paste it was in the middle of first."""
    if update.effective_chat is not None:
        await pastes_of(context).flush(update.effective_chat.id, _text_flush(context))


def _text_flush(context: BotContext) -> Any:
    async def handle(update: Update, text: str) -> None:
        sender = sender_of(update)
        if sender is not None:
            await send(update, await context.service.text(sender, text))

    return handle


def sender_of(update: Update) -> Sender | None:
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None or user.is_bot:
        return None
    message = update.message
    return Sender(
        user_id=user.id,
        chat_id=chat.id,
        first_name=user.first_name,
        update_id=update.update_id,
        message_id=message.message_id if message is not None else None,
    )


async def send_and_record_menu(update: Update, context: BotContext, response: Response) -> None:
    """Send, and when the person's menu changed, remember which menu version they have."""
    if not await send(update, response) or update.effective_user is None:
        return
    store = context.service.store
    me = await store.participants.by_user(update.effective_user.id)
    if me is not None:
        await store.participants.set_field(me.id, "menu_version", MENU_VERSION)


async def on_start(update: Update, context: BotContext) -> None:
    sender = sender_of(update)
    if sender is None:
        return
    payload = context.args[0] if context.args else None
    await finish_paste(update, context)
    await send_and_record_menu(update, context, await context.service.start(sender, payload))


async def on_command(update: Update, context: BotContext) -> None:
    sender = sender_of(update)
    if sender is None or update.effective_message is None or not update.effective_message.text:
        return
    head, _, args = update.effective_message.text.partition(" ")
    name, _, addressee = head.lstrip("/").partition("@")
    if addressee and addressee.lower() != (context.bot.username or "").lower():
        return  # meant for another bot: not ours to answer

    await finish_paste(update, context)
    await send_and_record_menu(
        update, context, await context.service.command(sender, name, args)
    )


async def on_text(update: Update, context: BotContext) -> None:
    sender = sender_of(update)
    if sender is None or update.message is None or update.message.text is None:
        return
    pastes = pastes_of(context)
    whole = pastes.add(sender.chat_id, update, update.message.text)
    if whole is None:  # perhaps the first part of a long paste: wait for the rest
        pastes.wait(
            sender.chat_id,
            _text_flush(context),
            lambda chat, work: _in_chat(context, chat, work),
        )
        return
    await send(update, await context.service.text(sender, whole))


async def on_press(update: Update, context: BotContext) -> None:
    query = update.callback_query
    sender = sender_of(update)
    if query is None or sender is None:
        return
    # Answer first so the button stops spinning even if the rest is slow; an answer
    # Telegram no longer takes (the query expired during downtime) loses nothing.
    await acknowledge(query)
    await finish_paste(update, context)
    await send(update, await context.service.press(sender, query.data or ""))


async def on_edited(update: Update, context: BotContext) -> None:
    if sender_of(update) is not None:
        await send(update, context.service.edited())


def unsupported(what: str):  # type: ignore[no-untyped-def]
    async def on_unsupported(update: Update, context: BotContext) -> None:
        if sender_of(update) is not None:
            await send(update, context.service.unsupported(what))

    return on_unsupported


async def on_group(update: Update, context: BotContext) -> None:
    if update.effective_message is not None and update.effective_message.text:
        text = update.effective_message.text
        if text.startswith("/"):
            await update.effective_message.reply_text(load_texts().say("private_only"))


def add_handlers(app: Application) -> None:  # type: ignore[type-arg]
    private_new = PRIVATE & NEW_MESSAGE
    app.add_handler(CommandHandler("start", on_start, filters=private_new))
    for name in load_texts().commands:
        if name != "start":
            app.add_handler(CommandHandler(name, on_command, filters=private_new))
    app.add_handler(MessageHandler(private_new & filters.COMMAND, on_command))
    app.add_handler(MessageHandler(private_new & filters.TEXT, on_text))
    app.add_handler(CallbackQueryHandler(on_press))
    app.add_handler(MessageHandler(PRIVATE & filters.UpdateType.EDITED, on_edited))
    for flt, what in _UNSUPPORTED:
        app.add_handler(MessageHandler(private_new & flt, unsupported(what)))
    app.add_handler(MessageHandler(private_new & ~filters.TEXT, unsupported("message")))
    app.add_handler(MessageHandler(~PRIVATE & NEW_MESSAGE, on_group))
