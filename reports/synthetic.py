"""Synthetic mentoring text for demos and benchmarks: plausible, varied, never real people.

Sentences are assembled from fragments so large cohorts do not repeat themselves exactly,
and each fragment family leans towards the codes an evaluator would expect to find.
"""

from __future__ import annotations

import random

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


class Phrasebank:
    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)

    def _fill(self, template: str) -> str:
        out = template
        for key, values in FILL.items():
            token = "{" + key + "}"
            while token in out:
                out = out.replace(token, self.rng.choice(values), 1)
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
