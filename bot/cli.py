"""The `mentorbot` command: run the bot, the demo, the console chat, and admin tasks."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bot.logs import crash_report, install_excepthooks, redact, register_secrets, setup_logging
from bot.settings import ConfigError, Settings, load_settings
from storage.crypto import MasterKeyError, encode_key, generate_key
from storage.db import DatabaseError
from storage.integrity import TamperError
from storage.models import Role
from storage.private import restrict_umask
from storage.programmes import ProgrammeError, Programmes

T = TypeVar("T")
CONSOLE_USER_IDS = {"mentee": 900_000_001, "mentor": 900_000_002, "coordinator": 900_000_003}


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
        # Held while the bot runs: key rotation and restore refuse meanwhile (storage.lock).
        with exclusive(cfg.mentorbot_db, "a running bot"):
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


@click.group(invoke_without_command=True)
@click.version_option(package_name="mentorbot")
@click.pass_context
def main(ctx: click.Context) -> None:
    """mentorbot: structured mentoring reflections over Telegram, with realist reporting."""
    # Before anything is created: databases, reports, exports and backups hold personal data.
    restrict_umask()
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


# -- running -------------------------------------------------------------------------
@main.command("run")
@click.option("--webhook", is_flag=True, help="Serve a webhook behind a reverse proxy.")
@friendly
def run_cmd(webhook: bool) -> None:
    """Run the bot (long polling). With no TELEGRAM_BOT_TOKEN, runs the demo instead."""
    cfg = settings()
    setup_logging(cfg.mentorbot_log_level)
    if webhook:
        from bot.cli_ops import serve_webhook_cmd

        serve_webhook_cmd.callback(url=None, listen=None, port=None)  # type: ignore[misc]
        return
    if cfg.token is None:
        click.echo("No TELEGRAM_BOT_TOKEN is set, so here is the demo instead.\n")
        from bot.demo import run_demo

        run(run_demo(Path("demo-output")))
        return
    cfg.keyring()  # fail fast on a missing or malformed key
    from bot.app import run_polling

    serve(cfg, lambda: run_polling(cfg))


@main.command("demo")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Folder for everything the demo writes.",
)
@click.option("--pairs", default=12, show_default=True, help="Synthetic mentoring pairs.")
@click.option("--months", default=6, show_default=True, help="Months of sessions to simulate.")
@friendly
def demo_cmd(out: Path, pairs: int, months: int) -> None:
    """The whole pipeline on a synthetic programme: flows, reports, summary and export."""
    from bot.demo import run_demo

    run(run_demo(out, pairs=pairs, months=months))


@main.command("chat")
@click.option("--role", type=click.Choice(["mentee", "mentor", "coordinator"]), required=True)
@click.option("--user-id", type=int, default=None, help="Pretend Telegram user id.")
@friendly
def chat_cmd(role: str, user_id: int | None) -> None:
    """Talk to mentorbot in this terminal, with the same flows and database as Telegram."""
    cfg = settings()
    run(_chat(cfg, user_id or CONSOLE_USER_IDS[role]))


async def _chat(cfg: Settings, user_id: int) -> None:
    from bot.app import open_store
    from bot.console import console_capabilities, dispatch, render
    from conversations.service import Sender, Service

    store = await open_store(cfg)
    service = Service(store)
    for capability in console_capabilities(service, lambda code: _link(cfg, code)):
        service.install(capability)
    sender = Sender(user_id=user_id, chat_id=user_id, first_name="Console")
    click.echo("Type messages as you would in Telegram; numbers press buttons; Ctrl-D quits.")
    buttons = render(await service.start(sender, None))
    try:
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                break
            buttons = render(await dispatch(service, sender, line, buttons)) or buttons
    finally:
        await store.close()


# -- keys ----------------------------------------------------------------------------
@main.group("keys")
def keys_group() -> None:
    """Create and rotate the master key."""


@keys_group.command("generate")
def keys_generate() -> None:
    """Print a new random master key (base64 of 32 bytes)."""
    click.echo(encode_key(generate_key()))


@keys_group.command("rotate")
@click.option(
    "--new-key-file",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to write the new key (must not exist yet).",
)
@friendly
def keys_rotate(new_key_file: Path) -> None:
    """Re-wrap every data key under a new master key (the bot must be stopped)."""
    cfg = settings()
    if new_key_file.exists():
        raise ConfigError(f"{new_key_file} already exists; choose a new path")
    from storage.lock import exclusive

    # A running bot holds the old key in memory and would wrap new people's keys with it.
    with exclusive(cfg.mentorbot_db, "key rotation"):
        run(_rotate(cfg, new_key_file))


async def _rotate(cfg: Settings, new_key_file: Path) -> None:
    from bot.app import open_store
    from storage.crypto import KeyRing

    store = await open_store(cfg)
    try:
        new_key = generate_key()
        new_key_file.parent.mkdir(parents=True, exist_ok=True)
        new_key_file.touch(mode=0o600)
        new_key_file.write_text(encode_key(new_key) + "\n", encoding="ascii")
        count = await store.vault.rotate(KeyRing(new_key))
    finally:
        await store.close()
    click.echo(
        f"Re-wrapped {count} keys. Set MENTORBOT_KEY_FILE={new_key_file} (or its "
        "contents as MENTORBOT_MASTER_KEY) and start the bot; then destroy the old key."
    )


@keys_group.command("repair")
@friendly
def keys_repair() -> None:
    """Re-wrap keys left under an old master key (list it in MENTORBOT_PREVIOUS_MASTER_KEYS)."""
    cfg = settings()
    from bot.app import open_store
    from storage.lock import exclusive

    async def go() -> int:
        store = await open_store(cfg)
        try:
            return await store.vault.rotate(store.vault.ring)
        finally:
            await store.close()

    with exclusive(cfg.mentorbot_db, "key repair"):
        count = run(go())
    click.echo(
        f"Every key ({count}) is now wrapped by the configured master key. Remove "
        "MENTORBOT_PREVIOUS_MASTER_KEYS, run `mentorbot doctor`, then take a backup."
    )


# -- programmes and invites ----------------------------------------------------------
@main.group("programme")
def programme_group() -> None:
    """Create programmes."""


@programme_group.command("create")
@click.argument("name")
@click.option("--approve-joins", is_flag=True,
              help="Hold each mentor and mentee join until a coordinator lets them in.")
@friendly
def programme_create(name: str, approve_joins: bool) -> None:
    """Create a mentoring programme."""
    cfg = settings()

    async def go() -> None:
        from bot.app import open_store
        from storage.store import JOIN_APPROVAL

        store = await open_store(cfg)
        try:
            programme = await store.programmes.create(
                name, {JOIN_APPROVAL: True} if approve_joins else None)
            await store.audit.record("admin", "programme_created")
        finally:
            await store.close()
        click.echo(f"Created programme {programme.name!r}."
                   + (" Joins wait for a coordinator." if approve_joins else ""))

    run(go())


@programme_group.command("approve-joins")
@click.argument("name")
@click.argument("state", type=click.Choice(["on", "off"]))
@friendly
def programme_approve_joins(name: str, state: str) -> None:
    """Hold mentor and mentee joins for a coordinator's approval (on), or not (off)."""
    cfg = settings()

    async def go() -> None:
        from bot.app import open_store
        from storage.store import JOIN_APPROVAL

        store = await open_store(cfg)
        try:
            programme = await store.programmes.by_name(name)
            await store.programmes.set_setting(programme.id, JOIN_APPROVAL, state == "on")
        finally:
            await store.close()
        click.echo(f"Joins to {name!r} " + ("now wait for a coordinator to let them in."
                                            if state == "on" else "no longer wait."))

    run(go())


def _link(cfg: Settings, code: str) -> str:
    username = cfg.mentorbot_bot_username or "<your_bot_username>"
    return f"https://t.me/{username}?start={code}"


@main.group("dyad")
def dyad_group() -> None:
    """Create mentoring pairs."""


@dyad_group.command("create")
@click.option("--programme", "programme_name", required=True)
@click.option("--days", default=14, show_default=True, help="Days before the invites expire.")
@click.option("--with", "with_", default=None, metavar="PAIR:ROLE",
              help="Re-matching: seat the mentor or mentee of an earlier pair in the new pair "
                   "(e.g. 3:mentee) and print one invite, for the new partner.")
@friendly
def dyad_create(programme_name: str, days: int, with_: str | None) -> None:
    """Create a pair and print one single-use invite for the mentor and one for the mentee."""
    cfg = settings()
    if with_ is not None:
        from bot.cli_programmes import _with_store, parse_with, rematch_text

        parse_with(with_)  # a typo is refused before anything is opened
        Programmes.check_invite_days(days)
        click.echo(_with_store(programme_name, lambda s, p: rematch_text(s, p, with_, days)))
        return

    async def go() -> None:
        from bot.app import open_store

        Programmes.check_invite_days(days)  # before the pair is created
        store = await open_store(cfg)
        try:
            programme = await store.programmes.by_name(programme_name)
            pair_id = await store.programmes.create_pair(programme.id)
            mentor = await store.programmes.create_invite(programme.id, Role.MENTOR, pair_id, days)
            mentee = await store.programmes.create_invite(programme.id, Role.MENTEE, pair_id, days)
            await store.audit.record("admin", "pair_created")
        finally:
            await store.close()
        click.echo(f"Pair {pair_id} in {programme.name!r}; invites expire in {days} days.")
        click.echo(f"mentor: {mentor}  {_link(cfg, mentor)}")
        click.echo(f"mentee: {mentee}  {_link(cfg, mentee)}")

    run(go())


@main.group("invite")
def invite_group() -> None:
    """Create invites."""


@invite_group.command("create")
@click.option("--programme", "programme_name", required=True)
@click.option("--role", type=click.Choice(["coordinator", "mentor", "mentee"]), required=True)
@click.option("--days", default=14, show_default=True)
@friendly
def invite_create(programme_name: str, role: str, days: int) -> None:
    """Create a single-use invite (coordinators; or a mentor for informal contacts)."""
    cfg = settings()

    async def go() -> None:
        from bot.app import open_store

        store = await open_store(cfg)
        try:
            programme = await store.programmes.by_name(programme_name)
            code = await store.programmes.create_invite(programme.id, Role(role), None, days)
            await store.audit.record("admin", f"invite_created:{role}")
        finally:
            await store.close()
        click.echo(f"{role}: {code}  {_link(cfg, code)}")

    run(go())


from bot.cli_ops import register as _register_ops  # noqa: E402
from bot.cli_programmes import register as _register_programmes  # noqa: E402

_register_programmes(main)

_register_ops(main)

from reports.cli_report import register as _register_report  # noqa: E402

_register_report(main)

from reports.cli_export import register as _register_export  # noqa: E402

_register_export(main)

if __name__ == "__main__":
    main()
