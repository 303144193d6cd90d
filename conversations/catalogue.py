"""Loads the flows and texts shipped with the package, validated on load."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from conversations.model import Flow


@dataclass(frozen=True)
class CommandSpec:
    name: str
    description: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Texts:
    commands: dict[str, CommandSpec]
    messages: dict[str, str]

    def say(self, key: str, **values: object) -> str:
        return self.messages[key].format(**values)

    def commands_for(self, role: str) -> list[CommandSpec]:
        return [c for c in self.commands.values() if role in c.roles]


def parse_flow(text: str) -> Flow:
    return Flow.model_validate(yaml.safe_load(text))


@lru_cache(maxsize=1)
def load_flows() -> dict[str, Flow]:
    flows: dict[str, Flow] = {}
    folder = resources.files("conversations").joinpath("flows")
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if item.name.endswith(".yaml"):
            flow = parse_flow(item.read_text(encoding="utf-8"))
            flows[flow.id] = flow
    return flows


def consent_version() -> str:
    """The version of the consent text people answer now (the consent flow's): decisions
    under an older text count only for ``participate`` (storage.consent)."""
    return load_flows()["consent"].version


@lru_cache(maxsize=1)
def load_texts() -> Texts:
    """texts.yaml plus every texts_*.yaml beside it (one per capability), merged in order."""
    commands: dict[str, CommandSpec] = {}
    messages: dict[str, str] = {}
    folder = resources.files("conversations")
    extra = sorted(
        i.name
        for i in folder.iterdir()
        if i.name.startswith("texts_") and i.name.endswith(".yaml")
    )
    names = ["texts.yaml", *extra]
    for name in names:
        raw = yaml.safe_load(folder.joinpath(name).read_text(encoding="utf-8")) or {}
        for cmd, spec in (raw.get("commands") or {}).items():
            commands[cmd] = CommandSpec(cmd, spec[0], tuple(spec[1]))
        for key, text in (raw.get("messages") or {}).items():
            if key in messages:
                raise ValueError(f"{name}: message {key!r} is defined twice")
            messages[key] = text
    return Texts(commands, messages)
