"""Bulk extraction applies current consent backwards; study pseudonyms behave."""

from __future__ import annotations

import pytest

from reports import extract
from storage.models import Scope
from storage.pseudonyms import Pseudonymiser
from storage.store import Store
from tests.people import GROW_ANSWERS, Cohort

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends


async def ids(store: Store, scope: Scope) -> set[int]:
    return {r.participant_id async for r in extract.entries(store, scope)}


async def test_withdrawal_applies_to_earlier_entries(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow()
    await mentee.grow()
    records = [r async for r in extract.entries(store, Scope.EVALUATION)]
    assert len(records) == 2 and records[0].answers["goal"] == GROW_ANSWERS["goal"]
    await mentee.cmd("withdraw")
    await mentee.tap("Stop evaluation use")
    assert await ids(store, Scope.EVALUATION) == set()
    assert await ids(store, Scope.RESEARCH_EXPORT) == {1}  # other scopes untouched


async def test_non_consenting_and_drafts_never_appear(cohort: Cohort, store: Store) -> None:
    mentee = cohort.person(7001)
    await mentee.start(cohort.mentee_code)
    await mentee.tap("Yes, keep them")
    for _ in range(3):
        await mentee.tap("No")
    me = await store.participants.by_user(7001)
    assert me is not None
    await store.participants.set_field(me.id, "preferred_framework", "grow")
    await mentee.grow()
    await mentee.cmd("reflect")
    await mentee.say("a draft only")
    for scope in (Scope.EVALUATION, Scope.RESEARCH_EXPORT, Scope.PROGRAMME_SUMMARY):
        assert await ids(store, scope) == set()
    assert [len(r.answers) async for r in extract.entries(store, Scope.PARTICIPATE)] == [4]


async def test_signposted_answers_are_marked(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    await mentee.grow({**GROW_ANSWERS, "reality": "I want to die, honestly"})
    (record,) = [r async for r in extract.entries(store, Scope.EVALUATION)]
    assert record.flagged == {"reality"}


async def test_pseudonyms_stable_per_study_and_unlinkable_across(store: Store) -> None:
    a1 = await Pseudonymiser.for_study(store.vault, "study-A")
    a2 = await Pseudonymiser.for_study(store.vault, "study-A")
    b = await Pseudonymiser.for_study(store.vault, "study-B")
    assert a1.person("S-0011") == a2.person("S-0011")
    assert a1.person("S-0011") != b.person("S-0011")
    assert a1.person("S-0011") != a1.person("S-0012")
    assert a1.shift_days("S-0011") == a2.shift_days("S-0011") != 0
    assert abs(a1.shift_days("S-0011")) <= 182
