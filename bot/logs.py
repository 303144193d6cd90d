"""Logging without personal data, by construction.

Our own log lines carry event names, counts and error types only. The libraries are the
risk: python-telegram-bot logs every request's parameters (message texts, names, chat
ids) at DEBUG, and httpx logs URLs that contain the bot token. Those loggers are held at
WARNING whatever level the operator chooses, and a filter drops any record from them
that would still carry request parameters.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from types import TracebackType

LIBRARY_LOGGERS = (
    "telegram",
    "httpx",
    "httpcore",
    "apscheduler",
    "aiosqlite",
    "hpack",
    # the report charts: font scanning and backend choice log at INFO, mid-demo
    "matplotlib",
    "PIL",
    "fontTools",
)
# A bot token's shape (digits, a colon, 35 URL-safe characters): caught even when it is not
# the configured one, e.g. an old token quoted back by a proxy.
_TOKEN_SHAPE = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}")
REDACTED = "[redacted]"
_secrets: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember the process's secrets (token, master keys, webhook secret) for redact()."""
    for value in values:
        # Very short values would blank out ordinary words; real secrets are long.
        if value and len(value.strip()) >= 8:
            _secrets.add(value.strip())


def redact(text: str) -> str:
    """``text`` with every registered secret and anything shaped like a bot token removed."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _TOKEN_SHAPE.sub(REDACTED, text)


def crash_report(exc: BaseException) -> str:
    """Where an exception came from, frame by frame, without any exception's message.

    Messages are where secrets leak (python-telegram-bot's InvalidToken quotes the token,
    httpx errors quote URLs that contain it, a database error can quote a value); frame
    locations and type names are enough to find the bug.
    """
    lines = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines.append(f"{type(current).__module__}.{type(current).__qualname__}")
        for frame in traceback.extract_tb(current.__traceback__):
            lines.append(f"  at {frame.filename}:{frame.lineno} in {frame.name}")
        current = current.__cause__ or current.__context__
        if current is not None:
            lines.append("raised while handling")
    return "\n".join(lines)


def _excepthook(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    exc.__traceback__ = tb
    sys.stderr.write(f"mentorbot: unexpected error\n{crash_report(exc)}\n")


def install_excepthooks() -> None:
    """Uncaught exceptions, in any thread, print frames and types only (crash_report)."""
    sys.excepthook = _excepthook
    threading.excepthook = lambda args: _excepthook(
        args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback
    )


class _DropRequestDumps(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(LIBRARY_LOGGERS):
            return True
        message = record.getMessage()
        return "parameters" not in message and "return value" not in message


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception messages can quote whatever the user typed.
            payload["error"] = record.exc_info[0].__name__
        return json.dumps(payload, sort_keys=True)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def quiet_libraries() -> None:
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.WARNING, logger.level))
        if not any(isinstance(f, _DropRequestDumps) for f in logger.filters):
            logger.addFilter(_DropRequestDumps())


def setup_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_DropRequestDumps())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            _RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries()
