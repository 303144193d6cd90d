"""Synthetic mentoring text for demos and benchmarks: plausible, varied, never real people.

Sentences are assembled from the phrase bank (:mod:`reports.synthetic_phrases`) so large
cohorts do not repeat themselves exactly, and each family leans towards the codes an evaluator
would expect to find, for pairs that go well and for those that do not.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from reports.synthetic_phrases import (
    CHECKIN,
    ELSE,
    FILL,
    LEARNED,
    OPTIONS,
    REALITY,
    REVIEW,
    THEMES,
    WILL,
)

MOODS = ("good", "flat", "bad")
HELPED = ("M_SHARING_EXPERIENCE", "M_DM_TECHNIQUES", "M_BROAD_VIEW", "C_DYAD_SAFE_SPACE",
          "M_ROLE_MODEL", "M_SPECIALIST_EXPERTISE")
DOMAINS = ("DOM_COGNITIVE", "DOM_SKILL", "DOM_AFFECTIVE", "DOM_SOCIAL_NETWORKS")
FACTORS = {
    "good": ("FAC_PROTECTED_TIME", "FAC_LINE_MGMT_SUPPORT", "HIN_TIME_CONSTRAINTS"),
    "flat": ("HIN_TIME_CONSTRAINTS", "FAC_PROTECTED_TIME", "HIN_LINE_MGMT_PRIORITY"),
    "bad": ("HIN_ORGANISATIONAL_CHANGE", "HIN_LINE_MGMT_PRIORITY", "HIN_TIME_CONSTRAINTS",
            "HIN_DISTANCE_LOCATION"),
}
TOPICS = (
    "TOPIC_CAREER_DEVELOPMENT",
    "TOPIC_WORKLOAD",
    "TOPIC_MANAGING_CHANGE",
    "TOPIC_SELF_CONFIDENCE",
    "TOPIC_WORK_LIFE_BALANCE",
    "TOPIC_RELATIONSHIPS_COLLEAGUES",
    "TOPIC_DEVELOPING_TEAMS_SERVICES",
    "TOPIC_STRESS",
)
CLIMATES = {
    "good": ("SC_GROWTH", "SC_GROWTH", "SC_CONFIRMATION"),
    "flat": ("SC_CONFIRMATION", "SC_STASIS"),
    "bad": ("SC_RETREAT", "SC_STASIS", "SC_CONFIRMATION"),
}


DETAILS = (
    "That was on shift", "We came back to it in session", "I noted it on day",
    "It came up again in week", "My mentor asked about it at meeting", "See my plan, item",
)


class Phrasebank:
    """Answers to every flow's questions, drawn from :mod:`reports.synthetic_phrases`.

    ``mood`` (good, flat, bad) says how the relationship is going when the answer is
    written; left out, each answer draws one (mostly good, as in most schemes). ``theme``
    ties a mentee's stated goal to what they later report (goal attainment).
    """

    def __init__(self, seed: int = 7, distinct: bool = False) -> None:
        self.rng = random.Random(seed)
        # distinct: every answer text differs from every other, as real answers do (the
        # phrase bank alone gives a few thousand texts, which flatters anything that caches
        # by text)
        self.distinct = distinct
        self._written = 0

    def _mood(self, mood: str | None) -> str:
        if mood is not None:
            return mood
        return self.rng.choices(MOODS, weights=(6, 3, 1))[0]

    def _fill(self, template: str) -> str:
        out = template
        while "{" in out:
            head, _, rest = out.partition("{")
            key, _, tail = rest.partition("}")
            out = head + self.rng.choice(FILL[key]) + tail
        if self.distinct and out:
            self._written += 1
            out = f"{out} {self.rng.choice(DETAILS)} {self._written}."
        return out

    def _pick(self, family: tuple[str, ...]) -> str:
        return self._fill(self.rng.choice(family))

    def theme(self) -> str:
        return self.rng.choice(sorted(THEMES))

    def goal(self, theme: str | None = None) -> str:
        """A goal as stated: an intention."""
        return self._pick(THEMES[theme or self.theme()][0])

    def attained(self, theme: str, reached: bool) -> str:
        """What the same person says later: the goal realised, or not (yet)."""
        return self._pick(THEMES[theme][1 if reached else 2])

    def oskar(self, last_scale: int | None = None, *, mood: str | None = None,
              theme: str | None = None, step: int | None = None) -> dict[str, object]:
        mood = self._mood(mood)
        if step is None:
            step = {"good": self.rng.randint(0, 2), "flat": self.rng.randint(-1, 1),
                    "bad": self.rng.randint(-2, 0)}[mood]
        scale = max(0, min(10, (last_scale or self.rng.randint(2, 5)) + step))
        answers: dict[str, object] = {
            "outcome": self.goal(theme),
            "scaling": scale,
            "know_how": self._pick(OPTIONS[mood]),
            "affirm_action": self._pick(WILL),
        }
        if last_scale is not None:
            answers["review"] = self._pick(REVIEW[mood])
        return answers | self.self_coding(mood)

    def self_coding(self, mood: str | None = None) -> dict[str, object]:
        mood = self._mood(mood)
        out: dict[str, object] = {}
        if self.rng.random() < (0.6 if mood == "good" else 0.3):
            out["helped"] = self.rng.sample(HELPED, self.rng.randint(1, 2))
        if self.rng.random() < (0.5 if mood == "good" else 0.2):
            out["learning"] = self.rng.sample(DOMAINS, self.rng.randint(1, 2))
        if self.rng.random() < (0.4 if mood == "good" else 0.7):
            out["factors"] = self.rng.sample(FACTORS[mood], 1)
        return out

    def episode(self, phase: str, *, mood: str | None = None) -> dict[str, object]:
        mood = self._mood(mood)
        learned = self._pick(LEARNED[mood])
        answers: dict[str, object] = {
            "when": "_today",
            "kind": self.rng.choice(("EP_FORMAL_SESSION",) * 4 + ("EP_INFORMAL_CONTACT",)),
            "mode": self.rng.choice(("MODE_FACE_TO_FACE", "MODE_VIDEO", "MODE_PHONE")),
            "duration": self.rng.choice(("m30", "m45", "m60") if mood == "good"
                                        else ("m15", "m30")),
            "topics": self.rng.sample(TOPICS, self.rng.randint(1, 2)),
            "offered": self.rng.sample(
                ("M_SHARING_EXPERIENCE", "M_DM_TECHNIQUES", "M_NEW_KNOWLEDGE_LOCAL",
                 "M_BROAD_VIEW", "M_SPECIALIST_EXPERTISE"), 1
            ),
            "phase": phase,
            "climate": self.rng.choice(CLIMATES[mood]),
        }
        if learned:
            answers["learned"] = learned
        return answers

    def checkin(self, step_id: str, *, mood: str | None = None, theme: str | None = None,
                reached: bool | None = None) -> str:
        """An answer to a check-in question, in the words people use in interviews.

        With a ``theme`` and ``reached``, "what has changed" reports on that goal."""
        mood = self._mood(mood)
        if step_id == "goals":
            return self.goal(theme)
        if step_id == "changed" and theme is not None and reached is not None:
            return self.attained(theme, reached)
        answers = CHECKIN.get(f"{step_id}:{mood}") or CHECKIN.get(step_id)
        if not answers:
            return "It's going well so far."
        return self._pick(answers)

    def grow(self, *, mood: str | None = None, theme: str | None = None) -> dict[str, object]:
        mood = self._mood(mood)
        answers: dict[str, object] = {
            "goal": self.goal(theme),
            "reality": self._pick(REALITY[mood]),
            "options": self._pick(OPTIONS[mood]),
            "will": self._pick(WILL),
        }
        extra = self._pick(ELSE[mood])
        if extra:
            answers["anything_else"] = extra
        return answers | self.self_coding(mood)


# -- cohorts at scale --------------------------------------------------------------------
PHASE_BY_MONTH = (
    "PH_BUILDING_RAPPORT",
    "PH_SETTING_DIRECTION",
    "PH_PROGRESSION",
    "PH_PROGRESSION",
    "PH_PROGRESSION",
    "PH_WINDING_UP",
    "PH_MOVING_ON",
)


async def generate_cohort(
    store: Any,
    *,
    pairs: int,
    sessions: int = 10,
    seed: int = 7,
    programme: str = "Synthetic programme",
    consent_rate: float = 0.85,
    progress: Callable[[int], None] | None = None,
    distinct: bool = False,
    coded: bool = True,
) -> int:
    """Write a realistic programme straight into ``store`` (encrypted, consented).

    ``distinct`` makes every answer text unique (see :class:`Phrasebank`). ``coded`` stores
    each entry's rule codes as the bot does when an entry is saved (``reports.entry_codes``);
    without it the entries look as they would after a codebook change.

    Each pair gets a mentor and a mentee, a consent history, and per session one mentor
    episode log and one mentee reflection (GROW or OSKAR), spread over the months since
    matching. Returns the number of entries written. Rows are inserted in bulk, so 100,000
    entries take seconds, not the minutes the chat flows would.
    """
    from conversations.catalogue import load_flows
    from conversations.safety import risk_span, rule_version, typed_text
    from reports.codebook import load_codebook
    from reports.entry_codes import code_entry, coder_id
    from storage.cohort import CohortWriter
    from storage.db import iso
    from storage.models import Role, Scope

    rng = random.Random(seed)
    bank = Phrasebank(seed, distinct)
    codebook = load_codebook()
    coder = coder_id(codebook)
    lexicon_rule = rule_version(semantic=False)
    verdicts: dict[str, bool] = {}
    flows = load_flows()
    prog = await store.programmes.create(f"{programme} {seed}-{pairs}")
    writer = await CohortWriter.start(store)
    now = datetime.now(UTC)
    written = 0
    scopes = (Scope.PARTICIPATE, Scope.PROGRAMME_SUMMARY, Scope.EVALUATION,
              Scope.RESEARCH_EXPORT)
    for start in range(0, pairs, 200):
        for _ in range(start, min(pairs, start + 200)):
            matched = now - timedelta(days=rng.randint(30, 360))
            pair_id = await store.programmes.create_pair(prog.id)
            ids = {}
            for role in (Role.MENTOR, Role.MENTEE):
                consents = [(scope, scope is Scope.PARTICIPATE or rng.random() < consent_rate)
                            for scope in scopes]
                ids[role] = writer.person(prog.id, role, 10**12 + writer.next_pid,
                                          iso(matched - timedelta(days=2)), consents)
            writer.match(pair_id, ids[Role.MENTOR], ids[Role.MENTEE], iso(matched))
            span = max(1, (now - matched).days)
            framework = rng.choice(("grow", "oskar"))
            mood = rng.choices(MOODS, weights=(6, 3, 1))[0]  # how this pair is going
            theme = bank.theme()
            last_scale = None
            for n in range(sessions):
                when = matched + timedelta(days=span * (n + 1) / (sessions + 1))
                month = min(len(PHASE_BY_MONTH) - 1, int((when - matched).days / 30.44))
                episode = bank.episode(PHASE_BY_MONTH[month], mood=mood) | {
                    "when": when.date().isoformat()}
                if n == 0:
                    episode["kind"] = "EP_CHEMISTRY_MEETING"
                if framework == "grow":
                    reflection: dict[str, Any] = bank.grow(mood=mood, theme=theme)
                else:
                    reflection = bank.oskar(last_scale, mood=mood, theme=theme)
                    last_scale = int(reflection["scaling"])
                for pid, flow, answers, role in (
                    (ids[Role.MENTOR], "episode_log", episode, Role.MENTOR),
                    (ids[Role.MENTEE], framework, reflection, Role.MENTEE),
                ):
                    stamp = iso(when + timedelta(hours=2 if flow != "episode_log" else 0))
                    stored = {step: {"selected": value} if isinstance(value, list) else value
                              for step, value in answers.items()}
                    risks = None
                    codes = None
                    if coded:
                        # the bot stores a verdict with every answer; judged by the lexicon
                        # (the version says so), each distinct typed text once
                        risks = {}
                        for step, value in stored.items():
                            typed = typed_text(value)
                            risk = verdicts.get(typed)
                            if risk is None:
                                risk = verdicts[typed] = bool(typed) and (
                                    risk_span(typed) is not None)
                            risks[step] = risk
                        codes = (coder, code_entry(flows.get(flow), stored, role.value,
                                                   codebook))
                    writer.entry(pid, pair_id, flow, stamp, stored, verdicts=risks,
                                 judged_by=lexicon_rule, codes=codes)
                    written += 1
        batch = writer.pending_entries
        await writer.flush()
        if progress is not None:
            progress(batch)
    return written
