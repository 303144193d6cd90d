"""The core of ``mentorbot code``: JSON Lines of answers in, JSON Lines of codes out.

Input, one object per line::

    {"id": "e1", "role": "mentee", "text": "My manager has been really supportive."}

with optional ``"flow"`` and ``"step"`` (a flow id and step id, e.g. ``"grow"``/``"goal"``): a
step that asks for goals or hopes makes the outcomes of its answer intended unless the answer
reports attainment.

Output, one line per input line, keys sorted so equal input gives byte-identical output::

    {"codebook": {"hash": ..., "version": ...}, "codes": [...], "id": "e1", "phase_signal": null}

With ``semantic=True`` the semantic heads join the rules (``reports/coding/combined.py``) and
each line's ``codebook`` object also says which ``layers`` coded it: ``rules+semantic``, or
``rules`` where the semantic extra, the model or the weights are missing.

A line that cannot be coded gets ``{"error": ..., "id": <id or null>}`` in its place and the
stream carries on; the caller learns how many lines failed from the return value. Blank lines
are skipped: they are layout, not entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from json.encoder import encode_basestring  # what json.dumps uses when ensure_ascii=False
from typing import Any, TextIO

from reports.codebook import Codebook, load_codebook
from reports.coding.rules import RawHit, code_text_raw, phase_signal
from reports.entry_codes import intention_steps

ROLES = ("mentee", "mentor")
MAX_TEXT_CHARS = 20_000  # longer than any reflection the bot accepts; guards the coder


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _error(entry_id: str | int | None, message: str) -> str:
    return _dumps({"id": entry_id, "error": message})


@lru_cache(maxsize=4096)
def _atom(value: str | None) -> str:
    # ids, schemes, roles and levels repeat endlessly; encode each once
    return json.dumps(value)


_FRAMES: dict[tuple[str | None, ...], tuple[str, str]] = {}


def _frame(hit: RawHit) -> tuple[str, str]:
    key = (hit.cmo_role, hit.code_id, hit.level, hit.method, hit.polarity, hit.scheme,
           hit.modality, hit.intended_role)
    frame = _FRAMES.get(key)
    if frame is None:
        head = f'{{"cmo_role":{_atom(hit.cmo_role)},"code":{_atom(hit.code_id)},"confidence":'
        tail = (f',"intended_role":{_atom(hit.intended_role)},"level":{_atom(hit.level)},'
                f'"method":{_atom(hit.method)},"modality":{_atom(hit.modality)},'
                f'"polarity":{_atom(hit.polarity)},"scheme":{_atom(hit.scheme)}}}')
        frame = _FRAMES[key] = (head, tail)
    return frame


def _hit_json(hit: RawHit) -> str:
    """One code as JSON, keys in sorted order: what ``_dumps(to_json())`` gives, built faster.

    The reporting job writes ~500,000 of these lines; a test pins the equivalence.
    """
    head, tail = _frame(hit)
    return (f'{head}{hit.confidence!r},"evidence":{{"end":{hit.span_end},'
            f'"start":{hit.span_start},"text":{encode_basestring(hit.evidence)}}}'
            f'{tail}')


def _parse_line(line: str, intending: frozenset[tuple[str, str]]
                ) -> tuple[Any, str | None, str, str | None, str | None, bool] | str:
    """(id, role, text, flow, step, intends) of a good line, or the error line for a bad
    one."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        return _error(None, f"invalid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(entry, dict):
        return _error(None, "each line must be a JSON object")
    entry_id = entry.get("id")
    if isinstance(entry_id, bool) or not isinstance(entry_id, str | int):
        return _error(None, "id must be a string or an integer")
    role = entry.get("role")
    if role is not None and role not in ROLES:
        return _error(entry_id, f"role must be one of {', '.join(ROLES)}")
    text = entry.get("text")
    if not isinstance(text, str):
        return _error(entry_id, "text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        return _error(entry_id, f"text longer than {MAX_TEXT_CHARS} characters")
    flow, step = entry.get("flow"), entry.get("step")
    if (flow is not None or step is not None) and not (
            isinstance(flow, str) and isinstance(step, str)):
        return _error(entry_id, "flow and step must be given together, as strings")
    return entry_id, role, text, flow, step, (flow, step) in intending


def _code_line(line: str, codebook: Codebook, stamp: str,
               intending: frozenset[tuple[str, str]]) -> tuple[str, bool]:
    parsed = _parse_line(line, intending)
    if isinstance(parsed, str):
        return parsed, False
    entry_id, role, text, _, _, intends = parsed
    hits = code_text_raw(text, role, codebook, intends)
    return _output(entry_id, hits, phase_signal(hits), stamp), True


def _output(entry_id: Any, hits: list[Any], phase: str | None, stamp: str) -> str:
    codes = ",".join(_hit_json(hit) for hit in hits)
    entry_json = encode_basestring(entry_id) if isinstance(entry_id, str) else str(entry_id)
    return (f'{{"codebook":{stamp},"codes":[{codes}],"id":{entry_json},'
            f'"phase_signal":{_atom(phase)}}}')


def code_stream(lines: Iterable[str], out: TextIO, codebook: Codebook | None = None,
                semantic: bool = False, note: Callable[[str], None] | None = None,
                review: Mapping[str, Any] | None = None) -> int:
    """Code every JSON line of ``lines`` into ``out``; return the number of error lines.

    ``note`` hears once which layers code the stream (and why the semantic one does not)."""
    book = codebook if codebook is not None else load_codebook()
    intending = intention_steps()
    if semantic:
        return _code_stream_combined(lines, out, book, intending, note, review)
    stamp = _dumps({"version": book.version, "hash": book.content_hash})
    errors = 0
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        result, ok = _code_line(line, book, stamp, intending)
        if not ok:
            errors += 1
        out.write(result)
        out.write("\n")
    return errors


SEMANTIC_BATCH = 64  # answers embedded together: batching is several times quicker


def _code_stream_combined(lines: Iterable[str], out: TextIO, book: Codebook,
                          intending: frozenset[tuple[str, str]],
                          note: Callable[[str], None] | None,
                          review: Mapping[str, Any] | None = None) -> int:
    from reports.coding.combined import Answer, AnswerCoder

    coder = AnswerCoder(book, semantic=True, review=review)
    if note is not None:
        note(coder.note)
    stamp = _dumps({"version": book.version, "hash": book.content_hash,
                    "layers": coder.layers})
    errors = 0
    pending: list[tuple[str | None, Any]] = []  # (error line, or None with the parsed line)

    def flush() -> None:
        good = [p for e, p in pending if e is None]
        coded = iter(coder.code([Answer(text, role, flow, step, intends)
                                 for _, role, text, flow, step, intends in good]))
        for error, parsed in pending:
            if error is not None:
                out.write(error)
            else:
                hits, phase = next(coded)
                out.write(_output(parsed[0], hits, phase, stamp))
            out.write("\n")
        pending.clear()

    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        parsed = _parse_line(line, intending)
        if isinstance(parsed, str):
            errors += 1
            pending.append((parsed, None))
        else:
            pending.append((None, parsed))
        if len(pending) >= SEMANTIC_BATCH:
            flush()
    flush()
    return errors
