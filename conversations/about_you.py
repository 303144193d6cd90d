"""The "about you" questions ("for whom", issue 14): which flow holds them, and which of its
answers are not a group a report may compare."""

from __future__ import annotations

ABOUT_YOU = "about_you"  # the flow id (conversations/flows/about_you.yaml)
# Answers that say nothing about a group: kept as given (the person said so), never a group.
NOT_A_GROUP = frozenset({"prefer_not", "not_sure"})
