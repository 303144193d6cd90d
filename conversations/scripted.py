"""Drive a flow through the service with prepared answers, tapping and typing as a person.

Used by the demo, the benchmarks and tests: it goes through exactly the same path as a
real chat (buttons by their callback data, text as messages), never around it.
"""

from __future__ import annotations

from typing import Any

from conversations.model import Flow
from conversations.service import Response, Sender, Service


class ScriptError(Exception):
    """The service did not offer what the script expected."""


def button_data(resp: Response, value: str) -> str:
    for reply in reversed(resp.replies):
        for row in reply.buttons:
            for b in row:
                if b.data.split(":", 1)[1] == value:
                    return b.data
    raise ScriptError(f"no button for {value!r}")


async def walk(
    service: Service,
    who: Sender,
    flow: Flow,
    resp: Response,
    answers: dict[str, Any],
    save: bool = True,
) -> Response:
    """Answer ``flow`` from its current first step; ``resp`` is the reply that asked it."""
    for step in flow.steps:
        value = answers.get(step.id)
        if value is None:
            resp = await service.command(who, "skip")
            continue
        if step.kind == "text":
            resp = await service.text(who, str(value))
        elif step.kind == "date" and not str(value).startswith("_"):
            resp = await service.text(who, str(value))  # a typed date, not Today/Yesterday
        elif step.kind in ("choice", "scale", "date"):
            resp = await service.press(who, button_data(resp, str(value)))
        else:  # multi
            for choice in value:
                resp = await service.press(who, button_data(resp, choice))
            resp = await service.press(who, button_data(resp, "_done"))
    if flow.summary and save:
        resp = await service.press(who, button_data(resp, "_save"))
    return resp
