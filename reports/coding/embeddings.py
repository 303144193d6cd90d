"""Embeddings of an entry's typed answers, as the semantic heads read them, and their storage
form (``storage/embeddings.py`` keeps them encrypted with the author's key).

Each coded text (``reports.entry_codes.coded_texts``, the same texts the rules read, never a
signposted answer) is split into the heads' units (the whole answer, then its sentences) and
each unit embedded once. Vectors are stored as float16: the heads' decisions do not move at
that precision and an entry's embeddings stay a few kilobytes.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conversations import sentence_encoder
from reports.coding.heads import units

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

EMBEDDINGS_VERSION = "1"  # bump when the unit split or the storage form changes


def model_id() -> str:
    return f"{sentence_encoder.MODEL_PACKAGE}/{sentence_encoder.DIMENSION}/{EMBEDDINGS_VERSION}"


def available() -> tuple[bool, str]:
    return sentence_encoder.availability()


def pack(spans: list[tuple[int, int]], vectors: NDArray[np.float32]) -> dict[str, Any]:
    import numpy as np

    data = np.asarray(vectors, dtype=np.float16)
    return {"units": [list(s) for s in spans], "dim": int(data.shape[1]),
            "f16": base64.b64encode(data.tobytes()).decode("ascii")}


def unpack(value: Mapping[str, Any]) -> tuple[list[tuple[int, int]], NDArray[np.float32]]:
    import numpy as np

    spans = [(int(a), int(b)) for a, b in value["units"]]
    raw = np.frombuffer(base64.b64decode(value["f16"]), dtype=np.float16)
    return spans, raw.reshape(len(spans), int(value["dim"])).astype(np.float32)


def embed_texts(texts: Mapping[str, str], encoder: Any = None) -> dict[str, dict[str, Any]]:
    """Step id -> packed unit embeddings of each text, in one encoder batch. CPU-bound: call
    it off the event loop."""
    if not texts:
        return {}
    enc = encoder if encoder is not None else sentence_encoder.load_encoder()
    steps = list(texts)
    spans = [units(texts[s]) for s in steps]
    flat = [texts[s][a:b] for s, sp in zip(steps, spans, strict=True) for a, b in sp]
    vectors = enc.encode(flat)
    out: dict[str, dict[str, Any]] = {}
    at = 0
    for step, sp in zip(steps, spans, strict=True):
        out[step] = pack(sp, vectors[at:at + len(sp)])
        at += len(sp)
    return out

