"""The encoder's memo (``SentenceEncoder.memo``), which ``mentorbot recode`` runs the safety
rule and the coder under so they embed each token sequence once, changes no safety verdict
(issue 13: recode speed must not move what the rule decides)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conversations.safety import assess_many, semantic_available

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "safety"


def test_the_safety_rule_decides_the_same_with_shared_embeddings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORBOT_SAFETY_SEMANTIC", "on")  # the suite judges by the lexicon
    if not semantic_available():
        pytest.skip("the safety rule's semantic layer is not installed")
    from conversations.sentence_encoder import load_encoder

    texts = [line["text"] for name in ("dev5", "dev4")
             for line in yaml.safe_load((FIXTURES / f"{name}.yaml").read_text(
                 encoding="utf-8"))["lines"]]
    assert len(texts) > 100
    alone = assess_many(texts, semantic=True)
    with load_encoder().memo():
        first = assess_many(texts, semantic=True)
        # the second time every sentence comes from the memo, as repeats do within a recode
        again = assess_many(list(reversed(texts)), semantic=True)[::-1]
    assert first == alone and again == alone
