"""CMO configurations: linked chains per pair and outcome, graded, with gaps and theories."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from reports.codebook import load_codebook
from reports.configurations import (
    EntryCodes,
    analyse_unit,
    configure,
    grade,
    patterns,
)
from reports.phases import PairHistory
from storage.store import Store
from tests.people import Cohort
from tests.test_report_evaluator import START, episode, pair_ids, report, write_entry

LEVELS = {c: d.level for c, d in load_codebook().codes.items()}
RES, RESP = "RESOURCE", "RESPONSE"
ENABLING, INHIBITING = "CONTEXT_ENABLING", "CONTEXT_INHIBITING"
PROX, DIST = "OUTCOME_PROXIMAL", "OUTCOME_DISTAL"


def entry(
    key: str,
    day: int,
    elements: Iterable[tuple[str, str]] = (),
    outcomes: Iterable[tuple[str, str]] = (),
    author: str = "mentee",
    person: int = 1,
) -> EntryCodes:
    return EntryCodes(key, day, author, person, frozenset(elements), frozenset(outcomes))


def test_one_entry_makes_a_linked_chain() -> None:
    (config,), missing = configure(
        [
            entry(
                "E1",
                10,
                [
                    ("C_DYAD_SAFE_SPACE", ENABLING),
                    ("M_SHARING_EXPERIENCE", RES),
                    ("R_REFLECTION", RESP),
                ],
                [("O_INSIGHT", PROX)],
            )
        ],
        LEVELS,
    )
    assert not missing
    assert config.outcome == "O_INSIGHT" and config.loop == "FOUNDATIONAL"
    assert config.chain == {
        "context": [("C_DYAD_SAFE_SPACE", ENABLING, 1)],
        "resource": [("M_SHARING_EXPERIENCE", RES, 1)],
        "response": [("R_REFLECTION", RESP, 1)],
    }
    links = {(k.kind, k.source, k.target): (k.support, k.same_entry) for k in config.links}
    assert links == {
        ("POWERS", "C_DYAD_SAFE_SPACE", "R_REFLECTION"): (1, 1),
        ("PRIMES", "M_SHARING_EXPERIENCE", "R_REFLECTION"): (1, 1),
        ("EFFECTS", "R_REFLECTION", "O_INSIGHT"): (1, 1),
    }
    assert config.grade == "single" and config.gaps == ()


def test_the_pairs_other_entries_link_within_the_window_only() -> None:
    entries = [
        entry("M1", 9, [("M_SHARING_EXPERIENCE", RES)], author="mentor", person=2),  # same week
        entry("M0", 1, [("M_ROLE_MODEL", RES)], author="mentor", person=2),  # a month before
        entry("E1", 10, [("R_DECISION_ACTION", RESP)], [("O_AGENCY", PROX)]),
        entry("M2", 13, [("M_BROAD_VIEW", RES)], author="mentor", person=2),  # after: too late
    ]
    (config,), _ = configure(entries, LEVELS, before=7, after=2)
    resources = [c for c, _, _ in config.chain["resource"]]
    assert resources == ["M_SHARING_EXPERIENCE"]
    (primes,) = [k for k in config.links if k.kind == "PRIMES"]
    assert (primes.support, primes.same_entry) == (1, 0)  # linked across entries: inferred
    assert config.entries == 2 and config.people == 2


def test_grades_count_independent_entries_and_both_members() -> None:
    assert grade(1, 1, 1) == "single"
    assert grade(2, 1, 1) == "weak"
    assert grade(3, 2, 1) == "moderate"
    assert grade(5, 2, 1) == "moderate"  # one member only
    assert grade(5, 2, 2) == "strong"
    entries = []
    for k in range(3):
        entries.append(
            entry(f"E{k}", 30 * k, [("R_REFLECTION", RESP)], [("O_LEARNING_CHANGE", DIST)])
        )
        entries.append(  # the mentor's log of the same session
            entry(f"M{k}", 30 * k, [("M_DM_TECHNIQUES", RES)], author="mentor", person=2)
        )
    (config,), _ = configure(entries, LEVELS)
    assert config.grade == "strong" and config.loop == "APPLIED"
    assert config.for_whom == ("mentee",) and config.entries == 6


def test_an_outcome_is_never_linked_to_what_came_after_it() -> None:
    """Order: the mentor's log two days later, and the next month's reflection, evidence
    nothing about an outcome already reported; the same day's log does."""
    entries = [
        entry("E1", 10, [("R_REFLECTION", RESP)], [("O_INSIGHT", PROX)]),
        entry("M1", 10, [("M_DM_TECHNIQUES", RES)], author="mentor", person=2),
        entry("M2", 12, [("M_SHARING_EXPERIENCE", RES), ("C_DYAD_TRUST", ENABLING)],
              author="mentor", person=2),
        entry("E2", 40, [("M_ROLE_MODEL", RES)]),
    ]
    (config,), _ = configure(entries, LEVELS)
    linked = {c for part in config.chain.values() for c, _, _ in part}
    assert linked == {"R_REFLECTION", "M_DM_TECHNIQUES"}
    assert config.latest_evidence_day <= config.last_day == 10


def test_each_configuration_counts_its_context_and_mechanism_without_the_outcome() -> None:
    """The contrast: a safe space with the mentor's questions came before agency twice, and
    three times nothing of the kind followed."""
    both = [("C_DYAD_SAFE_SPACE", ENABLING), ("M_DM_TECHNIQUES", RES)]
    entries = [entry(f"E{k}", 30 * k, both, [("O_AGENCY", PROX)] if k in (1, 3) else [])
               for k in range(5)]
    entries.append(entry("E9", 200, [("M_DM_TECHNIQUES", RES)]))  # the mechanism alone
    (config,), _ = configure(entries, LEVELS)
    assert config.contrast == ("C_DYAD_SAFE_SPACE", "M_DM_TECHNIQUES", 2, 3)
    assert config.contrast_by == (("mentee", 2, 3),)
    (pattern,) = patterns([config])
    assert pattern.to_json()["contrasts"] == [
        {"context": "C_DYAD_SAFE_SPACE", "mechanism": "M_DM_TECHNIQUES", "with_outcome": 2,
         "without_outcome": 3, "units": 1, "by_group": {"mentee": [2, 3]},
         "roles": {"context": ENABLING, "mechanism": RES}}]


def test_the_contrast_is_kept_per_group_so_groups_can_be_compared() -> None:
    """Once the mentor has reported the outcome too, the mentor's accounts are occasions for
    it: here the combination works for the mentee's account, not the mentor's."""
    both = [("C_DYAD_SAFE_SPACE", ENABLING), ("M_DM_TECHNIQUES", RES)]
    entries = [entry(f"E{k}", 30 * k, both, [("O_AGENCY", PROX)]) for k in range(3)]
    entries += [entry(f"M{k}", 30 * k + 5, both, author="mentor", person=2) for k in range(3)]
    entries.append(entry("M9", 200, both, [("O_AGENCY", PROX)], author="mentor", person=2))
    (config,), _ = configure(entries, LEVELS)
    assert config.contrast_by == (("mentee", 3, 0), ("mentor", 1, 3))


def test_an_occasion_is_a_session_of_the_pair_not_every_entry() -> None:
    """The mentor's log of each session holds the context and mechanism and no outcome; the
    mentee's reflection on it, a day later, reports agency every other time. The log and the
    reflection (and a check-in the same day) are one occasion: the log is not a second time
    the outcome did not follow."""
    both = [("C_DYAD_SAFE_SPACE", ENABLING), ("M_DM_TECHNIQUES", RES)]
    entries = [entry(f"L{k}", 30 * k, both, author="mentor", person=2) for k in range(4)]
    entries += [entry(f"R{k}", 30 * k + 1, both, [("O_AGENCY", PROX)] if k % 2 else [])
                for k in range(4)]
    entries.append(entry("C3", 91, [], [("O_AGENCY", PROX)]))  # the same day as R3
    entries.append(entry("Z", 110, [], [("O_AGENCY", PROX)]))  # weeks later: its own
    (config,), _ = configure(entries, LEVELS)
    assert config.contrast == ("C_DYAD_SAFE_SPACE", "M_DM_TECHNIQUES", 3, 2)
    assert config.contrast_by == (("mentee", 3, 2), ("mentor", 2, 2))


def test_an_outcome_with_no_mechanism_is_counted_not_configured() -> None:
    found, missing = configure(
        [entry("E1", 5, [("C_MOTIVATION", ENABLING)], [("O_AGENCY", PROX)])], LEVELS
    )
    assert found == [] and missing == {"O_AGENCY": 1}


def test_gaps_are_listed_not_guessed() -> None:
    (config,), _ = configure(
        [entry("E1", 5, [("M_SHARING_EXPERIENCE", RES)], [("DOM_SKILL", DIST)])], LEVELS
    )
    assert config.gaps == ("context", "response")
    assert [k.kind for k in config.links] == []  # no response: nothing primed, nothing effected


def test_absent_enabling_context_is_an_inhibiting_one() -> None:
    (config,), _ = configure(
        [
            entry(
                "E1", 5, [("C_DYAD_TRUST", INHIBITING), ("R_REFLEX", RESP)], [("O_INSIGHT", PROX)]
            )
        ],
        LEVELS,
    )
    assert config.chain["context"] == [("C_DYAD_TRUST", INHIBITING, 1)]


def test_programme_theories_and_core_pattern_are_tagged() -> None:
    (learning,), _ = configure(
        [
            entry(
                "E1",
                5,
                [("M_NEW_KNOWLEDGE_LOCAL", RES), ("R_MEANING_MAKING", RESP)],
                [("O_INSIGHT", PROX)],
            )
        ],
        LEVELS,
    )
    assert learning.theories == ("PT_LEARNING_DIFFERENTLY",)
    (core,), _ = configure(
        [
            entry(
                "E1",
                5,
                [
                    ("C_DYAD_SAFE_SPACE", ENABLING),
                    ("C_DYAD_DIVERSITY", ENABLING),
                    ("M_DM_TECHNIQUES", RES),
                    ("R_DECISION_ACTION", RESP),
                ],
                [("O_DEVELOPMENT_CHANGE", DIST)],
            )
        ],
        LEVELS,
    )
    assert core.core_pattern
    assert "PT_DIVERSITY_OPPORTUNITY" in core.theories
    (working,), _ = configure(
        [
            entry(
                "E1",
                5,
                [("C_PROSOCIAL", ENABLING), ("R_DECISION_ACTION", RESP)],
                [("O_OPERATIONAL_CHANGE", DIST)],
            )
        ],
        LEVELS,
    )
    assert working.theories == ("PT_WORKING_DIFFERENTLY", "PT_MAKING_A_DIFFERENCE")


def test_patterns_aggregate_across_pairs_and_units_run_anywhere() -> None:
    rows = [
        (
            "E1",
            5,
            "mentee",
            1,
            (("M_SHARING_EXPERIENCE", RES), ("R_REFLECTION", RESP)),
            (("O_INSIGHT", PROX),),
        )
    ]
    results = [
        analyse_unit(
            (f"D-{k}", f"D:{k}", rows, PairHistory()), LEVELS, load_codebook().phase_crosswalk
        )
        for k in range(3)
    ]
    (pattern,) = patterns(summary for *_, items, _ in results for _, summary in items)
    assert pattern.units == 3 and pattern.grades["single"] == 3
    assert pattern.typical("resource") == [("M_SHARING_EXPERIENCE", RES, 3)]
    label, key, timeline, items, missing = results[0]
    assert (label, key) == ("D-0", "D:0") and timeline is not None and not missing
    assert '"unit":"D-0"' in items[0][0] and '"evidence":["E1"]' in items[0][0]


async def test_report_links_a_mentors_resource_to_a_mentees_outcome(
    cohort: Cohort, store: Store, tmp_path: Path
) -> None:
    await cohort.joined_mentee()
    await cohort.joined_mentor()
    mentor_id, mentee_id = await pair_ids(store, cohort)
    for k in range(3):
        day = START + timedelta(days=30 * k + 10)
        await write_entry(
            store, mentor_id, cohort.pair_id, "episode_log", episode(day, "PH_PROGRESSION"), day
        )
        await write_entry(
            store,
            mentee_id,
            cohort.pair_id,
            "oskar",
            {
                "outcome": "to feel more confident about the restructure",
                "know_how": "my mentor asked good questions and I realised I could say no",
                "affirm_action": "next I'm going to plan the conversation in advance",
                "learning": {"selected": ["DOM_AFFECTIVE"]},
            },
            day + timedelta(hours=2),
        )
    data = await report(store, tmp_path / "out")
    items = {i["outcome"]: i for i in data["configurations"]["items"]}
    affective = items["DOM_AFFECTIVE"]
    assert affective["grade"] == "strong" and affective["people"] == 2
    assert "M_SHARING_EXPERIENCE" in {c for c, _, _ in affective["chain"]["resource"]}
    assert affective["for_whom"] == ["mentee"]
    assert any(kind == "PRIMES" for kind, *_ in affective["links"])
    pattern = next(
        p for p in data["configurations"]["patterns"] if p["outcome"] == "DOM_AFFECTIVE"
    )
    assert pattern["units"] == 1 and pattern["grades"]["strong"] == 1
