"""The one consent rule (storage.consent.permits), asked one person at a time and in bulk."""

from __future__ import annotations

import pytest

from storage.consent import Decision, permits
from storage.models import Scope
from storage.store import Store
from tests.people import Cohort

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends

NOW, OLD = "v2", "v1"


def _d(scope: Scope, granted: bool, version: str = NOW) -> Decision:
    return Decision(scope, granted, version, "2026-01-01T00:00:00+00:00")


def test_every_scope_but_participate_needs_participate_and_the_current_text() -> None:
    evaluation = {Scope.EVALUATION: _d(Scope.EVALUATION, True)}
    assert not permits(evaluation, Scope.EVALUATION, NOW)  # never asked to participate
    stopped = evaluation | {Scope.PARTICIPATE: _d(Scope.PARTICIPATE, False)}
    assert not permits(stopped, Scope.EVALUATION, NOW)
    taking_part = evaluation | {Scope.PARTICIPATE: _d(Scope.PARTICIPATE, True, OLD)}
    assert permits(taking_part, Scope.EVALUATION, NOW)  # participate counts from older texts
    assert permits(taking_part, Scope.PARTICIPATE, NOW)
    assert not permits(taking_part, Scope.EVALUATION, "v3")  # evaluation needs the new text
    assert not permits(taking_part, Scope.RESEARCH_EXPORT, NOW)


async def test_one_person_and_everyone_at_once_agree(cohort: Cohort, store: Store) -> None:
    mentee = await cohort.joined_mentee()
    pid = (await store.participants.all())[-1].id
    ref = (await store.participants.get(pid)).subject_ref  # type: ignore[union-attr]
    for scope in Scope:
        assert (pid in await store.consent.consenting(scope)) == (
            await store.consent.may_use(pid, scope)) == (
            (await store.consent.state(pid)).allows(scope))
    # stopping taking part stops every other use too, whatever the other decisions say
    await store.consent.record(pid, ref, Scope.PARTICIPATE, False, "test")
    assert mentee is not None
    for scope in Scope:
        assert pid not in await store.consent.consenting(scope)
        assert not await store.consent.may_use(pid, scope)
    assert (await store.consent.state(pid)).decisions[Scope.EVALUATION].granted


def test_one_rule_for_which_pair_events_a_reader_may_use() -> None:
    from datetime import UTC, datetime

    from storage.lifecycle import PairEvent, usable

    def event(source: str, who: int | None) -> PairEvent:
        return PairEvent(1, 1, "closed", datetime(2026, 1, 1, tzinfo=UTC), source, who, None, {})

    allowed = {7}
    assert usable(event("coordinator", None), allowed)  # nobody's data: always
    assert usable(event("answer", 7), allowed)
    assert not usable(event("answer", 8), allowed)  # someone the reader may not use
    assert not usable(event("episode_log", 7), allowed)  # read from the logs themselves
    assert not usable(event("episode_log", None), allowed)
