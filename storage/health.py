"""The doctor's checks of the database and key store files: integrity, schema, migrations,
stored codes and safety verdicts, keys against the master key, tamper evidence. Reads only."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from storage.crypto import KeyRing, MasterKeyError, WrappedKey
from storage.db import DatabaseError, migrations
from storage.offline import (
    Connection,
    Error,
    _connect,
    _integrity,
    _one_line,
    _pairing,
    _plural,
    _tables,
    _unwrap_all,
    newest_schema,
)

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


def file_checks(database: Path, keystore: Path, ring: KeyRing | None, quick: bool, *,
                coder: str | Collection[str], rule: str) -> list[Check]:
    """The database file, then (unless it failed) the key store beside it. ``coder`` and
    ``rule`` are the current coder ids (the rules', and the rules and heads' where they run)
    and the current safety rule's version, the
    codes and verdicts stored with entries are compared against."""
    checks: list[Check] = []
    try:
        with _connect(database) as conn:
            checks.extend(_database_checks(conn, database, quick, coder, rule))
            if not any(c.status == "fail" for c in checks if c.name == "database"):
                checks.extend(_key_store_checks(conn, keystore, ring, quick))
    except (Error, DatabaseError) as exc:
        checks.append(
            Check(
                "database",
                "fail",
                f"{database} is not a readable SQLite database ({type(exc).__name__})",
                "check MENTORBOT_DB; if it is the right file, restore the latest backup",
            )
        )
    return checks


def _database_checks(conn: Connection, path: Path, quick: bool, coder: str | Collection[str],
                     rule: str) -> list[Check]:
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
        checks.append(_codes_check(conn, coder))
        checks.append(_safety_check(conn, rule))
    return checks


def _codes_check(conn: Connection, coder: str | Collection[str]) -> Check:
    """Saved entries whose stored codes are missing or from another codebook (reports.entry_
    codes): right either way, but every export and report codes them again."""
    coders = sorted([coder] if isinstance(coder, str) else coder)
    stale = conn.execute(
        "SELECT COUNT(*) FROM entries e WHERE e.status='complete' AND NOT EXISTS "  # noqa: S608
        "(SELECT 1 FROM entry_codes c WHERE c.entry_id = e.id AND c.coder IN "
        f"({', '.join('?' * len(coders))}))",
        tuple(coders),
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


def _safety_check(conn: Connection, rule: str) -> Check:
    """Answers whose safety verdict is missing or from another version of the rule: reports
    and exports judge them again by the lexicon on every run, but only recode applies the
    whole rule (with the semantic layer, where installed) and stores the result."""
    waiting = conn.execute(
        "SELECT COUNT(*) FROM answers WHERE safety_rule IS NULL OR safety_rule != ?",
        (rule,),
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
    conn: Connection, keystore: Path, ring: KeyRing | None, quick: bool
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


def _tamper_check(conn: Connection, ring: KeyRing) -> list[Check]:
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




# -- PostgreSQL ------------------------------------------------------------------------
class _Translated:
    """A psycopg connection that takes the storage layer's SQLite-dialect SQL, so the
    checks above that only query (codes, safety, key unwrapping) run on it unchanged."""

    def __init__(self, conn: object) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> object:
        from storage import dialect

        return self.conn.execute(dialect.statement(sql).sql, params)  # type: ignore[attr-defined]


def server_checks(url: str, keys_url: str, ring: KeyRing | None, quick: bool, *,
                  coder: str | Collection[str], rule: str) -> list[Check]:
    """The doctor on PostgreSQL: both databases reachable, two different databases, the
    schema and its migrations, stored codes and verdicts, every key against the master key,
    that the key store belongs to this database, tamper evidence. Read-only sessions: it
    never changes anything. Page-level integrity is the server's (data checksums, WAL), not
    something a client can check."""
    import psycopg

    from storage.pg import redact

    checks: list[Check] = []
    opened: list[object] = []

    def connect(target: str, what: str, setting: str) -> object | None:
        try:
            conn = psycopg.connect(target, autocommit=True, connect_timeout=10,
                                   options="-c default_transaction_read_only=on")
        except psycopg.Error as exc:
            checks.append(Check(what, "fail", f"cannot connect to {redact(target)} "
                                f"({type(exc).__name__})",
                                f"check {setting}, that the server runs and that its role "
                                "may connect (pg_hba.conf)"))
            return None
        opened.append(conn)
        return conn

    try:
        data = connect(url, "database", "MENTORBOT_DB")
        keys = connect(keys_url, "key_store", "MENTORBOT_KEYSTORE")
        if data is None or keys is None:
            return checks
        checks.extend(_server_database_checks(_Translated(data), redact(url), coder, rule))
        if any(c.status == "fail" for c in checks) or not any(
                c.name == "migrations" for c in checks):
            return checks  # no schema yet (created at first start), or a failure above
        checks.extend(_server_key_checks(_Translated(data), _Translated(keys),
                                         redact(keys_url), ring, quick))
    except psycopg.Error as exc:
        checks.append(Check("database", "fail", f"a query failed ({type(exc).__name__})",
                            "run mentorbot doctor again; if it persists, check the server's "
                            "log"))
    finally:
        for conn in opened:
            conn.close()  # type: ignore[attr-defined]
    return checks


def _identity(conn: _Translated) -> tuple[object, ...]:
    return tuple(conn.execute(  # type: ignore[attr-defined]
        "SELECT current_database(), pg_postmaster_start_time(), (SELECT oid FROM pg_database "
        "WHERE datname = current_database())").fetchone())


def _public_tables(conn: _Translated) -> set[str]:
    rows = conn.execute(  # type: ignore[attr-defined]
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
        "current_schema()").fetchall()
    return {r[0] for r in rows}


def _server_database_checks(conn: _Translated, where: str, coder: str | Collection[str],
                            rule: str) -> list[Check]:
    version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[attr-defined]
    tables = _public_tables(conn)
    if "schema_migrations" not in tables:
        return [Check("database", "warn" if not tables else "fail",
                      f"{where} (PostgreSQL {version}) holds no mentorbot schema"
                      + (" yet" if not tables else ""),
                      "it is created at first start; if you expected data, check MENTORBOT_DB"
                      if not tables else "check MENTORBOT_DB: this database is not mentorbot's")]
    applied = {int(r[0]) for r in conn.execute(  # type: ignore[attr-defined]
        "SELECT version FROM schema_migrations").fetchall()}
    current, newest = max(applied, default=0), newest_schema()
    if current > newest:
        return [Check("database", "fail",
                      f"schema {current} was written by a newer mentorbot (this one knows "
                      f"{newest})", "install the newer mentorbot again")]
    checks = [Check("database", "ok", f"connected to {where} (PostgreSQL {version}), "
                    f"schema {current}")]
    pending = [name for v, name, _ in migrations() if v not in applied]
    if pending:
        checks.append(Check(
            "migrations", "warn",
            f"{_plural(len(pending), 'migration')} pending ({', '.join(pending)})",
            "take a backup (mentorbot backup, or your pg_dump/PITR), then start one bot: it "
            "applies them while the others wait"))
    else:
        checks.append(Check("migrations", "ok", "none pending"))
    if "entry_codes" in tables:
        checks.append(_codes_check(conn, coder))  # type: ignore[arg-type]
        checks.append(_safety_check(conn, rule))  # type: ignore[arg-type]
    return checks


def _server_key_checks(data: _Translated, keys: _Translated, where: str,
                       ring: KeyRing | None, quick: bool) -> list[Check]:
    if _identity(data) == _identity(keys):
        return [Check("key_store", "fail",
                      "MENTORBOT_KEYSTORE names the same database as MENTORBOT_DB, so a copy "
                      "of the data carries the keys that open it",
                      "create another database for the keys (its own role and backups) and "
                      "move them with mentorbot migrate-store")]
    if {"data_keys", "system_keys"} - _public_tables(keys):
        return [Check("key_store", "fail", f"{where} is not a mentorbot key store",
                      "check MENTORBOT_KEYSTORE")]
    checks = [Check("key_store", "ok", f"a database of its own ({where})")]
    if ring is None:
        return [*checks, Check("key_store", "warn", "keys not checked: no usable master key")]
    unwrapped = _unwrap_all(keys, ring, "public")  # type: ignore[arg-type]
    problems: list[Check] = []
    for kek_id, count in sorted(unwrapped.unknown_kek.items()):
        problems.append(Check(
            "key_store", "fail",
            f"{count} keys were wrapped by master key {kek_id}, not by the configured one "
            f"({ring.current_id}); fingerprints, not keys",
            "configure the master key they were wrapped by, or run mentorbot keys repair "
            "with MENTORBOT_PREVIOUS_MASTER_KEYS=<old key> (every bot stopped)"))
    if unwrapped.previous:
        problems.append(Check(
            "key_store", "warn",
            f"{_plural(unwrapped.previous, 'key')} still wrapped by a previous master key",
            "run mentorbot keys repair, then remove MENTORBOT_PREVIOUS_MASTER_KEYS"))
    if unwrapped.damaged:
        problems.append(Check(
            "key_store", "fail",
            f"{unwrapped.damaged} wrapped keys fail to unwrap with the right master key: the "
            "key store is damaged", "restore the key store from its latest backup"))
    # does this key store belong to this database: two databases, so two reads, no join
    people = {r[0] for r in data.execute(  # type: ignore[attr-defined]
        "SELECT subject_ref FROM participants").fetchall()}
    held = {r[0] for r in keys.execute(  # type: ignore[attr-defined]
        "SELECT subject_ref FROM data_keys").fetchall()}
    invites = data.execute("SELECT COUNT(*) FROM invites").fetchone()[0]  # type: ignore[attr-defined]
    lookup = keys.execute(  # type: ignore[attr-defined]
        "SELECT COUNT(*) FROM system_keys WHERE name = 'lookup'").fetchone()[0]
    if people - held:
        problems.append(Check(
            "key_store", "fail",
            f"{len(people - held)} participants have no data key: this key store does not "
            "belong to this database",
            "point MENTORBOT_KEYSTORE at the key store of this database, or restore its "
            "backup taken with the data"))
    if (people or invites) and not lookup:
        problems.append(Check(
            "key_store", "fail",
            "the key store has no lookup key, so nobody would be recognised: it does not "
            "belong to this database", "point MENTORBOT_KEYSTORE at this database's key store"))
    if problems:
        return [*checks, *problems]
    checks.append(Check("key_store", "ok",
                        f"{_plural(unwrapped.ok, 'key')} unwrap with the configured master key"))
    if not quick:
        checks.extend(_server_tamper_check(data, keys, ring))
    return checks


def _server_tamper_check(data: _Translated, keys: _Translated, ring: KeyRing) -> list[Check]:
    from storage import integrity

    row = keys.execute("SELECT wrapped, kek_id FROM system_keys WHERE name=?",  # type: ignore[attr-defined]
                       (integrity.INTEGRITY_KEY,)).fetchone()
    if row is None:
        return []  # signed the first time the bot opens the store
    try:
        key = ring.unwrap(WrappedKey(bytes(row[0]), row[1]),
                          f"system:{integrity.INTEGRITY_KEY}")
    except MasterKeyError:
        return []
    failed, named = integrity.problems(
        key, data.execute(integrity.CONSENT_ROWS).fetchall(),  # type: ignore[attr-defined]
        data.execute(integrity.ENTRY_ROWS).fetchall())  # type: ignore[attr-defined]
    if failed:
        return [Check("tamper", "fail", integrity.describe(failed, named), integrity.FIX)]
    return [Check("tamper", "ok", "every consent decision and entry status passes its check")]
