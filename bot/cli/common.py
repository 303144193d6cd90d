"""What every `mentorbot` command shares: one-line failures, the settings, the configured
store, and running a coroutine."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from bot.logs import crash_report, install_excepthooks, redact, register_secrets
from bot.settings import ConfigError, Settings, load_settings
from conversations.catalogue import consent_version
from storage.crypto import MasterKeyError
from storage.db import DatabaseError
from storage.integrity import TamperError
from storage.programmes import ProgrammeError
from storage.store import Store

T = TypeVar("T")


def friendly(func: Callable[..., T]) -> Callable[..., T]:
    """Turn expected failures into one clear line on stderr and exit code 2, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except (ConfigError, DatabaseError, MasterKeyError, ProgrammeError,
                TamperError) as exc:
            click.echo(f"mentorbot: {redact(str(exc))}", err=True)
            sys.exit(2)

    return wrapper


def serve(cfg: Settings, start: Callable[[], None]) -> None:
    """Run the bot in this process with its secrets kept out of everything it prints.

    python-telegram-bot's InvalidToken quotes the whole token (a revoked token, or a
    TELEGRAM_API_BASE_URL that answers 404), and any other exception's message may quote a
    URL holding it: so start-up failures become one line of our own, crashes a list of
    frames without messages, and log lines are redacted (bot.logs).
    """
    from telegram.error import InvalidToken

    from storage.lock import exclusive

    register_secrets(cfg.secret_values())
    install_excepthooks()
    try:
        # Held while the bot runs: key rotation and restore refuse meanwhile (storage.lock);
        # on PostgreSQL several bots share it (one programme served by several processes).
        with exclusive(cfg.mentorbot_db, "a running bot", several=True):
            start()
    except InvalidToken:
        from urllib.parse import urlsplit

        base = cfg.telegram_api_base_url or "https://api.telegram.org/bot"
        host = redact(urlsplit(base).netloc or "the configured address")
        raise ConfigError(
            f"the Bot API at {host} rejected TELEGRAM_BOT_TOKEN at start-up (getMe failed): "
            "copy the token again from @BotFather (a revoked token must be replaced) and "
            "check TELEGRAM_API_BASE_URL; `mentorbot doctor` checks both"
        ) from None
    except (ConfigError, DatabaseError, MasterKeyError, ProgrammeError):
        raise
    except Exception as exc:
        click.echo(
            f"mentorbot: the bot stopped on an unexpected error ({type(exc).__name__})\n"
            f"{crash_report(exc)}",
            err=True,
        )
        sys.exit(1)


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def settings() -> Settings:
    return load_settings()




async def open_store() -> Store:
    """The configured store, never created: reporting on (or exporting, or coding) a missing
    database is an error."""
    cfg = settings()
    return await Store.open(
        cfg.mentorbot_db,
        cfg.keyring(),
        consent_version(),
        create=False,
        keystore=cfg.mentorbot_keystore,
    )


def invite_link(cfg: Settings, code: str) -> str:
    """The t.me link that opens the bot with an invite code."""
    username = cfg.mentorbot_bot_username or "<your_bot_username>"
    return f"https://t.me/{username}?start={code}"


def fail(message: str) -> None:
    click.echo(f"mentorbot: {message}", err=True)
    sys.exit(2)
