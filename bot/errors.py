"""The error handler: a polite reply to the person, and a log line with no personal data.

python-telegram-bot's error classes nest (``BadRequest`` and ``TimedOut`` are both
``NetworkError``), so they are told apart most specific first: each kind means something
different for the person whose action failed.
"""

from __future__ import annotations

import contextlib
import logging
import math
from datetime import timedelta

from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.context import BotContext
from conversations.catalogue import load_texts

log = logging.getLogger("mentorbot.errors")


def describe(error: BaseException | None) -> str:
    """The error's type and origin only: messages can quote user input, so they are dropped."""
    if error is None:
        return "unknown"
    tb = error.__traceback__
    origin = ""
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        origin = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
    return f"{type(error).__name__}{origin}"


def retry_seconds(exc: RetryAfter) -> float:
    # _retry_after is always a timedelta; the public property's type depends on an
    # environment variable (PTB_TIMEDELTA) and warns when it is unset.
    value = getattr(exc, "_retry_after", None)
    if isinstance(value, timedelta):
        return value.total_seconds()
    raw = exc.retry_after
    return raw.total_seconds() if isinstance(raw, timedelta) else float(raw)


def classify(error: BaseException | None) -> tuple[int, str, dict[str, object]]:
    """(log level, the message key for the person, its values) for one failure."""
    if isinstance(error, Forbidden):
        # The person blocked the bot: there is nobody to tell.
        return logging.INFO, "", {}
    if isinstance(error, RetryAfter):
        seconds = max(1, math.ceil(retry_seconds(error)))
        return logging.WARNING, "error_busy", {"seconds": seconds}
    if isinstance(error, BadRequest):
        # Telegram refused something we sent: our mistake, never worth retrying.
        return logging.ERROR, "error_refused", {}
    if isinstance(error, TimedOut):
        return logging.WARNING, "error_slow", {}
    if isinstance(error, NetworkError):
        return logging.WARNING, "error_network", {}
    return logging.ERROR, "error", {}


async def on_error(update: object, context: BotContext) -> None:
    error = context.error
    kind = type(update).__name__ if update is not None else "none"
    level, key, values = classify(error)
    log.log(level, "handling %s failed: %s", kind, describe(error))
    if not key or not isinstance(update, Update) or update.effective_chat is None:
        return
    text = load_texts().say(key, **values)
    query = update.callback_query
    if query is not None:
        # The spinner on the pressed button stops too; a query that is too old to answer
        # is fine, the chat message below still says what happened.
        with contextlib.suppress(TelegramError):
            await query.answer()
    try:
        await update.effective_chat.send_message(text)
    except Exception as exc:  # the reply itself failed; nothing more to do safely
        log.warning("could not send the error reply: %s", describe(exc))
