"""`mentorbot keys`, `programme`, `dyad` and `invite`: keys, programmes and invites."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli import programmes
from bot.cli.common import friendly, invite_link, run, settings
from bot.settings import ConfigError, Settings
from storage.crypto import encode_key, generate_key
from storage.models import Role
from storage.programmes import Programmes


# -- keys ----------------------------------------------------------------------------
@click.group("keys")
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
@click.group("programme")
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


@click.group("dyad")
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
        programmes.parse_with(with_)  # a typo is refused before anything is opened
        Programmes.check_invite_days(days)
        click.echo(programmes.with_store(
            programme_name, lambda s, p: programmes.rematch_text(s, p, with_, days)))
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
        click.echo(f"mentor: {mentor}  {invite_link(cfg, mentor)}")
        click.echo(f"mentee: {mentee}  {invite_link(cfg, mentee)}")

    run(go())


@click.group("invite")
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
        click.echo(f"{role}: {code}  {invite_link(cfg, code)}")

    run(go())


for _command in (programmes.invite_list, programmes.invite_revoke, programmes.invite_reissue):
    invite_group.add_command(_command)
programme_group.add_command(programmes.programme_settings_cmd)

GROUPS = (keys_group, programme_group, dyad_group, invite_group)
