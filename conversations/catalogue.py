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


@lru_cache(maxsize=1)
def load_texts() -> Texts:
    raw = yaml.safe_load(
        resources.files("conversations").joinpath("texts.yaml").read_text(encoding="utf-8")
    )
    commands = {
        name: CommandSpec(name, spec[0], tuple(spec[1])) for name, spec in raw["commands"].items()
    }
    return Texts(commands, dict(raw["messages"]))
