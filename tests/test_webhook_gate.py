"""The webhook server checks the secret first, in constant time, and refuses oversized
bodies before reading them: a caller that sends only headers gets its answer."""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot import webhook
from bot.webhook import MAX_UPDATE_BYTES, WebhookConfig, webhook_server

SECRET = "gate-secret_0123456789abcdefghij"
UPDATE = {
    "update_id": 1,
    "message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}},
}


class Gate:
    def __init__(self, port: int) -> None:
        self.port = port
        self.delivered: list[dict[str, Any]] = []
        self.compared = 0

    async def raw(self, head: str, body: bytes = b"") -> int:
        """Send ``head`` (and ``body``, maybe none of what the head announces); the status."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(head.encode("latin-1") + b"\r\n" + body)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 3.0)
            return int(line.split()[1])
        finally:
            writer.close()

    async def post(self, body: bytes, secret: str | None = SECRET, **headers: str) -> int:
        lines = ["POST /telegram HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        if secret is not None:
            lines.append(f"X-Telegram-Bot-Api-Secret-Token: {secret}")
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Content-Length", str(len(body)))
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        return await self.raw("\r\n".join(lines) + "\r\n", body)


@pytest.fixture
async def gate(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gate]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    found = Gate(port)
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        found.compared += 1
        return real(a, b)

    monkeypatch.setattr(webhook.hmac, "compare_digest", counting)

    async def deliver(data: dict[str, Any]) -> bool:
        found.delivered.append(data)
        return True

    config = WebhookConfig(url="https://bot.example.org/telegram", secret=SECRET, port=port)
    server = webhook_server(config, deliver)
    server.listen(port, address="127.0.0.1")
    yield found
    server.stop()
    await server.close_all_connections()


async def test_a_good_update_is_delivered(gate: Gate) -> None:
    assert await gate.post(json.dumps(UPDATE).encode()) == 200
    assert gate.delivered == [UPDATE]
    assert gate.compared == 1


async def test_the_secret_is_checked_before_the_body_is_read(gate: Gate) -> None:
    # 100 MB announced, not a byte of it sent: the answer comes from the headers alone.
    huge = str(100 * 1024 * 1024)
    assert await gate.post(b"", secret="wrong", Content_Length=huge) == 403
    assert await gate.post(b"", secret=None, Content_Length=huge) == 403
    assert await gate.post(b"", secret=SECRET[:-1] + "K", Content_Length=huge) == 403
    assert gate.compared == 3  # every check went through hmac.compare_digest
    assert gate.delivered == []


async def test_an_oversized_body_is_refused_unread(gate: Gate) -> None:
    assert await gate.post(b"", Content_Length=str(MAX_UPDATE_BYTES + 1)) == 413
    assert await gate.post(b"", Content_Length=str(100 * 1024 * 1024)) == 413
    # Chunked, so no length up front: refused as soon as the running size passes the cap.
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(17))
    head = (
        "POST /telegram HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n"
    )
    # (tornado's own cap on the connection may answer first, with 400)
    assert await gate.raw(head, chunks) in (400, 413)
    assert gate.delivered == []


async def test_other_refusals(gate: Gate) -> None:
    assert await gate.post(b"{}", Content_Type="text/plain") == 415
    assert await gate.post(b"not json") == 400
    assert await gate.post(b"[1, 2]") == 400
    assert gate.delivered == []
