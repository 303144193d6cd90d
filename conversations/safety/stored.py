"""Answers already in the store, judged again when the safety rule changes.

Run by ``mentorbot recode`` (and named by ``mentorbot doctor`` while any answer waits): every
answer whose stored verdict came from another version of the rule, or that has none, is judged
by the current rule. A flag is never taken away (the person may have been signposted for it),
and nobody is sent anything: a signposting reply belongs to the moment someone writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conversations.safety import assess_many, rule_version, typed_text

CHUNK = 200


@dataclass
class RejudgeResult:
    judged: int = 0  # answers given a verdict by the current rule
    newly_flagged: int = 0  # of those, flagged now and not before


async def rejudge(store: Any, progress: Callable[[int], None] | None = None) -> RejudgeResult:
    rule = rule_version()
    result = RejudgeResult()
    after = 0
    while True:
        rows = await store.entries.to_judge(rule, after, CHUNK)
        if not rows:
            return result
        after = rows[-1][0]
        texts = [typed_text(value) for *_, value, _old in rows]
        verdicts = assess_many(texts)
        for (_rid, pid, entry_id, step_id, _value, old), verdict in zip(
                rows, verdicts, strict=True):
            risk = bool(old) or verdict.risk
            if await store.entries.set_safety(pid, entry_id, step_id, risk, rule):
                result.judged += 1
                result.newly_flagged += int(risk and not old)
        if progress is not None:
            progress(len(rows))
