"""The one command registry: every command people are told about has exactly one route."""

from __future__ import annotations

import pytest

from bot.coordinator import CoordinatorTools
from conversations.capabilities import CORE
from conversations.capabilities.lifecycle import PairLifecycle
from conversations.capabilities.reminder_planning import ReminderPlanner
from conversations.commands import Registry
from conversations.service import FLOW_COMMANDS, Service
from storage.store import Store

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends

# Answered by the service itself: joining, the help list, and the controls inside a flow.
BUILT_IN = {"start", "help", *FLOW_COMMANDS}


def bot_service(store: Store) -> Service:
    """The service with every capability the bot installs (bot/app.py EXTENSIONS)."""
    service = Service(store)
    planner = ReminderPlanner(store, service.texts)
    service.install(planner)
    service.install(PairLifecycle(planner))
    service.install(CoordinatorTools(None, store, service.texts))  # type: ignore[arg-type]
    return service


async def test_every_command_in_the_texts_has_one_route_in_the_bot(store: Store) -> None:
    service = bot_service(store)
    assert set(service.registry.commands) | BUILT_IN == set(service.texts.commands)
    assert not set(service.registry.commands) & BUILT_IN


async def test_every_menu_flow_has_a_handler_and_every_handler_a_menu(store: Store) -> None:
    service = Service(store)
    menus = {f.id for f in service.flows.values() if f.kind == "menu"}
    assert set(service.registry.menus) == menus


async def test_the_core_alone_leaves_the_bots_commands_out(store: Store) -> None:
    service = Service(store, capabilities=CORE)
    assert {"close", "extend", "quiet", "summary", "digest"}.isdisjoint(service.registry.commands)


def test_a_command_or_menu_registered_twice_is_refused() -> None:
    registry = Registry()

    async def handler(*_: object) -> None: ...

    registry.command("x", handler)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        registry.command("x", handler)  # type: ignore[arg-type]
    registry.menu("m", handler)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        registry.menu("m", handler)  # type: ignore[arg-type]


async def test_the_rules_for_held_people_and_open_flows_are_on_the_routes(store: Store) -> None:
    routes = bot_service(store).registry.commands
    assert {n for n, r in routes.items() if r.while_held} == {"withdraw", "mydata"}
    assert {n for n, r in routes.items() if r.in_flow} == {"withdraw", "mydata", "pause"}
    assert {n for n, r in routes.items() if r.before_consent} == {"withdraw", "mydata", "consent"}
