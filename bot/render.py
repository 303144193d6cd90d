"""Turns service responses into Telegram messages: inline keyboards, edits, documents."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from conversations.catalogue import load_texts
from conversations.engine import Reply
from conversations.service import Response
from storage.store import Store

T = TypeVar("T")

# Bump when the command lists change so post_init refreshes every member's menu.
MENU_VERSION = 2


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
            for row in reply.buttons
        ]
    )


def commands_for(role: str) -> list[BotCommand]:
    return [BotCommand(c.name, c.description) for c in load_texts().commands_for(role)]


REPLY_BACKOFF = (0.2, 0.6, 1.5)


async def patiently(call: Callable[[], Awaitable[T]]) -> T:
    """Retry a reply through passing network trouble and 5xx answers.

    The answer it acknowledges is already stored, so retrying costs at worst a repeated
    message; giving up would leave the person looking at nothing. Rate limits (RetryAfter)
    are the rate limiter's job, and refusals (BadRequest, Forbidden) are final.
    """
    for delay in REPLY_BACKOFF:
        try:
            return await call()
        except RetryAfter:
            raise
        except (NetworkError, TimedOut) as exc:
            if isinstance(exc, (BadRequest, Forbidden)):
                raise
            await asyncio.sleep(delay)
    return await call()


async def send(update: Update, response: Response, store: Store | None = None) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    query = update.callback_query
    pressed: Message | None = None
    if query is not None and isinstance(query.message, Message):
        pressed = query.message
    replaced = False
    for reply in response.replies:
        if not reply.text:
            continue
        if reply.replace and pressed is not None:
            try:
                await pressed.edit_text(reply.text, reply_markup=keyboard(reply))
                replaced = True
                continue
            except BadRequest:
                pass  # message too old to edit: fall back to a new message
        markup = keyboard(reply)
        await patiently(lambda r=reply, m=markup: chat.send_message(r.text, reply_markup=m))
    if pressed is not None and response.changed and not replaced:
        # Take the buttons off the answered question so it cannot be pressed twice.
        with contextlib.suppress(BadRequest):
            await pressed.edit_reply_markup(reply_markup=None)
    for doc in response.documents:
        await chat.send_document(doc.content, filename=doc.filename, caption=doc.caption or None)
    if response.menu_role is not None:
        await chat.get_bot().set_my_commands(
            commands_for(response.menu_role), scope=BotCommandScopeChat(chat.id)
        )
        if store is not None and update.effective_user is not None:
            me = await store.participants.by_user(update.effective_user.id)
            if me is not None:
                await store.participants.set_field(me.id, "menu_version", MENU_VERSION)
