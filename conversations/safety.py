"""Safety signposting: the one rule that spots risk to self or acute distress in an answer.

Deliberately sensitive: a false alarm costs one supportive message, a miss costs more.
Figurative uses ("killing it", "dying to know") are excluded explicitly; negation does
not suppress it ("I'm not saying I want to end it all" still gets the signposting reply).
The reporting job codes TOPIC_SELF_HARM_RISK through this same function.
"""

from __future__ import annotations

import re

_RISK = [
    r"\b(kill|killing|hurt|hurting|harm|harming|cut|cutting)\s+my\s*self\b",
    r"\bself[-\s]?harm",
    r"\bsuicid",
    r"\bend(ing)?\s+(it\s+all|my\s+life|things)\b",
    r"\btake\s+my\s+(own\s+)?life\b",
    r"\b(don'?t|do\s+not|no\s+longer)\s+want\s+to\s+(be\s+here|live|be\s+alive|go\s+on|wake\s+up)",
    r"\bwant(ed)?\s+to\s+die\b",
    r"\bwant(ed)?\s+to\s+(disappear|vanish)\b",
    r"\b(not|never)\s+wake\s+up\b",
    r"\bno\s+reason\s+to\s+(live|go\s+on)\b",
    r"\bbetter\s+off\s+(dead|without\s+me)\b",
    r"\bno\s+(point|reason)\s+(in\s+)?(living|going\s+on|to\s+live)\b",
    r"\bcan'?t\s+(go\s+on|cope\s+any\s*more|take\s+(it|this)\s+any\s*more)\b",
    r"\bthoughts\s+of\s+(ending|dying|death|killing|suicide|harming)",
    r"\b(overdose|od'?d)\b",
    r"\bhopeless(ness)?\b.*\b(life|living|everything)\b",
]
_PATTERN = re.compile("|".join(f"(?:{p})" for p in _RISK), re.IGNORECASE)
_NORMALISE = str.maketrans({"’": "'", "‘": "'", "\u00a0": " "})

DEFAULT_SIGNPOST = (
    "Thank you for telling me. It sounds like things are really hard right now, and you "
    "don't have to manage this alone. Please talk to someone today: your GP, or your "
    "occupational health service. If you need to talk to someone now, Samaritans listen "
    "24 hours a day on 116 123 (free). If you are in danger, call 999 or go to A&E.\n"
    "I haven't shared what you wrote with anyone. We can carry on whenever you're ready."
)


def risk_span(text: str) -> tuple[int, int] | None:
    """The first span of text showing risk to self, or None."""
    match = _PATTERN.search(text.translate(_NORMALISE))
    return (match.start(), match.end()) if match else None


def shows_risk(text: str) -> bool:
    return risk_span(text) is not None
