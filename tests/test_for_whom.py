"""For whom (issue 14): configurations compared across participant groups, groups of fewer
than five people suppressed explicitly (and one more where subtraction would reveal them), a
group difference said in words, the programme-wide contrast, and the answers used only under
evaluation consent and never in coordinator outputs or exports."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from conversations.catalogue import load_flows
from reports.evaluator.for_whom import SUPPRESSED, ForWhom
from storage.models import Role, Scope
from storage.store import Store
from tests.people import Cohort
from tests.test_report_evaluator import START, report, write_entry

ENABLING, RES, PROX = "CONTEXT_ENABLING", "RESOURCE", "OUTCOME_PROXIMAL"
BOTH = (("C_DYAD_SAFE_SPACE", ENABLING), ("M_DM_TECHNIQUES", RES))
AGENCY = (("O_AGENCY", PROX),)
LABELS = {"C_DYAD_SAFE_SPACE": "Dyad: safe space, time out",
          "M_DM_TECHNIQUES": "Developmental techniques", "O_AGENCY": "Agency"}
PATTERN = {"outcome": "O_AGENCY", "outcome_role": PROX, "contrasts": [
    {"context": "C_DYAD_SAFE_SPACE", "mechanism": "M_DM_TECHNIQUES",
     "roles": {"context": ENABLING, "mechanism": RES}}]}


def people() -> dict[int, dict[str, str]]:
    """Twelve people: joining their own idea (1-6) or suggested (7-12); bands 7 (6), 5-6 (4)
    and two who prefer not to say; sectors: acute (8) and community (4), everyone answered."""
    answers: dict[int, dict[str, str]] = {}
    for p in range(1, 13):
        answers[p] = {
            "own_choice": "own_idea" if p <= 6 else "suggested",
            "band": "band_7" if p <= 6 else ("band_5_6" if p <= 10 else "prefer_not"),
            "sector": "acute" if p % 3 else "community",
        }
    return answers


def walked(fw: ForWhom, hits: dict[int, int]) -> None:
    """One pair per person; each writes five entries with the context and mechanism, and
    reports agency in ``hits[person]`` of them."""
    for p in range(1, 13):
        rows = [(f"E{p}-{k}", 30 * k, "mentee", p, BOTH, AGENCY if k < hits.get(p, 0) else ())
                for k in range(5)]
        fw.keep(f"D:{p}", rows)


def section(hits: dict[int, int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    fw = ForWhom(load_flows(), people())
    walked(fw, hits)
    patterns = [json.loads(json.dumps(PATTERN))]
    return fw.assemble(patterns, range(1, 13), LABELS), patterns


def dimension(data: dict[str, Any], dim: str) -> dict[str, Any]:
    return {g["value"]: g["people"] for d in data["dimensions"] if d["id"] == dim
            for g in d["groups"]}


def test_groups_under_five_are_suppressed_and_subtraction_cannot_reveal_them() -> None:
    data, _ = section({})
    assert dimension(data, "own_choice") == {"own_idea": 6, "suggested": 6, "not_really": 0}
    band = dimension(data, "band")
    # four people at band 5-6: suppressed, never their count; together with the two who
    # preferred not to say they are six, so band 7 can be shown
    assert band["band_5_6"] == SUPPRESSED == {"suppressed": True, "below": 5}
    assert band["band_7"] == 6
    # four in community services and nobody left unsaid: acute's 8 would give them away
    sector = dimension(data, "sector")
    assert sector["community"] == SUPPRESSED and sector["acute"] == SUPPRESSED
    assert "4" not in json.dumps(dimension(data, "sector"))
    # only dimensions with two groups shown are compared
    assert {c["dimension"] for c in data["comparisons"]} == {"own_choice"}
    assert all(g["value"] != "band_5_6" for c in data["comparisons"] for g in c["groups"])


def test_a_configuration_that_holds_for_one_group_and_not_another_is_said_in_words() -> None:
    own_idea = {p: 4 for p in range(1, 7)}  # 24 of 30 for those who chose to join
    data, patterns = section(own_idea | {7: 1})  # 1 of 30 for those it was suggested to
    (comparison,) = data["comparisons"]
    assert comparison["groups"] == [
        {"value": "own_idea", "with_outcome": 24, "without_outcome": 6},
        {"value": "suggested", "with_outcome": 1, "without_outcome": 29}]
    assert data["findings"] == [
        "Where safe space and developmental techniques came together, agency followed 24 of "
        "30 times for people who answered “Yes, my own idea” (joining) and 1 of 30 times for "
        "those who answered “Someone suggested it and I agreed”: the configuration holds for "
        "the first group and not for the second."]
    assert comparison["finding"] == data["findings"][0]
    # the programme-wide contrast, beside the pairs' own: every pair, not only those with
    # the outcome
    assert patterns[0]["contrasts"][0]["programme"] == {
        "with_outcome": 25, "without_outcome": 35, "units": 12,
        "by_group": {"mentee": [25, 35]}}


def test_an_occasion_is_a_session_counted_once_in_each_group_of_its_writers() -> None:
    """Each pair's mentor (with the mentee's answers) logs every session the day before the
    mentee's reflection on it, with the same context and mechanism and never agency: the log
    and the reflection are one occasion, counted once in the group both writers are in, not
    a second occasion without the outcome. A check-in that day is the same occasion too."""
    context = people()
    context |= {100 + p: answers for p, answers in context.items()}
    fw = ForWhom(load_flows(), context)
    hits = {p: 4 for p in range(1, 7)} | {7: 1}
    for p in range(1, 13):
        rows = [(f"E{p}-{k}", 30 * k + 1, "mentee", p, BOTH,
                 AGENCY if k < hits.get(p, 0) else ()) for k in range(5)]
        rows += [(f"L{p}-{k}", 30 * k, "mentor", 100 + p, BOTH, ()) for k in range(5)]
        rows.append((f"C{p}", 1, "mentee", p, (), AGENCY if p <= 6 else ()))
        fw.keep(f"D:{p}", rows)
    pattern = json.loads(json.dumps(PATTERN))
    data = fw.assemble([pattern], [*range(1, 13), *range(101, 113)], LABELS)
    (comparison,) = [c for c in data["comparisons"] if c["dimension"] == "own_choice"]
    assert comparison["groups"] == [
        {"value": "own_idea", "with_outcome": 24, "without_outcome": 6},
        {"value": "suggested", "with_outcome": 1, "without_outcome": 29}]
    assert pattern["contrasts"][0]["programme"] == {
        "with_outcome": 25, "without_outcome": 35, "units": 12,
        "by_group": {"mentee": [25, 35], "mentor": [25, 35]}}
    assert comparison["finding"] and "24 of 30 times" in comparison["finding"]


def test_a_small_difference_or_few_occasions_is_no_finding() -> None:
    data, _ = section({p: 3 for p in range(1, 7)} | {p: 2 for p in range(7, 13)})
    assert data["findings"] == [] and data["comparisons"][0]["finding"] is None
    fw = ForWhom(load_flows(), people())
    for p in (1, 7):  # four occasions in each group: too few to say anything
        fw.keep(f"D:{p}", [(f"E{p}-{k}", 30 * k, "mentee", p, BOTH,
                            AGENCY if p == 1 else ()) for k in range(4)])
    data = fw.assemble([json.loads(json.dumps(PATTERN))], range(1, 13), LABELS)
    assert data["findings"] == []


async def test_answers_are_used_only_under_evaluation_consent_and_never_leave_the_report(
        cohort: Cohort, store: Store, tmp_path: Path) -> None:
    """Six mentees in nursing, each with a reflection: shown as a group of six; one stops
    evaluation use and the group is five; a second, and it is suppressed. The coordinator's
    summary and the research export never carry the answers."""
    from reports.coordinator import write_report
    from reports.export.run import run_export

    ids = []
    for k in range(6):
        pair_id = await store.programmes.create_pair(cohort.programme_id)
        await store.db.execute("UPDATE pairs SET matched_at=? WHERE id=?",
                               (f"{START.isoformat()}T09:00:00+00:00", pair_id))
        code = await store.programmes.create_invite(cohort.programme_id, Role.MENTEE, pair_id)
        person = cohort.person(7200 + k, "Sam")
        await person.start(code)
        await person.consent_all()
        me = await store.participants.by_user(7200 + k)
        assert me is not None
        ids.append(me.id)
        await store.context.mark_asked(me.id)
        await store.context.save(me.id, "staff_group", "nursing_midwifery")
        await store.context.save(me.id, "sector", "mental_health" if k else "acute")
        await write_entry(store, me.id, pair_id, "grow", {
            "goal": "to be ready for the band 7 interview",
            "options": "my mentor shared how she prepared, and her questions helped",
            "will": "I will book a mock interview by friday"}, START + timedelta(days=10))

    async def nursing() -> Any:
        data = await report(store, tmp_path / "out")
        return dimension(data["for_whom"], "staff_group")["nursing_midwifery"], data

    assert (await nursing())[0] == 6
    await store.consent.record(ids[0], "x", Scope.EVALUATION, False, source="chat")
    assert (await nursing())[0] == 5
    await store.consent.record(ids[1], "x", Scope.EVALUATION, False, source="chat")
    shown, data = await nursing()
    assert shown == SUPPRESSED
    # no pair's configuration carries its members' answers
    assert "staff_group" not in json.dumps(data["configurations"]["items"])
    assert "nursing" not in json.dumps(data["configurations"]["items"])

    coordinator = await write_report(store, cohort.programme_id, tmp_path / "coordinator")
    exported = (await run_export(store, tmp_path / "export", "study-A", "shift", ())).paths
    for path in [*map(Path, coordinator), *map(Path, exported)]:
        if path.is_file():
            raw = path.read_bytes()
            for word in (b"nursing_midwifery", b"Nursing or midwifery", b"mental_health",
                         b"staff_group", b"Staff group"):
                assert word not in raw, (path.name, word)


def test_a_context_that_enabled_in_one_pair_and_hindered_in_another_is_two_contrasts() -> None:
    """Support from the organisation enabled agency in one pair and hindered it in another
    (the same code, the other role): each is its own contrast with its own role, so the
    programme-wide count (which looks for the element with its role) is never below the
    pairs' own. Summed into one contrast, the hindering pair's occasions would be counted
    in the pattern and not across the programme."""
    from reports.configurations import EntryCodes, configure, patterns

    inhibiting = "CONTEXT_INHIBITING"
    rows: dict[str, list[Any]] = {
        "D:1": [(f"A{k}", 30 * k, "mentee", 1,
                 (("C_ORG_SUPPORT", ENABLING), ("M_DM_TECHNIQUES", RES)),
                 AGENCY if k < 2 else ()) for k in range(5)],
        "D:2": [(f"B{k}", 30 * k, "mentee", 2,
                 (("C_ORG_SUPPORT", inhibiting), ("M_DM_TECHNIQUES", RES)),
                 AGENCY if k < 1 else ()) for k in range(5)],
    }
    fw = ForWhom(load_flows(), {})
    summaries = []
    for unit, unit_rows in rows.items():
        fw.keep(unit, unit_rows)
        found, _ = configure([EntryCodes(r[0], r[1], r[2], r[3], frozenset(r[4]),
                                         frozenset(r[5])) for r in unit_rows], {})
        summaries += [c.summary() for c in found]
    (pattern,) = [json.loads(json.dumps(p.to_json())) for p in patterns(summaries)]
    fw.assemble([pattern], (1, 2), LABELS)
    by_role = {c["roles"]["context"]: c for c in pattern["contrasts"]}
    assert set(by_role) == {ENABLING, inhibiting}
    assert (by_role[ENABLING]["with_outcome"], by_role[ENABLING]["without_outcome"]) == (2, 3)
    assert (by_role[inhibiting]["with_outcome"], by_role[inhibiting]["without_outcome"]) == (1, 4)
    for c in pattern["contrasts"]:
        whole = c["programme"]
        assert whole["with_outcome"] >= c["with_outcome"]
        assert whole["without_outcome"] >= c["without_outcome"]


def test_a_difference_chance_could_easily_give_is_no_finding() -> None:
    """2 of 6 against 0 of 8 is a gap of a third, but chance alone gives one that wide often
    (Fisher's exact p 0.16): no sentence. 24 of 30 against 1 of 30 is a finding."""
    from reports.evaluator.for_whom import FINDING_P, fisher_p

    assert abs(fisher_p(2, 4, 0, 8) - 0.1648) < 1e-3
    assert abs(fisher_p(3, 1, 0, 4) - 0.1429) < 1e-3  # the textbook two-sided value
    assert fisher_p(24, 6, 1, 29) < 1e-6
    dim = ForWhom(load_flows(), people()).dims[-1]  # own_choice
    groups = [{"value": "own_idea", "with_outcome": 2, "without_outcome": 4},
              {"value": "suggested", "with_outcome": 0, "without_outcome": 8}]
    from reports.evaluator.for_whom import _finding

    contrast = PATTERN["contrasts"][0]
    assert _finding(dim, groups, "O_AGENCY", contrast, LABELS) is None
    groups[0] = {"value": "own_idea", "with_outcome": 12, "without_outcome": 3}
    assert fisher_p(12, 3, 0, 8) <= FINDING_P
    assert _finding(dim, groups, "O_AGENCY", contrast, LABELS)


def test_a_code_is_named_plainly_in_headings_and_chips() -> None:
    from reports.evaluator.wording import plain_label

    labels = LABELS | {"M_NEW_KNOWLEDGE_POLICY_EVIDENCE": "New knowledge: policy and evidence"}
    assert plain_label(labels, "C_DYAD_SAFE_SPACE") == "Safe space, time out"
    assert plain_label(labels, "M_NEW_KNOWLEDGE_POLICY_EVIDENCE") == (
        "New knowledge: policy and evidence")
    assert plain_label(labels, "O_AGENCY") == "Agency"
    assert plain_label(labels, "X_UNKNOWN") == "X_UNKNOWN"


def test_a_hindering_context_is_named_as_a_hindrance_in_a_finding() -> None:
    fw = ForWhom(load_flows(), people())
    hindered = (("HIN_TIME_CONSTRAINTS", "CONTEXT_INHIBITING"), ("M_DM_TECHNIQUES", RES))
    for p in range(1, 13):
        fw.keep(f"D:{p}", [(f"E{p}-{k}", 30 * k, "mentee", p, hindered,
                            AGENCY if p <= 6 and k < 4 else ()) for k in range(5)])
    pattern = {"outcome": "O_AGENCY", "outcome_role": PROX, "contrasts": [
        {"context": "HIN_TIME_CONSTRAINTS", "mechanism": "M_DM_TECHNIQUES",
         "roles": {"context": "CONTEXT_INHIBITING", "mechanism": RES}}]}
    data = fw.assemble([pattern], range(1, 13),
                       LABELS | {"HIN_TIME_CONSTRAINTS": "Time constraints"})
    assert data["findings"] and data["findings"][0].startswith(
        "Where time constraints (as a hindrance) and developmental techniques came together")
    assert data["finding_p"] == 0.05
