"""One home each: the answer format, the step kinds and the CMO role vocabulary."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from conversations.answers import Answer, is_typed_choice, multi, typed_choice, typed_text
from conversations.catalogue import load_flows, parse_flow
from conversations.engine import Engine, Press, Text
from conversations.model import StepKind
from conversations.steps import KINDS
from reports.codebook import CMO_ROLES, load_codebook


def test_every_step_kind_of_the_schema_has_exactly_one_class() -> None:
    assert set(KINDS) == set(typing.get_args(StepKind))


def test_the_codebook_names_the_roles_written_in_the_vocabulary_in_its_order() -> None:
    assert tuple(load_codebook().cmo_roles) == CMO_ROLES


def test_a_flow_with_a_columns_key_is_refused() -> None:
    text = (
        "id: t\nversion: '1'\ntitle: T\nsteps:\n"
        "  - {id: a, kind: choice, prompt: P, label: L, columns: 2,"
        " choices: [{id: x, label: X}]}\n"
    )
    with pytest.raises(ValidationError):
        parse_flow(text)


@pytest.mark.parametrize(
    ("value", "selected", "other", "typed"),
    [
        ("x", ("x",), None, "x"),
        (["x", "y"], ("x", "y"), None, ""),
        (multi(["x"]), ("x",), None, ""),
        (multi(["x"], "mine"), ("x",), "mine", "mine"),
        (typed_choice("mine"), (), "mine", "mine"),
        (7, (), None, ""),
        (None, (), None, ""),
    ],
)
def test_the_stored_answer_format_decodes_in_one_place(
    value: object, selected: tuple[str, ...], other: str | None, typed: str
) -> None:
    answer = Answer.decode(value)
    assert answer.selected == selected and answer.other == other
    assert typed_text(value) == typed
    assert is_typed_choice(value) == bool(other)


def test_what_the_engine_stores_is_what_the_answer_type_reads() -> None:
    flows = load_flows()
    engine = Engine(flows)
    flow = flows["grow"]
    step = next(s for s in flow.steps if s.kind == "multi" and s.allow_other)
    state = engine.start("grow", entry_id=1, seq=1).state
    assert state is not None
    state.index = flow.index(step.id)
    first = step.choices[0].id
    engine.handle(state, Press(f"{state.seq}:{first}"))
    outcome = engine.handle(state, Text("something of my own"))
    stored = next(e.value for e in outcome.events if getattr(e, "step_id", None) == step.id)
    assert Answer.decode(stored) == Answer((first,), "something of my own", True)
