"""`/history`: a person's own saved entries, newest first, with open, edit and delete.

The browser is a small state machine of its own (list -> entry -> confirm delete), kept
in the same per-person state slot as flows so only one thing is active at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from conversations.engine import Button, Reply, display, parse_press
from conversations.model import Flow
from storage.db import parse_iso
from storage.models import Entry, Participant

PAGE = 5


@dataclass
class Browser:
    seq: int
    page: int = 0
    entry_id: int | None = None
    pair_id: int | None = None  # a mentor with several mentees looks back on one pair

    def dump(self) -> dict[str, Any]:
        return {"browser": {"seq": self.seq, "page": self.page, "entry_id": self.entry_id,
                            "pair_id": self.pair_id}}

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Browser:
        b = raw["browser"]
        return cls(int(b["seq"]), int(b["page"]), b.get("entry_id"), b.get("pair_id"))

    def data(self, value: str) -> str:
        return f"{self.seq}:{value}"


def local_date(ts: str, tz: str) -> str:
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return parse_iso(ts).astimezone(zone).strftime("%a %d %b %Y, %H:%M")


def list_reply(
    b: Browser,
    entries: list[Entry],
    total: int,
    me: Participant,
    flows: dict[str, Flow],
    header: str,
) -> Reply:
    rows: list[tuple[Button, ...]] = []
    for e in entries:
        title = flows[e.flow].title if e.flow in flows else e.flow
        when = local_date(e.completed_at or e.created_at, me.timezone)
        rows.append((Button(f"{when} · {title}", b.data(f"o{e.id}")),))
    nav = []
    if b.page > 0:
        nav.append(Button("« Newer", b.data(f"p{b.page - 1}")))
    if (b.page + 1) * PAGE < total:
        nav.append(Button("Older »", b.data(f"p{b.page + 1}")))
    if nav:
        rows.append(tuple(nav))
    return Reply(header, tuple(rows))


def entry_reply(
    b: Browser, entry: Entry, answers: dict[str, Any], flow: Flow | None, me: Participant
) -> Reply:
    title = flow.title if flow else entry.flow
    lines = [f"{title}, {local_date(entry.completed_at or entry.created_at, me.timezone)}"]
    rows: list[tuple[Button, ...]] = []
    for step_id, value in answers.items():
        step = flow.step(step_id) if flow else None
        label = step.label if step else step_id
        lines.append(f"• {label}: {display(step, value) if step else value}")
    editable = flow is not None and flow.version == entry.flow_version
    if editable and flow is not None:
        edit_buttons = [Button(f"Edit {s.label}", b.data(f"e{s.id}")) for s in flow.steps]
        rows += [tuple(edit_buttons[i : i + 2]) for i in range(0, len(edit_buttons), 2)]
    rows.append((Button("Delete", b.data("d")), Button("Back to list", b.data(f"p{b.page}"))))
    return Reply("\n".join(lines), tuple(rows))


def parse(b: Browser, data: str) -> str | None:
    """The action of a press on the browser, or None when stale or forged."""
    parsed = parse_press(data)
    if parsed is None or parsed[0] != b.seq:
        return None
    return parsed[1]
