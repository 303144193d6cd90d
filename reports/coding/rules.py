"""Rule-based coding: the cue phrases of ``coding_rules.yaml`` matched on normalised text.

How a text is coded:

1. It is normalised (``normalise.py``) and split into word tokens and boundary marks (sentence
   punctuation and ``/``; commas and brackets end a clause). Clitics such as ``'s`` become
   their own token; ``n't`` stays on its verb so ``didn't`` is one negator.
2. Every cue of every code is compiled once per codebook into one token trie, so a text is
   scanned once whatever the number of cues (the reporting job codes ~500,000 answers).
   Cue syntax is described at the top of ``coding_rules.yaml``.
3. Each match is checked for negation and hedging inside its clause (boundary marks and
   ``but``/``although`` end a clause). A negated cue is suppressed, flips polarity (factors;
   enabling contexts become inhibiting ones, as the codebook's note on absent enabling
   contexts says) or is kept, as the code's ``negation`` mode says. Cues that contain a
   negator themselves ("not seen as a priority") are never negated again. Wishes ("it would
   help if ...") read as negation; calling something a problem turns helping factors round.
4. A cue made of one ambiguous word ("support", "trust", "diary") only counts when another cue
   of the same code also matched in the text.
5. One hit per code and polarity: the earliest evidence span, and a confidence that grows
   with every independent cue.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from conversations.safety import coding_span
from reports.codebook import (
    MECHANISM_ROLES,
    OUTCOME_ROLES,
    SCHEME_CMO,
    SCHEME_DOMAIN,
    SCHEME_FACTOR,
    SCHEME_PHASE,
    Codebook,
    CodingRules,
    load_codebook,
)
from reports.coding.model import (
    HYPOTHETICAL,
    INTENDED,
    METHOD_RULES,
    NEGATED,
    POLARITY_HELPING,
    POLARITY_HINDERING,
    REALISED,
    CodeHit,
    modal_role,
)
from reports.coding.normalise import normalise

_CLITICS = ("'s", "'re", "'ve", "'m", "'ll", "'d")

_DEFAULT_WINDOWS = {
    "gap": 3,  # words a "..." cue may skip
    "negation_before": 4,
    "negation_after": 2,
    "hedge_before": 8,
    "hedge_after": 3,
}
# Confidence of one cue by its number of words: longer phrases are more specific.
_LENGTH_WEIGHT = (0.0, 0.6, 0.75, 0.85)
_MAX_CONFIDENCE = 0.97
_FLIP_FACTOR = 0.85  # a flipped reading is an inference, not the participant's own framing
_IGNORED_NEGATION_FACTOR = 0.8
_WEAK_HEDGE_FACTOR = 0.75
_STRONG_HEDGE_FACTOR = 0.5
_AMBIGUOUS_WEIGHT = 0.3

_OUTCOME_ROLES = frozenset(OUTCOME_ROLES)
# roles whose denial is coded as a negated element (docs/coding-guide.md §3.4) instead of
# being dropped: "it hasn't changed how I work", "she didn't share much of her experience"
_NEGATABLE_ROLES = frozenset((*OUTCOME_ROLES, *MECHANISM_ROLES))
# deciding is the claim itself: "I'll email the matron" is a realised decision (§3.3)
_DECISION = "R_DECISION_ACTION"
_FLIP_ROLE = {"CONTEXT_ENABLING": "CONTEXT_INHIBITING", "CONTEXT_INHIBITING": "CONTEXT_ENABLING"}
_FLIP_POLARITY = {POLARITY_HELPING: POLARITY_HINDERING, POLARITY_HINDERING: POLARITY_HELPING}


# ---------------------------------------------------------------------------
# tokens and clauses
# ---------------------------------------------------------------------------


_SENTENCE_MARK = "\x01"
_CLAUSE_MARK = "\x02"
_MARKS = frozenset((_SENTENCE_MARK, _CLAUSE_MARK))


class _SplitTable(dict[int, str]):
    """``str.translate`` table turning normalised text into space-separated words and marks.

    Letters, digits and apostrophes stay; sentence punctuation becomes a sentence mark, commas
    and brackets a clause mark, anything else a space. ``str.split`` then tokenises in C, which
    is several times faster than a regex on the volumes the reporting job codes.
    """

    def __missing__(self, key: int) -> str:
        ch = chr(key)
        if ch in ".;:!?/\n":
            value = f" {_SENTENCE_MARK} "
        elif ch in ",()[]{}":
            value = f" {_CLAUSE_MARK} "
        elif ch == "'" or (ch.isalnum() and (ch.isascii() or not ch.isdigit())):
            value = ch
        else:
            value = " "
        self[key] = value
        return value


_SPLIT_TABLE = _SplitTable()


def _words_and_marks(norm: str) -> list[str]:
    """Word tokens and boundary marks of normalised text, clitics split off."""
    if " -" in norm or "--" in norm:  # a spaced or double dash ends a sentence, "self-aware" not
        norm = norm.replace(" - ", f" {_SENTENCE_MARK} ").replace("--", f" {_SENTENCE_MARK} ")
    toks = norm.translate(_SPLIT_TABLE).split()
    if "'" not in norm:
        return toks
    out: list[str] = []
    for tok in toks:
        if "'" in tok:
            tok = tok.strip("'")
            if not tok:
                continue
            if not tok.endswith("n't"):
                for clitic in _CLITICS:
                    if tok.endswith(clitic) and len(tok) > len(clitic):
                        out += (tok[: -len(clitic)], clitic)
                        break
                else:
                    out.append(tok)
                continue
        out.append(tok)
    return out


class _Scan:
    """Tokens of one text with sentence and clause ids.

    Separators are first rewritten into marker tokens, so one C-level ``findall`` yields words
    and boundaries together. Markers stay in the token stream: no cue has an edge for them, so
    no cue runs across a boundary. Character offsets, needed only for the few tokens that
    become evidence, are recovered afterwards with ``str.find``.
    """

    __slots__ = ("clause", "norm", "positions", "sent", "toks")

    def __init__(self, norm: str, clause_words: frozenset[str]) -> None:
        self.norm = norm
        toks = _words_and_marks(norm)
        sent: list[int] = []
        clause: list[int] = []
        s = c = 0
        for tok in toks:
            if tok in clause_words:  # "but", "although" open a clause; markers are in the set
                c += 1
                if tok == _SENTENCE_MARK:
                    s += 1
            sent.append(s)
            clause.append(c)
        self.toks = toks
        self.sent = sent
        self.clause = clause
        self.positions: list[int] | None = None

    def offsets(self, first: int, last: int) -> tuple[int, int]:
        """Start of token ``first`` and end of token ``last`` in the normalised text."""
        positions = self.positions
        if positions is None:
            # letters and digits only occur inside tokens, so each token is the first match of
            # its own text after the previous one: str.find recovers offsets without a regex
            norm = self.norm
            positions = []
            pos = 0
            for tok in self.toks:
                if tok in _MARKS:
                    positions.append(pos)
                    continue
                pos = norm.find(tok, pos)
                positions.append(pos)
                pos += len(tok)
            self.positions = positions
        return positions[first], positions[last] + len(self.toks[last])


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: cheap dedupe of matches
class _Payload:
    rule: int  # index into _Compiled.rules
    weight: float
    roles: frozenset[str] | None
    negation: str
    has_negator: bool
    ambiguous: bool
    absent: bool  # the cue states the code's absence: read as negated


class _Node:
    __slots__ = ("ends", "exact", "gap", "has_next", "plens", "prefix", "simple")

    def __init__(self) -> None:
        self.exact: dict[str, _Node] = {}
        self.prefix: dict[str, _Node] = {}
        self.plens: tuple[int, ...] = ()
        self.gap: tuple[int, _Node] | None = None
        self.ends: list[_Payload] = []
        self.has_next = False
        self.simple = False  # only whole-word children: the walk can take a shortcut

    def children(self, word: str) -> list[_Node]:
        child = self.exact.get(word)
        found = self.children_by_prefix(word) if self.plens else []
        if child is not None:
            found.insert(0, child)
        return found

    def children_by_prefix(self, word: str) -> list[_Node]:
        found: list[_Node] = []
        for length in self.plens:
            if length > len(word):
                break
            pchild = self.prefix.get(word[:length])
            if pchild is not None:
                found.append(pchild)
        return found

    def finalise(self) -> None:
        # lets the walk skip leaves without pushing them
        self.has_next = bool(self.exact or self.prefix or self.gap)
        self.simple = not self.prefix and self.gap is None
        for child in (*self.exact.values(), *self.prefix.values()):
            child.finalise()
        if self.gap is not None:
            self.gap[1].finalise()


@dataclass(frozen=True, slots=True)
class _RuleInfo:
    code_id: str
    scheme: str
    cmo_role: str | None
    level: str | None
    polarity: str | None
    is_factor: bool
    outcome: bool  # outcome claims are negated, not weakened, under a strong hedge
    negatable: bool  # a denied cue is kept as a negated element, not dropped
    plain: tuple[str, str, str | None, str | None, str | None]  # hit labels as written
    flipped: tuple[str, str, str | None, str | None, str | None]  # ... and when negated


def _labels(code_id: str, scheme: str, cmo_role: str | None, level: str | None,
            polarity: str | None, flipped: bool
            ) -> tuple[str, str, str | None, str | None, str | None]:
    if flipped:
        if polarity is not None:
            polarity = _FLIP_POLARITY[polarity]
        if cmo_role is not None:
            cmo_role = _FLIP_ROLE.get(cmo_role, cmo_role)
    if scheme == SCHEME_FACTOR:
        cmo_role = "CONTEXT_ENABLING" if polarity == POLARITY_HELPING else "CONTEXT_INHIBITING"
    return code_id, scheme, cmo_role, level, polarity


_PSEUDO, _STRONG, _WEAK = "pseudo", "strong", "weak"
_COUNTER, _PROBLEM = "counterfactual", "problem"
# modality markers (coding_rules.yaml, ``modality``)
_INTENT, _INTENT_AFTER, _REAL, _HYPO = "intended", "intended_after", "realised", "hypothetical"
_CONTRAST_NEG = "contrast"
_DEMOTE = "demote"  # "not so much X as Y": X is not the point (§3.6)
# words that end the demoted X of "not so much X as Y"
_DEMOTE_ENDS = frozenset({"as", "but", "rather", "more", "than"})
_OWN_MOTIVATION = "C_MOTIVATION"  # absent where "I only went because I was told to" (§3.8)
_VOLUNTARISM = "C_DYAD_VOLUNTARISM"  # ... and taking part was not voluntary
_MODAL_KINDS = frozenset((_INTENT, _INTENT_AFTER, _REAL, _HYPO))
_CONTRAST_WINDOW = 2  # words after "instead of" a cue may start and be what did not happen
_INTENT_AFTER_WINDOW = 8  # words after a cue an "... by the end" marker may be
_REALISED_AFTER_WINDOW = 4  # "more confident now" in a goal step's answer
# clause words that turn a sentence round: an intention before them is not one after them
_CONTRASTS = frozenset({"but", "however", "although", "though", "whereas", "yet"})


class _PhraseSet:
    """Multi-word phrases (pseudo-negations, hedges) found by their first token."""

    def __init__(self, phrases: Iterable[tuple[Sequence[str], str]]) -> None:
        self.by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for phrase, kind in phrases:
            if phrase:
                self.by_first.setdefault(phrase[0], []).append((tuple(phrase), kind))

    def occurrences(self, toks: list[str], firsts: list[int]
                    ) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []
        for i in firsts:
            for phrase, kind in self.by_first[toks[i]]:
                end = i + len(phrase)
                if tuple(toks[i:end]) == phrase:
                    found.append((i, end - 1, kind))
        return found


@dataclass(frozen=True, slots=True)
class _TokenInfo:
    starts: tuple[_Node, ...]  # trie nodes a cue starting with this token leads to
    negator: bool
    phrase_first: bool
    clause_word: bool


@dataclass(frozen=True)
class _OnlyBecause:
    """ "only ... because <someone else's push>" (coding_rules.yaml ``only_because``)."""

    because: frozenset[str]
    window: int
    external: tuple[tuple[str, ...], ...]
    level: str | None

    def spans(self, toks: list[str], sent: list[int]) -> list[tuple[int, int]]:
        """(first, last) tokens of each "only ... because <push>" of the text."""
        out: list[tuple[int, int]] = []
        n = len(toks)
        for k in range(n):
            if toks[k] != "only":
                continue
            for j in range(k + 1, min(n, k + 1 + self.window)):
                if sent[j] != sent[k]:
                    break
                if toks[j] not in self.because:
                    continue
                end = self._push_end(toks, sent, j + 1)
                if end is not None:
                    out.append((k, end))
                break
        return out

    def _push_end(self, toks: list[str], sent: list[int], start: int) -> int | None:
        for x in range(start, len(toks)):
            if sent[x] != sent[start - 1] or toks[x] in _MARKS:
                return None
            for phrase in self.external:
                if tuple(toks[x:x + len(phrase)]) == phrase:
                    return x + len(phrase) - 1
        return None


@dataclass
class _Compiled:
    root: _Node
    rules: list[_RuleInfo]
    negators: frozenset[str]
    # pseudo-negations ("not only", "without a doubt") and hedges ("not sure", "maybe");
    # a negator inside either negates nothing
    phrases: _PhraseSet
    clause_words: frozenset[str]
    windows: dict[str, int]
    counterparts: dict[str, str] = field(default_factory=dict)
    factor_contexts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    context_levels: dict[str, str | None] = field(default_factory=dict)
    presupposing: frozenset[str] = frozenset()
    only_because: _OnlyBecause | None = None
    # per-word facts, computed once per distinct word: the vocabulary of reflections is small
    # next to the number of answers, so this turns most of the scan into dict lookups
    tokens: dict[str, _TokenInfo] = field(default_factory=dict)

    def token(self, word: str) -> _TokenInfo:
        info = self.tokens.get(word)
        if info is None:
            if len(self.tokens) > 200_000:
                self.tokens.clear()
            info = self.tokens[word] = _TokenInfo(
                starts=tuple(self.root.children(word)),
                negator=_is_negator(word, self.negators),
                phrase_first=word in self.phrases.by_first,
                clause_word=word in self.clause_words,
            )
        return info


def _cue_tokens(text: str) -> list[str]:
    # the same tokeniser as for texts, so a cue and the words it should match split alike
    return [t for t in _words_and_marks(normalise(text).text) if t not in _MARKS]


def _is_negator(tok: str, negators: frozenset[str]) -> bool:
    return tok in negators or tok.endswith("n't")


def _expand_cue(text: str, gap: int) -> list[list[tuple[str, str | int]]]:
    """All token sequences a cue stands for; elements are (kind, value), kind w/p/g."""
    slots: list[list[list[tuple[str, str | int]]]] = []
    for piece in normalise(text).text.split():
        if piece == "...":
            slots.append([[("g", gap)]])
            continue
        options: list[list[tuple[str, str | int]]] = []
        for alt in piece.split("|"):
            prefix = alt.endswith("*")
            # "_" joins the words of a multi-word alternative: "less|no_longer anxious"
            words = _cue_tokens(alt.rstrip("*").replace("_", " "))
            if not words:
                raise ValueError(f"cue {text!r} has an empty word")
            seq: list[tuple[str, str | int]] = [("w", w) for w in words]
            if prefix:
                seq[-1] = ("p", words[-1])
            options.append(seq)
        slots.append(options)
    if not slots or slots[0][0][0][0] == "g" or slots[-1][0][0][0] == "g":
        raise ValueError(f"cue {text!r} must start and end with a word")
    return [list(itertools.chain.from_iterable(combo)) for combo in itertools.product(*slots)]


def _insert(root: _Node, seq: list[tuple[str, str | int]], payload: _Payload) -> None:
    node = root
    for kind, value in seq:
        if kind == "g":
            assert isinstance(value, int)
            if node.gap is None:
                node.gap = (value, _Node())
            elif node.gap[0] < value:
                node.gap = (value, node.gap[1])
            node = node.gap[1]
            continue
        assert isinstance(value, str)
        table = node.exact if kind == "w" else node.prefix
        child = table.get(value)
        if child is None:
            child = table[value] = _Node()
            if kind == "p":
                node.plens = tuple(sorted({*node.plens, len(value)}))
        node = child
    node.ends.append(payload)


def _compile(codebook: Codebook) -> _Compiled:
    rules = codebook.rules
    if rules is None:
        raise ValueError("this codebook carries no coding rules; load it with coding_rules.yaml")
    windows = {**_DEFAULT_WINDOWS, **rules.windows}
    negators = frozenset(rules.negators)
    ambiguous = frozenset(rules.ambiguous)
    root = _Node()
    infos: list[_RuleInfo] = []
    for code_id in sorted(rules.rules):
        rule = rules.rules[code_id]
        code = codebook.get(code_id)
        index = len(infos)
        cmo_role = rule.cmo_role or code.role
        level = rule.level or code.level
        infos.append(_RuleInfo(
            code_id=code.id,
            scheme=code.scheme,
            cmo_role=cmo_role,
            level=level,
            polarity=code.polarity,
            is_factor=code.scheme == SCHEME_FACTOR,
            outcome=cmo_role in _OUTCOME_ROLES or code.scheme == SCHEME_DOMAIN,
            negatable=code.scheme == SCHEME_CMO and cmo_role in _NEGATABLE_ROLES,
            plain=_labels(code.id, code.scheme, cmo_role, level, code.polarity, False),
            flipped=_labels(code.id, code.scheme, cmo_role, level, code.polarity, True),
        ))
        for cue in rule.cues:
            for seq in _expand_cue(cue.text, windows["gap"]):
                words = [str(v) for k, v in seq if k != "g"]
                weight = cue.weight
                if weight is None:
                    weight = _LENGTH_WEIGHT[min(len(words), len(_LENGTH_WEIGHT) - 1)]
                payload = _Payload(
                    rule=index,
                    weight=weight,
                    roles=frozenset(cue.roles) if cue.roles is not None else None,
                    negation=cue.negation or rule.negation,
                    has_negator=any(_is_negator(w, negators) for w in words),
                    ambiguous=len(words) == 1 and words[0] in ambiguous,
                    absent=cue.absent,
                )
                _insert(root, seq, payload)
    root.finalise()
    phrases = [(_cue_tokens(p), _PSEUDO) for p in rules.pseudo_negations]
    phrases += [(_cue_tokens(p), _STRONG) for p in rules.hedges_strong]
    phrases += [(_cue_tokens(p), _WEAK) for p in rules.hedges_weak]
    phrases += [(_cue_tokens(p), _COUNTER) for p in rules.counterfactuals]
    phrases += [(_cue_tokens(p), _PROBLEM) for p in rules.problem_words]
    modality = rules.raw.get("modality") or {}
    for kind in (_INTENT, _INTENT_AFTER, _REAL, _HYPO):
        phrases += [(_cue_tokens(str(p)), kind) for p in modality.get(kind) or ()]
    phrases += [(_cue_tokens(str(p)), _CONTRAST_NEG)
                for p in rules.raw.get("contrast_negators") or ()]
    phrases += [(_cue_tokens(str(p)), _DEMOTE)
                for p in rules.raw.get("contrast_demoting") or ()]
    only = rules.raw.get("only_because") or {}
    only_because = None
    if only and _OWN_MOTIVATION in codebook.codes:
        only_because = _OnlyBecause(
            frozenset(str(w) for w in only.get("because") or ()), int(only.get("window", 6)),
            tuple(tuple(_cue_tokens(str(p))) for p in only.get("external") or ()),
            codebook.get(_OWN_MOTIVATION).level)
    factor_contexts: dict[str, tuple[str, ...]] = {}
    for factor, contexts in (rules.raw.get("factor_contexts") or {}).items():
        unknown = [c for c in (factor, *contexts) if c not in codebook.codes]
        if unknown:
            raise ValueError(f"coding rules: factor_contexts names unknown ids: {unknown}")
        factor_contexts[str(factor)] = tuple(str(c) for c in contexts)
    return _Compiled(
        root=root,
        rules=infos,
        negators=negators,
        phrases=_PhraseSet(phrases),
        # the boundary markers open clauses too; one set lookup covers all three
        clause_words=frozenset(w for p in rules.clause_words for w in _cue_tokens(p)) | _MARKS,
        windows=windows,
        counterparts=dict(rules.factor_counterparts),
        factor_contexts=factor_contexts,
        context_levels={c: codebook.get(c).level for cs in factor_contexts.values()
                        for c in cs},
        presupposing=frozenset(str(w) for w in rules.raw.get("presupposing_questions") or ()),
        only_because=only_because,
    )


_CACHE: dict[str, _Compiled] = {}


def _compiled(codebook: Codebook) -> _Compiled:
    # keyed by content hash: equal yaml gives equal rules, and the hash covers both files
    compiled = _CACHE.get(codebook.content_hash)
    if compiled is None:
        if len(_CACHE) > 8:
            _CACHE.clear()
        compiled = _CACHE[codebook.content_hash] = _compile(codebook)
    return compiled


# ---------------------------------------------------------------------------
# matching
# ---------------------------------------------------------------------------


def _find(infos: list[_TokenInfo], toks: list[str]) -> list[tuple[_Payload, int, int]]:
    """Every cue occurrence as (payload, first token, last token).

    Boundary marks have no trie edges, so a cue cannot run across one; only a gap has to stop
    at a sentence mark explicitly.
    """
    found: list[tuple[_Payload, int, int]] = []
    append = found.append
    n = len(toks)
    for i in range(n):
        starts = infos[i].starts
        if not starts:
            continue
        stack: list[tuple[_Node, int]] = []
        for node in starts:
            for payload in node.ends:
                append((payload, i, i))
            if not node.has_next:
                continue
            if node.simple:
                # most cues that start with a common word ("my values") need exactly one more
                # word: look it up here instead of going through the stack
                if i + 1 < n:
                    nxt = node.exact.get(toks[i + 1])
                    if nxt is not None:
                        for payload in nxt.ends:
                            append((payload, i, i + 1))
                        if nxt.has_next:
                            stack.append((nxt, i + 2))
                continue
            stack.append((node, i + 1))
        while stack:
            node, j = stack.pop()
            gap = node.gap
            if gap is not None:
                gap_node = gap[1]
                for k in range(j, min(n, j + gap[0] + 1)):
                    if toks[k] == _SENTENCE_MARK:
                        break
                    stack.append((gap_node, k))
            if j >= n:
                continue
            word = toks[j]
            nxt = node.exact.get(word)
            if nxt is not None:
                for payload in nxt.ends:
                    append((payload, i, j))
                if nxt.has_next:
                    stack.append((nxt, j + 1))
            if node.plens:
                for pnext in node.children_by_prefix(word):
                    for payload in pnext.ends:
                        append((payload, i, j))
                    if pnext.has_next:
                        stack.append((pnext, j + 1))
    return found


class RawHit(NamedTuple):
    """A hit before it becomes a ``CodeHit``: same fields, a fraction of the cost to build.

    The stream path serialises these directly; ``phase_signal`` accepts either.
    """

    code_id: str
    scheme: str
    cmo_role: str | None
    level: str | None
    polarity: str | None
    span_start: int
    span_end: int
    evidence: str
    method: str
    confidence: float
    modality: str = REALISED
    intended_role: str | None = None


def code_text_raw(text: str, role: str | None = None, codebook: Codebook | None = None,
                  intends: bool = False, risk: bool | None = None) -> list[RawHit]:
    """``code_text`` without building dataclasses (for bulk callers such as ``code_stream``).

    ``intends``: the text answers a step that asks for goals or hopes, so the outcomes it
    names are intended unless a realised marker ("now", "already") says otherwise. ``risk``:
    the safety verdict stored with the answer, where the caller has one (None: judged now).
    """
    book = codebook if codebook is not None else load_codebook()
    comp = _compiled(book)
    norm = normalise(text)
    scan = _Scan(norm.text, comp.clause_words)
    toks = scan.toks
    if not toks:
        return _with_safety_rule([], text, book, risk)
    cache = comp.tokens
    infos = [cache.get(tok) or comp.token(tok) for tok in toks]
    sent = scan.sent
    # a gapped cue can be reached along two paths; dict keeps the first, in scan order
    matches = dict.fromkeys(_find(infos, toks))
    if not matches:
        return _with_safety_rule([], text, book, risk)
    clause = scan.clause
    n = len(toks)
    role_key = role.lower() if isinstance(role, str) else None

    negs = [info.negator for info in infos]
    strong: list[tuple[int, int]] = []
    weak: list[tuple[int, int]] = []
    counter_clauses: set[int] = set()  # clauses under "would be nice if", "I wish"
    problem_sentences: set[int] = set()  # sentences calling something a problem
    modal: list[tuple[int, int, str]] = []
    contrast_ends: list[int] = []  # last token of each "instead of", "used to"
    demoted: list[tuple[int, int]] = []  # X of each "not so much X as Y" (half-open)
    firsts = [k for k in range(n) if infos[k].phrase_first]
    if firsts:
        phrases = comp.phrases.occurrences(toks, firsts)
        in_pseudo = _flags(n, [(a, b) for a, b, kind in phrases if kind == _PSEUDO])
        for a, b, kind in phrases:
            if kind in _MODAL_KINDS:
                modal.append((a, b, kind))
                continue
            if kind == _CONTRAST_NEG:
                contrast_ends.append(b)
                continue
            if kind == _DEMOTE:
                for k in range(a, b + 1):
                    negs[k] = False  # its "not" denies nothing: Y is asserted
                e = b + 1
                while (e < n and sent[e] == sent[a] and toks[e] not in _DEMOTE_ENDS
                       and toks[e] != _CLAUSE_MARK):
                    e += 1
                demoted.append((b + 1, e))
                continue
            if kind == _PROBLEM:
                problem_sentences.add(sent[a])
                continue
            for k in range(a, b + 1):
                negs[k] = False  # "not sure", "not only": the "not" negates nothing
            if kind == _COUNTER:
                counter_clauses.add(clause[a])
            elif kind == _STRONG and not in_pseudo[a]:  # "without a doubt" is no hedge
                strong.append((a, b))
            elif kind == _WEAK and not in_pseudo[a]:
                weak.append((a, b))
    any_negator = any(negs)

    # keep the longest of nested matches of one code: "not being in same department" must not
    # also be read as a negated "same department"
    by_rule: dict[int, list[tuple[_Payload, int, int]]] = {}
    for match in matches:
        payload = match[0]
        if payload.roles is not None and role_key not in payload.roles:
            continue
        by_rule.setdefault(payload.rule, []).append(match)

    frame = _Frame(toks, sent, clause, modal,
                   _questions(norm.text, toks, sent, comp.presupposing), intends)

    w = comp.windows
    neg_before, neg_after = w["negation_before"], w["negation_after"]
    hedge_before, hedge_after = w["hedge_before"], w["hedge_after"]
    results: dict[tuple[int, bool, str], _Evidence] = {}
    for rule_index, rule_matches in by_rule.items():
        nested = len(rule_matches) > 1
        for payload, a, b in rule_matches:
            if nested and any(x <= a and b <= y and (x != a or y != b)
                              for _, x, y in rule_matches):
                continue
            if demoted and any(x <= a < y for x, y in demoted):
                continue  # "not so much confidence I lack as ...": X is not the claim
            weight = payload.weight
            flipped = False
            info = comp.rules[rule_index]
            is_outcome = info.outcome
            modality = frame.modality(a, b) if (modal or frame.useful) else REALISED
            if modality == INTENDED and info.code_id == _DECISION:
                modality = REALISED
            negated = any_negator and not payload.has_negator and _negated(
                toks, negs, clause, a, b, neg_before, neg_after)
            if contrast_ends and not negated and any(
                    e < a <= e + _CONTRAST_WINDOW and clause[e] == clause[a]
                    for e in contrast_ends):
                negated = True  # "instead of rushing in": the rushing did not happen
            if counter_clauses and clause[a] in counter_clauses:
                if is_outcome:
                    modality = INTENDED  # "it would be nice to feel confident": wished for
                else:
                    negated = True  # wished for, so not there
            elif (problem_sentences and payload.negation == "flip"
                  and sent[a] in problem_sentences):
                negated = not negated  # "protected time is the biggest challenge"
            if payload.absent and payload.negation == "suppress":
                # the cue names what this code says is lacking ("emphasis on mentoring" for
                # HR challenges): evidence only when denied or doubted
                if not (negated or (strong and _hedged(strong, clause, a, b, hedge_before,
                                                       hedge_after))):
                    continue
            elif negated != payload.absent:  # a negated absence is a presence
                if payload.negation == "suppress":
                    if not info.negatable:
                        continue
                    modality = NEGATED
                elif payload.negation == "flip":
                    flipped = True
                    modality = NEGATED
                    weight *= _FLIP_FACTOR
                else:
                    weight *= _IGNORED_NEGATION_FACTOR
                    modality = NEGATED
            if strong and _hedged(strong, clause, a, b, hedge_before, hedge_after):
                if is_outcome:
                    if not info.negatable:
                        continue
                    modality = NEGATED  # "not sure it helped" is doubt, not evidence (§3.4)
                else:
                    weight *= _STRONG_HEDGE_FACTOR
            elif weak and _hedged(weak, clause, a, b, hedge_before, hedge_after):
                weight *= _WEAK_HEDGE_FACTOR
            if payload.ambiguous:
                weight = min(weight, _AMBIGUOUS_WEIGHT)
            key = (rule_index, flipped, modality)
            ev = results.get(key)
            if ev is None:
                results[key] = _Evidence([weight], a, b, payload.ambiguous)
                continue
            ev.weights.append(weight)
            if payload.ambiguous:
                continue
            if ev.ambiguous_only or (a, b) < (ev.first, ev.last):
                ev.first, ev.last = a, b
            ev.ambiguous_only = False

    hits: list[RawHit] = []
    rules = comp.rules
    for (rule_index, flipped, modality), ev in results.items():
        if ev.ambiguous_only:
            continue
        remaining = 1.0
        for weight in ev.weights:
            remaining *= 1.0 - weight
        confidence = round(min(_MAX_CONFIDENCE, 1.0 - remaining), 3)
        start, end = norm.to_original(*scan.offsets(ev.first, ev.last))
        code_id, scheme, cmo_role, level, polarity = (
            rules[rule_index].flipped if flipped else rules[rule_index].plain)
        cmo_role, intended_role = modal_role(cmo_role, modality)
        hits.append(_new_hit(RawHit, (code_id, scheme, cmo_role, level, polarity, start, end,
                                      text[start:end], METHOD_RULES, confidence, modality,
                                      intended_role)))
    if comp.only_because is not None and "only" in toks:
        hits = _with_only_because(hits, comp.only_because, scan, norm, text)
    if comp.factor_contexts:
        hits = _with_factor_contexts(hits, comp)
    return _with_safety_rule(hits, text, book, risk)


_ONLY_BECAUSE_CONFIDENCE = 0.75


def _with_only_because(hits: list[RawHit], rule: _OnlyBecause, scan: _Scan, norm: Any,
                       text: str) -> list[RawHit]:
    """ "I only went because my manager told me to": the writer's own motivation is absent."""
    spans = rule.spans(scan.toks, scan.sent)
    if not spans or any(h.code_id == _OWN_MOTIVATION and h.modality == NEGATED for h in hits):
        return hits
    first, last = spans[0]
    start, end = norm.to_original(*scan.offsets(first, last))
    out: list[RawHit] = []
    for h in hits:
        if (h.code_id == _VOLUNTARISM and h.modality == REALISED and start <= h.span_start
                and h.span_end <= end):
            # "I only signed up because it was mandatory": taking part was not voluntary
            h = h._replace(cmo_role="CONTEXT_INHIBITING", modality=NEGATED)
        out.append(h)
    # a realised "motivated" elsewhere in the answer is the writer's own claim: it stays
    out.append(_new_hit(RawHit, (_OWN_MOTIVATION, SCHEME_CMO, "CONTEXT_INHIBITING", rule.level,
                                 None, start, end, text[start:end], METHOD_RULES,
                                 _ONLY_BECAUSE_CONFIDENCE, NEGATED, None)))
    return out


_PAIRED_WEIGHT = 0.8  # the context is read from the factor's evidence, not from its own cue


def _with_factor_contexts(hits: list[RawHit], comp: _Compiled) -> list[RawHit]:
    """Each factor found with none of its paired contexts gets the first one beside it."""
    found = {h.code_id for h in hits}
    added: list[RawHit] = []
    for h in hits:
        if h.scheme != SCHEME_FACTOR or h.cmo_role is None:
            continue
        contexts = comp.factor_contexts.get(h.code_id)
        if not contexts or found.intersection(contexts):
            continue
        context = contexts[0]
        found.add(context)
        added.append(_new_hit(RawHit, (context, SCHEME_CMO, h.cmo_role,
                                       comp.context_levels.get(context), None, h.span_start,
                                       h.span_end, h.evidence, METHOD_RULES,
                                       round(h.confidence * _PAIRED_WEIGHT, 3), h.modality,
                                       None)))
    return hits + added if added else hits


def _with_safety_rule(hits: list[RawHit], text: str, book: Codebook,
                      risk: bool | None) -> list[RawHit]:
    """Risk to self is decided by the one safety rule the chat also uses (signposting): its
    stored verdict (``risk``) where the caller has one, else its judgement now, so the report
    and the bot can never disagree about who was signposted."""
    hits = [h for h in hits if h.code_id != SAFETY_CODE]
    span = coding_span(text, risk)
    if span is not None and SAFETY_CODE in book.codes:
        code = book.codes[SAFETY_CODE]
        start, end = span
        hits.append(_new_hit(RawHit, (SAFETY_CODE, code.scheme, "CONTEXT_INHIBITING", None,
                                      None, start, end, text[start:end], METHOD_RULES, 0.9,
                                      REALISED, None)))
    hits.sort(key=_raw_key)
    return hits


SAFETY_CODE = "TOPIC_SELF_HARM_RISK"
_new_hit = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


def _raw_key(hit: RawHit) -> tuple[int, int, str, str, str]:
    return (hit.span_start, hit.span_end, hit.code_id, hit.polarity or "", hit.modality)


def code_text(text: str, role: str | None = None, codebook: Codebook | None = None,
              intends: bool = False) -> list[CodeHit]:
    """Code one answer. ``role`` ("mentee"/"mentor") enables role-specific cues; ``intends``
    says the text answers a step that asks for goals or hopes."""
    return [CodeHit(*hit) for hit in code_text_raw(text, role, codebook, intends)]


def _questions(norm: str, toks: list[str], sent: list[int],
               presupposing: frozenset[str]) -> frozenset[int]:
    """Sentence ids of the text's open questions: "should I go for the secondment?" asserts
    nothing it names; "how do I handle a boss who cancels?" takes the cancelling as given."""
    if "?" not in norm or " -" in norm or "--" in norm:  # dashes add marks: no alignment
        return frozenset()
    ends = [ch for ch in norm if ch in _SENTENCE_ENDS]
    asked = {k for k, ch in enumerate(ends) if ch == "?"}
    first: dict[int, str] = {}
    for tok, s in zip(toks, sent, strict=True):
        if s not in first and tok not in _MARKS:
            first[s] = tok
    return frozenset(k for k in asked if first.get(k) not in presupposing)


_SENTENCE_ENDS = frozenset(".;:!?/\n")


class _Frame:
    """How the sentence around a cue frames it: realised, intended or hypothetical."""

    __slots__ = ("clause", "intends", "marks", "questions", "sent", "toks", "useful")

    def __init__(self, toks: list[str], sent: list[int], clause: list[int],
                 marks: list[tuple[int, int, str]], questions: frozenset[int],
                 intends: bool) -> None:
        self.toks = toks
        self.sent = sent
        self.clause = clause
        self.marks = marks
        self.questions = questions
        self.intends = intends
        # without markers, questions or a goal step every cue reads as realised: skip the work
        # unless a fragment opens with "to" ("To feel more confident in meetings.")
        self.useful = bool(questions) or intends or "to" in toks

    def _contrast_between(self, x: int, a: int) -> bool:
        return any(self.toks[k] in _CONTRASTS for k in range(x, a))

    def modality(self, a: int, b: int) -> str:
        s = self.sent[a]
        if s in self.questions:
            return HYPOTHETICAL
        c = self.clause[a]
        intent_at = -1
        for x, y, kind in self.marks:
            if self.sent[x] != s:
                continue
            if kind == _HYPO and y < a and self.clause[x] == c:
                return HYPOTHETICAL
            if kind == _INTENT and y < a and not self._contrast_between(y, a):
                intent_at = max(intent_at, y)
        if intent_at < 0:
            # a fragment that opens with "to" answers "what do you want?"
            first = a
            while first > 0 and self.sent[first - 1] == s:
                first -= 1
            while first < a and self.toks[first] in _MARKS:
                first += 1
            if self.toks[first] == "to" and first < a:
                intent_at = first
        if intent_at < 0:
            for x, _, kind in self.marks:
                if (kind == _INTENT_AFTER and b < x <= b + _INTENT_AFTER_WINDOW
                        and self.clause[x] == self.clause[b]):
                    return INTENDED
        if intent_at < 0 and not self.intends:
            return REALISED
        # a realised marker after the intention (or anywhere before the cue in a goal step's
        # answer) wins: "I wanted more confidence and now I have it"
        for x, _, kind in self.marks:
            if kind != _REAL or self.sent[x] != s:
                continue
            if intent_at < x < a and not self._contrast_between(x, a):
                return REALISED
            # in a goal step's answer with no intention said, "... more confident now" too
            if (intent_at < 0 and b < x <= b + _REALISED_AFTER_WINDOW
                    and self.clause[x] == self.clause[b]):
                return REALISED
        return INTENDED


def _flags(n: int, spans: list[tuple[int, int]]) -> list[bool]:
    marks = [False] * n
    for a, b in spans:
        for k in range(a, b + 1):
            marks[k] = True
    return marks


@dataclass(slots=True)
class _Evidence:
    weights: list[float]
    first: int  # token span of the earliest non-ambiguous match
    last: int
    ambiguous_only: bool


_AUXILIARIES = frozenset({"is", "was", "were", "are", "am", "'s", "'re", "'m", "has", "have",
                          "had", "'ve", "did", "does", "do", "will", "would", "could", "can",
                          "should", "been", "be"})
_NOT_NEGATING_NEXT = frozenset({"to", "only", "just", "least", "even"})


def _negated(toks: list[str], negs: list[bool], clause: list[int], a: int, b: int, before: int,
             after: int) -> bool:
    """Is the cue at tokens a..b negated within its clause?

    Before the cue any negator in the window counts ("did not really feel supported"); inside a
    gapped cue too ("manager did not support"). After it only a negated verb does ("support
    didn't help", "manager was not interested"), so "boundaries not to cross" stays positive.
    """
    c = clause[a]
    for k in range(max(0, a - before), a):
        if negs[k] and clause[k] == c:
            return True
    for k in range(a, b + 1):
        if negs[k]:
            return True
    n = len(toks)
    c = clause[b]
    k = b + 1
    limit = min(n, b + 1 + after)
    while k < limit and clause[k] == c:
        tok = toks[k]
        if negs[k]:
            if tok != "not" and tok != "no":
                return True
            nxt = toks[k + 1] if k + 1 < n else ""
            return tok == "not" and nxt not in _NOT_NEGATING_NEXT
        if tok not in _AUXILIARIES:
            return False
        k += 1
    return False


def _hedged(spans: list[tuple[int, int]], clause: list[int], a: int, b: int, before: int,
            after: int) -> bool:
    # a hedge inside the cue belongs to the cue ("not sure how to" is the cue for ambivalence)
    for x, _ in spans:
        if (a - before <= x < a or b < x <= b + after) and clause[x] == clause[a]:
            return True
    return False


# ---------------------------------------------------------------------------
# helpers for the reporting job
# ---------------------------------------------------------------------------

_PHASE_ORDER = ("PH_BUILDING_RAPPORT", "PH_SETTING_DIRECTION", "PH_PROGRESSION",
                "PH_WINDING_UP", "PH_MOVING_ON")


def phase_signal(hits: Iterable[CodeHit | RawHit]) -> str | None:
    """The relationship phase a text points to most strongly, or None.

    Ties go to the phase whose evidence comes latest in the text: an answer that walks through
    the relationship ("first we built trust, then we set goals") describes where it is now last.
    """
    score: dict[str, float] = {}
    last: dict[str, int] = {}
    for hit in hits:
        if hit.scheme != SCHEME_PHASE:
            continue
        if hit.modality != REALISED and hit.code_id != "PH_SETTING_DIRECTION":
            continue  # hoping to become friends is no sign of moving on; setting a goal is
            # itself setting direction
        score[hit.code_id] = score.get(hit.code_id, 0.0) + hit.confidence
        last[hit.code_id] = max(last.get(hit.code_id, -1), hit.span_start)
    if not score:
        return None
    return max(score, key=lambda c: (round(score[c], 6), last[c],
                                     _PHASE_ORDER.index(c) if c in _PHASE_ORDER else -1, c))


def factor_label(hit: CodeHit, rules: CodingRules | None = None) -> str:
    """``ID:polarity`` with paired factors folded onto one id per polarity.

    "Line management support" read as hindering and "Not always a line management priority"
    describe the same observation; reports count them together.
    """
    pairs = (rules or _rules_of_default()).factor_counterparts
    return fold_factor(hit.code_id, hit.polarity or "", pairs)


def fold_factor(code_id: str, polarity: str, pairs: dict[str, str]) -> str:
    if polarity == POLARITY_HINDERING and code_id in pairs:
        code_id = pairs[code_id]
    elif polarity == POLARITY_HELPING:
        reverse = {v: k for k, v in pairs.items()}
        code_id = reverse.get(code_id, code_id)
    return f"{code_id}:{polarity}"


def _rules_of_default() -> CodingRules:
    rules = load_codebook().rules
    assert rules is not None
    return rules

