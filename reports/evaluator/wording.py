"""How the report's sentences name a code: the one home for it, so the plain-language
summary, the contrast sentences and the for-whom findings read alike.

Codebook labels are written for a table ("Dyad: safe space, time out", "Cognitive"), not a
sentence: a person writes "safe space" (never "dyad", the codebook's word for the pair),
"cognitive learning", "sharing experience".
"""

from __future__ import annotations

from collections.abc import Mapping


def phrase(labels: Mapping[str, str], code: str | None) -> str:
    """A code as a sentence names it: "Dyad: safe space, time out" is "safe space", a
    learning domain "cognitive learning", "Sharing experience" "sharing experience"; a label
    with a category before its colon ("Dyad: diversity", "New knowledge: policy and
    evidence") is named by what follows the colon when the category is one word."""
    label = labels.get(code or "", code or "")
    head, _, tail = label.partition(":")
    if (code or "").startswith("DOM_"):
        head = head.split(",", 1)[0].strip()
        return f"{head[:1].lower() + head[1:] if not head[:2].isupper() else head} learning"
    text = (tail if tail.strip() and " " not in head.strip() else head).split(",", 1)[0].strip()
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def plain_label(labels: Mapping[str, str], code: str | None) -> str:
    """A code's label as a chip, a table cell or a heading names it: the codebook's "Dyad:"
    (its table word for the pair, which the sentences drop too) left off, so "Dyad: safe
    space, time out" is "Safe space, time out"; every other label as the codebook gives it
    ("New knowledge: policy and evidence" keeps its name)."""
    label = labels.get(code or "", code or "")
    head, colon, tail = label.partition(":")
    tail = tail.strip()
    if colon and head.strip() == "Dyad" and tail:
        return tail[:1].upper() + tail[1:]
    return label
