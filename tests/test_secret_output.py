"""No secret reaches any output: `run` and `serve-webhook` against a Bot API that rejects
getMe (401 for a revoked token, 404 for a wrong TELEGRAM_API_BASE_URL), `doctor` on the
same, and crashes anywhere in the process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import logs
from storage.crypto import encode_key, generate_key
from tests.support.api_standin import BotApiStandin, LoopbackServer
from tests.support.harness import TOKEN

ROOT = Path(__file__).resolve().parents[1]
REVOKED = "987654:" + "Rv0kedTokenWithThirtyFiveCharsXXXXX"
WEBHOOK_SECRET = "webhook-secret-" + "q" * 24


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer(BotApiStandin(token=TOKEN)).start_in_thread()
    yield srv
    srv.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _secrets(env: dict[str, str]) -> list[str]:
    token = env["TELEGRAM_BOT_TOKEN"]
    return [token, token.split(":", 1)[1], env["MENTORBOT_MASTER_KEY"], WEBHOOK_SECRET]


@pytest.mark.parametrize("command", ["run", "serve-webhook"])
@pytest.mark.parametrize("failure", ["401 revoked token", "404 wrong base URL"])
def test_a_rejected_token_is_never_printed(
    server: LoopbackServer, tmp_path: Path, command: str, failure: str
) -> None:
    revoked = failure.startswith("401")
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": REVOKED if revoked else TOKEN,
        "TELEGRAM_API_BASE_URL": server.base_url if revoked else server.base_url + "x",
        "MENTORBOT_DB": str(tmp_path / "bot.sqlite3"),
        "MENTORBOT_MASTER_KEY": encode_key(generate_key()),
        "MENTORBOT_LOG_LEVEL": "DEBUG",
        "MENTORBOT_WEBHOOK_URL": "https://bot.example.org/telegram",
        "MENTORBOT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MENTORBOT_WEBHOOK_PORT": str(_free_port()),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "rejected TELEGRAM_BOT_TOKEN" in output
    assert "Traceback" not in output
    for secret in _secrets(env):
        assert secret not in output

    doctor = subprocess.run(
        [sys.executable, "-m", "bot.cli", "doctor"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert doctor.returncode == 1 and "rejected the token" in doctor.stdout
    for secret in _secrets(env):
        assert secret not in doctor.stdout + doctor.stderr


def test_crash_reports_and_log_lines_carry_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    key = encode_key(generate_key())
    logs.register_secrets([key])
    try:
        try:
            try:
                raise ValueError(f"while using {key}")
            except ValueError:
                raise RuntimeError(f"https://api.telegram.org/bot{REVOKED}/getMe") from None
        except RuntimeError as exc:
            report = logs.crash_report(exc)
        assert "RuntimeError" in report and "test_secret_output.py" in report
        assert key not in report and REVOKED not in report

        # A thread dying with the key in its message prints frames only.
        logs.install_excepthooks()
        thread = threading.Thread(target=lambda: (_ for _ in ()).throw(OSError(key)))
        thread.start()
        thread.join()
        err = capsys.readouterr().err
        assert "OSError" in err and key not in err

        record = logs.logging.LogRecord("telegram", 40, __file__, 1, "bad %s", (REVOKED,), None)
        assert REVOKED not in logs.JsonFormatter().format(record)
        assert logs.redact(f"x {key} y") == f"x {logs.REDACTED} y"
    finally:
        logs._secrets.discard(key)
        sys.excepthook = sys.__excepthook__
        threading.excepthook = threading.__excepthook__
