"""The labelled coding bank and how a coder is scored on it (issue 13).

The bank (``tests/fixtures/coding_bank/``, format in its README and docs/coding-guide.md §11)
holds chat-style answers labelled by hand: per answer the codes (element, role or intended role,
modality), domains, factors and phase. Development parts (coders may be trained and tuned on
these; :data:`DEVELOPMENT_PARTS`): ``train.yaml``, ``dev.yaml``, ``test_v1.yaml``,
``test_v2.yaml`` and ``test_v3.yaml`` (the first, second and third frozen parts: each measured
once, then used for tuning), ``train_extra.yaml``, ``train_extra2.yaml`` and
``train_extra3.yaml`` (training items by other authors) and ``examples.yaml`` (the guide's
worked examples). The frozen part (:data:`FROZEN_PART`,
``frozen_test_v4.yaml``, written by an independent author and placed by the lead only to be
measured; "absent" until then) is read by ``benchmarks/coding_accuracy.py`` alone, to score it:
nothing prints its items, only aggregate figures, and every training path refuses any
``frozen_*`` file (:func:`training_items`).

A *prediction* is the same shape as a gold item, so the rules, the semantic heads and their
combination are scored alike. Figures (all per answer, multi-label):

* role: the six CMO roles an answer's realised (or negated-context) codes carry; per-role
  precision and recall, macro-F1 over the six, and Cohen's kappa over the answer x role yes/no
  decisions (pooled);
* element: the CMO element ids of the answer's codes, whatever their modality; micro-F1 and
  recall;
* domain, factor (``ID:polarity``, paired factors folded onto one label): macro-F1 over the
  labels seen in gold or prediction;
* phase: accuracy of the single phase (or none) per answer;
* intended-as-realised: of the gold codes that state an intended outcome, the share for which
  the coder gave that element an outcome role, i.e. coded the wish as attained.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from reports.codebook import (
    CMO_ROLES,
    OUTCOME_ROLES,
    SCHEME_CMO,
    SCHEME_DOMAIN,
    SCHEME_FACTOR,
    load_codebook,
)
from reports.coding.rules import fold_factor

ROOT = Path(__file__).resolve().parent.parent
BANK = ROOT / "tests" / "fixtures" / "coding_bank"
# parts a coder may be trained, tuned and cross-validated on (all but the frozen part)
DEVELOPMENT_PARTS = ("train", "dev", "test_v1", "test_v2", "test_v3", "train_extra",
                     "train_extra2", "train_extra3", "examples")
# the headline part: measured, never trained or tuned on; placed by the lead (absent until then)
FROZEN_PART = "frozen_test_v4"
SPLITS = ("train", "dev", "test_v1", "test_v2", "test_v3", "train_extra", "train_extra2",
          "train_extra3", FROZEN_PART)
FLOW_OF = {"GROW": "grow", "OSKAR": "oskar", "BASELINE": "baseline", "CHECKIN": "checkin",
           "EPISODE_LOG": "episode_log"}
ROLES = CMO_ROLES


@dataclass(frozen=True)
class Item:
    """One labelled answer (or one prediction for it)."""

    id: str
    voice: str
    flow: str
    step: str
    text: str
    codes: tuple[tuple[str, str | None, str | None, str], ...]  # element, role, intended, modality
    domains: frozenset[str]
    factors: frozenset[str]  # "ID:polarity"
    phase: str | None
    # (element, role, modality) -> the labelled span (gold items only)
    spans: Mapping[tuple[str, str | None, str], str] = field(default_factory=dict, compare=False)

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(r for _, r, _, _ in self.codes if r is not None)

    @property
    def elements(self) -> frozenset[str]:
        return frozenset(e for e, _, _, _ in self.codes)


@lru_cache(maxsize=1)
def _pairs() -> dict[str, str]:
    rules = load_codebook().rules
    assert rules is not None
    return dict(rules.factor_counterparts)


def _item(raw: Mapping[str, Any]) -> Item:
    codes = tuple((str(c["element"]), c.get("role"), c.get("intended_role"),
                   str(c.get("modality", "realised"))) for c in raw.get("codes") or ())
    pairs = _pairs()
    factors = frozenset(fold_factor(str(f["id"]), str(f["polarity"]), pairs)
                        for f in raw.get("factors") or ())
    spans = {(str(c["element"]), c.get("role"), str(c.get("modality", "realised"))):
             str(c.get("span") or "") for c in raw.get("codes") or ()}
    return Item(id=str(raw["id"]), voice=str(raw.get("voice", "mentee")),
                flow=FLOW_OF.get(str(raw.get("framework", "")), ""), step=str(raw.get("step", "")),
                text=str(raw["text"]), codes=codes,
                domains=frozenset(raw.get("domains") or ()), factors=factors,
                phase=raw.get("phase"), spans=spans)


def bank_path(split: str) -> Path:
    return BANK / ("examples.yaml" if split == "examples" else f"{split}.yaml")


def load_items(path: Path) -> list[Item] | None:
    """The items of one bank file, or None when the file is absent."""
    if not path.is_file():
        return None
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [_item(r) for r in raw.get("items") or ()]


def load_split(split: str) -> list[Item] | None:
    return load_items(bank_path(split))


class FrozenPartError(ValueError):
    """A training or tuning path was asked to read a frozen test part."""


def is_frozen(path: Path) -> bool:
    return path.name.lower().startswith("frozen")


def training_items(path: Path) -> list[Item] | None:
    """The items of a bank file for training or tuning: a frozen part is refused unread."""
    if is_frozen(path):
        raise FrozenPartError(f"{path.name} is a frozen test part: it is measured by "
                              "benchmarks/coding_accuracy.py only, never trained or tuned on")
    return load_items(path)


def development_items(parts: Sequence[str] = DEVELOPMENT_PARTS) -> dict[str, list[Item]]:
    """Every present development part's items, by part (the frozen part is never among them)."""
    out: dict[str, list[Item]] = {}
    for part in parts:
        items = training_items(bank_path(part))
        if items is not None:
            out[part] = items
    return out


# ---------------------------------------------------------------------------------------
# a coder's output as an item
# ---------------------------------------------------------------------------------------


def predicted_item(gold: Item, hits: Iterable[Any], phase: str | None,
                   pairs: Mapping[str, str]) -> Item:
    """A prediction in the gold item's shape, from ``CodeHit``/``RawHit``-like hits."""
    codes: list[tuple[str, str | None, str | None, str]] = []
    domains: set[str] = set()
    factors: set[str] = set()
    for h in hits:
        if h.scheme == SCHEME_CMO:
            codes.append((h.code_id, h.cmo_role, h.intended_role, h.modality))
        elif h.scheme == SCHEME_DOMAIN and h.modality in ("realised", "intended"):
            domains.add(h.code_id)  # the guide lists learned and hoped-for learning (§6)
        elif h.scheme == SCHEME_FACTOR and h.cmo_role is not None:
            factors.add(fold_factor(h.code_id, h.polarity or "", dict(pairs)))
    return Item(gold.id, gold.voice, gold.flow, gold.step, gold.text, tuple(codes),
                frozenset(domains), frozenset(factors), phase)


# ---------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------


@dataclass
class LabelScores:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)

    def add(self, gold: Iterable[str], pred: Iterable[str]) -> None:
        g, p = set(gold), set(pred)
        for label in g & p:
            self.tp[label] += 1
        for label in p - g:
            self.fp[label] += 1
        for label in g - p:
            self.fn[label] += 1

    def labels(self) -> list[str]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))

    def precision(self, label: str) -> float:
        d = self.tp[label] + self.fp[label]
        return self.tp[label] / d if d else 0.0

    def recall(self, label: str) -> float:
        d = self.tp[label] + self.fn[label]
        return self.tp[label] / d if d else 0.0

    def f1(self, label: str) -> float:
        p, r = self.precision(label), self.recall(label)
        return 2 * p * r / (p + r) if p + r else 0.0

    def macro_f1(self, labels: Sequence[str] | None = None) -> float:
        labels = list(labels) if labels is not None else self.labels()
        return sum(self.f1(x) for x in labels) / len(labels) if labels else 0.0

    def micro(self) -> tuple[float, float, float]:
        tp, fp, fn = sum(self.tp.values()), sum(self.fp.values()), sum(self.fn.values())
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def cohen_kappa(pairs: Iterable[tuple[bool, bool]]) -> float:
    """Cohen's kappa of two raters' yes/no decisions."""
    n = both = gold_yes = pred_yes = 0
    for g, p in pairs:
        n += 1
        both += g == p
        gold_yes += g
        pred_yes += p
    if n == 0:
        return 0.0
    observed = both / n
    expected = (gold_yes * pred_yes + (n - gold_yes) * (n - pred_yes)) / (n * n)
    return (observed - expected) / (1 - expected) if expected < 1 else 1.0


@dataclass
class Scores:
    items: int = 0
    roles: LabelScores = field(default_factory=LabelScores)
    role_decisions: list[tuple[bool, bool]] = field(default_factory=list)
    elements: LabelScores = field(default_factory=LabelScores)
    domains: LabelScores = field(default_factory=LabelScores)
    factors: LabelScores = field(default_factory=LabelScores)
    phase_right: int = 0
    intended: int = 0  # gold codes stating an intended outcome
    intended_as_realised: int = 0
    uncoded: int = 0  # answers with gold codes and no predicted code at all

    def add(self, gold: Item, pred: Item, role_labels: Sequence[str] = ROLES) -> None:
        self.items += 1
        g_roles, p_roles = gold.roles, pred.roles
        self.roles.add(g_roles, p_roles)
        self.role_decisions.extend((r in g_roles, r in p_roles) for r in role_labels)
        self.elements.add(gold.elements, pred.elements)
        self.domains.add(gold.domains, pred.domains)
        self.factors.add(gold.factors, pred.factors)
        self.phase_right += gold.phase == pred.phase
        realised = {e for e, r, _, _ in pred.codes if r in OUTCOME_ROLES}
        for element, _, intended_role, modality in gold.codes:
            if modality == "intended" and intended_role in OUTCOME_ROLES:
                self.intended += 1
                self.intended_as_realised += element in realised
        if gold.codes and not pred.codes:
            self.uncoded += 1

    def kappa(self) -> float:
        return cohen_kappa(self.role_decisions)

    def role_macro_f1(self, labels: Sequence[str] = ROLES) -> float:
        return self.roles.macro_f1(labels)

    def phase_accuracy(self) -> float:
        return self.phase_right / self.items if self.items else 0.0

    def intended_share(self) -> float | None:
        return self.intended_as_realised / self.intended if self.intended else None


def score(items: Sequence[Item], predict: Callable[[Item], Item],
          role_labels: Sequence[str] = ROLES) -> Scores:
    out = Scores()
    for item in items:
        out.add(item, predict(item), role_labels)
    return out


def summary(s: Scores, role_labels: Sequence[str] = ROLES) -> dict[str, Any]:
    """Aggregate figures only: safe to print for the frozen part."""
    ep, er, ef = s.elements.micro()
    return {
        "items": s.items,
        "role_macro_f1": round(s.role_macro_f1(role_labels), 3),
        "role_per_label": {r: (round(s.roles.precision(r), 3), round(s.roles.recall(r), 3))
                           for r in role_labels},
        "kappa": round(s.kappa(), 3),
        "element_micro_f1": round(ef, 3),
        "element_recall": round(er, 3),
        "element_precision": round(ep, 3),
        "domain_macro_f1": round(s.domains.macro_f1(), 3),
        "factor_macro_f1": round(s.factors.macro_f1(), 3),
        "phase_accuracy": round(s.phase_accuracy(), 3),
        "intended_as_realised": (None if s.intended_share() is None
                                 else round(s.intended_share() or 0.0, 3)),
        "intended_statements": s.intended,
        "uncoded_share": round(s.uncoded / s.items, 3) if s.items else 0.0,
    }


# ---------------------------------------------------------------------------------------
# the README's rules every item must pass (tests/fixtures/coding_bank/README.md)
# ---------------------------------------------------------------------------------------

STEPS = {
    "GROW": ({"mentee"}, {"goal", "reality", "options", "will", "anything_else"}),
    "OSKAR": ({"mentee"}, {"outcome", "know_how", "affirm_action", "review"}),
    "BASELINE": ({"mentee", "mentor"}, {"expectations", "hope_to_learn", "goals"}),
    "CHECKIN": ({"mentee", "mentor"}, {"relationship", "learning_self", "learning_how",
                                       "factors", "changed", "learning_partner",
                                       "most_effective", "anything_else"}),
    "EPISODE_LOG": ({"mentor"}, {"learned"}),
}
ITEM_KEYS = frozenset({"id", "voice", "framework", "step", "text", "codes", "domains",
                       "subcodes", "factors", "phase", "climate", "note"})
CODE_KEYS = frozenset({"element", "role", "intended_role", "modality", "span", "about",
                       "shared"})
MAY_HINDER = frozenset({"FAC_ALIGNMENT_MISSIONS", "FAC_COORDINATOR_COMMITMENT",
                        "FAC_PARTICIPANT_COMMITMENT", "FAC_PARTICIPANT_EMPOWERMENT",
                        "FAC_THOROUGH_DEVELOPMENT", "FAC_CONFIDENTIALITY_TRUST"})
FACTOR_CONTEXTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("FAC_LINE_MGMT_SUPPORT", "HIN_LINE_MGMT_PRIORITY", "HIN_HR_CHALLENGES"),
                    ("C_ORG_SUPPORT",)),
    **dict.fromkeys(("FAC_ALIGNMENT_MISSIONS", "HIN_ORGANISATIONAL_CHANGE"),
                    ("C_ORG_SUPPORT", "C_POLICY_EVIDENCE_CULTURE")),
    "HIN_CORPORATE_STRUCTURE_SIZE": ("C_ORG_SUPPORT", "C_HIERARCHY"),
    **dict.fromkeys(("FAC_PROTECTED_TIME", "HIN_TIME_CONSTRAINTS"), ("C_DYAD_SAFE_SPACE",)),
    **dict.fromkeys(("FAC_ONGOING_COMMUNICATION", "FAC_PARTICIPANT_COMMITMENT"),
                    ("C_COMMITMENT",)),
    "HIN_COMMUNICATION_DIFFICULTIES": ("C_COMMITMENT", "C_DYAD_SAFE_SPACE", "C_SCHEME_DESIGN"),
    "FAC_EFFECTIVE_MATCHING": ("C_SCHEME_DESIGN", "C_DYAD_DIVERSITY"),
    **dict.fromkeys(("HIN_DISTANCE_LOCATION", "FAC_COORDINATOR_COMMITMENT",
                     "FAC_DESIGN_STRUCTURE", "HIN_DESIGN_DEVELOPMENT",
                     "FAC_THOROUGH_DEVELOPMENT", "HIN_STIGMA"), ("C_SCHEME_DESIGN",)),
    "HIN_MENTOR_RECRUITMENT": ("C_SCHEME_DESIGN", "C_DYAD_TRUST"),
    "FAC_CONFIDENTIALITY_TRUST": ("C_DYAD_TRUST",),
    "FAC_OTHER": ("C_DEV_NETWORKS",),
}
SUBCODE_DOMAIN = {"COG": "DOM_COGNITIVE", "SKL": "DOM_SKILL", "AFF": "DOM_AFFECTIVE",
                  "NET": "DOM_SOCIAL_NETWORKS"}
MODALITY_NAMES = ("realised", "intended", "hypothetical", "negated")
_CONTEXT = frozenset({"CONTEXT_ENABLING", "CONTEXT_INHIBITING"})


def item_problems(raw: Mapping[str, Any], seen: set[str] | None = None) -> list[str]:
    """What breaks the bank README's rules in one raw item (empty: it passes)."""
    book = load_codebook()
    codes = book.codes
    out: list[str] = []
    seen = seen if seen is not None else set()
    rid = str(raw.get("id", ""))
    if not rid or rid in seen:
        out.append("1: id missing or not unique")
    seen.add(rid)
    extra = set(raw) - ITEM_KEYS
    if extra:
        out.append(f"1: unknown keys {sorted(extra)}")
    voices, steps = STEPS.get(str(raw.get("framework")), (set(), set()))
    if raw.get("voice") not in voices or raw.get("step") not in steps:
        out.append("1: voice/framework/step not as in the table")
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        return [*out, "1: text empty"]
    keys: set[tuple[Any, ...]] = set()
    contexts: dict[str, set[str]] = {}
    for c in raw.get("codes") or ():
        if set(c) - CODE_KEYS:
            out.append(f"1: unknown code keys {sorted(set(c) - CODE_KEYS)}")
        element, role, intended = c.get("element"), c.get("role"), c.get("intended_role")
        modality = c.get("modality")
        code = codes.get(str(element))
        if code is None or code.scheme != SCHEME_CMO:
            out.append(f"2: {element} is no CMO element")
            continue
        if modality not in MODALITY_NAMES:
            out.append(f"2: {element} modality {modality}")
        if (role is None) == (intended is None):
            out.append(f"3: {element} needs exactly one of role and intended_role")
        aimed = role if role is not None else intended
        if role is not None and not (modality == "realised"
                                     or (modality == "negated" and role in _CONTEXT)):
            out.append(f"4: {element} role {role} with modality {modality}")
        if role in OUTCOME_ROLES and modality != "realised":
            out.append(f"4: {element} outcome role not realised")
        if intended is not None and modality == "realised":
            out.append(f"4: {element} intended_role with realised")
        prefix = str(element)[:2]
        allowed = {"O_": {code.role, "CONTEXT_ENABLING"}, "C_": set(_CONTEXT),
                   "R_": {"RESPONSE", "RESOURCE"},
                   "M_": {"RESOURCE", "CONTEXT_ENABLING"}}.get(prefix, set())
        if aimed not in allowed:
            out.append(f"5: {element} cannot take {aimed}")
        span = c.get("span")
        if not isinstance(span, str) or not span or span not in text:
            out.append(f"6: {element} span is not a substring of the text")
        key = (element, aimed, modality)
        if key in keys:
            out.append(f"6: {element} {aimed} {modality} twice")
        keys.add(key)
        if role in _CONTEXT:
            contexts.setdefault(str(role), set()).add(str(element))
    domains = set(raw.get("domains") or ())
    for d in domains:
        if codes.get(d) is None or codes[d].scheme != SCHEME_DOMAIN:
            out.append(f"7: {d} is no domain")
    for sub in raw.get("subcodes") or ():
        if SUBCODE_DOMAIN.get(str(sub).split("_", 1)[0]) not in domains:
            out.append(f"7: subcode {sub} without its domain")
    for f in raw.get("factors") or ():
        fid, polarity = str(f.get("id")), f.get("polarity")
        if codes.get(fid) is None or codes[fid].scheme != SCHEME_FACTOR:
            out.append(f"8: {fid} is no factor")
            continue
        if polarity not in ("helping", "hindering") or (
                fid.startswith("HIN_") and polarity != "hindering") or (
                fid.startswith("FAC_") and polarity == "hindering" and fid not in MAY_HINDER):
            out.append(f"8: {fid} polarity {polarity}")
            continue
        pair = FACTOR_CONTEXTS.get(fid)
        want = "CONTEXT_ENABLING" if polarity == "helping" else "CONTEXT_INHIBITING"
        if pair and not contexts.get(want, set()) & set(pair):
            out.append(f"9: {fid} ({polarity}) without its paired context {pair}")
    phase, climate = raw.get("phase"), raw.get("climate")
    if phase is not None and (codes.get(phase) is None or codes[phase].scheme != "phase"):
        out.append(f"10: phase {phase}")
    if climate is not None and (codes.get(climate) is None
                                or codes[climate].scheme != "support_challenge"):
        out.append(f"10: climate {climate}")
    return out


def file_problems(path: Path, seen: set[str] | None = None) -> dict[str, list[str]]:
    """Item id -> problems, for every item of a (non-frozen) bank file that breaks a rule."""
    raw = yaml.safe_load(_read_development(path)) or {}
    seen = seen if seen is not None else set()
    out: dict[str, list[str]] = {}
    for item in raw.get("items") or ():
        problems = item_problems(item, seen)
        if problems:
            out[str(item.get("id"))] = problems
    return out


def _read_development(path: Path) -> str:
    if is_frozen(path):
        raise FrozenPartError(f"{path.name} is a frozen test part: not opened here")
    return path.read_text(encoding="utf-8")
