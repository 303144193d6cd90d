"""`mentorbot chat`: the same flows as Telegram, in a terminal, against the same database.

Buttons are shown numbered; typing the number presses the button.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from conversations.engine import Button, Reply
from conversations.service import Response, Sender, Service


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
