"""An offline stand-in for the Telegram Bot API.

Tests, benchmarks and the crash harness use this so that nothing ever touches the network:

* :class:`BotApiStandin` answers Bot API methods from memory, with the same status codes, error
  descriptions and JSON shapes Telegram uses, so python-telegram-bot maps them to the same
  exceptions (``RetryAfter``, ``Forbidden``, ``BadRequest``, ``NetworkError``...).
* :class:`StandinRequest` plugs it into PTB in-process (``ApplicationBuilder().request(...)``).
* :class:`LoopbackServer` serves it over HTTP on 127.0.0.1 for a bot running in another process;
  ``python -m tests.support.api_standin`` runs that server standalone, and
  :class:`ControlClient` drives its ``/_control/...`` endpoints.

Nothing in here logs message texts: records stay in memory (or in the opt-in state file).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import json
import logging
import math
import mimetypes
import os
import random
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any, Final, Self
from urllib.parse import parse_qsl, urlsplit

import httpx
from telegram.error import TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = [
    "DEFAULT_BOT_USERNAME",
    "ApiCall",
    "BotApiStandin",
    "ConnectionDropped",
    "ControlClient",
    "LoopbackServer",
    "StandinRequest",
    "UploadedFile",
    "main",
]

_LOGGER = logging.getLogger(__name__)

LOCALHOST: Final = "127.0.0.1"
DEFAULT_BOT_USERNAME: Final = "mentorbot_test_bot"
DEFAULT_BOT_ID: Final = 7_000_000_001

MAX_TEXT_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_CALLBACK_DATA_BYTES: Final = 64
MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024
MAX_DESCRIPTION_LENGTH: Final = 512
MAX_SHORT_DESCRIPTION_LENGTH: Final = 120
# Telegram stops accepting answerCallbackQuery some seconds after the press (the client's
# spinner gives up), and a bot may delete a message only within 48 hours of sending.
CALLBACK_QUERY_TTL: Final = 15.0
DELETE_WINDOW_SECONDS: Final = 48 * 3600

# Methods that Telegram's flood control applies to; getters and getUpdates are not throttled.
SENDING_METHODS: Final = frozenset(
    {"sendMessage", "sendDocument", "editMessageText", "editMessageReplyMarkup"}
)
# Methods that fail with 403 once the user has blocked the bot.
_BLOCKABLE_METHODS: Final = frozenset({"sendMessage", "sendDocument", "sendChatAction"})

# Telegram leaves these out of getUpdates unless they are asked for explicitly.
_OPT_IN_UPDATE_TYPES: Final = frozenset(
    {"chat_member", "message_reaction", "message_reaction_count"}
)

_CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

# Everything arrives as strings over form/multipart encodings (PTB JSON-encodes non-strings),
# so the field's type decides how to read it back, as Telegram does.
_JSON_FIELDS: Final = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "allowed_updates",
        "link_preview_options",
        "reply_parameters",
        "media",
    }
)
_INT_FIELDS: Final = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "message_thread_id",
        "cache_time",
        "max_connections",
        "reply_to_message_id",
        "user_id",
    }
)
_FLOAT_FIELDS: Final = frozenset({"timeout"})
_BOOL_FIELDS: Final = frozenset(
    {
        "show_alert",
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "disable_content_type_detection",
        "disable_web_page_preview",
        "allow_paid_broadcast",
    }
)

_INLINE_BUTTON_ACTIONS: Final = frozenset(
    {
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
_COMMAND_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
_BOT_COMMAND_IN_TEXT_RE: Final = re.compile(
    r"(?:(?<=\s)|^)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?"
)

_NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class ApiCall:
    """One request the stand-in received, in arrival order.

    ``status`` is ``None`` while the answer is pending (a long poll), 499 if the client went away
    first and 0 if the connection was dropped on purpose (``fault == "drop"``).
    """

    method: str
    params: dict[str, Any]
    ts: float
    status: int | None = None
    fault: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, as served by ``GET /_control/calls``."""
        return {
            "method": self.method,
            "params": self.params,
            "ts": self.ts,
            "status": self.status,
            "fault": self.fault,
        }


@dataclass(frozen=True)
class UploadedFile:
    """A multipart file part as the Bot API receives it."""

    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"

    def describe(self) -> dict[str, Any]:
        """Metadata only, so call records stay small and JSON-friendly."""
        return {"filename": self.filename, "mime_type": self.mime_type, "size": len(self.content)}


class ConnectionDropped(Exception):
    """Raised by :meth:`BotApiStandin.handle` when fault injection drops the connection."""


class _ApiError(Exception):
    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def answer(self) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return self.status, body


@dataclass(frozen=True)
class _Described:
    """A successful result that Telegram accompanies with a ``description``."""

    value: Any
    description: str


@dataclass(frozen=True)
class _PollWait:
    generation: int
    timeout: float
    limit: int


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    filename: str | None
    mime_type: str | None
    content: bytes

    def to_state(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_path": self.file_path,
            "filename": self.filename,
            "mime_type": self.mime_type,
            "content_b64": base64.b64encode(self.content).decode("ascii"),
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> _StoredFile:
        return cls(
            file_id=data["file_id"],
            file_unique_id=data["file_unique_id"],
            file_path=data["file_path"],
            filename=data.get("filename"),
            mime_type=data.get("mime_type"),
            content=base64.b64decode(data.get("content_b64", "")),
        )


# --------------------------------------------------------------------------------------------
# Text helpers: Telegram measures entity offsets in UTF-16 code units.
# --------------------------------------------------------------------------------------------


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _bad_entities(detail: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: can't parse entities: {detail}")


_HTML_TAGS: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


class _HtmlEntityParser(HTMLParser):
    """Telegram's HTML parse mode: a small tag whitelist, strict nesting, entities as output."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self._source = source
        self._line_starts = [0]
        for match in re.finditer("\n", source):
            self._line_starts.append(match.end())
        self.parts: list[str] = []
        self.pos16 = 0
        self.stack: list[tuple[str, dict[str, str | None], int, dict[str, Any]]] = []
        self.entities: list[dict[str, Any]] = []

    def _byte_offset(self) -> int:
        line, col = self.getpos()
        index = self._line_starts[line - 1] + col
        return len(self._source[:index].encode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag not in _HTML_TAGS or (tag == "span" and attributes.get("class") != "tg-spoiler"):
            raise _bad_entities(
                f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}'
            )
        self.stack.append((tag, attributes, self.pos16, {}))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            raise _bad_entities(f"Unexpected end tag at byte offset {self._byte_offset()}")
        open_tag, attributes, start, extra = self.stack.pop()
        if open_tag != tag:
            raise _bad_entities(
                f'Unmatched end tag at byte offset {self._byte_offset()}, expected "</{open_tag}>"'
                f', found "</{tag}>"'
            )
        kind = _HTML_TAGS[tag]
        length = self.pos16 - start
        css_class = attributes.get("class") or ""
        if kind == "code" and self.stack and self.stack[-1][0] == "pre":
            # <pre><code class="language-x"> is how a pre block gets its language.
            if css_class.startswith("language-"):
                self.stack[-1][3]["language"] = css_class.removeprefix("language-")
            return
        if length <= 0:
            return
        entity: dict[str, Any] = {"type": kind, "offset": start, "length": length}
        if kind == "text_link":
            entity["url"] = attributes.get("href") or ""
        elif kind == "custom_emoji":
            entity["custom_emoji_id"] = attributes.get("emoji-id") or ""
        elif kind == "blockquote" and "expandable" in attributes:
            entity["type"] = "expandable_blockquote"
        entity.update(extra)
        self.entities.append(entity)

    def _unsupported(self, *_: object) -> None:
        # Telegram has no comments, declarations or processing instructions in its HTML.
        raise _bad_entities(f"Unsupported HTML markup at byte offset {self._byte_offset()}")

    handle_comment = handle_decl = unknown_decl = handle_pi = _unsupported

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.pos16 += _utf16_len(data)

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        self.close()
        if self.stack:
            raise _bad_entities(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1][0]}"'
            )
        return "".join(self.parts), self.entities


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    parser = _HtmlEntityParser(text)
    try:
        parser.feed(text)
        return parser.result()
    except (AssertionError, ValueError):
        # html.parser asserts on markup such as "<![" that Telegram rejects anyway.
        raise _bad_entities(
            f"Unsupported HTML markup at byte offset {parser._byte_offset()}"
        ) from None


_MDV2_RESERVED: Final = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES: Final = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def _parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """MarkdownV2 as Telegram reads it, including its insistence on escaping reserved chars."""
    out: list[str] = []
    pos16 = 0
    entities: list[dict[str, Any]] = []
    open_: dict[str, tuple[int, int]] = {}
    links: list[tuple[int, int]] = []
    quote_start: int | None = None
    i = 0
    n = len(text)

    def byte_at(index: int) -> int:
        return len(text[:index].encode())

    def emit(chunk: str) -> None:
        nonlocal pos16
        out.append(chunk)
        pos16 += _utf16_len(chunk)

    def add(kind: str, start: int, **extra: Any) -> None:
        if pos16 > start:
            entities.append({"type": kind, "offset": start, "length": pos16 - start, **extra})

    def toggle(kind: str, index: int) -> None:
        if kind in open_:
            add(kind, open_.pop(kind)[0])
        else:
            open_[kind] = (pos16, byte_at(index))

    def verbatim_until(start: int, closer: str, kind: str) -> int:
        """Reads code/pre content, where only ` and \\ are special; returns index after closer."""
        j = start
        while j < n:
            if text[j] == "\\" and j + 1 < n and text[j + 1] in "`\\":
                emit(text[j + 1])
                j += 2
            elif text.startswith(closer, j):
                return j + len(closer)
            else:
                emit(text[j])
                j += 1
        raise _bad_entities(
            f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {byte_at(i)}"
        )

    line_start = True
    while i < n:
        c = text[i]
        if line_start and c == ">":
            if quote_start is None:
                quote_start = pos16
            line_start = False
            i += 1
            continue
        line_start = False
        if c == "\\":
            if i + 1 < n and 0 < ord(text[i + 1]) < 127:
                emit(text[i + 1])
                i += 2
            else:
                emit(c)
                i += 1
        elif c == "`":
            start16 = pos16
            if text.startswith("```", i):
                newline = text.find("\n", i + 3)
                header = text[i + 3 : newline] if newline != -1 else ""
                language = header.strip() if header and " " not in header.strip() else ""
                body_start = newline + 1 if language or (newline != -1 and not header) else i + 3
                i = verbatim_until(body_start, "```", "pre")
                add("pre", start16, **({"language": language} if language else {}))
            else:
                i = verbatim_until(i + 1, "`", "code")
                add("code", start16)
        elif c == "*":
            toggle("bold", i)
            i += 1
        elif c == "_":
            if text.startswith("__", i):
                toggle("underline", i)
                i += 2
            else:
                toggle("italic", i)
                i += 1
        elif c == "~":
            toggle("strikethrough", i)
            i += 1
        elif c == "|" and text.startswith("||", i):
            toggle("spoiler", i)
            i += 2
        elif c == "[":
            links.append((pos16, byte_at(i)))
            i += 1
        elif c == "]" and links and text.startswith("(", i + 1):
            start16, _ = links.pop()
            j = i + 2
            url: list[str] = []
            while j < n and text[j] != ")":
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                url.append(text[j])
                j += 1
            if j >= n:
                raise _bad_entities(f"Can't find end of a URL at byte offset {byte_at(i + 2)}")
            add("text_link", start16, url="".join(url))
            i = j + 1
        elif c == "\n":
            if quote_start is not None and not text.startswith(">", i + 1):
                add("blockquote", quote_start)
                quote_start = None
            emit(c)
            line_start = True
            i += 1
        elif c in _MDV2_RESERVED:
            raise _bad_entities(
                f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            emit(c)
            i += 1
    if quote_start is not None:
        add("blockquote", quote_start)
    pending = [(byte, kind) for kind, (_, byte) in open_.items()]
    pending += [(byte, "text_link") for _, byte in links]
    if pending:
        byte, kind = min(pending)
        raise _bad_entities(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {byte}")
    return "".join(out), entities


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram strips surrounding whitespace and shifts/clips entities to match."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = _utf16_len(text[: len(text) - len(text.lstrip())])
    limit = _utf16_len(stripped)
    fixed: list[dict[str, Any]] = []
    for entity in entities:
        start = max(0, entity["offset"] - shift)
        end = min(limit, entity["offset"] + entity["length"] - shift)
        if end > start:
            fixed.append({**entity, "offset": start, "length": end - start})
    return stripped, fixed


def _format(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    if parse_mode:
        mode = parse_mode.lower()
        if mode == "html":
            plain, found = _parse_html(text)
        elif mode == "markdownv2":
            plain, found = _parse_markdown_v2(text)
        elif mode == "markdown":
            # Legacy Markdown is deprecated; pass it through rather than half-emulate it.
            plain, found = text, []
        else:
            raise _ApiError(400, "Bad Request: unsupported parse_mode")
    else:
        plain = text
        found = [dict(e) for e in entities] if isinstance(entities, list) else []
    found.sort(key=lambda e: (e["offset"], -e["length"]))
    return _trim(plain, found)


def _detect_commands(text: str) -> list[dict[str, Any]]:
    return [
        {
            "offset": _utf16_len(text[: match.start()]),
            "length": _utf16_len(match.group()),
            "type": "bot_command",
        }
        for match in _BOT_COMMAND_IN_TEXT_RE.finditer(text)
    ]


# --------------------------------------------------------------------------------------------
# Parameter parsing
# --------------------------------------------------------------------------------------------


def _coerce(name: str, value: Any) -> Any:
    if isinstance(value, UploadedFile):
        return value
    if name in _JSON_FIELDS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise _ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    if name in _INT_FIELDS and not isinstance(value, int):
        try:
            return int(str(value))
        except ValueError:
            raise _ApiError(400, f"Bad Request: {name} is invalid") from None
    if name in _FLOAT_FIELDS and not isinstance(value, int | float):
        try:
            return float(str(value))
        except ValueError:
            raise _ApiError(400, f"Bad Request: {name} is invalid") from None
    if name in _BOOL_FIELDS and isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    if name == "chat_id" and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return value


def _printable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: value.describe() if isinstance(value, UploadedFile) else value
        for key, value in params.items()
    }


def parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """Splits a ``multipart/form-data`` body: file parts become :class:`UploadedFile`."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise _ApiError(400, "Bad Request: invalid multipart boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    params: dict[str, Any] = {}
    for raw_part in body.split(delimiter)[1:]:
        if raw_part.startswith(b"--"):
            break
        part = raw_part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = _header_params(headers.get("content-disposition", ""))
        name = disposition.get("name")
        if not name:
            continue
        if "filename" in disposition:
            params[name] = UploadedFile(
                filename=disposition["filename"],
                content=content,
                mime_type=headers.get("content-type", "application/octet-stream"),
            )
        else:
            params[name] = content.decode("utf-8", "replace")
    return params


def _header_params(value: str) -> dict[str, str]:
    """Parameters of a Content-Disposition header; httpx %-escapes quotes and newlines."""
    found: dict[str, str] = {}
    for match in re.finditer(r';\s*([\w*-]+)=(?:"((?:[^"\\]|\\.)*)"|([^;]*))', value):
        raw = match.group(2) if match.group(2) is not None else match.group(3).strip()
        raw = re.sub(r"\\(.)", r"\1", raw)
        found[match.group(1).lower()] = (
            raw.replace("%22", '"').replace("%0A", "\n").replace("%0D", "\r")
        )
    return found


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """Reads a Bot API request body in any of the encodings Telegram accepts."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if kind == "application/json":
        try:
            loaded = json.loads(body)
        except ValueError:
            raise _ApiError(400, "Bad Request: can't parse JSON request body") from None
        if not isinstance(loaded, dict):
            raise _ApiError(400, "Bad Request: JSON request body must be an object")
        return loaded
    if kind == "multipart/form-data":
        return parse_multipart(body, content_type)
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _sliding_window(rate: float, base_window: float) -> tuple[float, int]:
    """Window length and capacity for a rate; rates below 1/window stretch the window."""
    window = max(base_window, 1.0 / rate)
    return window, max(1, int(rate * window + 1e-9))


# --------------------------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------------------------

_Handler = Callable[[dict[str, Any]], Any]


class BotApiStandin:
    """In-memory Bot API: validates like Telegram, records every call, and queues updates.

    Thread-safe: the loopback server may run in its own thread while a test pushes updates
    and reads records from another.
    """

    def __init__(
        self,
        *,
        bot_id: int | None = None,
        token: str | None = None,
        bot_first_name: str = "Mentorbot Test",
        bot_username: str = DEFAULT_BOT_USERNAME,
        overall_per_second: float | None = None,
        per_chat_per_second: float | None = None,
        rate_window: float = 1.0,
        retry_after: int = 1,
        enforce_retry_after: bool = True,
        blocked_chats: Iterable[int] = (),
        strict_chats: bool = False,
        fault_seed: int = 0,
        fault_429: float = 0.0,
        fault_500: float = 0.0,
        fault_502: float = 0.0,
        fault_drop: float = 0.0,
        fault_slow: float = 0.0,
        slow_delay: float = 0.5,
        fault_retry_after: int | None = None,
        fault_methods: Iterable[str] | None = None,
        first_update_id: int = 1,
        callback_query_ttl: float | None = CALLBACK_QUERY_TTL,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if bot_id is None and token and token.split(":", 1)[0].isdigit():
            bot_id = int(token.split(":", 1)[0])
        self.bot_id: int = bot_id if bot_id is not None else DEFAULT_BOT_ID
        self.token = token
        self.bot_first_name = bot_first_name
        self.bot_username = bot_username
        # Flood control; None disables a limit.
        self.overall_per_second = overall_per_second
        self.per_chat_per_second = per_chat_per_second
        self.rate_window = rate_window
        self.retry_after = retry_after
        self.enforce_retry_after = enforce_retry_after
        self.rate_limited_methods: set[str] = set(SENDING_METHODS)
        self.blocked_chats: set[int] = set(blocked_chats)
        self.strict_chats = strict_chats
        # Fault injection; probabilities per call, drawn from a seeded RNG for repeatability.
        self.fault_429 = fault_429
        self.fault_500 = fault_500
        self.fault_502 = fault_502
        self.fault_drop = fault_drop
        self.fault_slow = fault_slow
        self.slow_delay = slow_delay
        self.fault_retry_after = fault_retry_after
        self.fault_methods: set[str] | None = set(fault_methods) if fault_methods else None
        self.rng = random.Random(fault_seed)
        self.clock = clock
        self.wall_clock = wall_clock
        self.callback_query_ttl = callback_query_ttl

        self.calls: list[ApiCall] = []
        self.count_429 = 0
        self.fault_counts: dict[str, int] = {
            "429": 0,
            "500": 0,
            "502": 0,
            "drop": 0,
            "slow": 0,
        }
        self.revision = 0

        self._lock = threading.RLock()
        self._chats: dict[int, dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._sent: list[dict[str, Any]] = []
        self._documents: list[dict[str, Any]] = []
        self._files: dict[str, _StoredFile] = {}
        self._file_seq = 0
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._descriptions: dict[str, str] = {}
        self._short_descriptions: dict[str, str] = {}
        self._callback_queries: dict[str, bool] = {}
        self._callback_born: dict[str, float] = {}
        self._callback_seq = 0
        self._webhook: dict[str, Any] = {}
        self._queue: deque[dict[str, Any]] = deque()
        self._last_update_id = first_update_id - 1
        self._last_queued_id = first_update_id - 1
        self._allowed_updates: set[str] | None = None
        self._poll_generation = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._overall_hits: deque[float] = deque()
        self._chat_hits: dict[int | str, deque[float]] = {}
        self._overall_until = 0.0
        self._chat_until: dict[int | str, float] = {}

        self._handlers: dict[str, tuple[str, _Handler]] = {}
        for name, func in (
            ("getMe", self._get_me),
            ("sendMessage", self._send_message),
            ("editMessageText", self._edit_message_text),
            ("editMessageReplyMarkup", self._edit_message_reply_markup),
            ("deleteMessage", self._delete_message),
            ("answerCallbackQuery", self._answer_callback_query),
            ("sendDocument", self._send_document),
            ("sendChatAction", self._send_chat_action),
            ("setMyCommands", self._set_my_commands),
            ("getMyCommands", self._get_my_commands),
            ("deleteMyCommands", self._delete_my_commands),
            ("setMyDescription", self._set_my_description),
            ("getMyDescription", self._get_my_description),
            ("setMyShortDescription", self._set_my_short_description),
            ("getMyShortDescription", self._get_my_short_description),
            ("getFile", self._get_file),
            ("getUpdates", self._get_updates_unused),
            ("setWebhook", self._set_webhook),
            ("deleteWebhook", self._delete_webhook),
            ("getWebhookInfo", self._get_webhook_info),
            ("close", self._close),
            ("logOut", self._log_out),
        ):
            # Telegram matches method names case-insensitively.
            self._handlers[name.lower()] = (name, func)

    # ---------------------------------------------------------------- request entry points

    async def handle(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        token: str | None = None,
        allow_drop: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """Answers one Bot API call: ``(http_status, json_body)``.

        getUpdates long-polls for real (asyncio); injected slowness delays the answer *after*
        the side effect, like a real timeout that still delivered the message. With
        ``allow_drop`` (loopback transport only) injected drops raise :class:`ConnectionDropped`.
        """
        call, answer, pending, slow = self._begin(
            method, params, token=token, allow_drop=allow_drop, may_wait=True
        )
        try:
            if pending is not None:
                answer = await self._long_poll(pending)
                self._finish(call, answer)
            if slow:
                await asyncio.sleep(self.slow_delay)
        except asyncio.CancelledError:
            with self._lock:
                if call.status is None:
                    call.status = 499
            raise
        assert answer is not None
        return answer

    def handle_nowait(
        self, method: str, params: Mapping[str, Any], *, token: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Synchronous :meth:`handle`: no long-poll waiting, no slow answers, no drops."""
        _, answer, _, _ = self._begin(
            method, params, token=token, allow_drop=False, may_wait=False
        )
        assert answer is not None
        return answer

    def _begin(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        token: str | None,
        allow_drop: bool,
        may_wait: bool,
    ) -> tuple[ApiCall, tuple[int, dict[str, Any]] | None, _PollWait | None, bool]:
        with self._lock:
            entry = self._handlers.get(method.lower())
            canonical = entry[0] if entry else method
            call = ApiCall(canonical, _printable(params), self.clock())
            self.calls.append(call)
            answer: tuple[int, dict[str, Any]] | None = None
            pending: _PollWait | None = None
            slow = False
            try:
                if self.token is not None and token is not None and token != self.token:
                    raise _ApiError(401, "Unauthorized")
                if entry is None:
                    raise _ApiError(404, "Not Found")
                kind, slow = self._draw_fault(canonical, allow_drop)
                if kind == "drop":
                    call.status = 0
                    call.fault = "drop"
                    self.revision += 1
                    raise ConnectionDropped(canonical)
                if kind is not None:
                    call.fault = kind
                    raise self._injected_error(kind)
                normalised = {key: _coerce(key, value) for key, value in params.items()}
                call.params = _printable(normalised)
                if canonical == "getUpdates":
                    outcome = self._get_updates(normalised, may_wait=may_wait)
                    if isinstance(outcome, _PollWait):
                        pending = outcome
                    else:
                        answer = (200, {"ok": True, "result": outcome})
                else:
                    result = entry[1](normalised)
                    answer = (200, self._ok_body(result))
            except _ApiError as exc:
                answer = exc.answer()
            except ConnectionDropped:
                raise
            except Exception as exc:
                # A stand-in bug must look like a server fault, not kill the transport. Only the
                # exception type is logged: its message could quote parameters (message texts).
                _LOGGER.error("bot api stand-in failed on %s: %s", canonical, type(exc).__name__)
                call.fault = f"bug:{type(exc).__name__}"
                answer = _ApiError(500, "Internal Server Error").answer()
            if answer is not None:
                self._finish(call, answer)
            if slow:
                call.fault = call.fault or "slow"
            return call, answer, pending, slow

    @staticmethod
    def _ok_body(result: Any) -> dict[str, Any]:
        if isinstance(result, _Described):
            return {"ok": True, "result": result.value, "description": result.description}
        return {"ok": True, "result": result}

    def _finish(self, call: ApiCall, answer: tuple[int, dict[str, Any]]) -> None:
        with self._lock:
            call.status = answer[0]
            if answer[0] == 429:
                self.count_429 += 1
            self.revision += 1
        _LOGGER.debug("bot api stand-in: %s -> %s", call.method, answer[0])

    def _draw_fault(self, method: str, allow_drop: bool) -> tuple[str | None, bool]:
        if self.fault_methods is not None and method not in self.fault_methods:
            return None, False
        bands = (
            ("429", self.fault_429),
            ("500", self.fault_500),
            ("502", self.fault_502),
            ("drop", self.fault_drop),
        )
        if not any(p > 0 for _, p in bands) and self.fault_slow <= 0:
            return None, False
        # Always two draws so the sequence does not depend on which faults are enabled.
        roll, slow_roll = self.rng.random(), self.rng.random()
        kind: str | None = None
        edge = 0.0
        for name, probability in bands:
            edge += probability
            if roll < edge:
                kind = name
                break
        if kind == "drop" and not allow_drop:
            kind = None
        slow = kind is None and slow_roll < self.fault_slow
        if kind is not None:
            self.fault_counts[kind] += 1
        if slow:
            self.fault_counts["slow"] += 1
        return kind, slow

    def _injected_error(self, kind: str) -> _ApiError:
        if kind == "429":
            seconds = self.fault_retry_after or self.retry_after
            return _ApiError(
                429,
                f"Too Many Requests: retry after {seconds}",
                {"retry_after": seconds},
            )
        if kind == "500":
            return _ApiError(500, "Internal Server Error")
        return _ApiError(502, "Bad Gateway")

    # ---------------------------------------------------------------- chats and messages

    def add_chat(
        self,
        user_id: int,
        first_name: str = "Test",
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> dict[str, Any]:
        """Registers (or updates) a private chat, as if the user had pressed Start."""
        with self._lock:
            info: dict[str, Any] = {"id": user_id, "first_name": first_name}
            if last_name:
                info["last_name"] = last_name
            if username:
                info["username"] = username
            if language_code:
                info["language_code"] = language_code
            self._chats[user_id] = info
            self.revision += 1
            return dict(info)

    def _user(
        self, user_id: int, first_name: str | None, username: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        known = self._chats.get(user_id)
        if known is None or first_name is not None or username is not None:
            base = known or {}
            self.add_chat(
                user_id,
                first_name or base.get("first_name", "Test"),
                username=username or base.get("username"),
                last_name=base.get("last_name"),
                language_code=base.get("language_code", "en"),
            )
        info = self._chats[user_id]
        user = {"id": user_id, "is_bot": False, "first_name": info["first_name"]}
        for key in ("last_name", "username", "language_code"):
            if key in info:
                user[key] = info[key]
        return user, self._chat_dict(user_id)

    def _chat_dict(self, chat_id: int) -> dict[str, Any]:
        if chat_id < 0:
            kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            return {"id": chat_id, "title": f"Chat {chat_id}", "type": kind}
        info = self._chats.get(chat_id, {"first_name": f"User{chat_id}"})
        chat: dict[str, Any] = {"id": chat_id, "first_name": info["first_name"]}
        for key in ("last_name", "username"):
            if key in info:
                chat[key] = info[key]
        chat["type"] = "private"
        return chat

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _alloc_message_id(self, chat_id: int) -> int:
        # Private chats number messages from both sides in one sequence.
        next_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = next_id + 1
        return next_id

    def _new_message(
        self, chat_id: int, sender: dict[str, Any], chat: dict[str, Any], *, by_bot: bool
    ) -> dict[str, Any]:
        message_id = self._alloc_message_id(chat_id)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": sender,
            "chat": chat,
            "date": int(self.wall_clock()),
        }
        self._messages[(chat_id, message_id)] = {
            "message": message,
            "by_bot": by_bot,
            "deleted": False,
        }
        return message

    def _resolve_chat(self, params: Mapping[str, Any]) -> int:
        if "chat_id" not in params or params["chat_id"] in ("", None):
            raise _ApiError(400, "Bad Request: chat_id is empty")
        chat_id = params["chat_id"]
        if not isinstance(chat_id, int) or isinstance(chat_id, bool) or chat_id == 0:
            # @usernames only address public channels/supergroups, which the stand-in has none of.
            raise _ApiError(400, "Bad Request: chat not found")
        if self.strict_chats and chat_id not in self._chats:
            if chat_id > 0:
                raise _ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            raise _ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _check_send_allowed(self, method: str, chat_id: int | None) -> None:
        if chat_id is not None and method in _BLOCKABLE_METHODS and chat_id in self.blocked_chats:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        if method in self.rate_limited_methods:
            self._check_rate(chat_id)

    def _check_rate(self, chat_id: int | None) -> None:
        now = self.clock()
        if self.enforce_retry_after:
            chat_until = self._chat_until.get(chat_id, 0.0) if chat_id is not None else 0.0
            until = max(self._overall_until, chat_until)
            if now < until:
                raise self._too_many(max(1, math.ceil(until - now)))
        overall = self.overall_per_second
        per_chat = self.per_chat_per_second
        if overall:
            window, capacity = _sliding_window(overall, self.rate_window)
            hits = self._overall_hits
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= capacity:
                self._overall_until = now + self.retry_after
                raise self._too_many(self.retry_after)
        chat_hits: deque[float] | None = None
        if per_chat and chat_id is not None:
            window, capacity = _sliding_window(per_chat, self.rate_window)
            chat_hits = self._chat_hits.setdefault(chat_id, deque())
            while chat_hits and chat_hits[0] <= now - window:
                chat_hits.popleft()
            if len(chat_hits) >= capacity:
                self._chat_until[chat_id] = now + self.retry_after
                raise self._too_many(self.retry_after)
        # Only accepted requests take up room in the windows, as with Telegram.
        if overall:
            self._overall_hits.append(now)
        if chat_hits is not None:
            chat_hits.append(now)

    @staticmethod
    def _too_many(seconds: int) -> _ApiError:
        return _ApiError(
            429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
        )

    @staticmethod
    def _validate_markup(markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _ApiError(
                    400,
                    'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup '
                    "must be an Array of Arrays",
                )
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise _ApiError(
                            400,
                            "Bad Request: can't parse inline keyboard button: "
                            'Field "text" must be of type String',
                        )
                    if not _INLINE_BUTTON_ACTIONS & button.keys():
                        raise _ApiError(
                            400,
                            "Bad Request: can't parse inline keyboard button: "
                            "Text buttons are unallowed in the inline keyboard",
                        )
                    data = button.get("callback_data")
                    if data is not None and not (
                        isinstance(data, str)
                        and 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
                    ):
                        raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                    if "url" in button and not button["url"]:
                        raise _ApiError(400, "Bad Request: BUTTON_URL_INVALID")
            return markup
        if {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
            return markup
        raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")

    def _reply_to(self, chat_id: int, params: Mapping[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters")
        target = reply.get("message_id") if isinstance(reply, dict) else None
        target = target or params.get("reply_to_message_id")
        if not target:
            return None
        record = self._messages.get((chat_id, int(target)))
        if record is None or record["deleted"]:
            allow = params.get("allow_sending_without_reply") or (
                isinstance(reply, dict) and reply.get("allow_sending_without_reply")
            )
            if allow:
                return None
            raise _ApiError(400, "Bad Request: message to be replied not found")
        replied = copy.deepcopy(record["message"])
        replied.pop("reply_to_message", None)
        return replied

    def _store_file(
        self, kind: str, filename: str | None, mime_type: str | None, content: bytes
    ) -> _StoredFile:
        self._file_seq += 1
        seq = self._file_seq
        ext = Path(filename).suffix if filename else ""
        if not ext and mime_type:
            ext = mimetypes.guess_extension(mime_type) or ""
        prefix = {"document": "BQACAgQ", "photo": "AgACAgQ", "voice": "AwACAgQ"}.get(
            kind, "CAACAgQ"
        )
        stored = _StoredFile(
            file_id=f"{prefix}AAxkBAAI{seq:06d}{self.bot_id % 100000:05d}",
            file_unique_id=f"AgAD{seq:06d}",
            file_path=f"{kind}s/file_{seq}{ext}",
            filename=filename,
            mime_type=mime_type,
            content=content,
        )
        self._files[stored.file_id] = stored
        return stored

    # ---------------------------------------------------------------- method handlers

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._resolve_chat(params)
        raw = params.get("text")
        if raw is None or raw == "":
            raise _ApiError(400, "Bad Request: message text is empty")
        text, entities = _format(str(raw), params.get("parse_mode"), params.get("entities"))
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise _ApiError(400, "Bad Request: message is too long")
        markup = self._validate_markup(params.get("reply_markup"))
        replied = self._reply_to(chat_id, params)
        self._check_send_allowed("sendMessage", chat_id)
        message = self._new_message(
            chat_id, self._bot_user(), self._chat_dict(chat_id), by_bot=True
        )
        if replied is not None:
            message["reply_to_message"] = replied
        message["text"] = text
        if entities:
            message["entities"] = entities
        if markup is not None and "inline_keyboard" in markup:
            # Telegram only reflects inline keyboards back in the sent Message.
            message["reply_markup"] = markup
        self._sent.append(
            {
                "method": "sendMessage",
                "chat_id": chat_id,
                "message_id": message["message_id"],
                "text": text,
                "parse_mode": params.get("parse_mode"),
                "entities": entities,
                "reply_markup": markup,
                "date": message["date"],
            }
        )
        return copy.deepcopy(message)

    def _editable(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "inline_message_id" in params:
            raise _ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat_id = self._resolve_chat(params)
        if "message_id" not in params:
            raise _ApiError(400, "Bad Request: message identifier is not specified")
        record = self._messages.get((chat_id, params["message_id"]))
        if record is None or record["deleted"]:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if not record["by_bot"]:
            raise _ApiError(400, "Bad Request: message can't be edited")
        return chat_id, record

    def _apply_edit(
        self,
        method: str,
        chat_id: int,
        record: dict[str, Any],
        changes: dict[str, Any],
        markup: dict[str, Any] | None,
    ) -> dict[str, Any]:
        message = record["message"]
        inline = markup if markup is not None and "inline_keyboard" in markup else None
        unchanged = all(message.get(key) == value for key, value in changes.items())
        if unchanged and message.get("reply_markup") == inline:
            raise _ApiError(400, _NOT_MODIFIED)
        self._check_send_allowed(method, chat_id)
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        # An edit without reply_markup drops the inline keyboard, as Telegram does.
        if inline is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = inline
        message["edit_date"] = int(self.wall_clock())
        return copy.deepcopy(message)

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, record = self._editable(params)
        raw = params.get("text")
        if raw is None or raw == "":
            raise _ApiError(400, "Bad Request: text must be non-empty")
        text, entities = _format(str(raw), params.get("parse_mode"), params.get("entities"))
        if not text:
            raise _ApiError(400, "Bad Request: text must be non-empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        if "text" not in record["message"]:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        markup = self._validate_markup(params.get("reply_markup"))
        return self._apply_edit(
            "editMessageText",
            chat_id,
            record,
            {"text": text, "entities": entities or None},
            markup,
        )

    def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, record = self._editable(params)
        markup = self._validate_markup(params.get("reply_markup"))
        return self._apply_edit("editMessageReplyMarkup", chat_id, record, {}, markup)

    def _delete_message(self, params: dict[str, Any]) -> bool:
        chat_id = self._resolve_chat(params)
        if "message_id" not in params:
            raise _ApiError(400, "Bad Request: message identifier is not specified")
        record = self._messages.get((chat_id, params["message_id"]))
        if record is None or record["deleted"]:
            raise _ApiError(400, "Bad Request: message to delete not found")
        if self.wall_clock() - record["message"]["date"] >= DELETE_WINDOW_SECONDS:
            raise _ApiError(400, "Bad Request: message can't be deleted for everyone")
        record["deleted"] = True
        return True

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        born = self._callback_born.get(query_id)
        expired = (
            self.callback_query_ttl is not None
            and born is not None
            and self.clock() - born > self.callback_query_ttl
        )
        if expired or self._callback_queries.get(query_id) is not False:
            # Unknown, or already answered: Telegram says the same for both.
            raise _ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is "
                "invalid",
            )
        self._callback_queries[query_id] = True
        return True

    def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._resolve_chat(params)
        document = params.get("document")
        if isinstance(document, str) and document.startswith("attach://"):
            document = params.get(document.removeprefix("attach://"))
        if document is None or document == "":
            raise _ApiError(400, "Bad Request: there is no document in the request")
        caption_raw = params.get("caption")
        caption, caption_entities = ("", [])
        if caption_raw:
            caption, caption_entities = _format(
                str(caption_raw), params.get("parse_mode"), params.get("caption_entities")
            )
            if len(caption) > MAX_CAPTION_LENGTH:
                raise _ApiError(400, "Bad Request: message caption is too long")
        markup = self._validate_markup(params.get("reply_markup"))
        if isinstance(document, UploadedFile):
            if not document.content:
                raise _ApiError(400, "Bad Request: file must be non-empty")
            if len(document.content) > MAX_UPLOAD_BYTES:
                raise _ApiError(413, "Request Entity Too Large")
            mime = document.mime_type
            if mime == "application/octet-stream":
                mime = mimetypes.guess_type(document.filename)[0] or mime
            stored: _StoredFile | None = None
            upload: tuple[str | None, str | None, bytes] = (
                document.filename,
                mime,
                document.content,
            )
        elif isinstance(document, str) and document in self._files:
            stored = self._files[document]
            upload = (stored.filename, stored.mime_type, stored.content)
        elif isinstance(document, str) and re.match(r"https?://", document):
            name = Path(urlsplit(document).path).name or "file"
            stored = None
            upload = (name, mimetypes.guess_type(name)[0], b"")
        else:
            raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        replied = self._reply_to(chat_id, params)
        self._check_send_allowed("sendDocument", chat_id)
        if stored is None:
            stored = self._store_file("document", *upload)
        message = self._new_message(
            chat_id, self._bot_user(), self._chat_dict(chat_id), by_bot=True
        )
        if replied is not None:
            message["reply_to_message"] = replied
        doc: dict[str, Any] = {}
        if stored.filename:
            doc["file_name"] = stored.filename
        if stored.mime_type:
            doc["mime_type"] = stored.mime_type
        doc.update(
            file_id=stored.file_id,
            file_unique_id=stored.file_unique_id,
            file_size=len(stored.content),
        )
        message["document"] = doc
        if caption:
            message["caption"] = caption
            if caption_entities:
                message["caption_entities"] = caption_entities
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._documents.append(
            {
                "chat_id": chat_id,
                "message_id": message["message_id"],
                "filename": stored.filename,
                "mime_type": stored.mime_type,
                "content": stored.content,
                "size": len(stored.content),
                "caption": caption or None,
                "file_id": stored.file_id,
                "date": message["date"],
            }
        )
        return copy.deepcopy(message)

    def _send_chat_action(self, params: dict[str, Any]) -> bool:
        chat_id = self._resolve_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise _ApiError(400, "Bad Request: wrong parameter action in request")
        self._check_send_allowed("sendChatAction", chat_id)
        return True

    @staticmethod
    def _scope_key(params: Mapping[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise _ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise _ApiError(400, "Bad Request: too many commands")
        cleaned: list[dict[str, Any]] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _ApiError(400, "Bad Request: can't parse BotCommand JSON object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.fullmatch(name):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _ApiError(400, "Bad Request: command description must be non-empty")
            cleaned.append({"command": name, "description": description})
        self._commands[self._scope_key(params)] = cleaned
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return copy.deepcopy(self._commands.get(self._scope_key(params), []))

    def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        self._commands.pop(self._scope_key(params), None)
        return True

    def _set_my_description(self, params: dict[str, Any]) -> bool:
        text = str(params.get("description") or "")
        if len(text) > MAX_DESCRIPTION_LENGTH:
            raise _ApiError(400, "Bad Request: description is too long")
        self._descriptions[str(params.get("language_code") or "")] = text
        return True

    def _get_my_description(self, params: dict[str, Any]) -> dict[str, str]:
        language = str(params.get("language_code") or "")
        return {"description": self._descriptions.get(language, "")}

    def _set_my_short_description(self, params: dict[str, Any]) -> bool:
        text = str(params.get("short_description") or "")
        if len(text) > MAX_SHORT_DESCRIPTION_LENGTH:
            raise _ApiError(400, "Bad Request: short description is too long")
        self._short_descriptions[str(params.get("language_code") or "")] = text
        return True

    def _get_my_short_description(self, params: dict[str, Any]) -> dict[str, str]:
        language = str(params.get("language_code") or "")
        return {"short_description": self._short_descriptions.get(language, "")}

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    def _get_updates_unused(self, params: dict[str, Any]) -> Any:
        raise AssertionError("getUpdates is answered by _get_updates")  # pragma: no cover

    def _set_webhook(self, params: dict[str, Any]) -> _Described:
        url = str(params.get("url") or "")
        if not url:
            return self._delete_webhook(params)
        if not url.startswith("https://"):
            raise _ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if params.get("drop_pending_updates"):
            self._queue.clear()
        self._webhook = {
            "url": url,
            "max_connections": params.get("max_connections", 40),
            "allowed_updates": params.get("allowed_updates"),
            "has_secret_token": bool(params.get("secret_token")),
        }
        return _Described(True, "Webhook was set")

    def _delete_webhook(self, params: dict[str, Any]) -> _Described:
        if params.get("drop_pending_updates"):
            self._queue.clear()
        existed = bool(self._webhook)
        self._webhook = {}
        return _Described(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if self._webhook:
            info["max_connections"] = self._webhook["max_connections"]
            if self._webhook.get("allowed_updates"):
                info["allowed_updates"] = self._webhook["allowed_updates"]
        return info

    def _close(self, params: dict[str, Any]) -> bool:
        return True

    def _log_out(self, params: dict[str, Any]) -> bool:
        return True

    # ---------------------------------------------------------------- getUpdates

    def _get_updates(
        self, params: Mapping[str, Any], *, may_wait: bool
    ) -> list[dict[str, Any]] | _PollWait:
        if self._webhook:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        # A newer long poll terminates an older one, as with two bot instances on one token.
        self._poll_generation += 1
        self._notify_waiters()
        if "allowed_updates" in params and isinstance(params["allowed_updates"], list):
            self._allowed_updates = set(params["allowed_updates"]) or None
        offset = int(params.get("offset") or 0)
        if offset > 0:
            while self._queue and self._queue[0]["update_id"] < offset:
                self._queue.popleft()
        elif offset < 0:
            while len(self._queue) > -offset:
                self._queue.popleft()
        limit = min(100, max(1, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        updates = self._available(limit)
        if updates or timeout <= 0 or not may_wait:
            return updates
        return _PollWait(self._poll_generation, timeout, limit)

    def _available(self, limit: int) -> list[dict[str, Any]]:
        allowed = self._allowed_updates
        if allowed is None:
            kept = [u for u in self._queue if _update_type(u) not in _OPT_IN_UPDATE_TYPES]
        else:
            kept = [u for u in self._queue if _update_type(u) in allowed]
        if len(kept) != len(self._queue):
            # Telegram never delivers updates of types the bot did not subscribe to.
            self._queue = deque(kept)
        return copy.deepcopy(kept[:limit])

    async def _long_poll(self, wait: _PollWait) -> tuple[int, dict[str, Any]]:
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        deadline = time.monotonic() + wait.timeout
        with self._lock:
            self._waiters.append(waiter)
        try:
            while True:
                with self._lock:
                    if self._poll_generation != wait.generation:
                        return _ApiError(
                            409,
                            "Conflict: terminated by other getUpdates request; make sure that "
                            "only one bot instance is running",
                        ).answer()
                    updates = self._available(wait.limit)
                    if updates:
                        return 200, {"ok": True, "result": updates}
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return 200, {"ok": True, "result": []}
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
                event.clear()
        finally:
            with self._lock:
                self._waiters.remove(waiter)

    def _notify_waiters(self) -> None:
        for loop, event in list(self._waiters):
            # The waiter may live on another thread's loop; a closed loop has nobody waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def push_update(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """Queues an update for getUpdates; keeps update_ids strictly increasing."""
        with self._lock:
            queued = copy.deepcopy(dict(update))
            update_id = queued.get("update_id")
            if not isinstance(update_id, int) or update_id <= self._last_queued_id:
                update_id = max(self._last_update_id, self._last_queued_id) + 1
            queued.pop("update_id", None)
            queued = {"update_id": update_id, **queued}
            self._last_queued_id = update_id
            self._last_update_id = max(self._last_update_id, update_id)
            self._queue.append(queued)
            self.revision += 1
            self._notify_waiters()
            return copy.deepcopy(queued)

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        with self._lock:
            return copy.deepcopy(list(self._queue))

    # ---------------------------------------------------------------- update builders

    def _next_update_id(self) -> int:
        self._last_update_id += 1
        return self._last_update_id

    def _user_message(
        self, user_id: int, first_name: str | None, username: str | None, **content: Any
    ) -> dict[str, Any]:
        with self._lock:
            sender, chat = self._user(user_id, first_name, username)
            message = self._new_message(user_id, sender, chat, by_bot=False)
            message.update(content)
            return {"update_id": self._next_update_id(), "message": copy.deepcopy(message)}

    def paste(
        self,
        user_id: int,
        text: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
    ) -> list[dict[str, Any]]:
        """A long paste as Telegram's apps send it: parts of at most 4,096 characters.

        The app breaks at the last line break or space before the limit (a hard cut only
        when there is none) and the server trims each part's surrounding whitespace.
        """
        parts: list[str] = []
        rest = text.strip()
        while len(rest) > MAX_TEXT_LENGTH:
            window = rest[: MAX_TEXT_LENGTH + 1]
            cut = max(window.rfind("\n"), window.rfind(" "))
            if cut <= 0:
                cut = MAX_TEXT_LENGTH
            parts.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        parts.append(rest)
        return [
            self.text_message(user_id, part, first_name=first_name, username=username)
            for part in parts
            if part
        ]

    def text_message(
        self,
        user_id: int,
        text: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """A private text message from the user; bot commands in it get their entities."""
        entities = _detect_commands(text)
        extra: dict[str, Any] = {"entities": entities} if entities else {}
        return self._user_message(user_id, first_name, username, text=text, **extra)

    def command(
        self,
        user_id: int,
        command_text: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """A message like ``/start abc``, with the bot_command entity Telegram attaches."""
        if not command_text.startswith("/"):
            raise ValueError("a command starts with '/'")
        return self.text_message(user_id, command_text, first_name=first_name, username=username)

    def callback_query(
        self,
        user_id: int,
        data: str,
        message_id: int | None = None,
        *,
        first_name: str | None = None,
        username: str | None = None,
        age: float = 0.0,
    ) -> dict[str, Any]:
        """A button press on the bot's message (latest inline keyboard if no message_id).

        ``age`` is how long ago the press happened: a press older than
        ``callback_query_ttl`` (one that waited out a restart, say) can no longer be
        answered, as on Telegram.
        """
        with self._lock:
            sender, chat = self._user(user_id, first_name, username)
            record: dict[str, Any] | None = None
            if message_id is None:
                for (chat_id, _), candidate in reversed(self._messages.items()):
                    if (
                        chat_id == user_id
                        and candidate["by_bot"]
                        and not candidate["deleted"]
                        and "reply_markup" in candidate["message"]
                    ):
                        record = candidate
                        break
            else:
                record = self._messages.get((user_id, message_id))
            if record is not None and not record["deleted"]:
                message = copy.deepcopy(record["message"])
            else:
                # What Telegram sends for messages the bot can no longer see.
                mid = message_id or 0
                message = {"chat": chat, "message_id": mid, "date": 0}
            self._callback_seq += 1
            query_id = f"{user_id % 10**9:09d}{self._callback_seq:010d}"
            self._callback_queries[query_id] = False
            self._callback_born[query_id] = self.clock() - age
            return {
                "update_id": self._next_update_id(),
                "callback_query": {
                    "id": query_id,
                    "from": sender,
                    "message": message,
                    "chat_instance": str(-(abs(user_id) * 7919 % 10**18) - 1),
                    "data": data,
                },
            }

    def sticker(
        self,
        user_id: int,
        emoji: str = "👍",
        *,
        set_name: str = "MentorbotTestStickers",
        first_name: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """A private static sticker message."""
        with self._lock:
            stored = self._store_file("sticker", "sticker.webp", "image/webp", b"RIFF\0\0\0\0WEBP")
        sticker = {
            "width": 512,
            "height": 512,
            "emoji": emoji,
            "set_name": set_name,
            "is_animated": False,
            "is_video": False,
            "type": "regular",
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
        }
        return self._user_message(user_id, first_name, username, sticker=sticker)

    def photo(
        self,
        user_id: int,
        *,
        caption: str | None = None,
        content: bytes = b"\xff\xd8\xff\xe0 test jpeg",
        width: int = 1280,
        height: int = 960,
        first_name: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """A private photo message with the usual ladder of sizes."""
        sizes = []
        with self._lock:
            for scale in (90, 320, max(width, height)):
                factor = min(1.0, scale / max(width, height))
                stored = self._store_file("photo", "photo.jpg", "image/jpeg", content)
                sizes.append(
                    {
                        "file_id": stored.file_id,
                        "file_unique_id": stored.file_unique_id,
                        "file_size": len(content),
                        "width": max(1, round(width * factor)),
                        "height": max(1, round(height * factor)),
                    }
                )
        extra: dict[str, Any] = {"caption": caption} if caption else {}
        return self._user_message(user_id, first_name, username, photo=sizes, **extra)

    def voice(
        self,
        user_id: int,
        *,
        duration: int = 3,
        content: bytes = b"OggS test voice",
        mime_type: str = "audio/ogg",
        first_name: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """A private voice note."""
        with self._lock:
            stored = self._store_file("voice", None, mime_type, content)
        voice = {
            "duration": duration,
            "mime_type": mime_type,
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(content),
        }
        return self._user_message(user_id, first_name, username, voice=voice)

    def document(
        self,
        user_id: int,
        file_name: str = "notes.pdf",
        *,
        content: bytes = b"%PDF-1.4 test document",
        mime_type: str | None = None,
        caption: str | None = None,
        first_name: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """A private document message; its bytes are downloadable via getFile."""
        mime = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        with self._lock:
            stored = self._store_file("document", file_name, mime, content)
        document = {
            "file_name": file_name,
            "mime_type": mime,
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(content),
        }
        extra: dict[str, Any] = {"caption": caption} if caption else {}
        return self._user_message(user_id, first_name, username, document=document, **extra)

    def edited_message(
        self,
        user_id: int,
        message_id: int,
        text: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """The user edited an earlier text message of theirs."""
        with self._lock:
            sender, chat = self._user(user_id, first_name, username)
            record = self._messages.get((user_id, message_id))
            if record is not None and not record["by_bot"]:
                message = record["message"]
            else:
                message = {
                    "message_id": message_id,
                    "from": sender,
                    "chat": chat,
                    "date": int(self.wall_clock()),
                }
            message["edit_date"] = int(self.wall_clock())
            message["text"] = text
            entities = _detect_commands(text)
            if entities:
                message["entities"] = entities
            else:
                message.pop("entities", None)
            return {
                "update_id": self._next_update_id(),
                "edited_message": copy.deepcopy(message),
            }

    # ---------------------------------------------------------------- inspection

    def sent_messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages sent successfully, as sent (text, reply_markup, chat_id, message_id...)."""
        with self._lock:
            return [
                copy.deepcopy(m) for m in self._sent if chat_id is None or m["chat_id"] == chat_id
            ]

    def documents(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Documents sent successfully, with filename and the uploaded bytes."""
        with self._lock:
            return [dict(d) for d in self._documents if chat_id is None or d["chat_id"] == chat_id]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """Current state of a message (after edits) as a Bot API dict; None if deleted."""
        with self._lock:
            record = self._messages.get((chat_id, message_id))
            if record is None or record["deleted"]:
                return None
            return copy.deepcopy(record["message"])

    def commands(
        self, scope: Mapping[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands currently set for a scope (default scope) and language."""
        with self._lock:
            key = self._scope_key(
                {"scope": dict(scope) if scope else None, "language_code": language_code}
            )
            return copy.deepcopy(self._commands.get(key, []))

    def command_sets(self) -> list[dict[str, Any]]:
        """Every recorded (scope, language_code, commands) triple."""
        with self._lock:
            return [
                {"scope": json.loads(scope), "language_code": language, "commands": list(cmds)}
                for (scope, language), cmds in self._commands.items()
            ]

    def descriptions(self) -> dict[str, dict[str, str]]:
        """Descriptions and short descriptions per language code ("" = default)."""
        with self._lock:
            return {
                "description": dict(self._descriptions),
                "short_description": dict(self._short_descriptions),
            }

    def calls_of(self, method: str) -> list[ApiCall]:
        """Recorded calls of one method (case-insensitive)."""
        with self._lock:
            return [c for c in self.calls if c.method.lower() == method.lower()]

    def file_content(self, file_path: str) -> bytes | None:
        """Bytes behind a getFile ``file_path`` (what the file download URL serves)."""
        with self._lock:
            for stored in self._files.values():
                if stored.file_path == file_path:
                    return stored.content
        return None

    def counters(self) -> dict[str, Any]:
        """429 count, injected faults per kind and the number of calls."""
        with self._lock:
            return {
                "count_429": self.count_429,
                "faults": dict(self.fault_counts),
                "calls": len(self.calls),
                "pending_updates": len(self._queue),
            }

    def reset_records(self) -> None:
        """Forgets calls, sends and counters; chats, messages and the queue stay."""
        with self._lock:
            self.calls.clear()
            self._sent.clear()
            self._documents.clear()
            self.count_429 = 0
            self.fault_counts = dict.fromkeys(self.fault_counts, 0)
            self.revision += 1

    _CONFIGURABLE: Final = frozenset(
        {
            "overall_per_second",
            "per_chat_per_second",
            "rate_window",
            "retry_after",
            "enforce_retry_after",
            "strict_chats",
            "callback_query_ttl",
            "fault_429",
            "fault_500",
            "fault_502",
            "fault_drop",
            "fault_slow",
            "slow_delay",
            "fault_retry_after",
        }
    )

    def configure(self, **settings: Any) -> None:
        """Changes rate-limit / fault settings at runtime (see ``_CONFIGURABLE``)."""
        unknown = set(settings) - self._CONFIGURABLE - {"fault_seed", "fault_methods"}
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        with self._lock:
            for key, value in settings.items():
                if key == "fault_seed":
                    self.rng = random.Random(value)
                elif key == "fault_methods":
                    self.fault_methods = set(value) if value else None
                else:
                    setattr(self, key, value)
            self.revision += 1

    # ---------------------------------------------------------------- persistence

    def dump_state(self) -> dict[str, Any]:
        """Everything recorded, JSON-serialisable (file bytes base64-encoded)."""
        with self._lock:
            return {
                "version": 1,
                "bot": self._get_me({}),
                "calls": [c.to_dict() for c in self.calls],
                "counters": self.counters(),
                "chats": {str(k): v for k, v in self._chats.items()},
                "next_message_id": {str(k): v for k, v in self._next_message_id.items()},
                "messages": [
                    {"chat_id": chat_id, "message_id": mid, **record}
                    for (chat_id, mid), record in self._messages.items()
                ],
                "sent": self._sent,
                "documents": [
                    {
                        **{k: v for k, v in d.items() if k != "content"},
                        "content_b64": base64.b64encode(d["content"]).decode("ascii"),
                    }
                    for d in self._documents
                ],
                "files": [f.to_state() for f in self._files.values()],
                "file_seq": self._file_seq,
                "commands": self.command_sets(),
                "descriptions": self.descriptions(),
                "callback_queries": dict(self._callback_queries),
                "callback_seq": self._callback_seq,
                "webhook": self._webhook,
                "queue": list(self._queue),
                "last_update_id": self._last_update_id,
                "last_queued_id": self._last_queued_id,
                "blocked_chats": sorted(self.blocked_chats),
            }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restores records written by :meth:`dump_state` (settings are left as they are)."""
        with self._lock:
            self.calls = [ApiCall(**c) for c in state.get("calls", [])]
            counters = state.get("counters", {})
            self.count_429 = counters.get("count_429", 0)
            self.fault_counts.update(counters.get("faults", {}))
            self._chats = {int(k): v for k, v in state.get("chats", {}).items()}
            self._next_message_id = {
                int(k): v for k, v in state.get("next_message_id", {}).items()
            }
            self._messages = {
                (m["chat_id"], m["message_id"]): {
                    "message": m["message"],
                    "by_bot": m["by_bot"],
                    "deleted": m["deleted"],
                }
                for m in state.get("messages", [])
            }
            self._sent = list(state.get("sent", []))
            self._documents = [
                {
                    **{k: v for k, v in d.items() if k != "content_b64"},
                    "content": base64.b64decode(d.get("content_b64", "")),
                }
                for d in state.get("documents", [])
            ]
            self._files = {f["file_id"]: _StoredFile.from_state(f) for f in state.get("files", [])}
            self._file_seq = state.get("file_seq", len(self._files))
            self._commands = {
                (json.dumps(c["scope"], sort_keys=True), c["language_code"]): c["commands"]
                for c in state.get("commands", [])
            }
            descriptions = state.get("descriptions", {})
            self._descriptions = dict(descriptions.get("description", {}))
            self._short_descriptions = dict(descriptions.get("short_description", {}))
            self._callback_queries = dict(state.get("callback_queries", {}))
            self._callback_seq = state.get("callback_seq", 0)
            self._webhook = dict(state.get("webhook", {}))
            self._queue = deque(state.get("queue", []))
            self._last_update_id = state.get("last_update_id", self._last_update_id)
            self._last_queued_id = state.get("last_queued_id", self._last_queued_id)
            self.blocked_chats = set(state.get("blocked_chats", []))
            self.revision += 1


def _update_type(update: Mapping[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


# --------------------------------------------------------------------------------------------
# In-process transport for python-telegram-bot
# --------------------------------------------------------------------------------------------

_API_PATH_RE: Final = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>[^/]+)$")
_FILE_PATH_RE: Final = re.compile(r"/file/bot(?P<token>[^/]+)/(?P<path>.+)$")


def _json_bytes(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _read_content(content: bytes | IO[bytes]) -> bytes:
    if isinstance(content, bytes):
        return content
    data = content.read()
    return data if isinstance(data, bytes) else str(data).encode()


class StandinRequest(BaseRequest):
    """PTB transport that answers from a :class:`BotApiStandin` without any socket.

    Parameters reach the stand-in exactly as they would go over the wire: PTB's
    ``json_parameters`` (strings) plus multipart file parts. ``read_timeout`` is honoured,
    so an injected slow answer surfaces as :class:`telegram.error.TimedOut`.
    """

    __slots__ = ("_read_timeout", "_standin")

    def __init__(self, standin: BotApiStandin, *, read_timeout: float | None = 5.0) -> None:
        self._standin = standin
        self._read_timeout = read_timeout

    @property
    def standin(self) -> BotApiStandin:
        """The stand-in this transport talks to."""
        return self._standin

    @property
    def read_timeout(self) -> float | None:
        """Default read timeout in seconds (PTB adds the long-poll timeout for getUpdates)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Nothing to set up: there is no connection pool."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        # PTB types these ODVInput[float], which lives in a private module.
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Routes ``.../bot<token>/<method>`` to the stand-in and file URLs to stored bytes."""
        path = urlsplit(url).path
        file_match = _FILE_PATH_RE.search(path)
        if file_match:
            content = self._standin.file_content(file_match.group("path"))
            if content is None:
                return 404, _not_found()
            return 200, content
        match = _API_PATH_RE.search(path)
        if not match:
            return 404, _not_found()
        params: dict[str, Any] = {}
        if request_data is not None:
            params.update(request_data.json_parameters)
            for name, (filename, content, mime_type) in request_data.multipart_data.items():
                params[name] = UploadedFile(filename, _read_content(content), mime_type)
        timeout = self._read_timeout if read_timeout is BaseRequest.DEFAULT_NONE else read_timeout
        try:
            async with asyncio.timeout(timeout):
                status, body = await self._standin.handle(
                    match.group("method"), params, token=match.group("token")
                )
        except TimeoutError as exc:
            raise TimedOut from exc
        return status, _json_bytes(body)


# --------------------------------------------------------------------------------------------
# Loopback HTTP server
# --------------------------------------------------------------------------------------------


class _HttpError(Exception):
    pass


class _Connection:
    """StreamReader with a pushback buffer, so watching for EOF never loses request bytes."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._buffer = bytearray()

    async def _fill(self) -> bool:
        data = await self._reader.read(65536)
        if not data:
            return False
        self._buffer += data
        return True

    async def read_until(self, separator: bytes, limit: int) -> bytes | None:
        while True:
            index = self._buffer.find(separator)
            if index >= 0:
                end = index + len(separator)
                chunk = bytes(self._buffer[:end])
                del self._buffer[:end]
                return chunk
            if len(self._buffer) > limit:
                raise _HttpError("header section too large")
            if not await self._fill():
                if self._buffer:
                    raise _HttpError("connection closed mid-request")
                return None

    async def read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not await self._fill():
                raise _HttpError("connection closed mid-body")
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        return chunk

    async def wait_closed_by_peer(self) -> None:
        while await self._fill():
            pass


_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class LoopbackServer:
    """Serves a :class:`BotApiStandin` over minimal HTTP/1.1 on 127.0.0.1.

    Use ``async with LoopbackServer(standin) as srv`` in the running loop, or
    ``start_in_thread()`` / ``stop()`` so another process can reach it. Point PTB at it with
    ``ApplicationBuilder().base_url(srv.base_url).base_file_url(srv.base_file_url)``.
    """

    MAX_HEADER_BYTES: Final = 64 * 1024
    MAX_BODY_BYTES: Final = MAX_UPLOAD_BYTES + 1024 * 1024

    def __init__(self, standin: BotApiStandin, *, port: int = 0, host: str = LOCALHOST) -> None:
        if host != LOCALHOST:
            raise ValueError("the stand-in only ever binds to 127.0.0.1")
        self.standin = standin
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop: asyncio.Event | None = None
        self._thread_error: BaseException | None = None

    # ---------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder.base_url``; PTB appends the token."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder.base_file_url``; PTB appends the token."""
        return f"{self.url}/file/bot"

    @property
    def control_url(self) -> str:
        """Root of the ``/_control/...`` endpoints."""
        return f"{self.url}/_control"

    # ---------------------------------------------------------------- lifecycle (same loop)

    async def start(self) -> None:
        """Binds and starts serving in the running loop."""
        self._server = await asyncio.start_server(
            self._on_connection, self._host, self._requested_port
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        """Stops listening and cuts open connections (including pending long polls)."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- lifecycle (thread)

    def start_in_thread(self, timeout: float = 10.0) -> Self:
        """Runs the server on its own loop in a daemon thread; returns once it listens."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name="bot-api-standin", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("stand-in server did not start in time")
        if self._thread_error is not None:
            raise RuntimeError("stand-in server failed to start") from self._thread_error
        return self

    def _thread_main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._thread_loop = loop
        try:
            loop.run_until_complete(self._thread_serve(ready))
        except BaseException as exc:  # reported to start_in_thread's caller
            self._thread_error = exc
            ready.set()
        finally:
            loop.close()

    async def _thread_serve(self, ready: threading.Event) -> None:
        self._thread_stop = asyncio.Event()
        await self.start()
        ready.set()
        await self._thread_stop.wait()
        await self.aclose()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops a server started with :meth:`start_in_thread`."""
        if self._thread is None:
            return
        loop, stop_event = self._thread_loop, self._thread_stop
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_event.set)
        self._thread.join(timeout)
        self._thread = None

    # ---------------------------------------------------------------- HTTP

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        connection = _Connection(reader)
        try:
            while await self._serve_one(connection, writer):
                pass
        except (_HttpError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, connection: _Connection, writer: asyncio.StreamWriter) -> bool:
        head = await connection.read_until(b"\r\n\r\n", self.MAX_HEADER_BYTES)
        if head is None:
            return False
        lines = head.decode("latin-1").split("\r\n")
        try:
            verb, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise _HttpError("bad request line") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        body = await self._read_body(connection, headers)
        connection_header = headers.get("connection", "").lower()
        keep_alive = (
            connection_header != "close"
            if version.upper() == "HTTP/1.1"
            else connection_header == "keep-alive"
        )
        split = urlsplit(target)
        path = split.path
        if path.startswith("/_control/"):
            status, payload = self._control(verb.upper(), path, split.query, body)
            await self._respond(writer, status, _json_bytes(payload), keep_alive)
            return keep_alive
        file_match = _FILE_PATH_RE.fullmatch(path)
        if file_match:
            content = self.standin.file_content(file_match.group("path"))
            if content is None:
                await self._respond(writer, 404, _not_found(), keep_alive)
            else:
                await self._respond(
                    writer, 200, content, keep_alive, content_type="application/octet-stream"
                )
            return keep_alive
        api_match = _API_PATH_RE.fullmatch(path)
        if not api_match:
            await self._respond(writer, 404, _not_found(), keep_alive)
            return keep_alive
        try:
            params: dict[str, Any] = dict(parse_qsl(split.query, keep_blank_values=True))
            params.update(parse_body(body, headers.get("content-type", "")))
        except _ApiError as exc:
            status, payload = exc.answer()
            await self._respond(writer, status, _json_bytes(payload), keep_alive)
            return keep_alive
        handling = asyncio.ensure_future(
            self.standin.handle(
                api_match.group("method"),
                params,
                token=api_match.group("token"),
                allow_drop=True,
            )
        )
        watching = asyncio.ensure_future(connection.wait_closed_by_peer())
        try:
            await asyncio.wait({handling, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not handling.done():
                # The client gave up (e.g. PTB cancelled its long poll): stop waiting for it.
                handling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        try:
            status, payload = await handling
        except (ConnectionDropped, asyncio.CancelledError):
            return False
        await self._respond(writer, status, _json_bytes(payload), keep_alive)
        return keep_alive

    async def _read_body(self, connection: _Connection, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = await connection.read_until(b"\r\n", self.MAX_HEADER_BYTES)
                if size_line is None:
                    raise _HttpError("connection closed mid-chunk")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    await connection.read_until(b"\r\n", self.MAX_HEADER_BYTES)
                    return b"".join(chunks)
                total += size
                if total > self.MAX_BODY_BYTES:
                    raise _HttpError("body too large")
                chunks.append(await connection.read_exactly(size))
                await connection.read_exactly(2)
        length = int(headers.get("content-length", "0") or 0)
        if length > self.MAX_BODY_BYTES:
            raise _HttpError("body too large")
        return await connection.read_exactly(length) if length else b""

    @staticmethod
    async def _respond(
        writer: asyncio.StreamWriter,
        status: int,
        payload: bytes,
        keep_alive: bool,
        *,
        content_type: str = "application/json",
    ) -> None:
        reason = _REASONS.get(status, "Unknown")
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            f"Server: mentorbot-api-standin\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + payload)
        await writer.drain()

    # ---------------------------------------------------------------- control endpoints

    _BUILDERS: Final = frozenset(
        {
            "text_message",
            "command",
            "callback_query",
            "sticker",
            "photo",
            "voice",
            "document",
            "edited_message",
        }
    )

    def _control(
        self, verb: str, path: str, query: str, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Harness API; never counted in ``calls``. Answers in the Bot API's envelope."""
        action = path.removeprefix("/_control/").strip("/")
        args = dict(parse_qsl(query))
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return 400, {"ok": False, "error_code": 400, "description": "body must be JSON"}
        standin = self.standin
        chat_arg = int(args["chat_id"]) if "chat_id" in args else None
        try:
            result: Any
            if action == "health":
                result = {"base_url": self.base_url, "bot_username": standin.bot_username}
            elif action == "push_update" and verb == "POST":
                result = standin.push_update(data)
            elif action == "build" and verb == "POST":
                kind = data.pop("kind", "")
                push = data.pop("push", True)
                if kind not in self._BUILDERS:
                    raise ValueError(f"unknown builder {kind!r}")
                if "content_b64" in data:
                    data["content"] = base64.b64decode(data.pop("content_b64"))
                result = getattr(standin, kind)(**data)
                if push:
                    result = standin.push_update(result)
            elif action == "calls":
                since = int(args.get("since", "0"))
                with standin._lock:
                    calls = standin.calls[since:]
                    result = [c.to_dict() for c in calls]
            elif action == "sent_messages":
                result = standin.sent_messages(chat_arg)
            elif action == "documents":
                result = [
                    {
                        **{k: v for k, v in d.items() if k != "content"},
                        "content_b64": base64.b64encode(d["content"]).decode("ascii"),
                    }
                    for d in standin.documents(chat_arg)
                ]
            elif action == "commands":
                result = standin.command_sets()
            elif action == "counters":
                result = standin.counters()
            elif action == "state":
                result = standin.dump_state()
            elif action == "pending_updates":
                result = standin.pending_updates()
            elif action in {"block", "unblock"} and verb == "POST":
                chat_id = int(data["chat_id"])
                with standin._lock:
                    if action == "block":
                        standin.blocked_chats.add(chat_id)
                    else:
                        standin.blocked_chats.discard(chat_id)
                result = sorted(standin.blocked_chats)
            elif action == "configure" and verb == "POST":
                standin.configure(**data)
                result = True
            elif action == "reset" and verb == "POST":
                standin.reset_records()
                result = True
            else:
                return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
        return 200, {"ok": True, "result": result}


def _not_found() -> bytes:
    return _json_bytes({"ok": False, "error_code": 404, "description": "Not Found"})


class ControlClient:
    """Synchronous client for a :class:`LoopbackServer`'s control endpoints (harness side)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        host = urlsplit(url).hostname
        if host != LOCALHOST:
            raise ValueError("the control client only talks to 127.0.0.1")
        base = url.rstrip("/")
        base = base.removesuffix("/_control")
        # trust_env=False: a proxy from the environment must never see loopback traffic.
        self._client = httpx.Client(base_url=f"{base}/_control", timeout=timeout, trust_env=False)

    def close(self) -> None:
        """Closes the underlying HTTP client."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, verb: str, action: str, **kwargs: Any) -> Any:
        response = self._client.request(verb, f"/{action}", **kwargs)
        body = response.json()
        if not body.get("ok"):
            raise RuntimeError(f"control {action} failed: {body.get('description')}")
        return body["result"]

    def health(self) -> dict[str, Any]:
        """Server liveness and the base_url to give PTB."""
        return self._call("GET", "health")

    def push_update(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """Queues a ready-made update dict."""
        return self._call("POST", "push_update", json=dict(update))

    def build(self, kind: str, *, push: bool = True, **kwargs: Any) -> dict[str, Any]:
        """Runs a builder (``text_message``, ``callback_query``...) server-side, then queues it."""
        if isinstance(kwargs.get("content"), bytes):
            kwargs["content_b64"] = base64.b64encode(kwargs.pop("content")).decode("ascii")
        return self._call("POST", "build", json={"kind": kind, "push": push, **kwargs})

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        """Recorded API calls from index ``since`` on."""
        return self._call("GET", "calls", params={"since": since})

    def sent_messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages sent successfully."""
        params = {"chat_id": chat_id} if chat_id is not None else {}
        return self._call("GET", "sent_messages", params=params)

    def documents(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Documents sent successfully, bytes decoded."""
        params = {"chat_id": chat_id} if chat_id is not None else {}
        found = self._call("GET", "documents", params=params)
        for doc in found:
            doc["content"] = base64.b64decode(doc.pop("content_b64"))
        return found

    def commands(self) -> list[dict[str, Any]]:
        """All recorded command sets."""
        return self._call("GET", "commands")

    def counters(self) -> dict[str, Any]:
        """429 and fault counters."""
        return self._call("GET", "counters")

    def state(self) -> dict[str, Any]:
        """The full :meth:`BotApiStandin.dump_state`."""
        return self._call("GET", "state")

    def block(self, chat_id: int) -> list[int]:
        """Makes sends to ``chat_id`` fail with 403."""
        return self._call("POST", "block", json={"chat_id": chat_id})

    def unblock(self, chat_id: int) -> list[int]:
        """Undoes :meth:`block`."""
        return self._call("POST", "unblock", json={"chat_id": chat_id})

    def configure(self, **settings: Any) -> None:
        """Changes rate-limit / fault settings."""
        self._call("POST", "configure", json=settings)

    def reset(self) -> None:
        """Clears calls, sends and counters."""
        self._call("POST", "reset")


# --------------------------------------------------------------------------------------------
# Standalone entry point
# --------------------------------------------------------------------------------------------


def _write_state(path: Path, standin: BotApiStandin) -> None:
    # Write-then-rename so a reader never sees half a file.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(standin.dump_state(), ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _read_state(path: Path, standin: BotApiStandin) -> None:
    if path.exists():
        standin.load_state(json.loads(path.read_text(encoding="utf-8")))


async def _serve_forever(args: argparse.Namespace) -> None:
    standin = BotApiStandin(
        bot_id=args.bot_id,
        token=args.token,
        overall_per_second=args.overall_rate,
        per_chat_per_second=args.per_chat_rate,
        retry_after=args.retry_after,
        fault_seed=args.seed,
        fault_429=args.fault_429,
        fault_500=args.fault_500,
        fault_502=args.fault_502,
        fault_drop=args.fault_drop,
        fault_slow=args.fault_slow,
        slow_delay=args.slow_delay,
    )
    state_file: Path | None = Path(args.state_file) if args.state_file else None
    if state_file is not None:
        _read_state(state_file, standin)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with LoopbackServer(standin, port=args.port) as server:
        announcement = {
            "base_url": server.base_url,
            "base_file_url": server.base_file_url,
            "control_url": server.control_url,
            "port": server.port,
            "pid": os.getpid(),
        }
        sys.stdout.write(json.dumps(announcement) + "\n")
        sys.stdout.flush()
        written = -1
        while not stop.is_set():
            if state_file is not None and standin.revision != written:
                written = standin.revision
                _write_state(state_file, standin)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
    if state_file is not None:
        _write_state(state_file, standin)


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.support.api_standin``: serve the stand-in on 127.0.0.1 until
    SIGINT/SIGTERM.

    Prints one JSON line (base_url, control_url, port, pid) once listening.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.api_standin", description="Offline Telegram Bot API stand-in"
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--overall-rate", type=float, default=None, help="sends per second")
    parser.add_argument("--per-chat-rate", type=float, default=None, help="sends per chat/s")
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--state-file", default=None, help="JSON state, loaded and kept fresh")
    parser.add_argument("--token", default=None, help="only accept this bot token")
    parser.add_argument("--bot-id", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="fault injection seed")
    parser.add_argument("--fault-429", type=float, default=0.0)
    parser.add_argument("--fault-500", type=float, default=0.0)
    parser.add_argument("--fault-502", type=float, default=0.0)
    parser.add_argument("--fault-drop", type=float, default=0.0)
    parser.add_argument("--fault-slow", type=float, default=0.0)
    parser.add_argument("--slow-delay", type=float, default=0.5)
    args = parser.parse_args(argv)
    asyncio.run(_serve_forever(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
