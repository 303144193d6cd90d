"""The error handler: a polite reply to the person, and a log line with no personal data."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, NetworkError, RetryAfter, TimedOut

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


async def on_error(update: object, context: BotContext) -> None:
    error = context.error
    kind = type(update).__name__ if update is not None else "none"
    if isinstance(error, (NetworkError, TimedOut, RetryAfter)) and not isinstance(
        error, Forbidden
    ):
        log.warning("transient Bot API problem while handling %s: %s", kind, describe(error))
        return
    log.error("handler failed for %s: %s", kind, describe(error))
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await update.effective_chat.send_message(load_texts().say("error"))
        except Exception as exc:  # the reply itself failed; nothing more to do safely
            log.warning("could not send the error reply: %s", describe(exc))
