"""Turns service responses into Telegram messages: inline keyboards, edits, documents."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.errors import describe
from conversations.catalogue import load_texts
from conversations.engine import Reply
from conversations.service import MAX_MESSAGE, Response

T = TypeVar("T")
log = logging.getLogger(__name__)

# Bump when the command lists change so post_init refreshes every member's menu.
MENU_VERSION = 3


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
            for row in reply.buttons
        ]
    )


def _units(text: str) -> int:
    # Telegram measures text in UTF-16 code units: an emoji outside the BMP counts twice.
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Every outgoing text in parts Telegram accepts, broken where a reader expects.

    Paragraphs first, then lines, then words; a hard cut only inside an unbroken run.
    """
    parts: list[str] = []
    rest = text
    while _units(rest) > limit:
        # The longest prefix within the limit (characters are at most two units each).
        size = limit // 2
        while size < len(rest) and _units(rest[: size + 1]) <= limit:
            size += 1
        window = rest[:size]
        cut = next(
            (at for sep in ("\n\n", "\n", " ") if (at := window.rfind(sep)) > 0),
            size,
        )
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return [p for p in parts if p] or [text[:1]]


async def acknowledge(query: CallbackQuery, text: str | None = None) -> bool:
    """Stop the pressed button's spinner. False when Telegram no longer takes the answer.

    A query expires some seconds after the press (after downtime, every waiting press has
    expired) and the network can fail; the press itself must still be handled, so this
    never raises.
    """
    try:
        await query.answer(text)
    except TelegramError as exc:
        log.info("button press not acknowledged: %s", describe(exc))
        return False
    return True


async def _delete(bot: Bot, chat_id: int, message_id: int) -> None:
    """Chat tidying: Telegram lets a bot delete messages for 48 hours; after that, or if the
    person deleted it first, the message simply stays (or is already gone)."""
    try:
        await bot.delete_message(chat_id, message_id)
    except TelegramError as exc:
        log.info("a message was not tidied away: %s", describe(exc))


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


async def send(update: Update, response: Response) -> bool:
    """Send a response; True when the person's command menu was replaced (to be recorded)."""
    chat = update.effective_chat
    if chat is None:
        return False
    query = update.callback_query
    pressed: Message | None = None
    if query is not None and isinstance(query.message, Message):
        pressed = query.message
    replaced = False
    for reply in response.replies:
        if not reply.text:
            continue
        parts = split_text(reply.text)
        if reply.replace and pressed is not None and len(parts) == 1:
            try:
                await pressed.edit_text(reply.text, reply_markup=keyboard(reply))
                replaced = True
                continue
            except BadRequest:
                pass  # message too old to edit: fall back to a new message
        markup = keyboard(reply)
        for n, part in enumerate(parts, 1):
            # The buttons go under the last part, where the reader's eyes end up.
            extra = markup if n == len(parts) else None
            await patiently(lambda t=part, m=extra: chat.send_message(t, reply_markup=m))
    if pressed is not None and response.delete_pressed:
        await _delete(chat.get_bot(), chat.id, pressed.message_id)
    elif pressed is not None and response.changed and not replaced:
        # Take the buttons off the answered question so it cannot be pressed twice.
        with contextlib.suppress(BadRequest):
            await pressed.edit_reply_markup(reply_markup=None)
    for message_id in response.delete_messages:
        await _delete(chat.get_bot(), chat.id, message_id)
    for doc in response.documents:
        caption = doc.caption[:1024] or None  # Telegram's caption limit
        await chat.send_document(doc.content, filename=doc.filename, caption=caption)
    if response.menu_role is not None:
        await chat.get_bot().set_my_commands(
            commands_for(response.menu_role), scope=BotCommandScopeChat(chat.id)
        )
        return True
    return False
