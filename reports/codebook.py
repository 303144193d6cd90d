"""The project's codebook: canonical ids from ``codebook.yaml`` plus coding rules.

Every output of the reporting job is stamped with ``Codebook.version`` and
``Codebook.content_hash`` so an evaluator can tell which codebook produced it. The hash covers
``codebook.yaml`` and ``coding_rules.yaml`` together, because changing a cue phrase changes the
coding just as much as changing an id does.
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


NEGATION_MODES = ("suppress", "flip", "ignore")
# The CMO role vocabulary (the keys of codebook.yaml's cmo.roles), written once here and
# imported by coding, configurations, the evaluator and the exports.
CONTEXT_ROLES = ("CONTEXT_ENABLING", "CONTEXT_INHIBITING")
MECHANISM_ROLES = ("RESOURCE", "RESPONSE")
OUTCOME_ROLES = ("OUTCOME_PROXIMAL", "OUTCOME_DISTAL")
CMO_ROLES = (*CONTEXT_ROLES, "RESPONSE", "RESOURCE", *OUTCOME_ROLES)  # codebook.yaml's order
# A step's ``elicits`` names a role at the grain a prompt can evidence: context is one.
CONTEXT = "CONTEXT"
COARSE_ROLE = {role: CONTEXT if role in CONTEXT_ROLES else role for role in CMO_ROLES}
ELICITED_ROLES = (CONTEXT, *MECHANISM_ROLES, *OUTCOME_ROLES)
# Not a role: a step whose ``elicits`` names it asks for goals or hopes, so what its answer
# says about outcomes is intended unless it reports attainment (docs/coding-guide.md §3.2).
INTENTION = "INTENTION"
# The part of a configuration each non-outcome role fills.
PART_OF_ROLE = {
    **{role: "context" for role in CONTEXT_ROLES},
    **{role: role.lower() for role in MECHANISM_ROLES},
}


@dataclass(frozen=True)
class CueSpec:
    """One cue phrase as written in ``coding_rules.yaml`` (syntax in that file's header)."""

    text: str
    roles: tuple[str, ...] | None = None  # author roles the cue applies to; None = any
    negation: str | None = None  # overrides the code's negation mode for this cue
    weight: float | None = None  # overrides the length-based default confidence
    absent: bool = False  # the phrase names what the code says is missing (see the yaml)


@dataclass(frozen=True)
class CodeRule:
    code_id: str
    definition: str
    cues: tuple[CueSpec, ...]
    cmo_role: str | None = None  # role for codes the CMO table does not place (domains, ...)
    level: str | None = None
    negation: str = "suppress"  # what a negated cue does: suppress it, flip polarity, ignore


@dataclass(frozen=True)
class CodingRules:
    version: str
    rules: dict[str, CodeRule]
    negators: tuple[str, ...]
    pseudo_negations: tuple[str, ...]  # look negative but are not ("not only", "no doubt")
    hedges_strong: tuple[str, ...]
    hedges_weak: tuple[str, ...]
    counterfactuals: tuple[str, ...]  # "would be nice if", "I wish": the clause is not so
    problem_words: tuple[str, ...]  # "is the biggest challenge": a helping factor is lacking
    ambiguous: tuple[str, ...]  # words never used alone as evidence
    clause_words: tuple[str, ...]  # conjunctions that open a new clause ("but", "although")
    windows: dict[str, int]
    factor_counterparts: dict[str, str]  # helping id -> hindering id for the same factor
    raw: dict[str, Any] = field(compare=False, hash=False, repr=False)

    def get(self, code_id: str) -> CodeRule | None:
        return self.rules.get(code_id)


@dataclass(frozen=True)
class Codebook:
    version: str
    content_hash: str
    codes: dict[str, CodeDef]
    raw: dict[str, Any] = field(compare=False, hash=False)
    rules: CodingRules | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def rules_version(self) -> str | None:
        return self.rules.version if self.rules is not None else None

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


def _str_tuple(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"coding rules: {what} must be a list of strings")
    return tuple(value)


def _parse_cue(item: Any, code_id: str) -> CueSpec:
    if isinstance(item, str):
        return CueSpec(text=item)
    if not isinstance(item, dict) or not isinstance(item.get("cue"), str):
        raise ValueError(f"coding rules: bad cue for {code_id}: {item!r}")
    unknown = set(item) - {"cue", "roles", "negation", "weight", "absent"}
    if unknown:
        raise ValueError(f"coding rules: unknown cue keys for {code_id}: {sorted(unknown)}")
    roles = item.get("roles")
    negation = item.get("negation")
    if negation is not None and negation not in NEGATION_MODES:
        raise ValueError(f"coding rules: bad negation mode for {code_id}: {negation}")
    weight = item.get("weight")
    return CueSpec(
        text=item["cue"],
        roles=_str_tuple(roles, f"roles of a {code_id} cue") if roles is not None else None,
        negation=negation,
        weight=float(weight) if weight is not None else None,
        absent=bool(item.get("absent", False)),
    )


def parse_coding_rules(text: str, codes: dict[str, CodeDef]) -> CodingRules:
    """Parse ``coding_rules.yaml``; every rule must name an id that ``codes`` defines."""
    raw = yaml.safe_load(text)
    rules: dict[str, CodeRule] = {}
    for code_id, spec in (raw.get("codes") or {}).items():
        if code_id not in codes:
            raise ValueError(f"coding rules name an id the codebook lacks: {code_id}")
        unknown = set(spec) - {"definition", "cues", "cmo_role", "level", "negation"}
        if unknown:
            raise ValueError(f"coding rules: unknown keys for {code_id}: {sorted(unknown)}")
        cmo_role = spec.get("cmo_role")
        if cmo_role is not None and cmo_role not in CMO_ROLES:
            raise ValueError(f"coding rules: bad cmo_role for {code_id}: {cmo_role}")
        negation = spec.get("negation", "suppress")
        if negation not in NEGATION_MODES:
            raise ValueError(f"coding rules: bad negation mode for {code_id}: {negation}")
        cues = tuple(_parse_cue(item, code_id) for item in spec.get("cues") or ())
        if negation == "ignore" and any(cue.absent for cue in cues):
            raise ValueError(f"coding rules: absent cues cannot ignore negation ({code_id})")
        rules[code_id] = CodeRule(
            code_id=code_id,
            definition=str(spec.get("definition", "")).strip(),
            cues=cues,
            cmo_role=cmo_role,
            level=spec.get("level"),
            negation=negation,
        )
    counterparts = dict(raw.get("factor_counterparts") or {})
    for helping, hindering in counterparts.items():
        if helping not in codes or hindering not in codes:
            raise ValueError(f"coding rules: unknown factor pair {helping} -> {hindering}")
    negation = raw.get("negation") or {}
    hedging = raw.get("hedging") or {}
    return CodingRules(
        version=str(raw["version"]),
        rules=rules,
        negators=_str_tuple(negation.get("words", []), "negation.words"),
        pseudo_negations=_str_tuple(negation.get("pseudo", []), "negation.pseudo"),
        hedges_strong=_str_tuple(hedging.get("strong", []), "hedging.strong"),
        hedges_weak=_str_tuple(hedging.get("weak", []), "hedging.weak"),
        counterfactuals=_str_tuple(raw.get("counterfactual", []), "counterfactual"),
        problem_words=_str_tuple(raw.get("problem_words", []), "problem_words"),
        ambiguous=_str_tuple(raw.get("ambiguous", []), "ambiguous"),
        clause_words=_str_tuple(raw.get("clause_words", []), "clause_words"),
        windows={str(k): int(v) for k, v in (raw.get("windows") or {}).items()},
        factor_counterparts=counterparts,
        raw=raw,
    )


def parse_codebook(text: str, rules_text: str | None = None) -> Codebook:
    """Parse the canonical codebook and, if given, the coding rules that go with it.

    Without ``rules_text`` the hash covers ``text`` alone, as it always has.
    """
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
            codes[step] = CodeDef(
                id=step,
                label=step.split("_", 1)[1].replace("_", " ").title(),
                scheme=SCHEME_FRAMEWORK_STEP,
                parent=framework,
            )
    for mode in raw["episode_modes"]:
        codes[mode] = CodeDef(
            id=mode, label=mode[5:].replace("_", " ").capitalize(), scheme=SCHEME_EPISODE_MODE
        )
    for kind in raw["episode_kinds"]:
        codes[kind] = CodeDef(
            id=kind, label=kind[3:].replace("_", " ").capitalize(), scheme=SCHEME_EPISODE_KIND
        )
    hasher = hashlib.sha256(text.encode("utf-8"))
    rules = None
    if rules_text is not None:
        rules = parse_coding_rules(rules_text, codes)
        # a separator keeps ("ab", "c") and ("a", "bc") from hashing alike
        hasher.update(b"\0coding_rules\0")
        hasher.update(rules_text.encode("utf-8"))
    return Codebook(
        version=str(raw["version"]),
        content_hash=hasher.hexdigest()[:16],
        codes=codes,
        raw=raw,
        rules=rules,
    )


@lru_cache(maxsize=1)
def load_codebook() -> Codebook:
    package = resources.files("reports")
    text = package.joinpath("codebook.yaml").read_text(encoding="utf-8")
    rules_text = package.joinpath("coding_rules.yaml").read_text(encoding="utf-8")
    return parse_codebook(text, rules_text)
