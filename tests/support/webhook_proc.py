"""A real ``mentorbot run --webhook`` process for tests and benchmarks (issue #20).

The entry point as an operator starts it, configured by the environment only: the bot
token of the offline stand-in, ``TELEGRAM_API_BASE_URL`` pointing at a loopback Bot API
stand-in (tests/support/api_standin.py), the webhook on 127.0.0.1 and a free port, the
database and key store given. ``post`` plays Telegram delivering one update.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from tests.support.harness import TOKEN

SECRET = "webhook-test-secret"
URL_PATH = "/telegram"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebhookProcess:
    def __init__(self, db: str, keystore: str | None, api_base_url: str, master_key: str,
                 **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{URL_PATH}"
        self._cwd = tempfile.mkdtemp(prefix="mentorbot-webhook-")  # no .env of the checkout
        settings = {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": api_base_url,
            "MENTORBOT_DB": db,
            "MENTORBOT_MASTER_KEY": master_key,
            "MENTORBOT_WEBHOOK_URL": "https://bot.example.org" + URL_PATH,
            "MENTORBOT_WEBHOOK_SECRET": SECRET,
            "MENTORBOT_WEBHOOK_LISTEN": "127.0.0.1",
            "MENTORBOT_WEBHOOK_PORT": str(self.port),
            **env,
        }
        if keystore:
            settings["MENTORBOT_KEYSTORE"] = keystore
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith(("MENTORBOT_", "TELEGRAM_"))}
        environ.update(settings)
        environ.setdefault("MENTORBOT_CODING_EMBEDDINGS", "off")
        environ.setdefault("MENTORBOT_SAFETY_SEMANTIC", "off")
        self._log = open(os.path.join(self._cwd, "stderr.log"), "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "run", "--webhook"],
            cwd=self._cwd, env=environ, stdout=subprocess.DEVNULL, stderr=self._log)
        self.alive = True

    def wait_ready(self, timeout: float = 60.0) -> WebhookProcess:
        """Once the webhook listens (after start-up, migrations and setWebhook)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.seek(0)
                err = self._log.read().decode(errors="replace")
                raise RuntimeError(f"mentorbot run --webhook exited {self.proc.returncode}: "
                                   f"{err[-2000:]}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("mentorbot run --webhook did not start listening")

    def post(self, update: dict[str, Any], timeout: float = 10.0) -> int:
        """Deliver one update as Telegram does: the HTTP status (0 if no answer came)."""
        req = urllib.request.Request(
            self.url, data=json.dumps(update).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "X-Telegram-Bot-Api-Secret-Token": SECRET})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def kill(self) -> None:
        """SIGKILL: nothing runs after it, as in a crash or an OOM kill."""
        self.alive = False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()
        shutil.rmtree(self._cwd, ignore_errors=True)

    def stop(self, timeout: float = 30.0) -> None:
        if self.alive:
            self.alive = False
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self._cwd, ignore_errors=True)
