"""The transport-free flow engine: (state, input) -> (new state, replies, events).

It knows nothing about Telegram, storage or consent; the service applies the events
(saving each answer as it is given) and the adapters render the replies.
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from conversations.model import Flow, FlowState, Step
from conversations.steps import kind_of

SAVE, EDIT, DISCARD = "_save", "_edit", "_discard"
FULL, KEEP = "_full", "_keep"
# Answers longer than this are shortened in summaries, so a summary of long answers still
# fits one Telegram message with its Save button; "Show in full" sends them whole.
SHORT_ANSWER = 300


# -- inputs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Press:
    data: str  # "<seq>:<value>" as produced by Button


@dataclass(frozen=True)
class Command:
    name: str  # back, skip, cancel


Input = Text | Press | Command


# -- outputs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Button:
    label: str
    data: str


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    replace: bool = False  # redraw the message whose button was pressed instead of sending


@dataclass(frozen=True)
class Answered:
    step_id: str
    value: Any


@dataclass(frozen=True)
class Cleared:
    step_id: str


@dataclass(frozen=True)
class Completed:
    answers: dict[str, Any]


@dataclass(frozen=True)
class Cancelled:
    reason: str  # "cancel", "discard", "declined"


Event = Answered | Cleared | Completed | Cancelled


@dataclass
class Outcome:
    state: FlowState | None  # None: the flow has ended
    replies: list[Reply] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    rejected: bool = False  # the input changed nothing


def parse_press(data: str) -> tuple[int, str] | None:
    head, sep, value = data.partition(":")
    if not sep or not (head.isascii() and head.isdigit()) or not value or len(data) > 64:
        return None
    return int(head), value


def display(step: Step, value: Any) -> str:
    """A short human rendering of an answer, for summaries and history."""
    if value is None:
        return "(skipped)"
    return kind_of(step).display(step, value)


def shorten(text: str, limit: int = SHORT_ANSWER) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def title_in_sentence(title: str) -> str:
    """'Starting check-in' -> 'starting check-in', but 'GROW reflection' stays."""
    first = title.split(" ", 1)[0]
    return title if first.isupper() else title[:1].lower() + title[1:]


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def fill(template: str, context: dict[str, Any]) -> str:
    """Prompt placeholders like {last_scale_note}; a missing value renders as nothing."""
    return string.Formatter().vformat(template, (), _Blank(context))


class Engine:
    def __init__(self, flows: dict[str, Flow], today: Any = date.today) -> None:
        self.flows = flows
        self._today = today

    # -- entry points ------------------------------------------------------------------
    def start(
        self,
        flow_id: str,
        entry_id: int | None = None,
        context: dict[str, Any] | None = None,
        seq: int = 0,
    ) -> Outcome:
        flow = self.flows[flow_id]
        state = FlowState(
            flow=flow.id, version=flow.version, entry_id=entry_id, context=context or {}, seq=seq
        )
        return Outcome(state, [self._opening(flow, state)])

    def edit(
        self,
        flow_id: str,
        entry_id: int,
        answers: dict[str, Any],
        step_id: str,
        seq: int,
        context: dict[str, Any] | None = None,
    ) -> Outcome:
        """Re-ask one answer of a saved entry, then show its summary to save again."""
        flow = self.flows[flow_id]
        state = FlowState(
            flow=flow.id,
            version=flow.version,
            entry_id=entry_id,
            answers=dict(answers),
            index=flow.index(step_id),
            back_to_summary=True,
            seq=seq + 1,
            context=context or {},
            saved=dict(answers),
        )
        _restore_pending(flow, state)
        return Outcome(state, [self._ask(flow, state)])

    def revisit(
        self,
        flow_id: str,
        answers: dict[str, Any],
        seq: int,
        context: dict[str, Any] | None = None,
    ) -> Outcome:
        """Go through answers kept outside an entry again (/aboutme): each question offers
        its current answer, and the end is a summary to save (``saved`` holds the answers
        as they were, so stopping keeps those)."""
        flow = self.flows[flow_id]
        state = FlowState(
            flow=flow.id,
            version=flow.version,
            answers=dict(answers),
            seq=seq + 1,
            context=context or {},
            saved=dict(answers),
        )
        _restore_pending(flow, state)
        return Outcome(state, [self._opening(flow, state)])

    def resume(self, state: FlowState) -> Outcome:
        """Repeat the current question (after a restart, or when the person comes back)."""
        flow = self.flows[state.flow]
        if state.mode == "summary":
            return Outcome(state, [self._summary(flow, state)])
        if state.mode == "edit_pick":
            return Outcome(state, [self._edit_menu(flow, state)])
        return Outcome(state, [self._ask(flow, state)])

    def handle(self, state: FlowState, inp: Input) -> Outcome:
        flow = self.flows[state.flow]
        if isinstance(inp, Command):
            return self._command(flow, state, inp.name)
        if isinstance(inp, Press):
            parsed = parse_press(inp.data)
            if parsed is None:
                return self._reject(
                    state,
                    "That button isn't one of mine. Please use the "
                    "buttons under my latest message.",
                )
            seq, value = parsed
            if seq != state.seq:
                return self._reject(
                    state,
                    "That button belongs to an earlier question, so I "
                    "ignored it. Here is where we are:",
                    repeat=self.resume(state).replies,
                )
            if state.mode == "summary":
                return self._summary_press(flow, state, value)
            if state.mode == "edit_pick":
                return self._edit_pick(flow, state, value)
            return self._answer_press(flow, state, value)
        return self._answer_text(flow, state, inp.text)

    # -- rendering ---------------------------------------------------------------------
    def _data(self, state: FlowState, value: str) -> str:
        return f"{state.seq}:{value}"

    def _ask(self, flow: Flow, state: FlowState) -> Reply:
        step = flow.steps[state.index]
        prompt = fill(step.prompt, state.context)
        core = [s.id for s in flow.steps if not s.optional]
        if step.optional or len(core) < 2:
            lines = [prompt]
        else:
            lines = [f"({core.index(step.id) + 1}/{len(core)}) {prompt}"]
        hints = []
        if step.optional:
            hints.append("/skip")
        if state.index > 0 or state.back_to_summary:
            hints.append("/back")
        hints.append("/cancel")
        kind = kind_of(step)
        if kind.hint:
            lines.append(kind.hint)
        previous = state.answers.get(step.id)
        keep: tuple[tuple[Button, ...], ...] = ()
        if previous is not None and kind.offers_keep:
            # Coming back to an answered question: keep it in one tap, not by retyping.
            lines.insert(1, f"Your answer so far: {shorten(display(step, previous))}")
            keep = ((Button("Keep this answer", self._data(state, KEEP)),),)
        lines.append(" · ".join(hints))
        return Reply("\n".join(lines), kind.keyboard(step, _Turn(self, flow, state)) + keep)

    def _opening(self, flow: Flow, state: FlowState) -> Reply:
        ask = self._ask(flow, state)
        if flow.intro:
            # One message, not two: fewer sends keeps a busy bot inside Telegram's limits.
            ask = Reply(fill(flow.intro, state.context) + "\n\n" + ask.text, ask.buttons)
        return ask

    def _summary(self, flow: Flow, state: FlowState) -> Reply:
        lines = [flow.summary_heading or f"Here is your {title_in_sentence(flow.title)}:"]
        cut = False
        for step in flow.steps:
            if step.id in state.answers:
                shown = display(step, state.answers[step.id])
                cut = cut or len(shown) > SHORT_ANSWER
                lines.append(f"• {step.label}: {shorten(shown)}")
        lines.append("Save it, or change an answer first?")
        undo = "Undo my changes" if state.saved is not None else "Discard"
        rows: list[tuple[Button, ...]] = [
            (Button("Save", self._data(state, SAVE)), Button("Edit", self._data(state, EDIT))),
            (Button(undo, self._data(state, DISCARD)),),
        ]
        if cut:
            rows.insert(1, (Button("Show in full", self._data(state, FULL)),))
        return Reply("\n".join(lines), tuple(rows))

    def _full(self, flow: Flow, state: FlowState) -> Reply:
        return Reply(
            "\n\n".join(
                f"{step.label}:\n{display(step, state.answers[step.id])}"
                for step in flow.steps
                if step.id in state.answers
            )
        )

    def _edit_menu(self, flow: Flow, state: FlowState) -> Reply:
        rows = [(Button(s.label, self._data(state, s.id)),) for s in flow.steps]
        rows.append((Button("Back to summary", self._data(state, SAVE)),))
        return Reply("Which answer would you like to change?", tuple(rows))

    # -- transitions -------------------------------------------------------------------
    def _reject(self, state: FlowState, text: str, repeat: list[Reply] | None = None) -> Outcome:
        return Outcome(state, [Reply(text), *(repeat or [])], rejected=True)

    def _advance(self, flow: Flow, state: FlowState, events: list[Event]) -> Outcome:
        state.seq += 1
        state.pending = []
        if state.back_to_summary:
            state.back_to_summary = False
            state.mode = "summary"
            return Outcome(state, [self._summary(flow, state)], events)
        if state.index + 1 < len(flow.steps):
            state.trail.append(state.index)
            state.index += 1
            return Outcome(state, [self._ask(flow, state)], events)
        if flow.summary or state.saved is not None:  # a change is confirmed, never silent
            state.mode = "summary"
            return Outcome(state, [self._summary(flow, state)], events)
        events.append(Completed(dict(state.answers)))
        return Outcome(None, [Reply(flow.outro)] if flow.outro else [], events)

    def _store(self, flow: Flow, state: FlowState, step: Step, value: Any) -> Outcome:
        state.answers[step.id] = value
        events: list[Event] = [Answered(step.id, value)]
        choice = step.choice(value) if isinstance(value, str) else None
        if choice is not None and choice.ends_flow:
            events.append(Cancelled("declined"))
            return Outcome(None, [], events)
        return self._advance(flow, state, events)

    def _answer_text(self, flow: Flow, state: FlowState, text: str) -> Outcome:
        if state.mode != "ask":
            return self._reject(
                state,
                "Please use the buttons below to save or edit.",
                repeat=self.resume(state).replies,
            )
        step = flow.steps[state.index]
        text = text.strip()
        if _invisible(text):
            return self._reject(state, "I didn't catch any words there. Please try again.")
        return kind_of(step).typed(step, text, _Turn(self, flow, state))

    def _answer_press(self, flow: Flow, state: FlowState, value: str) -> Outcome:
        step = flow.steps[state.index]
        kind = kind_of(step)
        if value == KEEP and step.id in state.answers and kind.offers_keep:
            return self._advance(flow, state, [])
        outcome = kind.pressed(step, value, _Turn(self, flow, state))
        if outcome is not None:
            return outcome
        return self._reject(state, "That button isn't valid for this question.")

    def _summary_press(self, flow: Flow, state: FlowState, value: str) -> Outcome:
        if value == SAVE:
            return Outcome(
                None, [Reply(flow.outro)] if flow.outro else [], [Completed(dict(state.answers))]
            )
        if value == EDIT:
            state.seq += 1
            state.mode = "edit_pick"
            return Outcome(state, [self._edit_menu(flow, state)])
        if value == FULL:
            return Outcome(state, [self._full(flow, state), self._summary(flow, state)])
        if value == DISCARD:
            if state.saved is not None:  # the service puts the saved answers back
                return Outcome(None, [], [Cancelled("discard")])
            return Outcome(
                None, [Reply("Discarded. Nothing from this one was kept.")], [Cancelled("discard")]
            )
        return self._reject(state, "That button isn't valid here.")

    def _edit_pick(self, flow: Flow, state: FlowState, value: str) -> Outcome:
        state.seq += 1
        if value == SAVE:
            state.mode = "summary"
            return Outcome(state, [self._summary(flow, state)])
        step = flow.step(value)
        if step is None:
            state.seq -= 1
            return self._reject(state, "That button isn't valid here.")
        state.mode = "ask"
        state.index = flow.index(step.id)
        state.back_to_summary = True
        _restore_pending(flow, state)
        return Outcome(state, [self._ask(flow, state)])

    def _command(self, flow: Flow, state: FlowState, name: str) -> Outcome:
        if name == "cancel":
            return Outcome(None, [], [Cancelled("cancel")])
        if name == "back":
            if state.mode == "edit_pick" or (state.mode == "ask" and state.back_to_summary):
                state.seq += 1
                state.mode, state.back_to_summary, state.pending = "summary", False, []
                return Outcome(state, [self._summary(flow, state)])
            if state.mode == "summary":
                state.seq += 1
                state.mode = "ask"
                state.index = len(flow.steps) - 1
                state.trail = list(range(state.index))
                _restore_pending(flow, state)
                return Outcome(state, [self._ask(flow, state)])
            if not state.trail:
                return self._reject(state, "This is the first question. /cancel stops here.")
            state.seq += 1
            state.index = state.trail.pop()
            _restore_pending(flow, state)
            return Outcome(state, [self._ask(flow, state)])
        if name == "skip":
            if state.mode != "ask":
                return self._reject(
                    state, "There's nothing to skip here.", repeat=self.resume(state).replies
                )
            step = flow.steps[state.index]
            if not step.optional:
                return self._reject(
                    state, "This one needs an answer, so it can't be skipped. /cancel stops here."
                )
            state.answers.pop(step.id, None)
            return self._advance(flow, state, [Cleared(step.id)])
        return self._reject(state, f"/{name} doesn't apply here.")


def _invisible(text: str) -> bool:
    """Nothing a reader would see: empty, or only spaces and zero-width characters."""
    return all(unicodedata.category(c) in ("Cf", "Cc", "Zs", "Zl", "Zp") for c in text)


def _restore_pending(flow: Flow, state: FlowState) -> None:
    """Back on a multi-choice step: its earlier ticks are shown again, so Done keeps them."""
    step = flow.steps[state.index]
    current = state.answers.get(step.id)
    state.pending = kind_of(step).pending(step, current)


class _Turn:
    """One input to one step, as the step kinds see it (conversations.steps.Turn)."""

    def __init__(self, engine: Engine, flow: Flow, state: FlowState) -> None:
        self.engine, self.flow, self.state = engine, flow, state

    @property
    def pending(self) -> list[str]:
        return self.state.pending

    def button(self, label: str, value: str) -> Button:
        return Button(label, self.engine._data(self.state, value))

    def store(self, value: Any) -> Outcome:
        return self.engine._store(self.flow, self.state, self.flow.steps[self.state.index], value)

    def reject(self, text: str, ask_again: bool = False) -> Outcome:
        repeat = [self.engine._ask(self.flow, self.state)] if ask_again else None
        return self.engine._reject(self.state, text, repeat=repeat)

    def press(self, value: str) -> Outcome:
        return self.engine._answer_press(self.flow, self.state, value)

    def redraw(self, replace: bool = False) -> Outcome:
        ask = self.engine._ask(self.flow, self.state)
        return Outcome(self.state, [Reply(ask.text, ask.buttons, replace=replace)])

    def today(self) -> date:
        return self.engine._today()  # type: ignore[no-any-return]
