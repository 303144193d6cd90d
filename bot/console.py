"""`mentorbot chat`: the same flows as Telegram, in a terminal, against the same database.

Buttons are shown numbered; typing the number presses the button.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bot.programme_admin import ProgrammeAdmin
from conversations.capabilities.lifecycle import PairLifecycle
from conversations.capabilities.reminder_planning import ReminderPlanner
from conversations.commands import Registry
from conversations.engine import Button, Reply
from conversations.service import Response, Sender, Service
from reports.coordinator import release_summary, render_text
from storage.models import Participant


def render(response: Response, echo: Callable[[str], None] = click.echo) -> list[Button]:
    buttons: list[Button] = []
    for reply in response.replies:
        if not reply.text:
            continue
        echo(click.style("bot> ", fg="cyan") + reply.text)
        buttons = _numbered(reply, buttons, echo)
    for doc in response.documents:
        echo(click.style("bot> ", fg="cyan") + f"[file {doc.filename}, {len(doc.content)} bytes]")
    return buttons


def _numbered(reply: Reply, previous: list[Button], echo: Callable[[str], None]) -> list[Button]:
    if not reply.buttons:
        return previous
    flat = [b for row in reply.buttons for b in row]
    echo("     " + "  ".join(f"[{i}] {b.label}" for i, b in enumerate(flat, 1)))
    return flat


async def dispatch(service: Service, sender: Sender, line: str, buttons: list[Button]) -> Response:
    line = line.rstrip("\n")
    if line.strip().isdigit() and buttons and 1 <= int(line.strip()) <= len(buttons):
        return await service.press(sender, buttons[int(line.strip()) - 1].data)
    if line.startswith("/"):
        name, _, rest = line[1:].partition(" ")
        if name.lower() == "start":
            return await service.start(sender, rest.strip() or None)
        return await service.command(sender, name, rest)
    return await service.text(sender, line)


class ConsoleSummary:
    """/summary in the console: the same released summary the bot sends (no digest jobs)."""

    def register(self, registry: Registry, service: Service) -> None:
        self.store = service.store

        async def summary(me: Participant, resp: Response, args: str) -> Response:
            return resp.say(render_text(await release_summary(self.store, me.programme_id)))

        registry.command("summary", summary)


def console_capabilities(service: Service, link: Callable[[str], str]) -> list[Any]:
    """What the console adds to the core so a coordinator can run the programme from it:
    /close, /extend and /quiet (with the planner, so logs feed the pairs' lifecycle),
    /summary, and the programme admin commands. No reminders are sent from the console."""
    planner = ReminderPlanner(service.store, service.texts)
    return [planner, PairLifecycle(planner), ConsoleSummary(), ProgrammeAdmin(link)]
