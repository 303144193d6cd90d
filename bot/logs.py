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
import time

LIBRARY_LOGGERS = ("telegram", "httpx", "httpcore", "apscheduler", "aiosqlite", "hpack")


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
            "event": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception messages can quote whatever the user typed.
            payload["error"] = record.exc_info[0].__name__
        return json.dumps(payload, sort_keys=True)


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
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries()
