"""Configuration from the environment and ``.env``, with one clear line per problem."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.crypto import KeyRing, MasterKeyError, decode_key

DEFAULT_DB = Path("data/mentorbot.sqlite3")
# What @BotFather issues after the colon: URL-safe letters, digits, - and _.
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_-]{20,}")


class ConfigError(Exception):
    """A setting is missing or malformed. str(error) is a single line saying how to fix it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = Field(default=None)
    telegram_api_base_url: str | None = Field(default=None)
    mentorbot_db: Path = Field(default=DEFAULT_DB)
    mentorbot_keystore: Path | None = Field(default=None)
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

    @field_validator("mentorbot_log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return value

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
