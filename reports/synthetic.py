"""Synthetic mentoring text for demos and benchmarks: plausible, varied, never real people.

Sentences are assembled from fragments so large cohorts do not repeat themselves exactly,
and each fragment family leans towards the codes an evaluator would expect to find.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

GOALS = (
    "I wanted to work out how to {act} before my {event}.",
    "My aim was to get clearer about {topic}.",
    "To feel more confident about {topic}.",
    "I wanted ideas for {act}.",
)
REALITY = (
    "Right now {pressure}, and {obstacle}.",
    "Things are {mood} at the moment; {pressure}.",
    "My manager {manager}, but {obstacle}.",
    "{pressure}, so finding time for this is hard.",
)
OPTIONS = (
    "My mentor shared how they handled {topic} in their first year, which helped.",
    "We talked through {count} options: {option_a} or {option_b}.",
    "My mentor asked good questions and I realised I could {option_a}.",
    "We looked at {option_a}, and my mentor suggested {option_b}.",
)
WILL = (
    "I will {option_a} by {when}.",
    "Next I'm going to {option_b} and report back at our next session.",
    "Book time with my manager {when} to talk about {topic}.",
    "Try {option_a} this week and notice how it feels.",
)
ELSE = (
    "It felt good to have a safe space to think.",
    "I'm not sure the last action helped much, but today did.",
    "I'm learning to not be so hard on myself.",
    "",
)
FILL = {
    "act": (
        "prioritise my workload",
        "run a team meeting",
        "give difficult feedback",
        "ask for protected study time",
        "lead the service change",
    ),
    "event": ("appraisal", "interview", "rotation", "audit presentation", "exam"),
    "topic": (
        "my career plans",
        "the restructure",
        "managing my team",
        "work-life balance",
        "the new rota",
        "how decisions get made here",
    ),
    "pressure": (
        "the ward is short-staffed",
        "we're in the middle of a restructure",
        "my workload has doubled",
        "night shifts are wearing me down",
    ),
    "obstacle": (
        "there's never protected time",
        "I'm not sure who to ask",
        "it's hard to say no",
        "I keep putting my own development last",
    ),
    "mood": ("hectic", "calmer", "uncertain", "busy but better"),
    "manager": ("is supportive", "doesn't see it as a priority", "encouraged me to come"),
    "count": ("two", "three", "a few"),
    "option_a": (
        "block out an hour a week",
        "talk to the practice educator",
        "shadow a senior colleague",
        "write down what I want from the role",
    ),
    "option_b": (
        "join the regional network",
        "ask for feedback from my team",
        "say no to one extra task",
        "plan the conversation in advance",
    ),
    "when": ("Friday", "the end of the month", "next week", "our next session"),
}


CHECKIN = {
    "expectations": (
        "I expect a safe space to talk about {topic} with someone outside my team.",
        "Someone to challenge me and share their experience of {topic}.",
    ),
    "hope_to_learn": (
        "How to {act}, and more confidence in myself.",
        "I hope to learn more about how the organisation works.",
    ),
    "relationship": (
        "We get on well; it feels open and honest and I trust them.",
        "Still getting to know each other, but it is building.",
    ),
    "learning_self": (
        "I'm learning to be less hard on myself and to {act}.",
        "More confidence, and better questioning and listening skills.",
    ),
    "learning_how": (
        "My mentor asks good questions and shares their own experience.",
        "Talking things through; sometimes time pressure gets in the way.",
    ),
    "factors": ("My manager is supportive but {pressure}.", "Protected time helps; {obstacle}."),
    "changed": (
        "I feel more confident at work and I've started to {option_a}.",
        "I see the bigger picture now, and I've made new contacts.",
    ),
}
HELPED = ("M_SHARING_EXPERIENCE", "M_DM_TECHNIQUES", "M_BROAD_VIEW", "C_DYAD_SAFE_SPACE")
DOMAINS = ("DOM_COGNITIVE", "DOM_SKILL", "DOM_AFFECTIVE", "DOM_SOCIAL_NETWORKS")
FACTORS = (
    "FAC_PROTECTED_TIME",
    "HIN_TIME_CONSTRAINTS",
    "FAC_LINE_MGMT_SUPPORT",
    "HIN_LINE_MGMT_PRIORITY",
    "HIN_ORGANISATIONAL_CHANGE",
)
TOPICS = (
    "TOPIC_CAREER_DEVELOPMENT",
    "TOPIC_WORKLOAD",
    "TOPIC_MANAGING_CHANGE",
    "TOPIC_SELF_CONFIDENCE",
    "TOPIC_WORK_LIFE_BALANCE",
)


DETAILS = (
    "That was on shift", "We came back to it in session", "I noted it on day",
    "It came up again in week", "My mentor asked about it at meeting", "See my plan, item",
)


class Phrasebank:
    def __init__(self, seed: int = 7, distinct: bool = False) -> None:
        self.rng = random.Random(seed)
        # distinct: every answer text differs from every other, as real answers do (the
        # templates alone give a few hundred texts, which flatters anything that caches by text)
        self.distinct = distinct
        self._written = 0

    def _fill(self, template: str) -> str:
        out = template
        for key, values in FILL.items():
            token = "{" + key + "}"
            while token in out:
                out = out.replace(token, self.rng.choice(values), 1)
        if self.distinct and out:
            self._written += 1
            out = f"{out} {self.rng.choice(DETAILS)} {self._written}."
        return out

    def oskar(self, last_scale: int | None = None) -> dict[str, object]:
        scale = max(0, min(10, (last_scale or self.rng.randint(2, 5)) + self.rng.randint(0, 2)))
        answers: dict[str, object] = {
            "outcome": self._fill(self.rng.choice(GOALS)),
            "scaling": scale,
            "know_how": self._fill(self.rng.choice(OPTIONS)),
            "affirm_action": self._fill(self.rng.choice(WILL)),
        }
        if last_scale is not None:
            answers["review"] = self._fill(self.rng.choice(ELSE)) or "It went fine."
        return answers | self.self_coding()

    def self_coding(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.rng.random() < 0.6:
            out["helped"] = self.rng.sample(HELPED, self.rng.randint(1, 2))
        if self.rng.random() < 0.5:
            out["learning"] = self.rng.sample(DOMAINS, self.rng.randint(1, 2))
        if self.rng.random() < 0.4:
            out["factors"] = self.rng.sample(FACTORS, 1)
        return out

    def episode(self, phase: str) -> dict[str, object]:
        return {
            "when": "_today",
            "kind": self.rng.choice(("EP_FORMAL_SESSION",) * 4 + ("EP_INFORMAL_CONTACT",)),
            "mode": self.rng.choice(("MODE_FACE_TO_FACE", "MODE_VIDEO", "MODE_PHONE")),
            "duration": self.rng.choice(("m30", "m45", "m60")),
            "topics": self.rng.sample(TOPICS, self.rng.randint(1, 2)),
            "offered": self.rng.sample(
                ("M_SHARING_EXPERIENCE", "M_DM_TECHNIQUES", "M_NEW_KNOWLEDGE_LOCAL"), 1
            ),
            "phase": phase,
            "climate": self.rng.choice(("SC_GROWTH", "SC_GROWTH", "SC_CONFIRMATION")),
            "learned": self._fill("I learned more about {topic} from their side."),
        }

    def checkin(self, step_id: str) -> str:
        """An answer to a check-in question, in the words people use in interviews."""
        answers = CHECKIN.get(step_id, ("It's going well so far.",))
        return self._fill(self.rng.choice(answers))

    def grow(self) -> dict[str, object]:
        answers: dict[str, object] = {
            "goal": self._fill(self.rng.choice(GOALS)),
            "reality": self._fill(self.rng.choice(REALITY)),
            "options": self._fill(self.rng.choice(OPTIONS)),
            "will": self._fill(self.rng.choice(WILL)),
        }
        extra = self._fill(self.rng.choice(ELSE))
        if extra:
            answers["anything_else"] = extra
        return answers | self.self_coding()


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
            last_scale = None
            for n in range(sessions):
                when = matched + timedelta(days=span * (n + 1) / (sessions + 1))
                month = min(len(PHASE_BY_MONTH) - 1, int((when - matched).days / 30.44))
                episode = bank.episode(PHASE_BY_MONTH[month]) | {"when": when.date().isoformat()}
                if n == 0:
                    episode["kind"] = "EP_CHEMISTRY_MEETING"
                if framework == "grow":
                    reflection: dict[str, Any] = bank.grow()
                else:
                    reflection = bank.oskar(last_scale)
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
