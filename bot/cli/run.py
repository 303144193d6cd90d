"""`mentorbot run`, `demo` and `chat`: the bot, the demo and the console chat."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from bot.cli.common import friendly, invite_link, run, serve, settings
from bot.logs import setup_logging
from bot.settings import Settings

CONSOLE_USER_IDS = {"mentee": 900_000_001, "mentor": 900_000_002, "coordinator": 900_000_003}


# -- running -------------------------------------------------------------------------
@click.command("run")
@click.option("--webhook", is_flag=True, help="Serve a webhook behind a reverse proxy.")
@friendly
def run_cmd(webhook: bool) -> None:
    """Run the bot (long polling). With no TELEGRAM_BOT_TOKEN, runs the demo instead."""
    cfg = settings()
    setup_logging(cfg.mentorbot_log_level)
    if webhook:
        from bot.cli.ops import serve_webhook_cmd

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


@click.command("demo")
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


@click.command("chat")
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
    for capability in console_capabilities(service, lambda code: invite_link(cfg, code)):
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


