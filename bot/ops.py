"""Operations: online backup, restore, and the doctor's checks, as plain async functions.

Each returns a structured result and bot/cli/ops.py prints it. Results carry paths, counts,
check names and key fingerprints only: never a token, a key, or anything a person wrote.
The files themselves are storage's (storage/backup.py, storage/health.py); this module adds
what only the bot knows: its settings, where the master key file is, and the Bot API.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bot.settings import ConfigError, Settings, load_settings
from conversations.catalogue import consent_version
from storage import backup as files
from storage.backup import BackupResult, RestoreResult
from storage.crypto import KeyRing
from storage.db import DatabaseError, default_keystore
from storage.health import Check, Status, file_checks
from storage.offline import _inside

__all__ = ["BackupResult", "Check", "DoctorReport", "RestoreResult", "Status", "backup",
           "doctor", "keystore_path", "restore"]

DEFAULT_TELEGRAM_BASE_URL = "https://api.telegram.org/bot"


def keystore_path(cfg: Settings) -> Path | str:
    """The key store file (default: beside the database), or its connection string."""
    if cfg.mentorbot_keystore is not None:
        return cfg.mentorbot_keystore
    return default_keystore(Path(cfg.mentorbot_db))


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status != "ok"]

    def named(self, name: str) -> list[Check]:
        return [c for c in self.checks if c.name == name]


# -- backup ----------------------------------------------------------------------------
async def backup(
    database: Path | str,
    keystore: Path | str,
    out: Path,
    keys_out: Path | None = None,
    *,
    key_file: Path | None = None,
    on_snapshot: Callable[[], None] | None = None,
) -> BackupResult:
    """Copy the live database and key store with SQLite's online backup API.

    Safe while the bot runs: the copy is taken from one read transaction (WAL readers never
    block writers, and writers never change what a reader sees), so it is a consistent
    snapshot. ``on_snapshot`` is called once that snapshot is fixed; tests use it to write
    during the copy.

    On PostgreSQL, pg_dump of each database to its own file (storage.pgdump), under the
    same rules for where the files go.
    """
    if isinstance(database, str):
        from storage.pgdump import dump

        _check_places(None, None, out, keys_out, key_file)
        return await asyncio.to_thread(dump, database, str(keystore), out, keys_out)
    _check_places(database, Path(keystore), out, keys_out, key_file)
    return await asyncio.to_thread(files.copy, database, keystore, out, keys_out, on_snapshot)


def _check_places(database: Path | None, keystore: Path | None, out: Path,
                  keys_out: Path | None, key_file: Path | None) -> None:
    """Both files exist (SQLite), no backup overwrites a file or sits beside the master key,
    and the key store copy has a folder (so a retention) of its own."""
    if database is not None and not database.is_file():
        raise DatabaseError(f"no database at {database}; check MENTORBOT_DB")
    if keystore is not None and not keystore.is_file():
        raise DatabaseError(f"no key store at {keystore}; check MENTORBOT_KEYSTORE")
    targets = [out] if keys_out is None else [out, keys_out]
    for target in targets:
        if target.exists():
            raise DatabaseError(f"{target} already exists; backups never overwrite a file")
        if key_file is not None and _inside(key_file, target.parent):
            raise ConfigError(
                f"the master key file is inside {target.parent}; a backup must never sit "
                "beside the key (move the key, or back up to another folder)"
            )
    if keys_out is not None and (
        _inside(keys_out.parent, out.parent) or _inside(out.parent, keys_out.parent)
    ):
        # One folder means one retention: the key store copies would be kept as long as
        # the database copies, and an erased person's key with them.
        raise ConfigError(
            "--keys-out must be in a different folder from --out, neither inside the other, "
            "so the key store copies can be deleted sooner (deploy/README.md, Backups)"
        )


# -- restore ---------------------------------------------------------------------------
async def restore(
    source: Path,
    keys_source: Path | None,
    database: Path,
    keystore: Path,
    ring: KeyRing,
    *,
    force: bool = False,
) -> RestoreResult:
    """Check a backup (integrity, schema, every key unwraps with ``ring``), then copy it in.

    Nothing is written unless every check passes. Targets are written through SQLite's
    backup API, never by copying files, so a stale -wal file beside an old database cannot
    be replayed onto the restored one. Stop the bot first.
    """
    return await asyncio.to_thread(
        files.restore,
        source,
        keys_source,
        database,
        keystore,
        ring,
        force,
        consent_version(),
    )


# -- doctor ----------------------------------------------------------------------------
def writable(folder: Path) -> bool:
    """The nearest existing folder on the way to ``folder`` accepts new files."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK | os.X_OK)


async def doctor(
    load: Callable[[], Settings] = load_settings,
    *,
    offline: bool = False,
    quick: bool = False,
    api_timeout: float = 5.0,
    webhook: bool = False,
) -> DoctorReport:
    """Check configuration, storage, keys and the Bot API; never changes anything."""
    checks: list[Check] = []
    try:
        cfg = load()
    except ConfigError as exc:
        return DoctorReport((Check("configuration", "fail", str(exc)),))
    checks.append(Check("configuration", "ok", "settings read"))
    if cfg.token is None:
        checks.append(
            Check(
                "token",
                "fail",
                "TELEGRAM_BOT_TOKEN is not set (mentorbot run would start the demo)",
                "put the token from @BotFather in .env or the environment",
            )
        )
    else:
        checks.append(Check("token", "ok", "set"))
    ring: KeyRing | None = None
    try:
        ring = cfg.keyring()
    except ConfigError as exc:
        checks.append(Check("master_key", "fail", str(exc)))
    else:
        checks.append(Check("master_key", "ok", f"loaded (fingerprint {ring.current_id})"))
        if cfg.mentorbot_master_key is None and cfg.mentorbot_key_file is not None:
            checks.extend(_key_file_checks(cfg.mentorbot_key_file, cfg.mentorbot_db))
    from bot.webhook import setting, webhook_problems

    if webhook or setting(cfg, "mentorbot_webhook_url"):
        found = webhook_problems(
            setting(cfg, "mentorbot_webhook_url"),
            setting(cfg, "mentorbot_webhook_secret"),
            setting(cfg, "mentorbot_webhook_port") or 8080,
            cfg.token,
        )
        checks.extend(Check("webhook", "fail", what, fix) for what, fix in found)
        if not found:
            checks.append(Check("webhook", "ok", "URL, secret and port are usable"))
    checks.extend(await asyncio.to_thread(_storage_checks, cfg, ring, quick))
    if offline:
        pass
    elif cfg.token is None:
        checks.append(Check("bot_api", "warn", "not checked: no token"))
    else:
        checks.append(await _bot_api_check(cfg, cfg.token, api_timeout))
    return DoctorReport(tuple(checks))


def _key_file_checks(key_file: Path, database: Path | str) -> list[Check]:
    checks = []
    mode = key_file.stat().st_mode & 0o777
    if mode & 0o077:
        # Readable by every local account is a leak waiting to happen; group access can be
        # deliberate (an admin group), so it only earns a warning.
        checks.append(
            Check(
                "key_file",
                "fail" if mode & 0o007 else "warn",
                f"{key_file} can be read by other users (mode {mode:o})",
                f"chmod 600 {key_file} and make the bot's user its owner",
            )
        )
    if isinstance(database, Path) and _inside(key_file, database.parent):
        checks.append(
            Check(
                "key_file",
                "fail",
                f"the master key file is inside the database folder {database.parent}, so "
                "a copy of that folder holds both",
                "move it elsewhere (e.g. /etc/mentorbot/ or a container secret) and update "
                "MENTORBOT_KEY_FILE",
            )
        )
    if not checks:
        checks.append(Check("key_file", "ok", "private and away from the database"))
    return checks


def _storage_checks(cfg: Settings, ring: KeyRing | None, quick: bool) -> list[Check]:
    from conversations.safety import rule_version
    from reports.codebook import load_codebook
    from reports.entry_codes import accepted_coders

    if cfg.on_postgres:
        from storage.health import server_checks

        return server_checks(str(cfg.mentorbot_db), str(cfg.mentorbot_keystore), ring, quick,
                             coder=accepted_coders(load_codebook()), rule=rule_version())
    database, keystore = Path(cfg.mentorbot_db), Path(keystore_path(cfg))
    checks: list[Check] = []
    for folder in sorted({database.parent, keystore.parent}):
        if not writable(folder):
            checks.append(
                Check(
                    "storage",
                    "fail",
                    f"the bot's user cannot create files in {folder}",
                    "give it write access (Docker: the volume must belong to uid 10001)",
                )
            )
    if not database.exists():
        checks.append(
            Check(
                "database",
                "warn",
                f"no database at {database} yet",
                "it is created at first start; if you expected one, check MENTORBOT_DB and "
                "the volume mount",
            )
        )
        if keystore.exists():
            checks.append(
                Check(
                    "key_store",
                    "warn",
                    f"a key store at {keystore} but no database beside it",
                    "point MENTORBOT_DB at the database this key store belongs to",
                )
            )
        return checks
    checks.extend(file_checks(database, keystore, ring, quick,
                              coder=accepted_coders(load_codebook()), rule=rule_version()))
    return checks


async def _bot_api_check(cfg: Settings, token: str, api_timeout: float) -> Check:
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut
    from telegram.request import HTTPXRequest

    base = cfg.telegram_api_base_url or DEFAULT_TELEGRAM_BASE_URL
    host = urlsplit(base).netloc or base
    request = HTTPXRequest(
        connection_pool_size=1,
        connect_timeout=api_timeout,
        read_timeout=api_timeout,
        write_timeout=api_timeout,
        pool_timeout=api_timeout,
    )
    bot = Bot(token, base_url=base, request=request)
    network_fix = (
        f"check that this machine can reach {host} over HTTPS (firewall, HTTPS_PROXY) "
        "and TELEGRAM_API_BASE_URL"
    )
    # Only our own words are reported: PTB's exception texts can quote the token.
    try:
        async with bot:  # initialize() calls getMe
            username = bot.username
    except InvalidToken:
        return Check(
            "bot_api",
            "fail",
            f"the Bot API at {host} rejected the token",
            "copy the token again from @BotFather (/mybots, API Token); a revoked token "
            "must be replaced",
        )
    except TimedOut:
        return Check(
            "bot_api", "fail", f"no answer from {host} within {api_timeout:g} s", network_fix
        )
    except NetworkError as exc:
        return Check("bot_api", "fail", f"cannot reach {host} ({type(exc).__name__})", network_fix)
    except TelegramError as exc:
        return Check(
            "bot_api",
            "fail",
            f"the Bot API at {host} answered getMe with an error ({type(exc).__name__})",
            network_fix,
        )
    return Check("bot_api", "ok", f"getMe answered at {host} as @{username}")


# -- migrate-store ---------------------------------------------------------------------
@dataclass(frozen=True)
class MigrateResult:
    tables: dict[str, int]  # rows per data table, equal in source and target
    keys: dict[str, int]  # rows per key store table
    sampled: int  # entries opened in both stores with the master key, found identical


async def migrate_store(source: Path, source_keys: Path, url: str, keys_url: str,
                        ring: KeyRing, *, sample: int = 25) -> MigrateResult:
    """SQLite to PostgreSQL (storage.migrate): the source opened once with the master key
    (which checks the key and finishes any repair a crash left), the target's schema
    created, the rows and wrapped keys copied as they are, counts compared, then a sample
    of entries opened in both stores and compared. Prints nothing; reports counts only."""
    from storage import migrate
    from storage.db import Database
    from storage.store import Store

    if not source.is_file():
        raise DatabaseError(f"no database at {source}; give --from sqlite:PATH")
    if not source_keys.is_file():
        raise DatabaseError(f"no key store at {source_keys}; give --from-keys PATH")
    version = consent_version()
    store = await Store.open(source, ring, version, create=False, keystore=source_keys)
    await store.close()
    target = await Database.open(url, keystore=keys_url)  # the schema, by the migrations
    await target.close()
    copied = await asyncio.to_thread(migrate.copy, source, source_keys, url, keys_url)
    old = await Store.open(source, ring, version, create=False, keystore=source_keys)
    try:
        new = await Store.open(url, ring, version, create=False, keystore=keys_url)
        try:
            picked = await migrate.same_sample(old, new, sample)
        finally:
            await new.close()
    finally:
        await old.close()
    return MigrateResult(copied.tables, copied.keys, picked)
