"""The flow schema: a flow is data (steps with prompts, input kinds and codes), not code."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

StepKind = Literal["text", "choice", "multi", "scale", "date"]
# profile: answers about the person, not an entry (the "about you" questions, issue 14)
FlowKind = Literal["entry", "consent", "menu", "profile"]


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_]{1,40}$")
    label: str
    code: str | None = None  # the codebook id a press self-codes
    ends_flow: bool = False  # e.g. declining required consent


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    kind: StepKind
    prompt: str
    label: str  # the short name used in the summary and the edit menu
    optional: bool = False
    choices: tuple[Choice, ...] = ()
    allow_other: bool = False  # accept typed text on a choice step as "other"
    max_length: int = Field(default=2000, ge=1, le=4000)
    framework_step: str | None = None  # GROW_/OSKAR_ step id from the codebook
    elicits: tuple[str, ...] = ()  # CMO roles or code ids this step's answer evidences
    scope: str | None = None  # consent steps: the scope decided here

    @model_validator(mode="after")
    def _choices_fit_kind(self) -> Step:
        if self.kind in ("choice", "multi") and not self.choices:
            raise ValueError(f"step {self.id}: a {self.kind} step needs choices")
        if self.kind not in ("choice", "multi", "date") and self.choices:
            raise ValueError(f"step {self.id}: only choice steps take choices")
        ids = [c.id for c in self.choices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"step {self.id}: duplicate choice ids")
        return self

    def choice(self, choice_id: str) -> Choice | None:
        return next((c for c in self.choices if c.id == choice_id), None)


class Flow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    version: str
    kind: FlowKind = "entry"
    title: str
    roles: tuple[str, ...] = ("mentee",)
    intro: str = ""
    outro: str = ""
    summary: bool = True
    # the summary's first line where "Here is your <title>:" would not read ("About you")
    summary_heading: str = ""
    steps: tuple[Step, ...]

    @model_validator(mode="after")
    def _unique_steps(self) -> Flow:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"flow {self.id}: duplicate step ids")
        if not self.steps:
            raise ValueError(f"flow {self.id}: no steps")
        return self

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def index(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)


class FlowState(BaseModel):
    """Where one person is in one flow. Saved (encrypted) after every input."""

    model_config = ConfigDict(extra="forbid")

    flow: str
    version: str
    entry_id: int | None = None
    index: int = 0
    mode: Literal["ask", "summary", "edit_pick"] = "ask"
    answers: dict[str, Any] = Field(default_factory=dict)
    trail: list[int] = Field(default_factory=list)
    pending: list[str] = Field(default_factory=list)  # multi-choice selections in progress
    back_to_summary: bool = False
    seq: int = 0  # bumps on every transition so buttons on older messages go stale
    context: dict[str, Any] = Field(default_factory=dict)  # e.g. which draft a menu is about
    # Editing a saved entry from /history: its answers as saved, so that Discard or /cancel
    # puts them back instead of deleting the entry or keeping a half-made change.
    saved: dict[str, Any] | None = None
    # The Telegram update that last moved this state. After a crash, Telegram delivers
    # unconfirmed updates again; anything at or below this id was already applied.
    last_update_id: int | None = None
