"""One class per step kind: how a question of that kind is asked, answered and shown.

The engine owns the flow (order, back, skip, summary, stale buttons); a step kind owns
everything that differs between a free-text question, a 0-10 scale, a date, a single
choice and a tap-all-that-apply question. A new kind is one class here and one name in
``conversations.model.StepKind``.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from conversations.answers import Answer, multi, typed_choice
from conversations.model import Step
from conversations.validation import looks_numeric, number_list, whole_number

if TYPE_CHECKING:
    from conversations.engine import Button, Outcome

SCALE = tuple(range(11))
DONE = "_done"
TODAY, YESTERDAY = "_today", "_yesterday"

Keyboard = tuple[tuple["Button", ...], ...]


class Turn(Protocol):
    """What a step kind may do with the input it is given (the engine implements it)."""

    @property
    def pending(self) -> list[str]: ...

    def button(self, label: str, value: str) -> Button: ...

    def store(self, value: Any) -> Outcome: ...

    def reject(self, text: str, ask_again: bool = False) -> Outcome: ...

    def press(self, value: str) -> Outcome: ...

    def redraw(self, replace: bool = False) -> Outcome: ...

    def today(self) -> date: ...


class StepKind:
    name: ClassVar[str]
    offers_keep: ClassVar[bool] = True  # coming back to it: "Keep this answer" in one tap
    hint: ClassVar[str | None] = None  # a line under the prompt saying how to answer

    def display(self, step: Step, value: Any) -> str:
        return str(value)

    def keyboard(self, step: Step, turn: Turn) -> Keyboard:
        return ()

    def typed(self, step: Step, text: str, turn: Turn) -> Outcome:
        raise NotImplementedError

    def pressed(self, step: Step, value: str, turn: Turn) -> Outcome | None:
        """The outcome of a press, or None when the button is not valid for this step."""
        return None

    def pending(self, step: Step, value: Any) -> list[str]:
        """Ticks in progress when the question is asked again (multi-choice only)."""
        return []


class TextStep(StepKind):
    name = "text"

    def typed(self, step: Step, text: str, turn: Turn) -> Outcome:
        if len(text) > step.max_length:
            return turn.reject(
                f"That's {len(text):,} characters; the limit here is "
                f"{step.max_length:,}. Please shorten it and send it again."
            )
        return turn.store(text)


class ScaleStep(StepKind):
    name = "scale"

    def display(self, step: Step, value: Any) -> str:
        return f"{value}/10"

    def keyboard(self, step: Step, turn: Turn) -> Keyboard:
        row1 = tuple(turn.button(str(n), str(n)) for n in range(6))
        row2 = tuple(turn.button(str(n), str(n)) for n in range(6, 11))
        return (row1, row2)

    def typed(self, step: Step, text: str, turn: Turn) -> Outcome:
        number = whole_number(text, SCALE[0], SCALE[-1])
        if number is not None:
            return turn.store(number)
        return turn.reject("Please tap a number from 0 to 10.", ask_again=True)

    def pressed(self, step: Step, value: str, turn: Turn) -> Outcome | None:
        number = whole_number(value, SCALE[0], SCALE[-1])
        return turn.store(number) if number is not None else None


class DateStep(StepKind):
    name = "date"

    def keyboard(self, step: Step, turn: Turn) -> Keyboard:
        return ((turn.button("Today", TODAY), turn.button("Yesterday", YESTERDAY)),)

    def typed(self, step: Step, text: str, turn: Turn) -> Outcome:
        parsed = parse_date(text)
        if parsed is None or parsed > turn.today():
            return turn.reject(
                "Please tap Today or Yesterday, or type a date like "
                "2026-03-14 (not in the future).",
                ask_again=True,
            )
        return turn.store(parsed.isoformat())

    def pressed(self, step: Step, value: str, turn: Turn) -> Outcome | None:
        if value not in (TODAY, YESTERDAY):
            return None
        today = turn.today()
        day = today if value == TODAY else today - timedelta(days=1)
        return turn.store(day.isoformat())


class _ButtonStep(StepKind):
    """Choice questions: a typed label counts as pressing it, typed numbers as pressing the
    buttons with those numbers; other words count as "other" only where allowed."""

    def typed(self, step: Step, text: str, turn: Turn) -> Outcome:
        match = next((c for c in step.choices if c.label.lower() == text.lower()), None)
        if match is not None:
            return turn.press(match.id)
        if looks_numeric(text):
            return self._numbers(step, text, turn)
        if step.allow_other:
            if len(text) > step.max_length:
                return turn.reject(f"Please keep this under {step.max_length} characters.")
            return turn.store(self.other(text, turn))
        return turn.reject("Please choose one of the buttons.", ask_again=True)

    def _numbers(self, step: Step, text: str, turn: Turn) -> Outcome:
        numbers = number_list(text)
        top = len(step.choices)
        if numbers is None and text.isascii():
            numbers = [0]  # digits, but too many of them: out of range
        if numbers is None:
            return turn.reject(
                "Please type numbers with the digits 0 to 9, or tap a button.", ask_again=True
            )
        if any(not 1 <= n <= top for n in numbers):
            return turn.reject(
                f"Please use numbers from 1 to {top}, one for each button from the top.",
                ask_again=True,
            )
        return self.numbered([step.choices[n - 1].id for n in dict.fromkeys(numbers)], turn)

    def other(self, text: str, turn: Turn) -> Any:
        raise NotImplementedError

    def numbered(self, picked: list[str], turn: Turn) -> Outcome:
        raise NotImplementedError


class ChoiceStep(_ButtonStep):
    name = "choice"

    def display(self, step: Step, value: Any) -> str:
        answer = Answer.decode(value)
        if isinstance(value, dict) and answer.has_other:
            return f"Other: {value['other']}"
        choice = step.choice(str(value))
        return choice.label if choice else str(value)

    def keyboard(self, step: Step, turn: Turn) -> Keyboard:
        return tuple((turn.button(c.label, c.id),) for c in step.choices)

    def pressed(self, step: Step, value: str, turn: Turn) -> Outcome | None:
        return turn.store(value) if step.choice(value) is not None else None

    def other(self, text: str, turn: Turn) -> Any:
        return typed_choice(text)

    def numbered(self, picked: list[str], turn: Turn) -> Outcome:
        if len(picked) != 1:
            return turn.reject("Please choose just one.", ask_again=True)
        return turn.press(picked[0])


class MultiStep(_ButtonStep):
    name = "multi"
    offers_keep = False  # the ticks are shown again instead, so Done keeps them
    hint = "Tap all that apply (or type their numbers, like 1 3), then Done."

    def display(self, step: Step, value: Any) -> str:
        answer = Answer.decode(value)
        labels = []
        for v in answer.selected if isinstance(value, dict) else value:
            c = step.choice(v)
            labels.append(c.label if c else v)
        if answer.other:
            labels.append(f"Other: {answer.other}")
        return ", ".join(labels) or "(none)"

    def keyboard(self, step: Step, turn: Turn) -> Keyboard:
        rows = [
            (turn.button(("✓ " if c.id in turn.pending else "") + c.label, c.id),)
            for c in step.choices
        ]
        rows.append((turn.button("Done", DONE),))
        return tuple(rows)

    def pressed(self, step: Step, value: str, turn: Turn) -> Outcome | None:
        if value == DONE:
            if not turn.pending and not step.optional:
                return turn.reject("Tap at least one, then Done.")
            return turn.store(multi(turn.pending))
        if step.choice(value) is None:
            return None
        if value in turn.pending:
            turn.pending.remove(value)
        else:
            turn.pending.append(value)
        # Same seq on purpose: toggles redraw the same keyboard in place.
        return turn.redraw(replace=True)

    def other(self, text: str, turn: Turn) -> Any:
        return multi(turn.pending, text)

    def numbered(self, picked: list[str], turn: Turn) -> Outcome:
        turn.pending.extend(c for c in picked if c not in turn.pending)
        # Same seq: the keyboard above stays usable, and this copy shows the ticks.
        return turn.redraw()

    def pending(self, step: Step, value: Any) -> list[str]:
        return list(Answer.decode(value).selected) if isinstance(value, dict) else []


KINDS: dict[str, StepKind] = {
    kind.name: kind for kind in (TextStep(), ScaleStep(), DateStep(), ChoiceStep(), MultiStep())
}


def kind_of(step: Step) -> StepKind:
    return KINDS[step.kind]


_DATE_FORMATS = (
    # [0-9], not \d: \d also matches other scripts' digits, which int() then accepts.
    re.compile(r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})$"),
    re.compile(r"^(?P<d>[0-9]{1,2})/(?P<m>[0-9]{1,2})/(?P<y>[0-9]{4})$"),
)


def parse_date(text: str) -> date | None:
    for pattern in _DATE_FORMATS:
        m = pattern.match(text.strip())
        if m:
            try:
                return date(int(m["y"]), int(m["m"]), int(m["d"]))
            except ValueError:
                return None
    return None
