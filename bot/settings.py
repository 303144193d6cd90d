"""Configuration from the environment and ``.env``, with one clear line per problem."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.crypto import KeyRing, MasterKeyError, decode_key
from storage.pg import is_postgres, redact

DEFAULT_DB = Path("data/mentorbot.sqlite3")
# What @BotFather issues after the colon: URL-safe letters, digits, - and _.
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_-]{20,}")


class ConfigError(Exception):
    """A setting is missing or malformed. str(error) is a single line saying how to fix it."""


# Where the data or the key store lives: a SQLite file (a Path), or a PostgreSQL connection
# string (a str starting postgresql://). Code that needs a file asks is_postgres first.
Target = Path | str


def _where(url: str) -> tuple[str, int, str]:
    """(host or socket folder, port, database) a connection string points at, for telling
    whether two of them name the same database; ValueError when it is malformed."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or [""])[0] or "/var/run/postgresql"
    try:
        port = parts.port or int((query.get("port") or ["5432"])[0])
    except ValueError:
        # never the string itself in the message: it may hold a password
        raise ValueError("a malformed postgresql:// connection string (check the port, and "
                         "percent-encode any of : / @ ? # in the password)") from None
    name = unquote(parts.path.lstrip("/")) or (query.get("dbname") or [""])[0]
    if not name:
        raise ValueError(f"{redact(url)} names no database (postgresql://ROLE@HOST/DATABASE)")
    if "/" in name:
        raise ValueError(f"{redact(url)}: the database name cannot hold '/'")
    return host, port, name


def _target(value: Any, setting: str) -> Target | None:
    if value is None or isinstance(value, Path):
        return value
    text = str(value)
    if text.startswith(("postgresql:", "postgres:")) and not is_postgres(text):
        raise ValueError("a PostgreSQL connection string starts postgresql:// "
                         "(postgresql://ROLE@HOST/DATABASE)")
    if not is_postgres(text):
        if "://" in text:
            raise ValueError(f"{setting} is a SQLite file path or a postgresql:// connection "
                             "string; no other scheme is known")
        return Path(text)
    _where(text)
    return text


def _password(url: str) -> list[str]:
    """The password a connection string holds (in the authority or as ?password=)."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    if parts.password:
        found.append(unquote(parts.password))
    found += parse_qs(parts.query).get("password", [])
    return list(dict.fromkeys(p for p in found if p))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = Field(default=None)
    telegram_api_base_url: str | None = Field(default=None)
    mentorbot_db: Target = Field(default=DEFAULT_DB)
    mentorbot_keystore: Target | None = Field(default=None, validate_default=True)
    mentorbot_master_key: SecretStr | None = Field(default=None)
    mentorbot_key_file: Path | None = Field(default=None)
    mentorbot_previous_master_keys: SecretStr | None = Field(default=None)
    mentorbot_log_level: str = Field(default="INFO")
    mentorbot_idle_hours: float = Field(default=12.0, gt=0)
    mentorbot_bot_username: str | None = Field(default=None)
    mentorbot_signpost_text: str | None = Field(default=None, max_length=3000)
    mentorbot_webhook_url: str | None = Field(default=None)
    mentorbot_webhook_secret: SecretStr | None = Field(default=None)
    mentorbot_webhook_listen: str = Field(default="127.0.0.1")
    mentorbot_webhook_port: int = Field(default=8080, gt=0, lt=65536)
    # Telegram's bot-wide limit, messages a second (0: none, for a Bot API server that has
    # none, such as a stand-in measuring the bot's own capacity)
    mentorbot_send_rate: float = Field(default=30.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: object) -> object:
        # .env.example ships keys with empty values; an empty value means "not set". Values
        # are stripped: a token pasted with its newline would pass a check and then fail
        # every request.
        if isinstance(data, dict):
            stripped = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
            return {k: v for k, v in stripped.items() if not (isinstance(v, str) and not v)}
        return data

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        token = value.get_secret_value().strip()
        head, sep, tail = token.partition(":")
        if not (sep and head.isascii() and head.isdigit() and _TOKEN_TAIL.fullmatch(tail)):
            raise ValueError("does not look like a bot token from @BotFather (digits:secret)")
        return SecretStr(token)

    @field_validator("mentorbot_db", mode="before")
    @classmethod
    def _database(cls, value: Any) -> Target | None:
        return _target(value, "MENTORBOT_DB")

    @field_validator("mentorbot_keystore", mode="before")
    @classmethod
    def _keystore(cls, value: Any, info: ValidationInfo) -> Target | None:
        store = _target(value, "MENTORBOT_KEYSTORE")
        database = info.data.get("mentorbot_db")
        if database is None:
            return store  # MENTORBOT_DB failed already; its own message says why
        if is_postgres(database):
            if store is None:
                raise ValueError(
                    "MENTORBOT_DB is on PostgreSQL, so the key store must be another "
                    "PostgreSQL database: set MENTORBOT_KEYSTORE=postgresql://ROLE@HOST/"
                    "DATABASE_keys (its own database, role and backups)")
            if not is_postgres(store):
                raise ValueError(
                    "with MENTORBOT_DB on PostgreSQL the key store is another PostgreSQL "
                    "database (postgresql://...), not a file")
            if _where(str(store)) == _where(str(database)):
                raise ValueError(
                    f"is the same database as MENTORBOT_DB ({redact(str(database))}): the "
                    "keys must live in another database, so that a copy of the data never "
                    "carries the keys that open it (createdb mentorbot_keys)")
        elif is_postgres(store):
            raise ValueError(
                "a PostgreSQL key store needs MENTORBOT_DB on PostgreSQL too; with a SQLite "
                "database the key store is a file (default: the database path plus .keys)")
        return store

    @field_validator("mentorbot_log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return value

    @property
    def on_postgres(self) -> bool:
        return is_postgres(self.mentorbot_db)

    @property
    def token(self) -> str | None:
        return self.telegram_bot_token.get_secret_value() if self.telegram_bot_token else None

    def secret_values(self) -> list[str]:
        """Every secret this configuration holds, for bot.logs.redact; never printed."""
        values = [
            s.get_secret_value()
            for s in (
                self.telegram_bot_token,
                self.mentorbot_master_key,
                self.mentorbot_webhook_secret,
            )
            if s is not None
        ]
        for target in (self.mentorbot_db, self.mentorbot_keystore):
            if isinstance(target, str):
                values += _password(target)
        if self.mentorbot_previous_master_keys is not None:
            values += self.mentorbot_previous_master_keys.get_secret_value().split(",")
        if self.mentorbot_key_file is not None:
            # keyring() reports an unreadable key file in its own words.
            with contextlib.suppress(OSError, UnicodeDecodeError):
                values.append(self.mentorbot_key_file.read_text(encoding="ascii").strip())
        return values

    def keyring(self) -> KeyRing:
        """The master key from MENTORBOT_MASTER_KEY or MENTORBOT_KEY_FILE."""
        if self.mentorbot_master_key is not None:
            source, text = "MENTORBOT_MASTER_KEY", self.mentorbot_master_key.get_secret_value()
        elif self.mentorbot_key_file is not None:
            source = "MENTORBOT_KEY_FILE"
            try:
                text = self.mentorbot_key_file.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"MENTORBOT_KEY_FILE: cannot read {self.mentorbot_key_file} "
                    f"({type(exc).__name__}); check the path and its permissions"
                ) from None
        else:
            raise ConfigError(
                "No master key: set MENTORBOT_MASTER_KEY or MENTORBOT_KEY_FILE "
                "(create one with 'mentorbot keys generate')"
            )
        try:
            current = decode_key(text)
            previous = tuple(
                decode_key(k)
                for k in (
                    self.mentorbot_previous_master_keys.get_secret_value().split(",")
                    if self.mentorbot_previous_master_keys
                    else []
                )
                if k.strip()
            )
        except MasterKeyError as exc:
            raise ConfigError(
                f"{source}: {exc}; it must be base64 of 32 random bytes "
                "(create one with 'mentorbot keys generate')"
            ) from None
        return KeyRing(current, previous)


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name}: {first['msg']} (see .env.example)") from None
