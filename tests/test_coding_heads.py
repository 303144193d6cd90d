"""The semantic heads beside the rules (issue 13): shipped weights, combination, rules only."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from benchmarks import coding_bank
from reports.code_command import code_stream
from reports.codebook import load_codebook
from reports.coding import heads as heads_module
from reports.coding.combined import LAYERS_COMBINED, LAYERS_RULES, Answer, AnswerCoder
from reports.coding.heads import DEFAULT_HEADS, SCHEMES, load_heads, units
from reports.coding.model import MODALITIES

TEXTS = [
    "My manager keeps cancelling our sessions and there is no protected time.",
    "She listened and asked good questions, so I worked out what to say to the matron.",
    "I feel much calmer in handover now and I spoke up at the MDT for the first time.",
]


def test_the_package_ships_a_head_for_every_scheme() -> None:
    assert DEFAULT_HEADS.is_file()
    heads = load_heads()
    assert set(heads.heads) == set(SCHEMES)
    # sentence and answer embeddings, step and voice, framing markers and the rules' reading
    assert heads.blocks == ("unit", "answer", "context", "markers")
    width = 2 * heads.mean.shape[0] + len(heads.contexts) + 2 + heads_module.MARKER_WIDTH
    for name, head in heads.heads.items():
        assert head.weights.shape == (width, len(head.labels)), name
        assert head.labels, name
        if name != "phase":  # one threshold per label, chosen by cross-validation
            assert head.thresholds.shape == (len(head.labels),), name
            assert ((head.thresholds > 0) & (head.thresholds < 1)).all(), name
    assert heads.meta["train_items"] > 1000 and "bank" in heads.meta
    # trained on development parts only, never on a frozen one
    assert set(heads.meta["bank"]) <= set(coding_bank.DEVELOPMENT_PARTS)
    assert not any(part.startswith("frozen") for part in heads.meta["bank"])
    assert heads.meta["folds"] == 5 and "cv" in heads.meta


def test_long_answers_are_read_whole_and_by_sentence() -> None:
    text = "Wanted to feel ready for the interview. By the end I did, we practised twice."
    spans = units(text)
    assert spans[0] == (0, len(text)) and len(spans) == 3
    assert units("short one") == [(0, 9)]


def test_combined_codes_carry_their_method_confidence_and_modality() -> None:
    coder = AnswerCoder(semantic=True)
    assert coder.layers == LAYERS_COMBINED, coder.note
    results = coder.code([Answer(t, "mentee") for t in TEXTS])
    methods = set()
    for hits, _ in results:
        assert hits
        for h in hits:
            methods.add(h.method)
            assert 0.0 <= h.confidence <= 1.0
            assert h.modality in MODALITIES
            # exactly one of role and intended role, or neither (topics)
            assert not (h.cmo_role and h.intended_role)
    assert {"rules", "semantic"} <= methods
    # the rules' evidence spans stay as the rules found them
    rules_only = AnswerCoder(semantic=False).code([Answer(TEXTS[0], "mentee")])[0][0]
    kept = [h for h in results[0][0] if h.method == "rules"]
    assert {(h.code_id, h.span_start) for h in kept} <= {(h.code_id, h.span_start)
                                                         for h in rules_only}


def test_a_goal_answer_is_not_an_outcome_for_the_heads_either() -> None:
    coder = AnswerCoder(semantic=True)
    text = "get ready for my band 7 interview and feel more confident on the panel"
    (hits, _), = coder.code([Answer(text, "mentee", "grow", "goal", intends=True)])
    outcome_like = [h for h in hits if h.scheme in ("cmo", "learning_domain")
                    and (h.cmo_role or "").startswith("OUTCOME")]
    assert outcome_like == []
    assert any(h.modality == "intended" for h in hits)


def test_without_the_semantic_extra_everything_runs_on_rules_and_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heads_module, "heads_available",
                        lambda: (False, "semantic heads unavailable: numpy is not installed"))
    lines = [json.dumps({"id": i, "role": "mentee", "text": t}) for i, t in enumerate(TEXTS)]
    notes: list[str] = []
    semantic_out, rules_out = io.StringIO(), io.StringIO()
    assert code_stream(lines, semantic_out, semantic=True, note=notes.append) == 0
    assert code_stream(lines, rules_out) == 0
    assert notes and notes[0].startswith("rules only") and "numpy" in notes[0]
    got = [json.loads(x) for x in semantic_out.getvalue().splitlines()]
    want = [json.loads(x) for x in rules_out.getvalue().splitlines()]
    for g, w in zip(got, want, strict=True):
        assert g["codebook"]["layers"] == LAYERS_RULES
        assert g["codes"] == w["codes"] and g["phase_signal"] == w["phase_signal"]
        assert all(c["method"] == "rules" for c in g["codes"])


def test_without_the_encoder_the_coder_runs_on_rules_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from conversations import sentence_encoder

    monkeypatch.setattr(sentence_encoder, "availability",
                        lambda: (False, "sentence encoder unavailable: not installed: numpy"))
    coder = AnswerCoder(semantic=True)
    assert coder.layers == LAYERS_RULES and not coder.semantic
    assert coder.note.startswith("rules only") and "numpy" in coder.note
    answers = [Answer(t, "mentee") for t in TEXTS]
    assert coder.code(answers) == AnswerCoder(semantic=False).code(answers)


# the same change as a hope and as a report (tests/test_coding_modality.py has the rules' side)
MODALITY_PAIRS = [
    ("I hope to feel more confident presenting at the MDT.",
     "I feel more confident presenting at the MDT now.", "O_AGENCY"),
    ("My goal is to be calmer in handover.", "I am calmer in handover these days.",
     "DOM_AFFECTIVE"),
    ("Hoping to change the way I work with the band 5s.",
     "I've changed the way I work with the band 5s.", "O_OPERATIONAL_CHANGE"),
    ("I want to build my network across the trust.",
     "I have built a network across the trust.", "DOM_SOCIAL_NETWORKS"),
]


@pytest.mark.parametrize(("hope", "report", "code_id"), MODALITY_PAIRS)
def test_the_combined_coder_codes_a_hope_and_a_change_differently(
        hope: str, report: str, code_id: str) -> None:
    coder = AnswerCoder(semantic=True)
    (hoped, _), (done, _) = coder.code([Answer(hope, "mentee"), Answer(report, "mentee")])
    outcome = {"OUTCOME_PROXIMAL", "OUTCOME_DISTAL"}
    # no code of the hope, from either layer, is an outcome; the report has one
    assert not [h for h in hoped if h.cmo_role in outcome and h.scheme != "phase"], hoped
    assert [h for h in done if h.cmo_role in outcome and h.scheme != "phase"]
    assert "intended" in {h.modality for h in hoped if h.code_id == code_id}
    assert "realised" in {h.modality for h in done if h.code_id == code_id}
    # ... and the same goes for the same hope in a goal step, said without a marker
    bare = hope.split(" to ", 1)[-1] if " to " in hope else hope
    (in_goal, _), = coder.code([Answer(bare, "mentee", "grow", "goal", intends=True)])
    assert not [h for h in in_goal if h.cmo_role in outcome and h.scheme != "phase"]


def test_the_semantic_stream_matches_the_coder_line_for_line() -> None:
    lines = [json.dumps({"id": f"e{i}", "role": "mentor", "text": t})
             for i, t in enumerate(TEXTS)] + ["not json"]
    out = io.StringIO()
    assert code_stream(lines, out, load_codebook(), semantic=True) == 1
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r.get("id") for r in rows] == ["e0", "e1", "e2", None]
    assert rows[0]["codebook"]["layers"] == LAYERS_COMBINED
    assert any(c["method"] == "semantic" for r in rows[:3] for c in r["codes"])


# ---------------------------------------------------------------------------
# learning from the evaluator's review
# ---------------------------------------------------------------------------


def _review_file(path: Path, rows: list[tuple[str, str, str, str | None]]) -> Path:
    """A review.csv as a report writes it, with (code, evidence, decision, new code) rows."""
    from reports.review import COLUMNS

    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for i, (code, evidence, decision, new_code) in enumerate(rows):
            writer.writerow({"review_id": f"E-{i}:options:{code}:-:semantic", "entry": f"E-{i}",
                             "code": code, "scheme": "cmo", "method": "semantic",
                             "evidence": evidence, "decision": decision,
                             "new_code": new_code or ""})
    return path


def test_heads_refitted_from_a_review_file_change_later_codes(tmp_path: Path) -> None:
    from reports.review import read_review

    book = load_codebook()
    text = "She kept asking me questions about the rota and in the end I sorted it out myself."
    similar = ["She asked me questions about the rota and I worked it out for myself.",
               "Lots of questions from her about the rota, then I worked it out myself.",
               "She kept asking me about the rota until I worked it out myself."]
    # a check-in answer (text that answers no step is coded rules first)
    answer = Answer(text, "mentee", "checkin", "learning_how")
    before = AnswerCoder(semantic=True).code([answer])[0][0]
    guessed = [h for h in before if h.method == "semantic" and h.scheme == "cmo"
               and h.cmo_role is not None]
    assert guessed, "the shipped heads code nothing in this answer: pick another"
    # the heads' surest guess; the evaluator says it is another element of the same role
    old = max(guessed, key=lambda h: (h.confidence, h.code_id))
    present = {h.code_id for h in before}
    new = next(c.id for c in sorted(book.codes.values(), key=lambda c: c.id)
               if c.scheme == "cmo" and c.role == book.get(old.code_id).role
               and c.id not in present)
    rows = [(old.code_id, s, "change", new) for s in similar]
    decisions = read_review(_review_file(tmp_path / "review.csv", rows), book)
    coder = AnswerCoder(semantic=True, review=decisions)
    assert coder.agreement is not None
    agreed_before, agreed_after, n = coder.agreement
    assert n == 6 and agreed_after is not None and agreed_before is not None
    assert agreed_after > agreed_before
    after = coder.code([answer])[0][0]
    semantic_after = {h.code_id for h in after if h.method == "semantic"}
    assert old.code_id not in semantic_after
    assert new in {h.code_id for h in after}
    assert "refitted on 6 review decisions" in coder.note
    # the shipped heads are untouched: another programme's run reads them as before
    again = AnswerCoder(semantic=True).code([answer])[0][0]
    assert {h.code_id for h in again} == {h.code_id for h in before}


# ---------------------------------------------------------------------------
# the kernel blend: a similarity-weighted vote of the training sentences
# ---------------------------------------------------------------------------


def test_the_kernel_vote_follows_the_nearest_memory_rows() -> None:
    import numpy as np

    from reports.coding.heads import kernel_vote

    labels = np.array([[1, 0], [1, 0], [0, 1]], np.float32)
    sim = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.95]], np.float32)
    vote = kernel_vote(sim, labels, 20.0)
    assert vote.shape == (2, 2) and np.allclose(vote.sum(axis=1), 1.0)
    assert vote[0, 0] > 0.99 and vote[1, 1] > 0.99
    # a flat temperature is the plain average of the memory
    assert np.allclose(kernel_vote(sim, labels, 0.0), [[2 / 3, 1 / 3]] * 2)


def test_shipped_heads_blend_their_kernel_and_survive_a_round_trip(tmp_path: Path) -> None:
    import numpy as np

    heads = load_heads()
    blended = [name for name, h in heads.heads.items() if h.kernel_alpha > 0]
    assert blended, "the shipped heads have no kernel blend"
    assert heads.memory is not None and heads.memory_whole is not None
    assert heads.memory.shape[0] == heads.meta["train_units"]
    assert heads.projection is not None
    assert heads.projection.shape == (heads.mean.shape[0], heads.memory.shape[1])
    for name in blended:
        head = heads.heads[name]
        assert head.memory_labels is not None and head.platt is not None
        rows = int(heads.memory_whole.sum()) if name in heads_module.WHOLE_SCHEMES else len(
            heads.memory)
        assert head.memory_labels.shape == (rows, len(head.labels))
    from conversations import sentence_encoder

    texts, spans = heads_module.unit_texts(TEXTS)
    emb = sentence_encoder.load_encoder().encode(texts)
    ctx = [("grow", "reality", "mentee")] * len(TEXTS)
    with_kernel = heads_module.answer_probabilities(heads, emb, spans, ctx, TEXTS)
    x = heads.features(emb, [c for c, sp in zip(ctx, spans, strict=True) for _ in sp],
                       emb[np.repeat(np.cumsum([0] + [len(s) for s in spans[:-1]]),
                                     [len(s) for s in spans])], texts)
    without = heads.predict(x)  # no embeddings: the linear part alone, calibrated
    name = blended[0]
    got = np.vstack([ap.probs[name] for ap in with_kernel])
    assert ((got >= 0) & (got <= 1)).all()
    assert not np.allclose(got, without[name], atol=1e-3)
    heads.save(tmp_path / "heads.npz")
    again = heads_module.Heads.load(tmp_path / "heads.npz")
    back = heads_module.answer_probabilities(again, emb, spans, ctx, TEXTS)
    for a, b in zip(with_kernel, back, strict=True):
        for scheme in SCHEMES:
            assert np.allclose(a.probs[scheme], b.probs[scheme], atol=2e-3), scheme


QUOTE = ("I think having someone outside my own team to talk to gave me a safe space, and my "
         "confidence went up, I started putting myself forward for things.")


def test_text_that_answers_no_step_is_coded_rules_first() -> None:
    """An interview quote or imported note (no flow step) is unlike the heads' training text:
    every rule hit stands and the heads add no domain or factor beside the rules' codes."""
    book = load_codebook()
    coder = AnswerCoder(book, semantic=True)
    assert coder.semantic, coder.note
    rules = AnswerCoder(book, semantic=False).code([Answer(QUOTE, "mentee")])[0][0]
    assert rules, "the rules find codes in the quote"
    unstepped = coder.code([Answer(QUOTE, "mentee")])[0][0]
    assert {(h.code_id, h.span_start) for h in rules if h.scheme == "cmo"} <= {
        (h.code_id, h.span_start) for h in unstepped if h.method in ("rules", "both")}
    assert not [h for h in unstepped if h.method == "semantic"
                and h.scheme in ("learning_domain", "factor")]
    assert not [h for h in unstepped if h.method == "semantic" and h.scheme == "cmo"
                and h.cmo_role is not None and h.confidence < heads_module.UNSTEPPED_BESIDE_RULES
                and h.cmo_role not in {r.cmo_role for r in rules}]


def test_stored_confidence_is_calibrated_after_the_blend() -> None:
    """The shipped heads carry, per method, a monotone map from a code's confidence to the
    share of such codes that were right on held-out folds; the stored codes use it."""
    from reports.coding.stored import calibrated

    calibration = load_heads().meta.get("calibration")
    assert calibration and {"rules", "semantic"} <= set(calibration)
    for knots in calibration.values():
        assert len(knots["x"]) == len(knots["y"]) >= 2
        assert knots["x"] == sorted(knots["x"]) and knots["y"] == sorted(knots["y"])
        assert all(0.0 <= y <= 1.0 for y in knots["y"])
    table = {"semantic": {"x": [0.2, 0.8], "y": [0.1, 0.7]}}
    assert calibrated(table, "semantic", 0.5) == pytest.approx(0.4)
    assert calibrated(table, "semantic", 0.95) == pytest.approx(0.7)  # clamped at the ends
    assert calibrated(table, "rules", 0.75) == 0.75  # a method without a map keeps its own


def test_isotonic_calibration_is_monotone() -> None:
    import numpy as np

    from benchmarks.coding_train import expected_calibration_error, isotonic_knots

    rng = np.random.default_rng(3)
    conf = rng.random(2000)
    right = rng.random(2000) < conf * 0.6  # over-confident by a constant share
    knots = isotonic_knots(conf, right)
    assert knots["y"] == sorted(knots["y"])
    after = np.interp(conf, knots["x"], knots["y"])
    assert expected_calibration_error(after, right) < expected_calibration_error(conf, right)


def test_an_mlp_head_survives_a_round_trip(tmp_path: Path) -> None:
    import numpy as np

    from benchmarks.coding_train import Training, fit

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6)).astype(np.float32)
    y = (x[:, :1] * x[:, 1:2] > 0).astype(np.float32)  # no linear head can read this
    params = fit(x, y, 0.1, False, training=Training("mlp", hidden=16, epochs=200, batch=50))
    assert len(params) == 4
    head = heads_module.Head(["xor"], params[2], params[3], np.array([0.5], np.float32),
                             hidden_weights=params[0], hidden_bias=params[1])
    p = head.probabilities(x)
    assert ((p[:, 0] >= 0.5) == (y[:, 0] > 0)).mean() > 0.85
    heads = heads_module.Heads([], np.zeros(6, np.float32), np.ones(6, np.float32),
                               {"role": head}, {"features": ["unit"]})
    heads.save(tmp_path / "mlp.npz")
    again = heads_module.Heads.load(tmp_path / "mlp.npz").heads["role"]
    assert again.hidden_weights is not None
    assert np.allclose(again.probabilities(x), p, atol=1e-6)
