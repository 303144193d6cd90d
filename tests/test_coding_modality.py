"""Intention is not attainment (issue 13, docs/coding-guide.md §3): modality of every code."""

from __future__ import annotations

import io
import json

import pytest

from conversations.catalogue import load_flows
from reports.code_command import code_stream
from reports.coding.model import MODALITIES
from reports.coding.rules import code_text, phase_signal
from reports.entry_codes import code_entry, step_intends

OUTCOMES = {"OUTCOME_PROXIMAL", "OUTCOME_DISTAL"}


def outcome_roles(text: str, intends: bool = False) -> set[str]:
    # phases carry the proximal role in the codebook, but a phase is not an outcome claim
    return {h.cmo_role for h in code_text(text, "mentee", intends=intends)
            if h.scheme != "phase"} & OUTCOMES


def modalities(text: str, code_id: str, intends: bool = False) -> set[str]:
    return {h.modality for h in code_text(text, "mentee", intends=intends)
            if h.code_id == code_id}


# the same change as a hope and as a report: (hope, report, an outcome code both name)
PAIRS = [
    ("I hope to feel more confident presenting at the MDT.",
     "I feel more confident presenting at the MDT now.", "O_AGENCY"),
    ("I want to build my network across the trust.",
     "I have built a network across the trust.", "DOM_SOCIAL_NETWORKS"),
    ("My goal is to be calmer in handover.", "I am calmer in handover.", "DOM_AFFECTIVE"),
    ("I'd like to learn how the directorate is run.",
     "I learnt how the directorate is run.", "DOM_COGNITIVE"),
    ("Would be nice to have more confidence with the consultants.",
     "I've got more confidence with the consultants.", "O_AGENCY"),
    ("Hoping to change the way I work with the band 5s.",
     "I've changed the way I work with the band 5s.", "O_OPERATIONAL_CHANGE"),
]


@pytest.mark.parametrize(("hope", "report", "code_id"), PAIRS)
def test_a_hope_and_a_change_are_coded_differently(hope: str, report: str,
                                                   code_id: str) -> None:
    assert modalities(hope, code_id) == {"intended"}
    assert modalities(report, code_id) == {"realised"}
    assert not outcome_roles(hope)
    assert outcome_roles(report)
    hoped = next(h for h in code_text(hope, "mentee") if h.code_id == code_id)
    done = next(h for h in code_text(report, "mentee") if h.code_id == code_id)
    # the intended code keeps its id and names the outcome role it aims at
    assert hoped.cmo_role is None and hoped.intended_role == done.cmo_role
    assert done.intended_role is None


def test_every_code_carries_one_of_the_four_modalities() -> None:
    for hope, report, _ in PAIRS:
        for text in (hope, report, "If I had backfill I'd go to the workshops.",
                     "It didn't help my confidence at all."):
            for h in code_text(text, "mentee"):
                assert h.modality in MODALITIES


def test_wanting_then_reaching_is_two_claims() -> None:
    found = modalities("I wanted to feel more confident and now I feel confident.", "O_AGENCY")
    assert found == {"intended", "realised"}


def test_a_contrast_word_ends_the_intention() -> None:
    assert modalities("I wanted more confidence but honestly I feel confident already.",
                      "O_AGENCY") >= {"realised"}


def test_questions_and_conditionals_are_hypothetical() -> None:
    assert modalities("Will I ever feel confident presenting?", "O_AGENCY") == {"hypothetical"}
    assert modalities("If I felt more confident I would speak up more.",
                      "O_AGENCY") == {"hypothetical"}
    assert not outcome_roles("Will I ever feel confident presenting?")


def test_a_goal_step_makes_outcomes_intended_unless_attained() -> None:
    text = "Feel more confident presenting to the board."
    assert modalities(text, "O_AGENCY") == {"realised"}  # read alone it is a report
    assert modalities(text, "O_AGENCY", intends=True) == {"intended"}
    assert modalities("I already feel more confident presenting.", "O_AGENCY",
                      intends=True) == {"realised"}
    assert modalities("To feel more confident in meetings.", "O_AGENCY") == {"intended"}


def test_a_committed_next_step_is_a_realised_decision() -> None:
    found = [h for h in code_text("I'll email the matron by Friday.", "mentee")
             if h.code_id == "R_DECISION_ACTION"]
    assert found and {h.modality for h in found} == {"realised"}
    assert {h.cmo_role for h in found} == {"RESPONSE"}


def test_a_hoped_for_phase_is_no_phase_signal() -> None:
    assert phase_signal(code_text("We've become friends now.", "mentee")) == "PH_MOVING_ON"
    assert phase_signal(code_text("I hope we become friends.", "mentee")) is None


def test_goal_steps_of_the_flows_declare_intentions_not_outcomes() -> None:
    flows = load_flows()
    asking = {(f, s) for f, flow in flows.items() for s in (st.id for st in flow.steps)
              if step_intends(flow.step(s))}
    assert {("grow", "goal"), ("oskar", "outcome"), ("baseline", "hope_to_learn"),
            ("baseline", "goals"), ("baseline", "expectations")} <= asking
    for flow_id, step_id in asking:
        elicits = flows[flow_id].step(step_id).elicits
        assert not set(elicits) & OUTCOMES, (flow_id, step_id)


def test_stored_codes_of_a_goal_answer_are_intended() -> None:
    flows = load_flows()
    answers = {"goal": "Feel more confident presenting to the board.",
               "reality": "I feel more confident presenting to the board now."}
    codes = code_entry(flows["grow"], answers, "mentee", load_codebook_once())
    goal = {(h[2], h[4]) for h in codes["goal"]}
    reality = {(h[2], h[4]) for h in codes["reality"]}
    assert ("O_AGENCY", "intended") in goal and ("O_AGENCY", "realised") not in goal
    assert ("O_AGENCY", "realised") in reality


def load_codebook_once():
    from reports.codebook import load_codebook

    return load_codebook()


def test_mentorbot_code_output_has_modality_per_code() -> None:
    lines = [json.dumps({"id": "a", "role": "mentee",
                         "text": "I hope to feel more confident presenting."}),
             json.dumps({"id": "b", "role": "mentee", "flow": "grow", "step": "goal",
                         "text": "Feel more confident presenting."}),
             json.dumps({"id": "c", "role": "mentee",
                         "text": "I feel more confident presenting."}),
             json.dumps({"id": "d", "role": "mentee", "flow": "grow",
                         "text": "Feel more confident presenting."})]
    out = io.StringIO()
    assert code_stream(lines, out) == 1
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    for row in rows[:3]:
        for code in row["codes"]:
            assert code["modality"] in MODALITIES
            assert "intended_role" in code
    agency = [next(c for c in r["codes"] if c["code"] == "O_AGENCY") for r in rows[:3]]
    assert [c["modality"] for c in agency] == ["intended", "intended", "realised"]
    assert [c["cmo_role"] for c in agency] == [None, None, "OUTCOME_PROXIMAL"]
    assert [c["intended_role"] for c in agency] == ["OUTCOME_PROXIMAL", "OUTCOME_PROXIMAL",
                                                    None]
    assert "error" in rows[3]


# ---------------------------------------------------------------------------
# contrast and framing (docs/coding-guide.md §3.5-3.7), factors with their contexts (§7.2)
# ---------------------------------------------------------------------------


def found(text: str) -> set[tuple[str, str | None, str]]:
    return {(h.code_id, h.cmo_role, h.modality) for h in code_text(text, "mentee")}


def test_instead_of_and_rather_than_deny_what_they_name() -> None:
    codes = found("Instead of rushing in I stepped back and thought about why it bugs me.")
    assert ("R_REFLEX", None, "negated") in codes
    assert ("R_REFLECTION", "RESPONSE", "realised") in codes
    assert ("R_REFLEX", "RESPONSE", "realised") not in codes
    # without the contrast the same words are a reflex
    assert ("R_REFLEX", "RESPONSE", "realised") in found("I was rushing in as usual.")
    assert ("M_DM_TECHNIQUES", "RESOURCE", "realised") in found(
        "Rather than telling me what to do she kept asking me questions.")


def test_not_so_much_x_as_y_demotes_x_and_asserts_y() -> None:
    # X is not the point: without the framing "confidence" is read as an outcome code
    assert "O_AGENCY" in {c for c, _, _ in found("It's confidence I lack.")}
    demoted = found("It's not so much confidence I lack as knowing how the directorate works.")
    assert not {c for c, _, _ in demoted} & {"O_AGENCY", "DOM_AFFECTIVE"}
    # Y keeps the sentence's modality: the phrase's "not" denies nothing after "as"
    assert ("FAC_PROTECTED_TIME", "CONTEXT_ENABLING", "realised") in found(
        "It was not so much the feedback that helped as having protected time.")
    assert ("C_DYAD_SAFE_SPACE", "CONTEXT_ENABLING", "realised") in found(
        "It wasn't so much the advice, more the protected time we had.")
    # X ends at the clause too
    assert "O_AGENCY" not in {c for c, _, _ in found(
        "It's not so much that I lack confidence, it's that I don't know the directorate.")}


def test_only_because_strengthens_a_cause_and_a_push_means_no_motivation_of_ones_own() -> None:
    # "only because" negates nothing: the outcome and its cause are both there
    assert ("DOM_SKILL", "OUTCOME_DISTAL", "realised") in found(
        "I only managed the presentation because we rehearsed it.")
    assert "C_MOTIVATION" not in {c for c, _, _ in found(
        "I only managed the presentation because we rehearsed it.")}
    pushed = found("I only went because my manager told me to.")
    assert ("C_MOTIVATION", "CONTEXT_INHIBITING", "negated") in pushed
    mandatory = found("Honestly I only signed up cos it was mandatory for band 6s.")
    assert ("C_MOTIVATION", "CONTEXT_INHIBITING", "negated") in mandatory
    assert ("C_DYAD_VOLUNTARISM", "CONTEXT_INHIBITING", "negated") in mandatory
    assert ("C_DYAD_VOLUNTARISM", "CONTEXT_ENABLING", "realised") not in mandatory
    # without "only ... because <a push>" signing up is voluntary and nothing is denied
    chosen = found("I signed up because I wanted to.")
    assert ("C_DYAD_VOLUNTARISM", "CONTEXT_ENABLING", "realised") in chosen
    assert "C_MOTIVATION" not in {c for c, _, _ in chosen}
    assert "C_MOTIVATION" not in {c for c, _, _ in found(
        "I only went because it was the only slot, my manager told me later it was fine.")}


def test_used_to_is_a_state_left_behind() -> None:
    assert ("R_REFLEX", None, "negated") in found("I used to just jump in.")
    assert ("R_REFLEX", "RESPONSE", "realised") in found("I just jump in.")


def test_an_open_question_is_hypothetical_and_a_how_question_presupposes() -> None:
    assert ("C_SCHEME_DESIGN", None, "hypothetical") in found("Should I go for the secondment?")
    how = found("How do I handle a boss who cancels every 1:1?")
    assert ("HIN_TIME_CONSTRAINTS", "CONTEXT_INHIBITING", "realised") in how


def test_a_factor_comes_with_its_paired_context() -> None:
    codes = found("The restructure means there is no backfill for my shifts.")
    assert ("HIN_ORGANISATIONAL_CHANGE", "CONTEXT_INHIBITING", "realised") in codes
    assert ("C_ORG_SUPPORT", "CONTEXT_INHIBITING", "realised") in codes
    # an absent helping factor is a negated enabling context, read as inhibiting (§3.4)
    codes = found("There's no protected time for mentoring on this ward.")
    assert ("FAC_PROTECTED_TIME", "CONTEXT_INHIBITING", "negated") in codes
    assert ("C_DYAD_SAFE_SPACE", "CONTEXT_INHIBITING", "negated") in codes


def test_one_word_no_longer_fires_a_proximal_and_a_distal_outcome() -> None:
    codes = {c for c, _, _ in found("I feel more confident now.")}
    assert "O_AGENCY" in codes and "O_DEVELOPMENT_CHANGE" not in codes
    assert "C_MOTIVATION" not in {c for c, _, _ in found("It's a long drive to the site.")}
