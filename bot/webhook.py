"""Webhook mode: Telegram POSTs updates to a public HTTPS URL that a reverse proxy forwards here.

Long polling stays the default (no inbound port, nothing to expose). Webhook mode suits a
deployment that already has a TLS-terminating proxy; the bot itself listens on plain HTTP on
a private address and trusts a request only if it carries the secret token Telegram was
given in ``setWebhook`` (header ``X-Telegram-Bot-Api-Secret-Token``, compared in constant
time before the body is read; 403 otherwise). Bodies over MAX_UPDATE_BYTES are refused
unread.

The listening path is the path of the public URL (e.g. ``/telegram``), not the bot token.
Older guides put the token in the path to make it unguessable; that copies the token into
every proxy access log and monitoring tool that records URLs. The secret header does the
same job without leaving the token anywhere but Telegram and this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import signal
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
log = logging.getLogger("mentorbot.webhook")


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


# Telegram's updates are a few kilobytes (a message is at most 4,096 characters, a caption
# 1,024, plus entities, a quoted reply and the sender); 1 MiB leaves room for any update it
# sends while keeping a hostile caller from making the bot buffer large bodies.
MAX_UPDATE_BYTES = 1 << 20
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
# How long a caller may take to send headers or body, and an idle keep-alive may last.
BODY_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 60.0
BOOTSTRAP_RETRIES = 5
# How often a process on PostgreSQL looks for acknowledged updates a dead process left.
ADOPT_EVERY = 1.0


def update_handler(secret: str, deliver: Any, limit: int = MAX_UPDATE_BYTES) -> type:
    """A tornado handler for one webhook path, built per server.

    Its request body is streamed (tornado.web.stream_request_body), so ``prepare`` runs when
    the headers have arrived and before a byte of the body is read: the secret is checked
    there first, in constant time, then the declared length; a request that fails either is
    answered and its connection closed without reading the body. python-telegram-bot's own
    handler reads up to 100 MB before it looks at the secret, with a plain ``!=``.
    """
    import tornado.web

    expected = secret.encode()

    @tornado.web.stream_request_body
    class UpdateHandler(tornado.web.RequestHandler):
        SUPPORTED_METHODS = ("POST",)  # type: ignore[assignment]

        def prepare(self) -> None:
            given = self.request.headers.get(SECRET_HEADER, "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, expected):
                raise tornado.web.HTTPError(403)
            length = self.request.headers.get("Content-Length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                raise tornado.web.HTTPError(413)
            media = self.request.headers.get("Content-Type", "").split(";")[0].strip()
            if media != "application/json":
                raise tornado.web.HTTPError(415)
            self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]
            self._chunks: list[bytes] = []
            self._size = 0

        def data_received(self, chunk: bytes) -> None:
            # A chunked body has no Content-Length to refuse up front.
            self._size += len(chunk)
            if self._size > limit:
                raise tornado.web.HTTPError(413)
            self._chunks.append(chunk)

        async def post(self) -> None:
            try:
                data = json.loads(b"".join(self._chunks))
            except ValueError:
                raise tornado.web.HTTPError(400) from None
            if not isinstance(data, dict) or not await deliver(data):
                raise tornado.web.HTTPError(400)
            self.set_status(200)

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            # A bare status: tornado's default page would echo the reason to the caller.
            self.finish()

        def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
            # Status codes only: a tornado message can quote the request.
            log.warning("webhook request refused: %s", getattr(value, "status_code", typ))

    return UpdateHandler


def webhook_server(webhook: WebhookConfig, deliver: Any, limit: int = MAX_UPDATE_BYTES) -> Any:
    """The HTTP server for ``webhook``; not yet listening."""
    import tornado.web
    from tornado.httpserver import HTTPServer

    class _Quiet(tornado.web.Application):
        def log_request(self, handler: tornado.web.RequestHandler) -> None:
            """No access log: request lines and addresses are not the bot's business."""

    path = "/" + webhook.url_path if webhook.url_path else ""
    app = _Quiet([(rf"{re.escape(path)}/?", update_handler(webhook.secret, deliver, limit))])
    return HTTPServer(
        app,
        max_body_size=limit,
        body_timeout=BODY_TIMEOUT_S,
        idle_connection_timeout=IDLE_TIMEOUT_S,
        xheaders=False,
    )


async def _retry(action: Any, what: str) -> None:
    from telegram.error import InvalidToken, NetworkError

    for attempt in range(BOOTSTRAP_RETRIES + 1):
        try:
            await action()
            return
        except InvalidToken:
            raise
        except NetworkError as exc:
            if attempt == BOOTSTRAP_RETRIES:
                raise
            log.warning("%s failed (%s), retrying", what, type(exc).__name__)
            await asyncio.sleep(min(2**attempt, 10))


async def serve_webhook(cfg: Settings, webhook: WebhookConfig, stop: asyncio.Event) -> None:
    """Run the bot behind ``webhook`` until ``stop`` is set: the same lifecycle as
    python-telegram-bot's run_webhook (initialize, post_init, start, then stop, post_stop,
    shutdown, post_shutdown), with our own HTTP server in front."""
    from telegram import Update

    from bot.app import build_application
    from bot.processor import PerChatUpdateProcessor

    app = build_application(cfg)
    processor = app.update_processor

    async def deliver(data: dict[str, Any]) -> bool:
        try:
            update = Update.de_json(data, app.bot)
        except Exception as exc:
            log.warning("webhook body is not an update: %s", type(exc).__name__)
            return False
        if update is None:
            return False
        # On PostgreSQL the 200 means the update is in the database (a failure here is a
        # 500, and Telegram sends it again): a process killed before handling it leaves it
        # for another (adopt_orphans). A copy another live process holds is acknowledged
        # and not handled twice.
        if isinstance(processor, PerChatUpdateProcessor) and not await processor.record(
                update, data):
            return True
        app.bot.insert_callback_data(update)
        await app.update_queue.put(update)
        return True

    async def adopt_orphans() -> None:
        """Every ADOPT_EVERY seconds (the first at once): the acknowledged updates of a
        process that died before handling them, handled here, oldest first."""
        assert isinstance(processor, PerChatUpdateProcessor)
        while not stop.is_set():
            try:
                for _, data in await processor.adopt():
                    update = Update.de_json(data, app.bot)
                    if update is not None:
                        app.bot.insert_callback_data(update)
                        await app.update_queue.put(update)
            except Exception as exc:
                log.warning("orphaned updates not adopted: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ADOPT_EVERY)

    await _retry(app.initialize, "start-up (getMe)")
    server = None
    adopter: asyncio.Task[None] | None = None
    try:
        if app.post_init:
            await app.post_init(app)
        await _retry(
            lambda: app.bot.set_webhook(
                url=webhook.url,
                secret_token=webhook.secret,
                allowed_updates=Update.ALL_TYPES,
                # A restart within Telegram's 24-hour retention must not lose anything.
                drop_pending_updates=False,
            ),
            "setWebhook",
        )
        await app.start()
        server = webhook_server(webhook, deliver)
        server.listen(webhook.port, address=webhook.listen)
        if isinstance(processor, PerChatUpdateProcessor) and processor.shared is not None:
            adopter = asyncio.create_task(adopt_orphans())
        log.info("webhook listening")
        await stop.wait()
    finally:
        if server is not None:
            server.stop()
            await server.close_all_connections()
        if adopter is not None:
            adopter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await adopter
        if app.running:
            await app.stop()
            if app.post_stop:
                await app.post_stop(app)
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)


def run_webhook(cfg: Settings, webhook: WebhookConfig) -> None:
    """Serve updates over the webhook until SIGINT/SIGTERM, like run_polling does for polling."""
    quiet_webhook_loggers()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_webhook(cfg, webhook, stop)

    asyncio.run(main())
