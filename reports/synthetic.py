"""Synthetic mentoring text for demos and benchmarks: plausible, varied, never real people.

Sentences are assembled from the phrase bank (:mod:`reports.synthetic_phrases`) so large
cohorts do not repeat themselves exactly, and each family leans towards the codes an evaluator
would expect to find, for pairs that go well and for those that do not.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import date as date_
from typing import Any

from conversations.steps import TODAY, YESTERDAY
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

    def __init__(self, seed: int = 7, distinct: bool = False, join: float = 0.4) -> None:
        self.rng = random.Random(seed)
        self.join = join  # how often an answer is two sentences of its family
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

    def _pick(self, family: tuple[str, ...], join: float | None = None) -> str:
        """One answer from ``family``; often two of its sentences, as people write."""
        first = self.rng.choice(family)
        if len(family) > 3 and first and self.rng.random() < (self.join if join is None
                                                               else join):
            second = self.rng.choice([t for t in family if t and t != first])
            first = f"{first.rstrip('.')}. {second[0].upper()}{second[1:]}"
        return self._fill(first)

    def theme(self) -> str:
        return self.rng.choice(sorted(THEMES))

    def goal(self, theme: str | None = None) -> str:
        """A goal as stated: an intention."""
        return self._pick(THEMES[theme or self.theme()][0], join=0)

    def attained(self, theme: str, reached: bool) -> str:
        """What the same person says later: the goal realised, or not (yet)."""
        return self._pick(THEMES[theme][1 if reached else 2], join=0)

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
            "affirm_action": self._pick(WILL, join=0),
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
            "will": self._pick(WILL, join=0),
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
    context: bool = True,
) -> int:
    """Write a realistic programme straight into ``store`` (encrypted, consented).

    ``distinct`` makes every answer text unique (see :class:`Phrasebank`). ``coded`` stores
    each entry's rule codes as the bot does when an entry is saved (``reports.entry_codes``);
    without it the entries look as they would after a codebook change. ``context`` gives each
    person consenting to evaluation "about you" answers (:func:`about_you`), as the chat does.

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
    # one sentence per answer, as the cohorts had before the phrase bank grew: the benchmarks'
    # figures (coding time grows with the text) stay comparable
    bank = Phrasebank(seed, distinct, join=0.0)
    codebook = load_codebook()
    coder = coder_id(codebook)
    lexicon_rule = rule_version(semantic=False)
    verdicts: dict[str, bool] = {}
    flows = load_flows()
    prog = await store.programmes.create(f"{programme} {seed}-{pairs}")
    writer = await CohortWriter.start(store)
    now = datetime.now(UTC)
    written = 0
    contexts: list[tuple[int, int, str]] = []  # (person, pair, role) to give answers to
    scopes = (Scope.PARTICIPATE, Scope.PROGRAMME_SUMMARY, Scope.EVALUATION,
              Scope.RESEARCH_EXPORT)
    for start in range(0, pairs, 200):
        for _ in range(start, min(pairs, start + 200)):
            matched = now - timedelta(days=rng.randint(30, 360))
            pair_id = await store.programmes.create_pair(prog.id)
            ids = {}
            evaluation: dict[int, bool] = {}
            for role in (Role.MENTOR, Role.MENTEE):
                consents = [(scope, scope is Scope.PARTICIPATE or rng.random() < consent_rate)
                            for scope in scopes]
                ids[role] = writer.person(prog.id, role, 10**12 + writer.next_pid,
                                          iso(matched - timedelta(days=2)), consents)
                evaluation[ids[role]] = dict(consents)[Scope.EVALUATION]
            writer.match(pair_id, ids[Role.MENTOR], ids[Role.MENTEE], iso(matched))
            if context:
                for role, pid in ids.items():
                    # asked only with consent to evaluation (the ledger's third decision)
                    if evaluation[pid]:
                        contexts.append((pid, pair_id, role.value))
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
                        flagged = {step for step, risk in risks.items() if risk}
                        codes = (coder, code_entry(flows.get(flow), stored, role.value,
                                                   codebook, flagged=flagged))
                    writer.entry(pid, pair_id, flow, stamp, stored, verdicts=risks,
                                 judged_by=lexicon_rule, codes=codes)
                    written += 1
        batch = writer.pending_entries
        await writer.flush()
        if contexts:
            await store.context.save_many(
                (pid, q, v) for pid, pair_no, who in contexts
                for q, v in about_you("thrive" if pair_no % 2 else "stall", pair_no, who,
                                      seed).items() if v)
            contexts = []
        if progress is not None:
            progress(batch)
    return written


# -- the demo's programme: pairs with a course -------------------------------------------
DAYS_PER_MONTH = 30.44  # as the wave schedule counts months (conversations.waves)
# What happens to each pair, in the demo's order: most thrive, some stall (no contact for
# months), some regress (friction, hindering contexts, the phase going back), some end
# early (one asking for a different mentor). Twelve pairs cover every course twice or more.
ARCS = ("thrive", "regress", "stall", "end_early", "thrive", "thrive", "end_early_rematch",
        "regress", "thrive", "stall", "thrive", "thrive")


@dataclass(frozen=True)
class Step:
    """One thing a member of a pair does, ``day`` days (fractional) after matching."""

    day: float
    who: str  # mentor, mentee, both, coordinator
    action: str  # log, reflect, checkin, close
    answers: dict[str, object] = field(default_factory=dict)
    typed_date: str | None = None  # the session date as the mentor gives it
    saved_after: float = 0.0  # days between the session and the save
    pair: int = 0  # 0: the pair's own course; 1: the mentee's pair after a re-match


@dataclass
class PairCourse:
    arc: str
    framework: str
    theme: str
    steps: list[Step]
    across: bool = False  # the mentor is from another organisation (see CROSS_NETWORKS)


def _mood(arc: str, month: int) -> str:
    if arc == "thrive":
        return "good"
    if arc == "stall":
        return "good" if month < 2 else "flat"
    if arc == "regress":
        return "good" if month < 2 else ("flat" if month == 2 else "bad")
    return "flat" if month == 0 else "bad"  # ending early


def _phase(arc: str, month: int) -> str:
    if arc == "regress" and month >= 4:
        return ("PH_SETTING_DIRECTION", "PH_BUILDING_RAPPORT")[month % 2]  # going back
    if arc.startswith("end_early") and month >= 2:
        return "PH_WINDING_UP"
    return PHASE_BY_MONTH[min(month, len(PHASE_BY_MONTH) - 1)]


def _typed(day: date_, late: float, rng: random.Random) -> str:
    """The session date as the mentor gives it: a tap on Today or Yesterday when it fits,
    else typed in either form the bot reads."""
    if late == 0 and rng.random() < 0.4:
        return TODAY
    if late == 1 and rng.random() < 0.5:
        return YESTERDAY
    return day.isoformat() if rng.random() < 0.6 else f"{day.day}/{day.month}/{day.year}"


# The "about you" answers (conversations/flows/about_you.yaml) of the demo's people: a mix
# with "Prefer not to say" and skipped questions; how a person came to the programme and who
# their match is go with how the pair fares, so the report has a group difference to find.
_STAFF = (("nursing_midwifery", 5), ("allied_health", 2), ("medical_dental", 1),
          ("admin_management", 1), ("scientific_technical", 1), ("prefer_not", 1))
_BANDS = (("band_5_6", 3), ("band_7", 3), ("band_8a_8b", 2), ("doctor_senior", 1),
          ("prefer_not", 1))
_SECTORS = (("acute", 5), ("community", 2), ("mental_health", 2), ("primary_care", 1))
_YEARS = (("under_1", 1), ("y1_3", 3), ("y4_10", 3), ("over_10", 2), ("prefer_not", 1))


def about_you(arc: str, pair: int, who: str, seed: int = 7, across: bool | None = None
              ) -> dict[str, str | None]:
    """One person's answers (None: skipped with /skip). Its own random stream, so the
    courses' draws stay as they were. ``across`` (the demo's pairs) says whether the pair's
    mentor is from another organisation: both members then say so alike; left out, who the
    match is goes with how the pair fares."""
    rng = random.Random(f"about-you:{seed}:{pair}:{who}")
    if rng.random() < 0.08:
        return {}  # skips every question

    def pick(options: tuple[tuple[str, int], ...]) -> str | None:
        if rng.random() < 0.07:
            return None
        values, weights = zip(*options, strict=True)
        return rng.choices(values, weights)[0]

    going_well = arc == "thrive"
    return {
        "staff_group": pick(_STAFF),
        "band": pick(_BANDS),
        "sector": pick(_SECTORS),
        "years_in_role": pick(_YEARS),
        "cross_boundary": ("prefer_not" if rng.random() < 0.08 else
                           ("other_org" if across else "neither") if across is not None else
                           rng.choice(("other_org", "other_org", "both")) if going_well else
                           rng.choice(("neither", "neither", "not_sure"))),
        "own_choice": ("prefer_not" if rng.random() < 0.08 else
                       "own_idea" if going_well else "suggested"),
    }


# The configuration the demo's cohort is designed to hold for one group and not another: a
# mentor from another organisation opens their own network to the mentee, so after the same
# sessions (the same contexts, the same mentoring) those mentees tick "People, networks" as
# what they learned most times, and say so now and then; mentees whose mentor works where they
# do hardly ever learn that. The report's for-whom section should find it (tests/
# test_demo_outputs.py) with the semantic heads, the rules or the buttons alone.
# The pairs (by their place in ARCS) whose mentor is from another organisation: three that
# thrive and three that do not, and as many of each among the rest
ACROSS = frozenset({0, 1, 3, 5, 8, 9})
CROSS_NETWORKS = {"good": 0.85, "flat": 0.7, "bad": 0.4}  # share of the reflections, across
NETWORK_WORDS = (
    "My mentor put me in touch with someone in their organisation who runs a similar service.",
    "I've met two people from my mentor's trust through them and we're swapping ideas now.",
    "Being introduced to my mentor's colleagues has widened who I can ask for advice.",
    "I now know people outside my own organisation I can call on, thanks to my mentor.",
)


def cross_networks(reflection: dict[str, object], across: bool, mood: str,
                   rng: random.Random) -> dict[str, object]:
    """A mentee's reflection as the demo's design has it (:data:`CROSS_NETWORKS`): from its
    own random stream, so the rest of the course is drawn as before."""
    learning = [c for c in reflection.get("learning", ())  # type: ignore[attr-defined]
                if c != "DOM_SOCIAL_NETWORKS"]
    out = {k: v for k, v in reflection.items() if k != "learning"}
    if across and rng.random() < CROSS_NETWORKS[mood]:
        learning.append("DOM_SOCIAL_NETWORKS")
        if rng.random() < 0.3:
            step = "anything_else" if "goal" in out else "know_how"  # GROW or OSKAR
            out[step] = f"{out.get(step) or ''} {rng.choice(NETWORK_WORDS)}".strip()
    if learning:
        out["learning"] = learning
    return out


def demo_courses(pairs: int, months: int, start: datetime, seed: int = 7,
                 now: datetime | None = None) -> list[PairCourse]:
    """Each pair's course over ``months`` from ``start``, nothing after ``now``: starting
    check-ins, monthly sessions logged by the mentor with the date typed, reflections by the
    mentee, the 3- and 6-month check-ins, a closing session and check-in for pairs that
    finish or end early."""
    rng = random.Random(seed)
    bank = Phrasebank(seed)
    now = now or datetime.now(UTC)
    horizon = (now - start).total_seconds() / 86400 - 0.5
    courses = []
    for n in range(pairs):
        arc = ARCS[n % len(ARCS)]
        framework = "grow" if (n // 2) % 2 == 0 else "oskar"
        theme = bank.theme()
        across = n % len(ARCS) in ACROSS
        networks = random.Random(f"networks:{seed}:{n}")
        steps: list[Step] = []
        for who in ("mentor", "mentee"):
            steps.append(Step(rng.uniform(0.2, 2.5), who, "checkin", {
                "expectations": bank.checkin("expectations"),
                "hope_to_learn": bank.checkin("hope_to_learn"),
                **({"goals": bank.goal(theme)} if who == "mentee" else {}),
                "about_you": about_you(arc, n, who, seed, across),
            }))
        ends = {"end_early": 3.3, "end_early_rematch": 2.6}.get(arc)
        closes = ends if ends is not None else (months + 0.3 if n % 3 == 0 else None)
        last_scale: int | None = None
        for month in range(months):
            mood = _mood(arc, month)
            if ends is not None and month > ends:
                break
            if arc == "stall" and 2 <= month <= 4:
                continue  # no contact for three months
            if month > 0 and rng.random() < 0.08:
                continue  # a month missed, as happens
            session = float(round(month * DAYS_PER_MONTH) + rng.randint(4, 24))
            if closes is not None and session > closes * DAYS_PER_MONTH - 3:
                break
            day = (start + timedelta(days=session)).date()
            late = rng.choice((0.0, 0.0, 0.0, 1.0, 2.0))  # logged that day, or a day or two on
            episode = bank.episode(_phase(arc, month), mood=mood)
            if month == 0:
                episode["kind"] = "EP_CHEMISTRY_MEETING"
            steps.append(Step(session + late + 0.3, "mentor", "log", episode,
                              typed_date=_typed(day, late, rng), saved_after=late))
            if rng.random() < (0.85 if mood == "good" else 0.6):
                if framework == "grow":
                    reflection = bank.grow(mood=mood, theme=theme)
                else:
                    reflection = bank.oskar(last_scale, mood=mood, theme=theme)
                    last_scale = int(reflection["scaling"])  # type: ignore[call-overload]
                steps.append(Step(session + rng.uniform(0.4, 1.5), "mentee", "reflect",
                                  cross_networks(reflection, across, mood, networks)))
        reached = arc == "thrive"
        for wave_month in (3, 6):
            if wave_month > months or (ends is not None and wave_month > ends):
                continue
            mood = _mood(arc, wave_month - 1)
            for who in ("mentor", "mentee"):
                if rng.random() < 0.1:
                    continue  # not everyone answers every wave
                answers = {step: bank.checkin(step, mood=mood) for step in
                           ("relationship", "learning_self", "learning_how", "factors")}
                answers["changed"] = (bank.checkin("changed", theme=theme, reached=reached
                                                   and wave_month == 6)
                                      if who == "mentee" and (wave_month == 6 or not reached)
                                      else bank.checkin("changed", mood=mood))
                steps.append(Step(wave_month * DAYS_PER_MONTH + rng.uniform(0.5, 4), who,
                                  "checkin", answers))
        if closes is not None:
            close_day = closes * DAYS_PER_MONTH
            if arc == "thrive":
                episode = bank.episode("PH_MOVING_ON", mood="good") | {
                    "kind": "EP_CLOSING_SESSION"}
                session = float(round(close_day) - 2)
                day = (start + timedelta(days=session)).date()
                steps.append(Step(session + 0.3, "mentor", "log", episode,
                                  typed_date=_typed(day, 0.0, rng)))
            else:  # a closing session's log closes a pair; one ending early, the coordinator
                steps.append(Step(close_day, "coordinator", "close",
                                  {"rematch": arc == "end_early_rematch"}))
            mood = "good" if arc == "thrive" else "bad"
            for who in ("mentor", "mentee"):
                answers = {step: bank.checkin(step, mood=mood) for step in
                           ("relationship", "learning_self", "learning_how", "factors")}
                answers["changed"] = (bank.checkin("changed", theme=theme, reached=reached)
                                      if who == "mentee" else bank.checkin("changed", mood=mood))
                steps.append(Step(close_day + rng.uniform(0.5, 4), who, "checkin", answers))
        courses.append(PairCourse(arc, framework, theme, steps, across))
    # after every pair's own course, so re-matching leaves the other courses' draws alone
    for course in courses:
        if course.arc == "end_early_rematch":
            course.steps += _rematched(course, months, start, rng, bank)
        course.steps = sorted((s for s in course.steps if s.day < horizon), key=lambda s: s.day)
    return courses


def _rematched(course: PairCourse, months: int, start: datetime, rng: random.Random,
               bank: Phrasebank) -> list[Step]:
    """The mentee's new pair after a re-match: a few days after the closing check-ins the
    coordinator pairs the mentee with a new mentor, who joins through the invite; the new
    relationship starts over (its own starting check-ins, a chemistry meeting, phases from
    building rapport, its own 3-month check-in) and goes well."""
    closed = max(s.day for s in course.steps)  # the closing check-ins
    offset = closed + rng.uniform(2, 5)
    steps = [Step(offset, "mentor", "rematch", pair=1)]
    for who in ("mentor", "mentee"):
        steps.append(Step(offset + rng.uniform(0.2, 2.5), who, "checkin", {
            "expectations": bank.checkin("expectations"),
            "hope_to_learn": bank.checkin("hope_to_learn"),
            **({"goals": bank.goal(course.theme)} if who == "mentee" else {}),
            # the new mentor is asked; the mentee was asked once, in the first pair
            "about_you": about_you("thrive", 1000 + len(steps), who, across=course.across),
        }, pair=1))
    networks = random.Random(f"networks:rematched:{len(course.steps)}")
    last_scale: int | None = None
    for month in range(months):
        session = offset + round(month * DAYS_PER_MONTH) + rng.randint(4, 24)
        day = (start + timedelta(days=session)).date()
        episode = bank.episode(_phase("thrive", month), mood="good")
        if month == 0:
            episode["kind"] = "EP_CHEMISTRY_MEETING"
        steps.append(Step(session + 0.3, "mentor", "log", episode,
                          typed_date=_typed(day, 0.0, rng), pair=1))
        if course.framework == "grow":
            reflection = bank.grow(mood="good", theme=course.theme)
        else:
            reflection = bank.oskar(last_scale, mood="good", theme=course.theme)
            last_scale = int(reflection["scaling"])  # type: ignore[call-overload]
        steps.append(Step(session + rng.uniform(0.4, 1.5), "mentee", "reflect",
                          cross_networks(reflection, course.across, "good", networks), pair=1))
    for who in ("mentor", "mentee"):
        answers = {step: bank.checkin(step, mood="good") for step in
                   ("relationship", "learning_self", "learning_how", "factors")}
        answers["changed"] = bank.checkin("changed", mood="good")
        steps.append(Step(offset + 3 * DAYS_PER_MONTH + rng.uniform(0.5, 4), who, "checkin",
                          answers, pair=1))
    return steps
