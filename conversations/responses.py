"""What goes in and out of the service: who sent it, and the replies and files to send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from conversations.engine import Reply


@dataclass(frozen=True)
class Sender:
    user_id: int
    chat_id: int
    first_name: str | None = None
    update_id: int | None = None  # set by the Telegram adapter, for redelivery checks
    message_id: int | None = None  # the person's message, for tidying the chat later


@dataclass(frozen=True)
class Document:
    filename: str
    content: bytes
    caption: str = ""


@dataclass
class Response:
    replies: list[Reply] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    menu_role: str | None = None  # set when the person's command menu must change
    changed: bool = False  # whether anything was written
    signposted: bool = False
    update_id: int | None = None
    message_id: int | None = None  # the person's message being answered
    # Chat tidying: the person's messages to delete, and whether the pressed message goes too.
    delete_messages: list[int] = field(default_factory=list)
    delete_pressed: bool = False

    def say(self, text: str, **kw: Any) -> Response:
        self.replies.append(Reply(text, **kw))
        return self


# Work to do once a flow's place is saved (a closing message, the next flow).
Then = Callable[[Response], Awaitable[object]]
