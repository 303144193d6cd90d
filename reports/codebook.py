"""The project's codebook: canonical ids from ``codebook.yaml`` plus coding rules.

Every output of the reporting job is stamped with ``Codebook.version`` and
``Codebook.content_hash`` so an evaluator can tell which codebook produced it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

# Scheme names used across reports, exports and tests.
SCHEME_CMO = "cmo"
SCHEME_PHASE = "phase"
SCHEME_KRAM = "kram_phase"
SCHEME_DOMAIN = "learning_domain"
SCHEME_FACTOR = "factor"
SCHEME_TOPIC = "topic"
SCHEME_THEORY = "programme_theory"
SCHEME_CLIMATE = "support_challenge"
SCHEME_WELLBEING = "wellbeing_theme"
SCHEME_STANCE = "mentor_stance"
SCHEME_FRAMEWORK_STEP = "framework_step"
SCHEME_EPISODE_MODE = "episode_mode"
SCHEME_EPISODE_KIND = "episode_kind"


@dataclass(frozen=True)
class CodeDef:
    id: str
    label: str
    scheme: str
    role: str | None = None  # CMO role (CONTEXT_ENABLING, RESOURCE, ...) where one applies
    level: str | None = None  # CMO level where one applies
    polarity: str | None = None  # "helping" / "hindering" for factors
    sensitive: bool = False
    signpost: bool = False
    parent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Codebook:
    version: str
    content_hash: str
    codes: dict[str, CodeDef]
    raw: dict[str, Any] = field(compare=False, hash=False)

    def get(self, code_id: str) -> CodeDef:
        try:
            return self.codes[code_id]
        except KeyError:
            raise KeyError(f"unknown codebook id: {code_id}") from None

    def __contains__(self, code_id: object) -> bool:
        return code_id in self.codes

    def by_scheme(self, scheme: str) -> list[CodeDef]:
        return [c for c in self.codes.values() if c.scheme == scheme]

    @property
    def cmo_roles(self) -> dict[str, str]:
        return dict(self.raw["cmo"]["roles"])

    @property
    def cmo_levels(self) -> dict[str, str]:
        return dict(self.raw["cmo"]["levels"])

    @property
    def frameworks(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.raw["frameworks"].items()}

    @property
    def phase_crosswalk(self) -> dict[str, str]:
        return dict(self.raw["phase_crosswalk"])

    def sensitive_ids(self) -> set[str]:
        return {c.id for c in self.codes.values() if c.sensitive}


def _label_map(section: dict[str, Any], scheme: str, **kw: Any) -> dict[str, CodeDef]:
    out: dict[str, CodeDef] = {}
    for code_id, value in section.items():
        if isinstance(value, dict):
            out[code_id] = CodeDef(
                id=code_id,
                label=value["label"],
                scheme=scheme,
                sensitive=bool(value.get("sensitive", False)),
                signpost=bool(value.get("signpost", False)),
                extra={k: v for k, v in value.items() if k not in {"label"}},
                **kw,
            )
        else:
            out[code_id] = CodeDef(id=code_id, label=str(value), scheme=scheme, **kw)
    return out


def parse_codebook(text: str) -> Codebook:
    raw = yaml.safe_load(text)
    codes: dict[str, CodeDef] = {}
    for code_id, el in raw["cmo"]["elements"].items():
        codes[code_id] = CodeDef(
            id=code_id,
            label=el["label"],
            scheme=SCHEME_CMO,
            role=el["role"],
            level=el["level"],
            extra={k: v for k, v in el.items() if k not in {"label", "role", "level"}},
        )
    codes |= _label_map(raw["programme_theories"], SCHEME_THEORY)
    codes |= _label_map(raw["support_challenge"], SCHEME_CLIMATE)
    codes |= _label_map(raw["phases"], SCHEME_PHASE, role="OUTCOME_PROXIMAL")
    codes |= _label_map(raw["kram_phases"], SCHEME_KRAM)
    codes |= _label_map(raw["learning_domains"], SCHEME_DOMAIN)
    codes |= _label_map(raw["factors_helping"], SCHEME_FACTOR, polarity="helping")
    codes |= _label_map(raw["factors_hindering"], SCHEME_FACTOR, polarity="hindering")
    codes |= _label_map(raw["wellbeing_themes"], SCHEME_WELLBEING)
    codes |= _label_map(raw["mentor_stance"], SCHEME_STANCE)
    codes |= _label_map(raw["topics"], SCHEME_TOPIC)
    for framework, steps in raw["frameworks"].items():
        for step in steps:
            codes[step] = CodeDef(id=step, label=step.split("_", 1)[1].replace("_", " ").title(),
                                  scheme=SCHEME_FRAMEWORK_STEP, parent=framework)
    for mode in raw["episode_modes"]:
        codes[mode] = CodeDef(id=mode, label=mode[5:].replace("_", " ").capitalize(),
                              scheme=SCHEME_EPISODE_MODE)
    for kind in raw["episode_kinds"]:
        codes[kind] = CodeDef(id=kind, label=kind[3:].replace("_", " ").capitalize(),
                              scheme=SCHEME_EPISODE_KIND)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return Codebook(version=str(raw["version"]), content_hash=digest, codes=codes, raw=raw)


@lru_cache(maxsize=1)
def load_codebook() -> Codebook:
    text = resources.files("reports").joinpath("codebook.yaml").read_text(encoding="utf-8")
    return parse_codebook(text)
