"""`mentorbot pair`, `invite list|revoke|reissue`, `erase` and `programme settings`: running a
programme from the shell, over the same functions as the coordinator's chat commands
(bot/programme_admin.py). Pairs are listed for counted pairs only, as a coordinator sees them.
The invite and programme subcommands join their groups in bot/cli/admin.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from bot import programme_admin as admin
from bot.cli.common import invite_link
from bot.logs import redact
from bot.settings import ConfigError, load_settings
from conversations.programme_settings import SettingError
from storage.crypto import MasterKeyError
from storage.db import DatabaseError
from storage.integrity import TamperError
from storage.models import Programme, Role
from storage.programmes import DEFAULT_INVITE_DAYS, ProgrammeError
from storage.store import Store

T = TypeVar("T")


def with_store(programme_name: str, work: Callable[[Store, Programme], Awaitable[T]]) -> T:
    """Open the store, find the programme, do the work; expected failures are one line."""

    async def go() -> T:
        from bot.app import open_store

        store = await open_store(load_settings())
        try:
            programme = await store.programmes.by_name(programme_name)
            return await work(store, programme)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except (ProgrammeError, SettingError, ConfigError, DatabaseError, MasterKeyError,
            TamperError) as exc:
        raise click.ClickException(redact(str(exc))) from None


def _link(code: str) -> str:
    return invite_link(load_settings(), code)


def parse_with(value: str) -> tuple[int, Role]:
    """``--with 3:mentee`` -> (3, mentee)."""
    number, _, role = value.partition(":")
    if not number.isdigit() or role not in admin.SEATS:
        raise click.BadParameter("write it as <pair number>:mentor or <pair number>:mentee, "
                                 "e.g. --with 3:mentee")
    return int(number), admin.SEATS[role]


async def rematch_text(store: Store, programme: Programme, with_: str, days: int) -> str:
    """`dyad create --with`: a new pair for one member of an earlier pair, and an invite."""
    from_pair, role = parse_with(with_)
    pair_id, code = await store.programmes.rematch(programme.id, from_pair, role, days)
    await store.audit.record("admin", "pair_created", rematch_of=from_pair, role=role.value)
    other = "mentee" if role is Role.MENTOR else "mentor"
    return (f"Pair {pair_id} in {programme.name!r}: the {role.value} of pair {from_pair}, "
            f"and an invite for their new {other} (expires in {days} days).\n"
            f"{other}: {code}  {_link(code)}")


@click.group("pair")
def pair_group() -> None:
    """List and close pairs."""


@pair_group.command("list")
@click.option("--programme", "programme_name", required=True)
def pair_list(programme_name: str) -> None:
    """Pairs by number with state, phase and weeks since last contact (counted pairs only)."""
    click.echo(with_store(programme_name, lambda s, p: admin.pairs_text(s, p)))


@pair_group.command("close")
@click.option("--programme", "programme_name", required=True)
@click.argument("pair", type=int)
@click.option("--rematch", is_flag=True,
              help="Closed without fault; both stay in the programme, unpaired.")
def pair_close(programme_name: str, pair: int, rematch: bool) -> None:
    """Close a pair (as /close does in the chat)."""

    async def work(store: Store, programme: Programme) -> str:
        from conversations.capabilities.reminder_planning import ReminderPlanner

        planner = ReminderPlanner(store)
        facts = (await planner.lifecycle.facts([pair])).get(pair)
        if facts is None or facts.programme_id != programme.id:
            raise ProgrammeError(f"there is no pair {pair} in {programme.name}")
        if facts.closed:
            raise ProgrammeError(f"pair {pair} is already closed")
        if facts.matched_at is None:
            raise ProgrammeError(f"pair {pair} isn't matched yet")
        event = "rematched" if rematch else "closed"
        now = planner.clock()
        await planner.lifecycle.record(pair, event, at=now, source="coordinator", now=now,
                                       detail={"by": "admin"})
        await store.audit.record("admin", f"pair_{event}", pair=pair)
        await planner.pair_changed(pair, now)
        return (f"Pair {pair} is closed" + (" for a re-match, with no fault recorded; both "
                f"stay in the programme. Pair one of them again with: mentorbot dyad create "
                f"--programme {programme.name!r} --with {pair}:mentee" if rematch else "")
                + ".")

    click.echo(with_store(programme_name, work))


@click.command("list")
@click.option("--programme", "programme_name", required=True)
def invite_list(programme_name: str) -> None:
    """Invites by number: pair, role, and open, used, expired or withdrawn (never a code)."""
    click.echo(with_store(programme_name, lambda s, p: admin.invites_text(s, p)))


@click.command("revoke")
@click.option("--programme", "programme_name", required=True)
@click.argument("invite", type=int)
def invite_revoke(programme_name: str, invite: int) -> None:
    """Withdraw an unused invite: its link opens nothing from now on."""
    click.echo(with_store(programme_name, lambda s, p: admin.revoke(s, p, invite, "admin")))


@click.command("reissue")
@click.option("--programme", "programme_name", required=True)
@click.argument("invite", type=int)
@click.option("--days", default=DEFAULT_INVITE_DAYS, show_default=True)
def invite_reissue(programme_name: str, invite: int, days: int) -> None:
    """Withdraw an unused invite and print a new one for the same pair and role."""
    click.echo(with_store(programme_name,
                           lambda s, p: admin.reissue(s, p, invite, "admin", _link, days)))


@click.command("erase")
@click.option("--programme", "programme_name", required=True)
@click.option("--pair", "pair", type=int, required=True)
@click.option("--role", type=click.Choice(sorted(admin.SEATS)), required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--all", "every", is_flag=True,
              help="Erase every membership the person holds (other programmes and roles), "
                   "not only this one.")
def erase_cmd(programme_name: str, pair: int, role: str, yes: bool, every: bool) -> None:
    """Erase a person's membership on their request, named by programme, pair number and
    role (--all: every membership they hold)."""
    seat = admin.SEATS[role]
    pid, preview = with_store(programme_name,
                               lambda s, p: admin.erase_target(s, p, pair, seat, every))
    click.echo(preview)
    if pid is None:
        raise SystemExit(1)
    if not yes:
        click.confirm("Erase now?", abort=True)
    click.echo(with_store(programme_name,
                           lambda s, p: admin.erase(s, p, pair, seat, "admin",
                                                    every=every)))


@click.command("settings")
@click.argument("name")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Change a setting (repeatable), e.g. --set quiet_pair_weeks=4.")
def programme_settings_cmd(name: str, assignments: tuple[str, ...]) -> None:
    """Show a programme's settings, or change some (checked as the reminders read them)."""

    async def work(store: Store, programme: Programme) -> str:
        if assignments:
            programme = await admin.change_settings(store, programme, list(assignments),
                                                    "admin")
        return admin.settings_text(programme)

    click.echo(with_store(name, work))
