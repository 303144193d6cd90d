"""ApplicationBuilder wiring: rate limiter, per-chat ordering, storage lifecycle, menus."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from telegram import BotCommandScopeAllPrivateChats, BotCommandScopeChat, Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes
from telegram.request import BaseRequest

from bot import coding, coordinator, jobs
from bot.context import SERVICE_KEY, BotContext
from bot.errors import describe, on_error
from bot.handlers import PASTES_KEY, add_handlers
from bot.logs import quiet_libraries
from bot.pastes import Pastes
from bot.processor import PerChatUpdateProcessor
from bot.render import MENU_VERSION, commands_for
from bot.sendrate import SharedRateLimiter
from bot.settings import Settings
from bot.throttle import FloodGate, Limits
from conversations.catalogue import consent_version, load_texts
from conversations.safety import DEFAULT_SIGNPOST
from conversations.service import Service
from storage.coordination import chat_key
from storage.store import Store

log = logging.getLogger("mentorbot.app")

STORE_KEY = "store"
# What the bot runs beyond the core capabilities (conversations.capabilities.CORE), installed
# in this order once the store and the service exist. Each registers its commands and
# listeners with the service's registry and adds its own handlers and jobs.
Extension = Callable[[Application[Any, Any, Any, Any, Any, Any]], Awaitable[object]]
EXTENSIONS: tuple[Extension, ...] = (
    coding.install,  # codes each saved entry once (bot/coding.py)
    jobs.install,  # reminders: planner, sweep job, buttons; lifecycle: /close /extend /quiet
    coordinator.install,  # /summary, /digest, the weekly digest jobs, join approvals
)


async def open_store(settings: Settings) -> Store:
    return await Store.open(
        settings.mentorbot_db,
        settings.keyring(),
        consent_version(),
        keystore=settings.mentorbot_keystore,
    )


def build_application(
    settings: Settings,
    *,
    store: Store | None = None,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
    token: str | None = None,
    max_retries: int = 3,
    overall_rate: float | None = None,
    flood_limits: Limits | None = None,
) -> Application:  # type: ignore[type-arg]
    """Build the bot. Tests pass an offline ``request``; production uses HTTPX.

    ``overall_rate`` is Telegram's bot-wide limit (30 messages/s, or the settings'
    ``MENTORBOT_SEND_RATE``); benchmarks that measure the bot's own handling capacity pass 0
    (or set it to 0) to lift it on both sides of the comparison.
    """
    quiet_libraries()
    if overall_rate is None:
        overall_rate = settings.mentorbot_send_rate

    async def post_init(app: Application) -> None:  # type: ignore[type-arg]
        own = store is None
        active = store or await open_store(settings)
        app.bot_data[STORE_KEY] = active
        app.bot_data["owns_store"] = own
        app.bot_data[SERVICE_KEY] = Service(
            active,
            idle_after=timedelta(hours=settings.mentorbot_idle_hours),
            signpost_text=(settings.mentorbot_signpost_text or DEFAULT_SIGNPOST).replace(
                "\\n", "\n"
            ),
        )
        await _warm_safety_rule()
        install_flood_gate(app, active, flood_limits)
        await share_with_other_processes(app, active)
        for extension in EXTENSIONS:
            await extension(app)
        try:
            await app.bot.set_my_commands(
                commands_for("guest"), scope=BotCommandScopeAllPrivateChats()
            )
        except TelegramError as exc:
            # A menu is a convenience: a flaky Bot API at start-up must not stop the bot.
            log.warning("guest menu not set: %s", describe(exc))
        await refresh_menus(app, active)
        await describe_bot(app)

    async def post_stop(app: Application) -> None:  # type: ignore[type-arg]
        pastes = app.bot_data.get(PASTES_KEY)
        if isinstance(pastes, Pastes):
            await pastes.expire_all()

    async def post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
        coder = app.bot_data.get(coding.CODER_KEY)
        if isinstance(coder, coding.EntryCoder):
            await coder.close()  # the embedding worker first: it hands results to the store
        active: Store | None = app.bot_data.get(STORE_KEY)
        if active is not None and app.bot_data.get("owns_store"):
            await active.close()

    builder: Any = (
        ApplicationBuilder()
        .token(token or settings.token or "0:offline")
        .context_types(ContextTypes(context=BotContext))
        .rate_limiter(SharedRateLimiter(overall_max_rate=overall_rate, max_retries=max_retries))
        .concurrent_updates(PerChatUpdateProcessor(256))
        .post_init(post_init)
        .post_stop(post_stop)
        .post_shutdown(post_shutdown)
    )
    if settings.telegram_api_base_url:
        base = settings.telegram_api_base_url
        builder = builder.base_url(base)
        # Files must come from the same server, or a self-hosted or loopback set-up would
        # still reach out to api.telegram.org for downloads.
        if base.endswith("/bot"):
            builder = builder.base_file_url(base[: -len("/bot")] + "/file/bot")
    if request is not None:
        builder = builder.request(request)
    if updates_request is not None:
        builder = builder.get_updates_request(updates_request)
    app: Application = builder.build()  # type: ignore[type-arg]
    add_handlers(app)
    app.add_error_handler(on_error)  # type: ignore[arg-type]
    return app


def install_flood_gate(app: Application, store: Store,  # type: ignore[type-arg]
                       limits: Limits | None) -> None:
    """Per-chat and stranger budgets in front of every handler (bot.throttle)."""
    processor = app.update_processor
    if not isinstance(processor, PerChatUpdateProcessor):
        return
    text = load_texts().say("throttled")

    async def is_member(user_id: int) -> bool:
        return await store.participants.by_user(user_id) is not None

    async def notify(chat_id: int) -> None:
        try:
            await app.bot.send_message(chat_id, text)
        except TelegramError as exc:
            log.warning("slow-down notice not sent: %s", describe(exc))

    processor.gate = FloodGate(is_member, notify, limits)


async def share_with_other_processes(app: Application, store: Store  # type: ignore[type-arg]
                                     ) -> None:
    """On PostgreSQL, where several processes may serve one programme (issue #20): a
    chat's turn and update de-duplication across them (bot.processor), the bot-wide send
    rate shared (bot.sendrate), through storage.coordination. On SQLite nothing changes:
    one process."""
    shared = await store.coordination()
    if not shared.shared:
        return
    processor = app.update_processor
    if isinstance(processor, PerChatUpdateProcessor):
        vault = store.vault
        processor.turn_key = lambda chat: chat_key(vault.lookup_hash("chat-turn", chat))
        processor.shared = shared  # type: ignore[assignment]
    limiter = app.bot.rate_limiter
    if isinstance(limiter, SharedRateLimiter):
        limiter.share(shared)


async def describe_bot(app: Application) -> None:  # type: ignore[type-arg]
    """What people see before they start the bot: what it is and who sees what."""
    texts = load_texts()
    try:
        await app.bot.set_my_description(texts.say("bot_description"))
        await app.bot.set_my_short_description(texts.say("bot_short_description"))
    except TelegramError as exc:
        log.warning("bot description not set: %s", describe(exc))


async def refresh_menus(app: Application, store: Store) -> None:  # type: ignore[type-arg]
    """Give every member whose menu is out of date the commands of their role."""
    for person in await store.participants.in_use():  # the menu of the membership in use
        if person.menu_version >= MENU_VERSION:
            continue
        chat_id = await store.participants.chat_id(person.id)
        if chat_id is None:
            continue
        try:
            await app.bot.set_my_commands(
                commands_for(person.role.value), scope=BotCommandScopeChat(chat_id)
            )
        except TelegramError as exc:
            log.warning("menu update skipped for one member: %s", describe(exc))
            continue
        await store.participants.set_field(person.id, "menu_version", MENU_VERSION)


def run_polling(settings: Settings) -> None:
    app = build_application(settings)
    app.run_polling(allowed_updates=Update.ALL_TYPES)


async def _warm_safety_rule() -> None:
    """Load the safety rule's sentence encoder before the first answer arrives (a third of a
    second, off the event loop), so nobody waits for it; without the layer, nothing to do."""
    from conversations import safety

    if not safety.semantic_available():
        return
    from conversations.safety import semantic

    try:
        await asyncio.to_thread(semantic.warm)
    except Exception as exc:  # the lexicon still judges; say why the layer is off
        log.warning("safety semantic layer not loaded: %s", type(exc).__name__)
