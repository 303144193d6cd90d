"""Rule-based coding: normalisation, negation, hedging, factors, safety cues, the code stream."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from conversations import sentence_encoder
from reports.code_command import code_stream
from reports.codebook import (
    SCHEME_DOMAIN,
    SCHEME_FACTOR,
    SCHEME_PHASE,
    SCHEME_TOPIC,
    load_codebook,
    parse_codebook,
)
from reports.coding.model import CodeHit
from reports.coding.normalise import normalise
from reports.coding.rules import code_text, code_text_raw, fold_factor, phase_signal

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "labelled_quotes.yaml"


def codes(text: str, role: str | None = "mentee") -> set[str]:
    return {hit.code_id for hit in code_text(text, role)}


def hit(text: str, code_id: str, role: str | None = "mentee") -> CodeHit | None:
    found = [h for h in code_text(text, role) if h.code_id == code_id]
    return found[0] if found else None


# ---------------------------------------------------------------------------
# normalisation and evidence spans
# ---------------------------------------------------------------------------


def test_normalise_folds_case_quotes_dashes_and_spaces() -> None:
    norm = normalise("I\u2019m \u201cFINE\u201d \u2013 really\u00a0fine\u2026")
    assert norm.text == "i'm \"fine\" - really fine."
    assert norm.offsets is None  # one character for one: no map needed


def test_normalise_maps_expansions_and_collapsed_whitespace_back() -> None:
    original = "Caf\u00e9   \ufb01ne\tTRUST"
    norm = normalise(original)
    assert norm.text == "cafe fine trust"
    start = norm.text.index("fine")
    assert norm.original_slice(start, start + 4) == "\ufb01ne"
    start = norm.text.index("trust")
    assert norm.original_slice(start, start + 5) == "TRUST"


def test_evidence_points_into_the_original_text() -> None:
    text = "Honestly\u2026  my Manager\u2019s   NOT supportive \u2014 at all"
    found = hit(text, "FAC_LINE_MGMT_SUPPORT")
    assert found is not None
    assert text[found.span_start:found.span_end] == found.evidence
    assert found.evidence == "Manager\u2019s   NOT supportive"


# ---------------------------------------------------------------------------
# negation, hedging, ambiguous words
# ---------------------------------------------------------------------------


def test_negation_suppresses_a_domain_and_negates_an_outcome() -> None:
    assert "DOM_AFFECTIVE" in codes("It helped my confidence.")
    assert "DOM_AFFECTIVE" not in codes("It didn't help my confidence.")
    assert "DOM_AFFECTIVE" not in codes("I never felt confident.")
    assert "DOM_AFFECTIVE" not in codes("I don't feel any more confident than when we started.")
    # the guide codes a denied outcome as a negated element without an outcome role (§3.4)
    denied = hit("I still don't feel confident.", "O_AGENCY")
    assert (denied.modality, denied.cmo_role, denied.intended_role) == (
        "negated", None, "OUTCOME_PROXIMAL")


def test_negation_stays_inside_its_clause() -> None:
    assert "DOM_AFFECTIVE" in codes("It wasn't easy, but I feel more confident now.")


def test_pseudo_negations_do_not_negate() -> None:
    assert "DOM_AFFECTIVE" in codes("Not only more confident but calmer too.")
    assert "DOM_COGNITIVE" in codes("Learnt what boundaries not to cross")


def test_strong_hedge_turns_an_outcome_claim_into_doubt() -> None:
    assert "DOM_AFFECTIVE" not in codes("I'm not sure it helped my confidence.")
    doubted = hit("I'm not sure it helped my confidence.", "O_AGENCY")
    assert doubted.modality == "negated" and doubted.cmo_role is None


def test_weak_hedge_keeps_the_code_with_less_confidence() -> None:
    plain = hit("I'm a bit more confident.", "DOM_AFFECTIVE")
    hedged = hit("Maybe I'm a bit more confident.", "DOM_AFFECTIVE")
    assert plain is not None and hedged is not None
    assert hedged.confidence < plain.confidence


def test_hedge_on_a_context_keeps_it_weaker() -> None:
    plain = hit("There is not much emphasis within the Trust on mentoring.", "HIN_HR_CHALLENGES")
    hedged = hit("I'm not sure there is much emphasis within the Trust on mentoring.",
                 "HIN_HR_CHALLENGES")
    assert plain is not None and hedged is not None
    assert hedged.confidence < plain.confidence


@pytest.mark.parametrize("word", sorted(load_codebook().rules.ambiguous))  # type: ignore[union-attr]
def test_ambiguous_words_alone_code_nothing(word: str) -> None:
    assert code_text(word, "mentee") == []
    assert code_text(f"We talked about the {word}.", "mentee") == []


def test_ambiguous_word_counts_beside_a_real_cue() -> None:
    assert "C_DYAD_TRUST" not in codes("It is a big Trust.")
    found = hit("We built trust quickly and I trust her.", "C_DYAD_TRUST")
    assert found is not None
    assert found.evidence == "built trust"


# ---------------------------------------------------------------------------
# factors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "polarity"),
    [
        ("My manager has been really supportive.", "helping"),
        ("supportive Manager", "helping"),
        ("My manager did not support me.", "hindering"),
        ("my manager's not supportive", "hindering"),
        ("My manager never supports me with time off for this.", "hindering"),
    ],
)
def test_line_management_polarity(text: str, polarity: str) -> None:
    found = hit(text, "FAC_LINE_MGMT_SUPPORT")
    assert found is not None
    assert found.polarity == polarity
    expected_role = "CONTEXT_ENABLING" if polarity == "helping" else "CONTEXT_INHIBITING"
    assert found.cmo_role == expected_role


def test_flipped_factor_folds_onto_its_hindering_twin() -> None:
    found = hit("My manager did not support me.", "FAC_LINE_MGMT_SUPPORT")
    assert found is not None
    pairs = load_codebook().rules.factor_counterparts  # type: ignore[union-attr]
    assert fold_factor(found.code_id, found.polarity or "", pairs) == (
        "HIN_LINE_MGMT_PRIORITY:hindering")


def test_negation_inside_a_cue_is_the_cue() -> None:
    found = hit("not being in same department helps", "FAC_EFFECTIVE_MATCHING")
    assert found is not None and found.polarity == "helping"
    found = hit("Mentoring is not seen as a priority by my manager.", "HIN_LINE_MGMT_PRIORITY")
    assert found is not None and found.polarity == "hindering"


def test_problem_framing_and_wishes_turn_helping_factors_round() -> None:
    found = hit("The protected time is probably the biggest challenge.", "FAC_PROTECTED_TIME")
    assert found is not None and found.polarity == "hindering"
    found = hit("Being allowed time in my job plan would make me feel valued.",
                "FAC_PROTECTED_TIME")
    assert found is not None and found.polarity == "hindering"


def test_hindering_factors() -> None:
    assert "HIN_TIME_CONSTRAINTS" in codes("We had to cancel twice because of my workload.")
    assert "HIN_ORGANISATIONAL_CHANGE" in codes("The restructure has unsettled everyone.")
    assert "HIN_DISTANCE_LOCATION" in codes("She is based at the other hospital site.")


# ---------------------------------------------------------------------------
# safety signal
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I've been having thoughts of ending it",
        "I don't want to be here anymore",
        "I do not want to be here any more.",
        "Sometimes I think everyone would be better off without me.",
        "Some days I just want to disappear and not wake up.",
        "I\u2019ve had suicidal thoughts this week.",
        "I'm not saying I want to end it all, but it's close.",
    ],
)
def test_self_harm_risk_is_detected(text: str) -> None:
    found = hit(text, "TOPIC_SELF_HARM_RISK")
    assert found is not None
    assert load_codebook().get("TOPIC_SELF_HARM_RISK").signpost


@pytest.mark.parametrize(
    "text",
    ["I'm killing it at work", "This presentation is killing me, so much to do",
     "I'm dying to try the new rota", "We're ending the sessions next month."],
)
def test_figures_of_speech_are_not_risk(text: str) -> None:
    assert "TOPIC_SELF_HARM_RISK" not in codes(text)


# ---------------------------------------------------------------------------
# domains and phases
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "domain"),
    [
        ("I understand how decisions get made in the directorate now.", "DOM_COGNITIVE"),
        ("I've been practising active listening.", "DOM_SKILL"),
        ("I'm kinder to myself when things go wrong.", "DOM_AFFECTIVE"),
        ("My mentor put me in touch with the lead nurse in oncology.", "DOM_SOCIAL_NETWORKS"),
    ],
)
def test_learning_domains_on_unseen_wording(text: str, domain: str) -> None:
    assert domain in codes(text)


def test_role_specific_cue() -> None:
    assert "DOM_SKILL" in codes("I reflect more on my practice.", "mentee")
    assert "DOM_AFFECTIVE" in codes("I reflect more on my practice.", "mentor")
    assert "DOM_SKILL" not in codes("I reflect more on my practice.", None)


@pytest.mark.parametrize(
    ("text", "phase"),
    [
        ("We spent the first session getting to know each other.", "PH_BUILDING_RAPPORT"),
        ("Today we agreed my goals for the next six months.", "PH_SETTING_DIRECTION"),
        ("My mentee has taken the lead in our sessions lately.", "PH_PROGRESSION"),
        ("Our last session looked back at everything I've achieved.", "PH_WINDING_UP"),
        ("Since the programme ended we've become friends.", "PH_MOVING_ON"),
    ],
)
def test_phase_signal(text: str, phase: str) -> None:
    assert phase_signal(code_text(text, "mentee")) == phase


def test_phase_signal_prefers_the_latest_phase_on_a_tie() -> None:
    hits = code_text("The first meeting built trust between us; then we set goals.", "mentee")
    assert {h.code_id for h in hits if h.scheme == SCHEME_PHASE} >= {
        "PH_BUILDING_RAPPORT", "PH_SETTING_DIRECTION"}
    assert phase_signal([]) is None
    assert phase_signal(code_text("Nothing to report.", "mentee")) is None


# ---------------------------------------------------------------------------
# the hit model and the codebook
# ---------------------------------------------------------------------------


def test_code_hit_is_frozen_with_the_agreed_fields() -> None:
    names = [f.name for f in dataclasses.fields(CodeHit)]
    assert names == ["code_id", "scheme", "cmo_role", "level", "polarity", "span_start",
                     "span_end", "evidence", "method", "confidence", "modality",
                     "intended_role"]
    found = code_text("I feel more confident.", "mentee")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.code_id = "X"  # type: ignore[misc]
    assert found.method == "rules"
    assert tuple(code_text_raw("I feel more confident.", "mentee")[0]) == (
        dataclasses.astuple(found))


def test_codebook_carries_rules_and_hashes_both_files() -> None:
    book = load_codebook()
    assert book.rules is not None
    reports = ROOT / "reports"
    text = (reports / "codebook.yaml").read_text(encoding="utf-8")
    rules_text = (reports / "coding_rules.yaml").read_text(encoding="utf-8")
    assert parse_codebook(text).content_hash == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert book.content_hash == parse_codebook(text, rules_text).content_hash
    assert book.content_hash != parse_codebook(text).content_hash
    changed = parse_codebook(text, rules_text.replace('"driven",', '"driven", "zeal",', 1))
    assert changed.content_hash != book.content_hash
    for rule in book.rules.rules.values():
        assert rule.definition, rule.code_id
        assert rule.cues, rule.code_id
    needed = {c.id for scheme in ("cmo", SCHEME_DOMAIN, SCHEME_FACTOR, SCHEME_PHASE, SCHEME_TOPIC)
              for c in book.by_scheme(scheme)}
    assert needed <= set(book.rules.rules)


def test_rules_naming_an_unknown_id_are_rejected() -> None:
    reports = ROOT / "reports"
    text = (reports / "codebook.yaml").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="NOT_A_CODE"):
        parse_codebook(text, 'version: "x"\ncodes:\n  NOT_A_CODE: {definition: d, cues: [a]}\n')
    with pytest.raises(ValueError, match="negation"):
        parse_codebook(text, 'version: "x"\ncodes:\n  C_MOTIVATION: {negation: sideways}\n')


def load_fixtures() -> list[dict]:
    return yaml.safe_load(FIXTURES.read_text(encoding="utf-8"))["fixtures"]


def test_every_emitted_code_exists_in_the_codebook() -> None:
    book = load_codebook()
    texts = [f["text"] for f in load_fixtures()]
    texts += ["My manager did not support me, so I felt stuck and isolated.",
              "We set goals, shared stories and I realised I trust her."]
    for text in texts:
        for found in code_text(text, "mentee", book):
            assert found.code_id in book, found.code_id
            assert book.get(found.code_id).scheme == found.scheme


def test_fixture_gold_ids_are_canonical() -> None:
    book = load_codebook()
    fixtures = load_fixtures()
    assert len(fixtures) >= 150
    for fixture in fixtures:
        gold = fixture["gold"]
        for scheme in ("cmo_element", "learning_domain", "phase", "topic"):
            for code_id in gold[scheme]:
                assert code_id in book, (fixture["id"], code_id)
        for label in gold["factor"]:
            code_id, polarity = label.split(":")
            assert code_id in book and polarity in {"helping", "hindering"}


# ---------------------------------------------------------------------------
# the code stream
# ---------------------------------------------------------------------------


def test_code_stream_codes_good_lines_and_reports_bad_ones() -> None:
    book = load_codebook()
    lines = [
        json.dumps({"id": "e1", "role": "mentee", "text": "My manager\u2019s not supportive."}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"id": 7, "role": "mentor", "text": 5}),
        json.dumps({"id": "e2", "role": "coordinator", "text": "hi"}),
        json.dumps({"id": {"x": 1}, "text": "hi"}),
        "",
        json.dumps({"id": 8, "text": "We set goals today."}),
    ]
    out = io.StringIO()
    errors = code_stream(lines, out, book)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert errors == 5
    assert len(rows) == 7  # the blank line is layout, not an entry
    first = rows[0]
    assert first["id"] == "e1"
    assert first["codebook"] == {"version": book.version, "hash": book.content_hash}
    code = next(c for c in first["codes"] if c["code"] == "FAC_LINE_MGMT_SUPPORT")
    assert code["polarity"] == "hindering" and code["method"] == "rules"
    assert set(code) == {"code", "scheme", "cmo_role", "level", "polarity", "evidence",
                         "method", "confidence", "modality", "intended_role"}
    assert set(code["evidence"]) == {"start", "end", "text"}
    assert [r.get("error") is not None for r in rows] == [False, True, True, True, True, True,
                                                           False]
    assert rows[1]["id"] is None and rows[3]["id"] == 7 and rows[4]["id"] == "e2"
    assert rows[6]["phase_signal"] == "PH_SETTING_DIRECTION"


def test_code_stream_output_is_canonical_json() -> None:
    lines = [json.dumps({"id": f["id"], "role": f["role"], "text": f["text"]})
             for f in load_fixtures()]
    out = io.StringIO()
    assert code_stream(lines, out) == 0
    for line in out.getvalue().splitlines():
        assert line == json.dumps(json.loads(line), sort_keys=True, ensure_ascii=False,
                                  separators=(",", ":"))


def test_code_stream_is_deterministic_across_processes() -> None:
    sample = [f for f in load_fixtures()][:40]
    lines = "\n".join(json.dumps({"id": f["id"], "role": f["role"], "text": f["text"]})
                      for f in sample)
    script = ("import sys; from reports.code_command import code_stream; "
              "code_stream(sys.stdin.read().splitlines(), sys.stdout)")
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script], input=lines, text=True,
                              capture_output=True, check=True, cwd=ROOT, env=env)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    again = io.StringIO()
    code_stream(lines.splitlines(), again)
    assert again.getvalue() == outputs[0]


# ---------------------------------------------------------------------------
# optional semantic layer
# ---------------------------------------------------------------------------


def test_semantic_layer_reports_absence_and_breaks_nothing(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from reports.coding.combined import Answer, AnswerCoder
    from reports.entry_codes import StoredCoder, accepted_coders, coder_id

    real = importlib.util.find_spec

    def missing(name: str, *args: object) -> object:
        return None if name in sentence_encoder.REQUIRED else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", missing)
    ok, why = sentence_encoder.availability()
    assert not ok and "not installed" in why
    # every coder falls back to the rules, says so, and codes as the rules do
    coder = AnswerCoder(semantic=True)
    assert coder.layers == "rules" and "not installed" in coder.note
    text = "My manager has been really supportive."
    (hits, _), = coder.code([Answer(text, "mentee")])
    assert [h.code_id for h in hits] == [h.code_id for h in code_text_raw(text, "mentee")]
    stored = StoredCoder()
    book = load_codebook()
    assert not stored.semantic and "not installed" in stored.note
    assert stored.coder == coder_id(book) and accepted_coders(book) == {coder_id(book)}


# ---------------------------------------------------------------------------
# accuracy floor against the labelled quotes
# ---------------------------------------------------------------------------


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "coding_quotes", ROOT / "benchmarks" / "coding_quotes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def test_macro_f1_stays_above_the_targets() -> None:
    bench = _benchmark()
    report = bench.evaluate(bench.load_fixtures(FIXTURES))
    assert report.errors == 0
    for scheme, target in bench.TARGETS.items():
        assert report.full[scheme].macro_f1() >= target, scheme
        # the held-out half must clear the same bar, or the rules only fit particular quotes
        assert report.held_out[scheme].macro_f1() >= target, scheme
