"""An on-disk cache of sentence embeddings for training the coding heads (issue 13).

Training and cross-validation embed the same bank sentences again and again; the encoder
(``conversations.sentence_encoder``, used as it is) costs tens of milliseconds a sentence on
the shared machine, so each text's vector is kept in a file outside the repository, keyed by
the SHA-256 of the text and of the encoder's model directory. Only bank text (written for the
bank, no personal data) is ever cached here; nothing at run time reads this.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_CACHE = Path(os.environ.get("MENTORBOT_HEADS_CACHE", "/tmp/heads-cache"))


class CachedEncoder:
    """``encode(texts)`` as the encoder's, reading and filling an ``.npz`` cache."""

    def __init__(self, encoder: Any = None, directory: Path = DEFAULT_CACHE) -> None:
        self._encoder = encoder
        self.directory = directory
        self.path = directory / "embeddings.npz"
        self._vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as data:
                keys = [str(k) for k in data["keys"]]
                self._vectors = dict(zip(keys, data["vectors"], strict=True))

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def _load_encoder(self) -> Any:
        if self._encoder is None:
            from conversations import sentence_encoder

            self._encoder = sentence_encoder.load_encoder()
        return self._encoder

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        missing = sorted({t for t, k in zip(texts, keys, strict=True) if k not in self._vectors})
        if missing:
            vectors = self._load_encoder().encode(missing)
            for t, v in zip(missing, vectors, strict=True):
                self._vectors[self.key(t)] = np.asarray(v, dtype=np.float32)
            self._dirty = True
            self.save()
        if not keys:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        if not self._dirty:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys, dtype=str),
                 vectors=np.stack([self._vectors[k] for k in keys]))
        tmp.replace(self.path)
        self._dirty = False
