"""Operator commands: `backup`, `restore`, `doctor` and `serve-webhook` (thin over bot.ops)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from bot import ops
from bot.cli.common import friendly, serve, settings

PG_RESTORE = (
    "on PostgreSQL, restore with pg_restore or your point-in-time recovery into empty "
    "databases, the key store from its own backup, then run mentorbot doctor "
    "(deploy/README.md, PostgreSQL)")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


@click.command("backup")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Database backup file to create (never overwritten).",
)
@click.option(
    "--keys-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Key store backup file, in another folder than --out (its own, short retention).",
)
@click.option(
    "--no-keys",
    is_flag=True,
    help="Back up the database only (the key store is backed up elsewhere, or not at all).",
)
@friendly
def backup_cmd(out: Path, keys_out: Path | None, no_keys: bool) -> None:
    """Back up the database and the key store while the bot runs (SQLite online backup;
    on PostgreSQL, pg_dump of each database)."""
    from bot.settings import ConfigError

    if (keys_out is None) == (not no_keys):
        raise ConfigError(
            "give --keys-out FILE (in another folder than --out: key store copies need a "
            "shorter retention) or --no-keys"
        )
    cfg = settings()
    result = asyncio.run(
        ops.backup(
            cfg.mentorbot_db,
            ops.keystore_path(cfg),
            out,
            keys_out,
            key_file=cfg.mentorbot_key_file,
        )
    )
    checked = "pg_dump custom format" if cfg.on_postgres else "integrity ok"
    click.echo(
        f"Database: {result.database} ({_size(result.database_bytes)}, schema "
        f"{result.schema_version}, {result.participants} participants, {result.entries} "
        f"entries, {checked})"
    )
    if result.keystore is not None:
        click.echo(
            f"Key store: {result.keystore} ({_size(result.keystore_bytes)}, "
            f"{result.data_keys} data keys)"
        )
    else:
        click.echo("Key store: not backed up (--no-keys).")
    click.echo(
        "Neither file holds the master key: keep the key elsewhere, never beside these "
        "backups (deploy/README.md)."
    )
    if cfg.on_postgres:
        click.echo("Restore with pg_restore into empty databases, each file into its own "
                   "(deploy/README.md, PostgreSQL); point-in-time recovery stays the server's.")


@click.command("restore")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Database backup made by `mentorbot backup`.",
)
@click.option(
    "--keys-from",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Key store backup to restore with it [default: keep the current key store].",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing database and key store. Stop the bot first.",
)
@friendly
def restore_cmd(source: Path, keys_from: Path | None, force: bool) -> None:
    """Restore a backup into MENTORBOT_DB and MENTORBOT_KEYSTORE, after checking it."""
    from bot.settings import ConfigError
    from storage.lock import exclusive

    cfg = settings()
    if cfg.on_postgres:
        raise ConfigError(PG_RESTORE)
    ring = cfg.keyring()
    with exclusive(cfg.mentorbot_db, "a restore"):
        result = asyncio.run(
            ops.restore(
                source, keys_from, cfg.mentorbot_db, ops.keystore_path(cfg), ring, force=force
            )
        )
    click.echo(
        f"Restored {result.database} (schema {result.schema_version}, "
        f"{result.participants} participants, {result.entries} entries) and "
        f"{result.keystore} ({result.keys_unwrapped} keys unwrap with the configured key)."
    )
    if result.participants_without_key:
        click.echo(
            f"Warning: {result.participants_without_key} participants have no data key in this "
            "key store backup (it is older than the database backup); their entries cannot be "
            "read. Use the key store backup taken with the database backup, or a later one."
        )
    if result.erasures_reapplied:
        click.echo(
            f"Erased again {result.erasures_reapplied} people whose erasure the key store "
            "records but the backup predates."
        )
    if result.pending_migrations:
        click.echo(f"Applied {result.pending_migrations} migrations to the restored database.")
    click.echo("Run `mentorbot doctor`, then start the bot.")


@click.command("doctor")
@click.option("--offline", is_flag=True, help="Skip the Bot API check (for health checks).")
@click.option("--quick", is_flag=True, help="PRAGMA quick_check instead of integrity_check.")
@click.option(
    "--timeout",
    "api_timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds to wait for the Bot API's getMe.",
)
@click.option("--webhook", is_flag=True, help="Also check the webhook settings.")
def doctor_cmd(offline: bool, quick: bool, api_timeout: float, webhook: bool) -> None:
    """Check configuration, database, keys and the Bot API; one line per problem."""
    report = asyncio.run(
        ops.doctor(offline=offline, quick=quick, api_timeout=api_timeout, webhook=webhook)
    )
    for check in report.checks:
        click.echo(check.line())
    failed = sum(c.status == "fail" for c in report.checks)
    warned = sum(c.status == "warn" for c in report.checks)
    click.echo(f"{len(report.checks)} checks: {failed} failed, {warned} warnings")
    if failed:
        sys.exit(1)


@click.command("serve-webhook")
@click.option("--url", default=None, help="Public HTTPS URL [default: MENTORBOT_WEBHOOK_URL].")
@click.option("--listen", default=None, help="Address to bind [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to bind [default: 8080].")
@friendly
def serve_webhook_cmd(url: str | None, listen: str | None, port: int | None) -> None:
    """Run the bot with a webhook behind a reverse proxy (polling: `mentorbot run`)."""
    from bot.logs import setup_logging
    from bot.settings import ConfigError
    from bot.webhook import run_webhook, webhook_config

    cfg = settings()
    setup_logging(cfg.mentorbot_log_level)
    if cfg.token is None:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set; webhook mode needs a bot token")
    cfg.keyring()  # fail fast on a missing or malformed key
    webhook = webhook_config(cfg, url=url, listen=listen, port=port)
    serve(cfg, lambda: run_webhook(cfg, webhook))




@click.command("migrate-store")
@click.option("--from", "source", required=True, metavar="sqlite:PATH",
              help="The SQLite database to move (sqlite:data/mentorbot.sqlite3).")
@click.option("--from-keys", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Its key store file [default: the database path plus .keys].")
@click.option("--to", "target", required=True, metavar="postgresql://...",
              help="The new, empty PostgreSQL database for the data.")
@click.option("--keystore", "keys_target", required=True, metavar="postgresql://...",
              help="The new, empty PostgreSQL database for the keys (another database).")
@friendly
def migrate_store_cmd(source: str, from_keys: Path | None, target: str,
                      keys_target: str) -> None:
    """Move a programme from SQLite to PostgreSQL: rows and wrapped keys copied as they are,
    checked by counts per table and by opening a sample of entries. Stop the bot first."""
    from bot.settings import load_settings
    from storage.db import default_keystore
    from storage.lock import exclusive

    path = Path(source.removeprefix("sqlite:"))
    # the same rules as MENTORBOT_DB and MENTORBOT_KEYSTORE (one database each, distinct)
    cfg = load_settings(mentorbot_db=target, mentorbot_keystore=keys_target)
    ring = settings().keyring()
    with exclusive(path, "a store migration"):
        result = asyncio.run(ops.migrate_store(
            path, from_keys or default_keystore(path), str(cfg.mentorbot_db),
            str(cfg.mentorbot_keystore), ring))
    rows = ", ".join(f"{t} {n}" for t, n in sorted(result.tables.items()) if n)
    keys = ", ".join(f"{t} {n}" for t, n in sorted(result.keys.items()))
    click.echo(f"Copied {sum(result.tables.values())} rows, the same count in every table "
               f"({rows or 'all empty'}).")
    click.echo(f"Key store: {keys}, wrapped as before (the same master key opens them).")
    click.echo(f"Opened {result.sampled} sample entries in both stores: identical.")
    click.echo("Now set MENTORBOT_DB and MENTORBOT_KEYSTORE to the new databases, run "
               "mentorbot doctor, start the bot; keep the SQLite files until you are sure, "
               "then delete them.")
