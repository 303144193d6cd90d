"""Operations: online backup, restore, and the doctor's checks, as plain async functions.

Each returns a structured result and bot/cli/ops.py prints it. Results carry paths, counts,
check names and key fingerprints only: never a token, a key, or anything a person wrote.

The database and the key store are two SQLite files (see storage/keystore.sql). A backup is
two files as well, so that the key store copy can be kept on a short retention: once it has
expired, a person erased since then cannot be read from any database backup either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from bot.settings import ConfigError, Settings, load_settings
from storage.crypto import KeyRing, MasterKeyError, WrappedKey
from storage.db import DatabaseError, default_keystore, migrations
from storage.private import PRIVATE_FILE, private_dir, private_file

DEFAULT_TELEGRAM_BASE_URL = "https://api.telegram.org/bot"
BUSY_TIMEOUT_S = 10.0


def keystore_path(cfg: Settings) -> Path:
    return cfg.mentorbot_keystore or default_keystore(cfg.mentorbot_db)


# -- results ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BackupResult:
    database: Path
    keystore: Path | None
    schema_version: int
    participants: int
    entries: int
    data_keys: int
    database_bytes: int
    keystore_bytes: int


@dataclass(frozen=True)
class RestoreResult:
    database: Path
    keystore: Path
    schema_version: int
    pending_migrations: int
    participants: int
    entries: int
    keys_unwrapped: int
    participants_without_key: int = 0
    erasures_reapplied: int = 0


Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One finding. ``message`` says what is right or wrong, ``fix`` how to put it right."""

    name: str
    status: Status
    message: str
    fix: str = ""

    def line(self) -> str:
        label = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[self.status]
        text = f"{label}  {self.name}: {self.message}"
        return f"{text}. Fix: {self.fix}" if self.fix else text


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


# -- SQLite helpers --------------------------------------------------------------------
@contextlib.contextmanager
def _connect(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection (autocommit) that is always closed.

    Read-only opens are for backup files (rollback journal mode). Live files are opened
    read-write even when only read, because a WAL reader must be able to use the -shm file.
    """
    try:
        if read_only:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_S,
            )
        else:
            conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {path} ({type(exc).__name__})") from None
    try:
        yield conn
    finally:
        conn.close()


def _scalar(conn: sqlite3.Connection, sql: str, default: int = 0) -> int:
    row = conn.execute(sql).fetchone()
    return default if row is None or row[0] is None else int(row[0])


def _tables(conn: sqlite3.Connection, schema: str = "main") -> set[str]:
    rows = conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type='table'"  # noqa: S608
    ).fetchall()
    return {r[0] for r in rows}


def _integrity(
    conn: sqlite3.Connection, schema: str = "main", *, quick: bool = False
) -> list[str]:
    pragma = "quick_check" if quick else "integrity_check"
    rows = conn.execute(f"PRAGMA {schema}.{pragma}").fetchall()
    return [str(r[0]) for r in rows]


def _one_line(text: str, limit: int = 100) -> str:
    """SQLite's integrity messages span lines; a doctor line must not."""
    return " ".join(text.split())[:limit]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def newest_schema() -> int:
    return max((v for v, _, _ in migrations()), default=0)


def _db_stats(conn: sqlite3.Connection) -> tuple[int, int, int]:
    tables = _tables(conn)
    if "schema_migrations" not in tables:
        raise DatabaseError("not a mentorbot database (no schema_migrations table)")
    version = _scalar(conn, "SELECT MAX(version) FROM schema_migrations")
    people = _scalar(conn, "SELECT COUNT(*) FROM participants") if "participants" in tables else 0
    entries = _scalar(conn, "SELECT COUNT(*) FROM entries") if "entries" in tables else 0
    return version, people, entries


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_private(path: Path) -> None:
    """An empty file only the owner can read: SQLite then writes into it, keeping the mode."""
    private_file(path, exclusive=True)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


@dataclass
class _Unwrapped:
    ok: int = 0
    previous: int = 0  # opened, but with a previous master key (mid-repair)
    unknown_kek: Counter[str] = field(default_factory=Counter)
    damaged: int = 0


def _unwrap_all(conn: sqlite3.Connection, ring: KeyRing, schema: str) -> _Unwrapped:
    """Try every wrapped key with ``ring``; keys are dropped as soon as they are checked."""
    result = _Unwrapped()
    for table, key_col, subject in (
        ("data_keys", "subject_ref", "{}"),
        ("system_keys", "name", "system:{}"),
    ):
        rows = conn.execute(
            f"SELECT {key_col}, wrapped, kek_id FROM {schema}.{table}"  # noqa: S608
        ).fetchall()
        for name, wrapped, kek_id in rows:
            try:
                ring.unwrap(WrappedKey(wrapped, kek_id), subject.format(name))
            except MasterKeyError:
                # Under the current key's own fingerprint a failure can only be damage; under
                # another fingerprint, the key that wrapped it is (almost always) missing.
                if kek_id == ring.current_id:
                    result.damaged += 1
                else:
                    result.unknown_kek[kek_id] += 1
            else:
                result.ok += 1
                result.previous += kek_id != ring.current_id
    return result


@dataclass(frozen=True)
class _Pairing:
    """Does this key store belong to this database?"""

    participants_without_key: int
    lookup_key_missing: bool


def _pairing(conn: sqlite3.Connection, keys: str) -> _Pairing:
    tables = _tables(conn)
    if "participants" not in tables:
        return _Pairing(0, False)
    orphans = _scalar(
        conn,
        f"SELECT COUNT(*) FROM main.participants p WHERE NOT EXISTS "  # noqa: S608
        f"(SELECT 1 FROM {keys}.data_keys k WHERE k.subject_ref = p.subject_ref)",
    )
    # Telegram ids and invite codes are found by an HMAC under the lookup key; a key store
    # without it would get a fresh one at start-up and recognise nobody.
    in_use = _scalar(conn, "SELECT COUNT(*) FROM main.participants") + (
        _scalar(conn, "SELECT COUNT(*) FROM main.invites") if "invites" in tables else 0
    )
    has_lookup = _scalar(
        conn,
        f"SELECT COUNT(*) FROM {keys}.system_keys WHERE name = 'lookup'",  # noqa: S608
    )
    return _Pairing(orphans, bool(in_use) and not has_lookup)


# -- backup ----------------------------------------------------------------------------
async def backup(
    database: Path,
    keystore: Path,
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
    """
    return await asyncio.to_thread(
        _backup_sync,
        database,
        keystore,
        out,
        keys_out,
        key_file,
        on_snapshot,
    )


def _backup_sync(
    database: Path,
    keystore: Path,
    out: Path,
    keys_out: Path | None,
    key_file: Path | None,
    on_snapshot: Callable[[], None] | None,
) -> BackupResult:
    if not database.is_file():
        raise DatabaseError(f"no database at {database}; check MENTORBOT_DB")
    if not keystore.is_file():
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
    partials = []
    try:
        for target in targets:
            private_dir(target.parent)
            partial = target.with_name(f".{target.name}.partial")
            partial.unlink(missing_ok=True)
            _create_private(partial)
            partials.append(partial)
        result = _copy_snapshot(
            database, keystore, partials[0], partials[1] if keys_out else None, on_snapshot
        )
        for partial, target in zip(partials, targets, strict=True):
            _fsync(partial)
            # Rename last, so a backup file under its final name is always complete.
            os.replace(partial, target)
        for folder in {t.parent for t in targets}:
            # The renames themselves must reach the disk too; some filesystems refuse this.
            with contextlib.suppress(OSError):
                _fsync(folder)
    finally:
        for partial in partials:
            partial.unlink(missing_ok=True)
    return BackupResult(
        database=out,
        keystore=keys_out,
        schema_version=result[0],
        participants=result[1],
        entries=result[2],
        data_keys=result[3],
        database_bytes=out.stat().st_size,
        keystore_bytes=keys_out.stat().st_size if keys_out else 0,
    )


def _copy_snapshot(
    database: Path,
    keystore: Path,
    db_copy: Path,
    keys_copy: Path | None,
    on_snapshot: Callable[[], None] | None,
) -> tuple[int, int, int, int]:
    with _connect(database) as src:
        try:
            src.execute("ATTACH DATABASE ? AS keys", (str(keystore),))
            src.execute("BEGIN")
            # The read transaction starts on each file at its first read. The database is
            # read first: a participant's key is committed in the same transaction as their
            # row, so a key store snapshot taken just after holds every key the database
            # snapshot needs (a person erased in between has no key, as after any erasure).
            _scalar(src, "SELECT COUNT(*) FROM main.sqlite_master")
            _scalar(src, "SELECT COUNT(*) FROM keys.sqlite_master")
            if on_snapshot is not None:
                on_snapshot()
            # One step (pages=-1) copies the whole file inside the read transaction already
            # open. Small steps would restart from scratch after every write by the bot and
            # could starve under steady load.
            copies = [("main", db_copy)] + ([("keys", keys_copy)] if keys_copy else [])
            for name, copy in copies:
                with _connect(copy) as dst:
                    src.backup(dst, pages=-1, name=name)
                    # A backup is one self-contained file: no -wal beside it to lose.
                    dst.execute("PRAGMA journal_mode=DELETE")
                    problems = _integrity(dst)
                    if problems != ["ok"]:
                        raise DatabaseError(
                            f"the {name} copy failed its integrity check: {_one_line(problems[0])}"
                        )
            src.execute("COMMIT")
        except sqlite3.Error as exc:
            raise DatabaseError(f"backup failed: {type(exc).__name__}: {exc}") from None
    with _connect(db_copy, read_only=True) as conn:
        version, people, entries = _db_stats(conn)
    keys = 0
    if keys_copy is not None:
        with _connect(keys_copy, read_only=True) as conn:
            keys = _scalar(conn, "SELECT COUNT(*) FROM data_keys")
    return version, people, entries, keys


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
        _restore_sync,
        source,
        keys_source,
        database,
        keystore,
        ring,
        force,
    )


def _restore_sync(
    source: Path,
    keys_from: Path | None,
    database: Path,
    keystore: Path,
    ring: KeyRing,
    force: bool,
) -> RestoreResult:
    # Without a key store backup the live key store stays: it holds every key since.
    keys_source = keys_from or keystore
    for path, what in ((source, "database backup"), (keys_source, "key store")):
        if not path.is_file():
            raise DatabaseError(f"no {what} at {path}")
    try:
        with _connect(source, read_only=True) as conn:
            problems = _integrity(conn)
            if problems != ["ok"]:
                raise DatabaseError(f"{source} is damaged: {_one_line(problems[0], 120)}")
            version, people, entries = _db_stats(conn)
        with _connect(keys_source, read_only=True) as conn:
            if {"data_keys", "system_keys"} - _tables(conn):
                raise DatabaseError(f"{keys_source} is not a mentorbot key store backup")
            problems = _integrity(conn)
            if problems != ["ok"]:
                raise DatabaseError(f"{keys_source} is damaged: {_one_line(problems[0], 120)}")
            unwrapped = _unwrap_all(conn, ring, "main")
        with _connect(source, read_only=True) as conn:
            conn.execute(
                "ATTACH DATABASE ? AS keys", (f"{keys_source.resolve().as_uri()}?mode=ro",)
            )
            pairing = _pairing(conn, "keys")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read the backup ({type(exc).__name__})") from None
    newest = newest_schema()
    if version > newest:
        raise DatabaseError(
            f"the backup has schema {version}, newer than this mentorbot ({newest}); "
            "install the version that wrote it"
        )
    if unwrapped.unknown_kek:
        kek_id = unwrapped.unknown_kek.most_common(1)[0][0]
        raise MasterKeyError(
            f"the backup's keys were wrapped by master key {kek_id}, the configured key is "
            f"{ring.current_id}; configure the key that was in use when the backup was taken"
        )
    if unwrapped.damaged:
        raise MasterKeyError(
            f"{unwrapped.damaged} keys in the key store backup fail to unwrap (damaged file)"
        )
    if pairing.lookup_key_missing:
        raise DatabaseError(
            f"{keys_source} has no lookup key but the database backup has participants: "
            "they are not a pair; use the key store backup taken with this database backup"
        )
    existing = [p for p in (database, keystore) if p.exists() and (keys_from or p != keystore)]
    if existing and not force:
        raise DatabaseError(
            f"{existing[0]} exists; stop the bot, take a backup of it, then pass --force"
        )
    # Erasures recorded in the live key store outlive the restore, whatever the backup's
    # age: they are carried into the restored key store and applied below.
    erasures = _erasures(keystore)
    copies = (
        [(source, database)] if keys_from is None else [(keys_from, keystore), (source, database)]
    )
    for src_path, dst_path in copies:
        private_dir(dst_path.parent)
        if not dst_path.exists():
            _create_private(dst_path)
        with _connect(src_path, read_only=True) as src, _connect(dst_path) as dst:
            try:
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode=WAL")
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                problems = _integrity(dst)
            except sqlite3.Error as exc:
                raise DatabaseError(
                    f"restoring {dst_path} failed ({type(exc).__name__}); is the bot stopped?"
                ) from None
        if problems != ["ok"]:
            raise DatabaseError(f"{dst_path} failed its integrity check after the restore")
        os.chmod(dst_path, PRIVATE_FILE)
    if erasures:
        with _connect(keystore) as dst:
            dst.execute(
                "CREATE TABLE IF NOT EXISTS erasures "
                "(ref_hash BLOB PRIMARY KEY, erased_at TEXT NOT NULL)"
            )
            dst.executemany("INSERT OR IGNORE INTO erasures VALUES (?, ?)", erasures)
    reapplied = asyncio.run(_reapply_erasures(database, keystore, ring))
    return RestoreResult(
        database=database,
        keystore=keystore,
        schema_version=version,
        pending_migrations=sum(1 for v, _, _ in migrations() if v > version),
        participants=people,
        entries=entries,
        keys_unwrapped=unwrapped.ok,
        participants_without_key=max(0, pairing.participants_without_key - reapplied),
        erasures_reapplied=reapplied,
    )


def _erasures(keystore: Path) -> list[tuple[bytes, str]]:
    if not keystore.is_file():
        return []
    try:
        with _connect(keystore, read_only=True) as conn:
            if "erasures" not in _tables(conn):
                return []
            return [(bytes(h), str(at)) for h, at in conn.execute("SELECT * FROM erasures")]
    except sqlite3.Error as exc:
        raise DatabaseError(
            f"cannot read the erasures recorded in {keystore} ({type(exc).__name__}); "
            "a restore must not bring erased people back, so nothing was written"
        ) from None


async def _reapply_erasures(database: Path, keystore: Path, ring: KeyRing) -> int:
    """Open the restored store once: opening applies every recorded erasure (and runs
    pending migrations). Returns how many people were erased again."""
    from conversations.catalogue import consent_version
    from storage.store import Store

    erased = 0
    store = await Store.open(database, ring, consent_version(), keystore=keystore, create=False)
    try:
        erased = store.erasures_applied
    finally:
        await store.close()
    return erased


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


def _key_file_checks(key_file: Path, database: Path) -> list[Check]:
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
    if _inside(key_file, database.parent):
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
    database, keystore = cfg.mentorbot_db, keystore_path(cfg)
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
    try:
        with _connect(database) as conn:
            checks.extend(_database_checks(conn, database, quick))
            if not any(c.status == "fail" for c in checks if c.name == "database"):
                checks.extend(_key_store_checks(conn, keystore, ring, quick))
    except (sqlite3.Error, DatabaseError) as exc:
        checks.append(
            Check(
                "database",
                "fail",
                f"{database} is not a readable SQLite database ({type(exc).__name__})",
                "check MENTORBOT_DB; if it is the right file, restore the latest backup",
            )
        )
    return checks


def _database_checks(conn: sqlite3.Connection, path: Path, quick: bool) -> list[Check]:
    problems = _integrity(conn, quick=quick)
    if problems != ["ok"]:
        return [
            Check(
                "database",
                "fail",
                f"{path} failed its integrity check ({len(problems)} problems, first: "
                f"{_one_line(problems[0])})",
                "stop the bot and restore the latest backup (mentorbot restore)",
            )
        ]
    if "schema_migrations" not in _tables(conn):
        return [
            Check(
                "database",
                "fail",
                f"{path} is a SQLite file but not a mentorbot database",
                "check MENTORBOT_DB",
            )
        ]
    applied = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
    current, newest = max(applied, default=0), newest_schema()
    if current > newest:
        return [
            Check(
                "database",
                "fail",
                f"schema {current} was written by a newer mentorbot (this one knows {newest})",
                "install the newer mentorbot again, or restore a backup taken before it",
            )
        ]
    checks = [Check("database", "ok", f"integrity ok, schema {current}")]
    pending = [name for version, name, _ in migrations() if version not in applied]
    if pending:
        checks.append(
            Check(
                "migrations",
                "warn",
                f"{_plural(len(pending), 'migration')} pending ({', '.join(pending)})",
                "take a backup (mentorbot backup), then start the bot once: it applies them",
            )
        )
    else:
        checks.append(Check("migrations", "ok", "none pending"))
    if "entry_codes" in _tables(conn):
        checks.append(_codes_check(conn))
        checks.append(_safety_check(conn))
    return checks


def _codes_check(conn: sqlite3.Connection) -> Check:
    """Saved entries whose stored codes are missing or from another codebook (reports.entry_
    codes): right either way, but every export and report codes them again."""
    from reports.codebook import load_codebook
    from reports.entry_codes import coder_id

    stale = conn.execute(
        "SELECT COUNT(*) FROM entries e WHERE e.status='complete' AND NOT EXISTS "
        "(SELECT 1 FROM entry_codes c WHERE c.entry_id = e.id AND c.coder = ?)",
        (coder_id(load_codebook()),),
    ).fetchone()[0]
    if not stale:
        return Check("codes", "ok", "every saved entry has current codes")
    return Check(
        "codes",
        "warn",
        f"{stale} saved {'entry' if stale == 1 else 'entries'} without current codes (after "
        "an upgrade, or saved before codes were stored): exports and reports code them again "
        "on every run",
        "run mentorbot recode (the bot can keep running)",
    )


def _safety_check(conn: sqlite3.Connection) -> Check:
    """Answers whose safety verdict is missing or from another version of the rule: reports
    and exports judge them again by the lexicon on every run, but only recode applies the
    whole rule (with the semantic layer, where installed) and stores the result."""
    from conversations.safety import rule_version

    waiting = conn.execute(
        "SELECT COUNT(*) FROM answers WHERE safety_rule IS NULL OR safety_rule != ?",
        (rule_version(),),
    ).fetchone()[0]
    if not waiting:
        return Check("safety", "ok", "every answer has a verdict from the current safety rule")
    return Check(
        "safety",
        "warn",
        f"{waiting} {'answer' if waiting == 1 else 'answers'} not yet judged by the current "
        "safety rule (after an upgrade): until then reports and exports judge them again by "
        "its lexicon alone",
        "run mentorbot recode (the bot can keep running)",
    )


def _key_store_checks(
    conn: sqlite3.Connection, keystore: Path, ring: KeyRing | None, quick: bool
) -> list[Check]:
    if not keystore.exists():
        return [
            Check(
                "key_store",
                "fail",
                f"no key store at {keystore}: without it no entry can be read",
                "restore it from its backup (mentorbot restore --keys-from FILE) or set "
                "MENTORBOT_KEYSTORE to where it is",
            )
        ]
    conn.execute("ATTACH DATABASE ? AS keys", (str(keystore),))
    try:
        problems = _integrity(conn, "keys", quick=quick)
        if problems != ["ok"]:
            return [
                Check(
                    "key_store",
                    "fail",
                    f"{keystore} failed its integrity check ({_one_line(problems[0])})",
                    "stop the bot and restore the key store from its latest backup",
                )
            ]
        if {"data_keys", "system_keys"} - _tables(conn, "keys"):
            return [
                Check(
                    "key_store",
                    "fail",
                    f"{keystore} is not a mentorbot key store",
                    "check MENTORBOT_KEYSTORE",
                )
            ]
        if ring is None:
            return [Check("key_store", "warn", "keys not checked: no usable master key")]
        checks: list[Check] = []
        unwrapped = _unwrap_all(conn, ring, "keys")
        for kek_id, count in sorted(unwrapped.unknown_kek.items()):
            checks.append(
                Check(
                    "key_store",
                    "fail",
                    f"{count} keys were wrapped by master key {kek_id}, not by the configured "
                    f"one ({ring.current_id}); fingerprints, not keys",
                    "if these keys were made by a bot still running on the old key during a "
                    "rotation, stop the bot and run MENTORBOT_PREVIOUS_MASTER_KEYS=<old key> "
                    "mentorbot keys repair (with the new key configured); otherwise configure "
                    "the master key they were wrapped by",
                )
            )
        if unwrapped.previous:
            checks.append(
                Check(
                    "key_store",
                    "warn",
                    f"{_plural(unwrapped.previous, 'key')} still wrapped by a previous master "
                    "key (MENTORBOT_PREVIOUS_MASTER_KEYS)",
                    "run mentorbot keys repair, then remove MENTORBOT_PREVIOUS_MASTER_KEYS",
                )
            )
        if unwrapped.damaged:
            checks.append(
                Check(
                    "key_store",
                    "fail",
                    f"{unwrapped.damaged} wrapped keys fail to unwrap with the right master "
                    "key: the key store is damaged",
                    "stop the bot and restore the key store from its latest backup",
                )
            )
        pairing = _pairing(conn, "keys")
        if pairing.participants_without_key:
            checks.append(
                Check(
                    "key_store",
                    "fail",
                    f"{pairing.participants_without_key} participants have no data key: this "
                    "key store does not belong to this database",
                    "restore the key store backup taken together with this database",
                )
            )
        if pairing.lookup_key_missing:
            checks.append(
                Check(
                    "key_store",
                    "fail",
                    "the key store has no lookup key, so nobody would be recognised: it does "
                    "not belong to this database",
                    "restore the key store backup taken together with this database",
                )
            )
        if not checks:
            checks.append(
                Check(
                    "key_store",
                    "ok",
                    f"{_plural(unwrapped.ok, 'key')} unwrap with the configured master key",
                )
            )
            if not quick:  # every row: too slow for a health check run each minute
                checks.extend(_tamper_check(conn, ring))
        return checks
    finally:
        conn.execute("DETACH DATABASE keys")


def _tamper_check(conn: sqlite3.Connection, ring: KeyRing) -> list[Check]:
    """Consent rows and entry statuses against their MACs (storage.integrity), as every
    report and export checks them before reading."""
    from storage import integrity

    row = conn.execute("SELECT wrapped, kek_id FROM keys.system_keys WHERE name=?",
                       (integrity.INTEGRITY_KEY,)).fetchone()
    columns = {r[1] for r in conn.execute("PRAGMA main.table_info(entries)")}
    if row is None or "status_mac" not in columns:
        return []  # signed the first time the upgraded bot opens the store
    try:
        key = ring.unwrap(WrappedKey(row[0], row[1]), f"system:{integrity.INTEGRITY_KEY}")
    except MasterKeyError:
        return []  # reported above as a key that does not unwrap
    failed, named = integrity.problems(key, conn.execute(integrity.CONSENT_ROWS),
                                       conn.execute(integrity.ENTRY_ROWS))
    if failed:
        return [Check("tamper", "fail", integrity.describe(failed, named), integrity.FIX)]
    return [Check("tamper", "ok", "every consent decision and entry status passes its check")]


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
