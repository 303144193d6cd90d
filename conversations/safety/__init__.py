"""Safety signposting: the one rule that decides whether an answer shows risk to self.

The chat uses it to answer at once with signposting, the store keeps its verdict (encrypted)
beside the answer, and every report and export withholds what it flags; the coder codes
``TOPIC_SELF_HARM_RISK`` by its verdict (:func:`coding_span`). Nothing else decides risk.

How it judges (see the README's safety section for measured recall and false alarms):

1. :func:`~conversations.safety.normalise.fold` undoes the ways text gets disguised or
   mistyped (invisible characters, look-alike letters, leetspeak, spaced letters, typos).
2. :mod:`~conversations.safety.lexicon` patterns recognise the usual forms of risk; figures
   of speech are blanked out first, and a match is set aside when it is about someone else
   (patients, relatives, colleagues, clinical work) or is distress the writer says is over
   with nothing in or after its clause saying it is back.
3. Where the optional sentence encoder is installed, :mod:`~conversations.safety.semantic`
   scores each sentence, read beside its whole answer, with a probe learnt from the labelled
   corpus and its near misses, which catches risk put in words no pattern lists; a second
   head clears a lexicon flag on an answer it reads as distress that is over, only where the
   probe does not flag it and nothing in it says the distress is current.

Deliberately sensitive: a false alarm costs one supportive message, a miss costs more.
Negation does not clear risk ("I'm not saying I want to end it all" is flagged).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from conversations.answers import typed_text as typed_text  # the answer format's one home
from conversations.safety import lexicon
from conversations.safety.normalise import Folded, fold

log = logging.getLogger("mentorbot.safety")

DEFAULT_SIGNPOST = (
    "Thank you for telling me. It sounds like things are really hard right now, and you "
    "don't have to manage this alone. Please talk to someone today: your GP, or your "
    "occupational health service. If you need to talk to someone now, Samaritans listen "
    "24 hours a day on 116 123 (free). If you are in danger, call 999 or go to A&E.\n"
    "I haven't shared what you wrote with anyone. We can carry on whenever you're ready."
)

# Bump when the rule changes in a way the file hashes below cannot see.
RULE_REVISION = "2"
_HERE = Path(__file__).resolve().parent

_SENTENCE_END = re.compile(r"[.!?;\n]|\bbut\b|\bthough\b|\bhowever\b")
_TOKEN = re.compile(r"[a-z0-9/]+")
_REPORTED = re.compile(
    r"\b(?:said|says|saying|told (?:me|us|the)|telling (?:me|us)|asked|asking|reported|"
    r"reporting|stated|disclosed|disclosing|admitted|wrote|writes|screamed|shouted|yelled|"
    r"mentioned|expressed|expressing|kept saying|keeps saying|quoted|disclosure)\b"
)
# risk words that are also everyday clinical vocabulary: judged with the clinical context
_TOPIC = re.compile(r"suicid|self ?harm|overdos|\bod\b|ligature|lethal|fatal|cutting|pills"
                    r"|tablets|took|taken|burn|cut|hurt|die\b|dead|dying|death|end")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an answer shows risk to self, and where (a span of the original text)."""

    risk: bool
    span: tuple[int, int] | None = None
    form: str | None = None  # the lexicon's form, or "semantic"

    def __bool__(self) -> bool:
        return self.risk


NO_RISK = Verdict(False)


def _clause_before(text: str, start: int) -> str:
    window = text[max(0, start - 160):start]
    cut = 0
    for m in _SENTENCE_END.finditer(window):
        cut = m.end()
    return window[cut:]


def _quoting_someone(before: str) -> bool:
    """The clause reports what someone else said ("the fella in bed 6 said I'm ready to go"):
    the nearest reporting verb has another person, not the writer, as its subject."""
    cues = list(_REPORTED.finditer(before))
    if not cues:
        return False
    for token in reversed(_TOKEN.findall(before[:cues[-1].start()])[-4:]):
        if token in lexicon.FIRST_PERSON:
            return False
        if token in lexicon.THIRD_PERSON or (token.endswith("s")
                                             and token[:-1] in lexicon.THIRD_PERSON):
            return True
    return False


def _about_someone_else(text: str, start: int, end: int) -> bool:
    """True when the match is about another person or is clinical talk, not the writer."""
    before = _clause_before(text, start)
    matched = text[start:end]
    tokens = _TOKEN.findall(before)
    inside = set(_TOKEN.findall(matched))
    if _quoting_someone(before):
        return True
    if inside & {"myself", "my", "me", "i", "im", "ive", "id", "meself"}:
        return False  # "kill myself" is the writer's own
    if _TOPIC.search(matched):
        if lexicon.CLINICAL_AFTER.match(text[end:end + 60]):
            return True
        if lexicon.CLINICAL_BEFORE.search(before[-40:]) and not any(
                t in lexicon.FIRST_PERSON for t in tokens[-3:]):
            return True
    after = _TOKEN.findall(text[end:end + 16])
    if after and after[0] in {"on", "in", "of", "to"} and any(
            t in {"his", "her", "their", "them", "him"} for t in after[1:3]):
        return True  # "fresh marks on his arms"
    for token in reversed(tokens):
        if token in lexicon.FIRST_PERSON:
            return False
        # "my partners been low", "mums": a person named with a plural or possessive s
        if token in lexicon.THIRD_PERSON or (token.endswith("s")
                                             and token[:-1] in lexicon.THIRD_PERSON):
            return True
    return False  # no subject at all: chat style for "I"


def _resolved_past(text: str, start: int) -> bool:
    """Distress the writer places in the past and says is over, with nothing in its clause
    or after it saying it is back ("I thought I was in a different place, but the thoughts
    are back": what comes last is how things are now)."""
    near = text[max(0, start - 100):start + 100]
    opening = start - len(_clause_before(text, start))
    if lexicon.CURRENT.search(text, opening):
        return False
    recovered = [m.end() for m in lexicon.RECOVERED.finditer(text)]
    if not recovered or not lexicon.PAST.search(near):
        return False
    if max(recovered) <= opening:
        # said after the recovery, in a clause of its own that does not place it in the past:
        # "I tried years ago and got through it. Now I just want to die" is how it is now
        closing = _SENTENCE_END.search(text, start)
        own = text[opening:closing.start() if closing else len(text)]
        if not lexicon.PAST.search(own):
            return False
    return True


def resolved_past(text: str) -> bool:
    """The whole (folded) text places distress in the past and says it is over, and nothing
    in it says it is back: what the semantic layer is not asked to judge."""
    return (bool(lexicon.PAST.search(text)) and bool(lexicon.RECOVERED.search(text))
            and not lexicon.CURRENT.search(text))


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    return lexicon.compiled()


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    # spaces of the same length keep every offset (and so every origin) where it was
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


@dataclass(frozen=True, slots=True)
class Scan:
    """What the lexicon made of one folded text."""

    hit: tuple[str, int, int] | None  # (form, start, end) of the first risk it sees
    text: str  # the folded text with figures of speech blanked out
    set_aside: tuple[tuple[int, int], ...]  # matches it judged someone else's, or over


def scan(folded: Folded) -> Scan:
    patterns = _patterns()
    text = _blank(folded.text, patterns["figurative"])
    found: list[tuple[int, int, str]] = []
    aside: list[tuple[int, int]] = []
    for form, pattern in patterns.items():
        if form == "figurative":
            continue
        for m in pattern.finditer(text):
            if m.end() <= m.start():
                continue
            if _about_someone_else(text, m.start(), m.end()):
                aside.append(m.span())
            else:
                found.append((m.start(), m.end(), form))
    hit = None
    for start, end, form in sorted(found):
        if not _resolved_past(text, start):
            hit = (form, start, end)
            break
        aside.append((start, end))
    return Scan(hit, text, tuple(aside))


def lexicon_match(folded: Folded) -> tuple[str, int, int] | None:
    """(form, start, end) in folded text of the first risk the lexicon sees, or None."""
    return scan(folded).hit


def assess(text: str, *, semantic: bool | None = None) -> Verdict:
    """The rule's verdict on one answer. ``semantic``: use the semantic layer (None: where
    it is installed)."""
    if not text or not text.strip():
        return NO_RISK
    return assess_many([text], semantic=semantic)[0]


def assess_many(texts: list[str], *, semantic: bool | None = None) -> list[Verdict]:
    """:func:`assess` for many answers, the semantic layer's sentences embedded in batches
    (what ``mentorbot recode`` uses)."""
    out: list[Verdict] = []
    pending: list[tuple[int, Folded, Scan]] = []  # the lexicon sees no risk: the probe may
    flagged: list[tuple[int, Folded, Scan]] = []  # the lexicon sees risk: the head may clear
    for index, text in enumerate(texts):
        if not text or not text.strip():
            out.append(NO_RISK)
            continue
        folded = fold(text)
        seen = scan(folded)
        if seen.hit is not None:
            form, start, end = seen.hit
            out.append(Verdict(True, folded.to_original(start, end), form))
            flagged.append((index, folded, seen))
        else:
            out.append(NO_RISK)
            pending.append((index, folded, seen))
    if (pending or flagged) and (semantic_available() if semantic is None else semantic):
        from conversations.safety import semantic as layer

        try:
            spans = layer.risk_sentences([(folded, seen) for _, folded, seen in pending])
            over = layer.cleared([(folded, seen) for _, folded, seen in flagged])
        except Exception as exc:
            # a broken model install must never stop an answer being judged and saved: the
            # lexicon judges alone from now on, and the stored rule version says so
            _BROKEN.append(type(exc).__name__)
            log.warning("safety semantic layer failed (%s): lexicon alone from now on",
                        type(exc).__name__)
            return out
        for (index, _folded, _seen), span in zip(pending, spans, strict=True):
            if span is not None:
                out[index] = Verdict(True, span, "semantic")
        for (index, _folded, _seen), over_now in zip(flagged, over, strict=True):
            if over_now:
                out[index] = NO_RISK
    return out


class _Batcher:
    """Answers arriving while a batch is being judged wait for the next batch, so under load
    the semantic layer embeds many sentences at once (about 5 ms a sentence instead of 20);
    an answer arriving alone is judged at once. Judging runs off the event loop."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, asyncio.Future[Verdict]]] = []
        self.draining = False

    async def judge(self, text: str) -> Verdict:
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self.pending.append((text, future))
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    verdicts = await asyncio.to_thread(assess_many, [t for t, _ in batch])
                except Exception as exc:  # told to each waiting answer, never lost
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), verdict in zip(batch, verdicts, strict=True):
                    if not future.done():
                        future.set_result(verdict)
        finally:
            self.draining = False


_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher] = (
    weakref.WeakKeyDictionary())


async def assess_async(text: str) -> Verdict:
    """:func:`assess` for the chat: off the event loop, batched with answers arriving at the
    same time."""
    if not text or not text.strip():
        return NO_RISK
    loop = asyncio.get_running_loop()
    batcher = _BATCHERS.get(loop)
    if batcher is None:
        batcher = _BATCHERS[loop] = _Batcher()
    return await batcher.judge(text)


def risk_span(text: str) -> tuple[int, int] | None:
    """The span of text showing risk to self, by the lexicon alone (fast and the same on
    every installation: what bulk readers add on the spot to a stale stored verdict), or
    None."""
    if not text or not text.strip():
        return None
    folded = fold(text)
    hit = lexicon_match(folded)
    return None if hit is None else folded.to_original(hit[1], hit[2])


def coding_span(text: str, verdict: bool | None = None) -> tuple[int, int] | None:
    """Where the coder marks risk to self (``TOPIC_SELF_HARM_RISK``), or None: the rule's
    verdict decides, so a code and a stored verdict never disagree.

    ``verdict`` is the verdict stored with the answer, where there is one (the report and
    export pipeline, where it is the truth: ``mentorbot recode`` judges it again when the rule
    changes): False, no code, whatever words the answer uses; True, the code at the risk the
    lexicon sees, or over the whole answer where the semantic layer flagged it. None judges
    the text on the spot by the full rule, the semantic layer where it is available (``mentorbot
    code``)."""
    if not text or not text.strip() or verdict is False:
        return None
    if verdict is None:
        judged = assess(text)
        return judged.span if judged.risk else None
    return risk_span(text) or (0, len(text))


def shows_risk(text: str) -> bool:
    return assess(text).risk


SEMANTIC_SETTING = "MENTORBOT_SAFETY_SEMANTIC"  # "off" judges by the lexicon alone
_BROKEN: list[str] = []  # set when the installed layer failed to load in this process


def semantic_available() -> bool:
    """Whether the semantic layer judges here: installed, and not switched off."""
    if os.environ.get(SEMANTIC_SETTING, "").strip().lower() in {"off", "0", "false", "no"}:
        return False
    if _BROKEN:
        return False
    return _encoder_installed()


@lru_cache(maxsize=1)
def _encoder_installed() -> bool:
    from conversations import sentence_encoder

    return sentence_encoder.availability()[0]



@lru_cache(maxsize=2)
def _rule_hash(with_semantic: bool) -> str:
    digest = hashlib.sha256(RULE_REVISION.encode())
    names = ["lexicon.py", "normalise.py", "__init__.py"]
    if with_semantic:
        names += ["semantic.py", "exemplars.yaml", "probe.json", "resolved.json"]
    for name in names:
        digest.update((_HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def lexicon_version() -> str:
    """The lexicon's version alone (what :func:`risk_span`, and so the coder, depends on)."""
    return _rule_hash(False)


def rule_version(semantic: bool | None = None) -> str:
    """Names the rule that judged an answer, stored beside each verdict: the lexicon's version,
    and the semantic layer's after a ``+`` where it took part. An answer judged by another
    version is judged again by ``mentorbot recode``; a report judges it on the spot only when
    the lexicon differs (see :func:`judged_by_this_lexicon`)."""
    if semantic is None:
        semantic = semantic_available()
    lexicon_part = lexicon_version()
    return f"{lexicon_part}+semantic-{_rule_hash(True)[:8]}" if semantic else lexicon_part


def judged_by_this_lexicon(version: str | None) -> bool:
    """Whether a stored verdict already includes this lexicon's judgement (the lexicon is all
    that bulk readers can add on the spot)."""
    return version is not None and version.split("+", 1)[0] == lexicon_version()
