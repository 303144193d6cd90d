"""Webhook mode: Telegram POSTs updates to a public HTTPS URL that a reverse proxy forwards here.

Long polling stays the default (no inbound port, nothing to expose). Webhook mode suits a
deployment that already has a TLS-terminating proxy; the bot itself listens on plain HTTP on
a private address and trusts a request only if it carries the secret token Telegram was
given in ``setWebhook`` (header ``X-Telegram-Bot-Api-Secret-Token``; python-telegram-bot
answers 403 otherwise).

The listening path is the path of the public URL (e.g. ``/telegram``), not the bot token.
Older guides put the token in the path to make it unguessable; that copies the token into
every proxy access log and monitoring tool that records URLs. The secret header does the
same job without leaving the token anywhere but Telegram and this process.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.settings import ConfigError, Settings

DEFAULT_LISTEN = "127.0.0.1"
DEFAULT_PORT = 8080
# Telegram delivers webhooks only to these ports (Bot API, setWebhook).
TELEGRAM_WEBHOOK_PORTS = (443, 80, 88, 8443)
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# python-telegram-bot's webhook handler logs the raw update body on a parse failure, at
# CRITICAL, which the library-wide WARNING floor in bot.logs does not stop; tornado's loggers
# can print request lines and headers (the secret token). Logger filters do not apply to
# child loggers, so each one is named.
_UPDATER_LOGGER = "telegram.ext.Updater"
_TORNADO_LOGGERS = ("tornado.access", "tornado.application", "tornado.general")


def setting(cfg: object, name: str) -> Any:
    """A setting that Settings may not declare yet: the field if present, else the environment.

    The webhook fields are new; until bot/settings.py declares them, reading the environment
    directly keeps `serve-webhook` usable (values in .env need the declared fields).
    """
    value = getattr(cfg, name, None)
    if value is None:
        value = os.environ.get(name.upper()) or None
    if value is not None and hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if isinstance(value, str) and not value.strip():
        return None
    return value


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: str = field(repr=False)
    listen: str = DEFAULT_LISTEN
    port: int = DEFAULT_PORT

    @property
    def url_path(self) -> str:
        """Where the bot listens: the public URL's path, so the proxy forwards it unchanged."""
        return urlsplit(self.url).path.strip("/")


def webhook_problems(
    url: str | None, secret: str | None, port: object, token: str | None
) -> list[tuple[str, str]]:
    """Every problem with the webhook settings as (what is wrong, how to fix it)."""
    problems: list[tuple[str, str]] = []
    if not url:
        problems.append(
            (
                "MENTORBOT_WEBHOOK_URL is not set",
                "set it to the public https URL your reverse proxy serves, "
                "e.g. https://bot.example.org/telegram",
            )
        )
    else:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            problems.append(
                (
                    "MENTORBOT_WEBHOOK_URL must be an https:// URL with a host name",
                    "Telegram only delivers to HTTPS; terminate TLS in the reverse proxy",
                )
            )
        else:
            try:
                public_port = parts.port or 443
            except ValueError:
                public_port = -1
            if public_port not in TELEGRAM_WEBHOOK_PORTS:
                problems.append(
                    (
                        f"MENTORBOT_WEBHOOK_URL uses port {public_port}, which Telegram "
                        "does not deliver to",
                        "use port 443, 80, 88 or 8443 on the proxy",
                    )
                )
        if token and token in url:
            problems.append(
                (
                    "MENTORBOT_WEBHOOK_URL contains the bot token",
                    "use a plain path such as /telegram; the secret token header "
                    "authenticates Telegram",
                )
            )
    if not secret:
        problems.append(
            (
                "MENTORBOT_WEBHOOK_SECRET is not set",
                "set 1-256 characters from A-Z a-z 0-9 _ - "
                '(e.g. python3 -c "import secrets; print(secrets.token_urlsafe(32))")',
            )
        )
    elif not _SECRET.match(secret):
        problems.append(
            (
                "MENTORBOT_WEBHOOK_SECRET has characters Telegram does not allow",
                "use 1-256 characters from A-Z a-z 0-9 _ -",
            )
        )
    try:
        port_number = int(str(port))
    except ValueError:
        port_number = -1
    if not 0 < port_number < 65536:
        problems.append(
            ("MENTORBOT_WEBHOOK_PORT is not a TCP port number", "use e.g. 8080 (1-65535)")
        )
    return problems


def webhook_config(
    cfg: Settings,
    *,
    url: str | None = None,
    listen: str | None = None,
    port: int | None = None,
) -> WebhookConfig:
    """The webhook settings, command-line values first; ConfigError names the first problem."""
    url = url or setting(cfg, "mentorbot_webhook_url")
    secret = setting(cfg, "mentorbot_webhook_secret")
    listen = listen or setting(cfg, "mentorbot_webhook_listen") or DEFAULT_LISTEN
    raw_port = port if port is not None else setting(cfg, "mentorbot_webhook_port")
    raw_port = DEFAULT_PORT if raw_port is None else raw_port
    problems = webhook_problems(url, secret, raw_port, cfg.token)
    if problems:
        what, fix = problems[0]
        raise ConfigError(f"{what}; {fix}")
    assert url is not None and secret is not None
    return WebhookConfig(url=url, secret=secret, listen=str(listen), port=int(str(raw_port)))


class _WithholdArguments(logging.Filter):
    """Keeps the event, drops its arguments: they would be the update (names, texts)."""

    def __init__(self, module: str | None = None) -> None:
        super().__init__()
        self.module = module

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and (self.module is None or record.module == self.module):
            record.msg = str(record.msg).split("%", 1)[0].rstrip(" :-") + ": details withheld"
            record.args = ()
        return True


def quiet_webhook_loggers() -> None:
    targets = [(_UPDATER_LOGGER, "webhookhandler")] + [(n, None) for n in _TORNADO_LOGGERS]
    for name, module in targets:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.WARNING, logger.level))
        if not any(isinstance(f, _WithholdArguments) for f in logger.filters):
            logger.addFilter(_WithholdArguments(module))


def run_webhook(cfg: Settings, webhook: WebhookConfig) -> None:
    """Serve updates over the webhook until SIGINT/SIGTERM, like run_polling does for polling."""
    from telegram import Update

    from bot.app import build_application

    quiet_webhook_loggers()
    app = build_application(cfg)
    app.run_webhook(
        listen=webhook.listen,
        port=webhook.port,
        url_path=webhook.url_path,
        webhook_url=webhook.url,
        secret_token=webhook.secret,
        allowed_updates=Update.ALL_TYPES,
        # A restart within Telegram's 24-hour retention must not lose what people sent.
        drop_pending_updates=False,
        # setWebhook is retried a few times so a brief outage at start-up is not fatal.
        bootstrap_retries=5,
    )
