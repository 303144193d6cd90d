"""The one command registry: every chat command, menu and listener a capability adds.

A capability (``conversations.capabilities``) registers what it answers here; the service
looks a command up, applies the checks its flags ask for, and runs it. Nothing is found
by name-mangling, so what a running bot answers is exactly what its capabilities listed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from conversations.model import FlowState
from conversations.responses import Response, Then
from storage.models import Participant
from storage.store import Held

if TYPE_CHECKING:
    from conversations.service import Service

# A command: (the person, the response being built, the text after the command, cut short).
CommandHandler = Callable[[Participant, Response, str], Awaitable[Response]]
# A menu flow's completion: (the person, the menu's state, the choice) -> what to do next.
MenuHandler = Callable[[Participant, FlowState, Any], Then]
# Told after an entry is saved: (the person, the entry id, its flow id, its answers).
SavedListener = Callable[[Participant, int, str, dict[str, Any]], Awaitable[None]]
# After an entry is saved and its listeners have run, a further reply may follow (the
# "about you" questions after a first starting check-in): (the person, its flow id, the reply).
FollowUp = Callable[[Participant, str, Response], Awaitable[None]]
# Told when a join is held for a coordinator's approval.
HeldListener = Callable[[Held], Awaitable[None]]
# A line for a programme's coordinators: (programme id, the text; numbers only, no names).
NoteListener = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    name: str
    run: CommandHandler
    # A person held for a coordinator's approval may still see and erase their data.
    while_held: bool = False
    # Runs in the middle of a flow without closing it (/withdraw, /mydata, /pause).
    in_flow: bool = False
    # Runs before a changed consent question is asked again (/withdraw, /mydata, /consent).
    before_consent: bool = False


@dataclass
class Registry:
    commands: dict[str, Route] = field(default_factory=dict)
    menus: dict[str, MenuHandler] = field(default_factory=dict)
    saved_listeners: list[SavedListener] = field(default_factory=list)
    held_listeners: list[HeldListener] = field(default_factory=list)
    followups: list[FollowUp] = field(default_factory=list)
    note_listeners: list[NoteListener] = field(default_factory=list)

    def command(self, name: str, run: CommandHandler, **flags: bool) -> None:
        if name in self.commands:
            raise ValueError(f"/{name} is registered twice")
        self.commands[name] = Route(name, run, **flags)

    def menu(self, flow_id: str, run: MenuHandler) -> None:
        if flow_id in self.menus:
            raise ValueError(f"menu {flow_id!r} is registered twice")
        self.menus[flow_id] = run

    def on_saved(self, listener: SavedListener) -> None:
        if listener not in self.saved_listeners:
            self.saved_listeners.append(listener)

    def after_saved(self, followup: FollowUp) -> None:
        if followup not in self.followups:
            self.followups.append(followup)

    def on_held(self, listener: HeldListener) -> None:
        if listener not in self.held_listeners:
            self.held_listeners.append(listener)

    def on_note(self, listener: NoteListener) -> None:
        if listener not in self.note_listeners:
            self.note_listeners.append(listener)


class Capability(Protocol):
    """A module or object that adds commands, menus or listeners to a service."""

    def register(self, registry: Registry, service: Service) -> None: ...
