"""`/mydata`: everything held about one person, as JSON and CSV (data portability).

The tables come from storage.personal_data, the map erasure uses: what is erased is what is
handed over.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from conversations.about_you import ABOUT_YOU
from conversations.engine import display
from conversations.model import Flow
from storage.models import Participant
from storage.store import Store


async def collect(store: Store, me: Participant, flows: dict[str, Flow]) -> dict[str, Any]:
    programme = await store.programmes.get(me.programme_id)
    pair = await store.programmes.pair_of(me.id)
    # every table of the person's data that is not rendered below (storage.personal_data)
    held = await store.personal_data(me.id)
    entries = []
    for entry in sorted(await store.entries.of(me.id), key=lambda e: e.id):
        answers = await store.entries.answers(me.id, entry.id)
        flow = flows.get(entry.flow)
        rendered = []
        for step_id, value in answers.items():
            step = flow.step(step_id) if flow else None
            rendered.append(
                {
                    "step": step_id,
                    "question": step.prompt if step else step_id,
                    "answer": display(step, value) if step else json.dumps(value),
                    "value": value,
                }
            )
        stored = await store.entries.codes(me.id, entry.id)
        # the codes every output reads (reports.entry_codes): how each was found (rules,
        # semantic, both) and whether it says something happened or was only hoped for
        codes = [
            {"step": step_id, "code": hit[2], "start": hit[0], "end": hit[1],
             "confidence": hit[3], "modality": hit[4] if len(hit) > 4 else None,
             "method": hit[5] if len(hit) > 5 else None,
             "polarity": hit[6] if len(hit) > 6 else None}
            for step_id, hits in (stored[1] if stored and isinstance(stored[1], dict) else {})
            .items()
            for hit in hits
        ]
        entries.append(
            {
                "entry": entry.id,
                "kind": entry.flow,
                "question_set": entry.flow_version,
                "wave": entry.wave,
                "status": entry.status,
                "created_at": entry.created_at,
                "completed_at": entry.completed_at,
                "answers": rendered,
                # codebook ids the reporting jobs read in this entry's typed answers, with
                # where (character positions in the answer) and how sure the coder was
                "automatic_codes": codes,
            }
        )
    return {
        "about_you": {
            "name": await store.participants.name(me.id),
            "role": me.role.value,
            "programme": programme.name,
            "time_zone": me.timezone,
            "reminders": me.status,
            "joined_at": me.created_at,
            "preferred_reflection": me.preferred_framework,
            "pair": None
            if pair is None
            else {"pair": pair.id, "state": pair.state, "matched_at": pair.matched_at},
        },
        **held,
        # the optional "about you" answers from the starting check-in (issue 14)
        "about_your_role": await _context(store, me, flows.get(ABOUT_YOU)),
        "entries": entries,
        "activity": await store.audit.actions(me.id),
        "note": "Telegram ids are not stored in readable form, only as a keyed hash.",
    }


async def _context(store: Store, me: Participant, flow: Flow | None) -> list[dict[str, Any]]:
    answers = await store.context.of(me.id)
    out = []
    for question, value in answers.items():
        step = flow.step(question) if flow else None
        out.append({
            "question": step.prompt if step else question,
            "answer": display(step, value) if step else value,
            "value": value,
        })
    return out


async def collect_all(store: Store, me: Participant,
                      flows: dict[str, Flow]) -> dict[str, Any]:
    """Everything held about the person, grouped by membership: the one in use at the top
    (as :func:`collect` gives it), each other programme or role under ``other_memberships``
    in the same shape, and what belongs to the account itself."""
    members = await store.participants.memberships(me)
    data = await collect(store, me, flows)
    data["other_memberships"] = [await collect(store, m, flows)
                                 for m in members if m.id != me.id]
    data["account"] = {
        "time_zone": me.timezone,
        "memberships": [{"programme": (await store.programmes.get(m.programme_id)).name,
                         "role": m.role.value, "joined_at": m.created_at} for m in members],
        "note": "Each membership keeps its own entries, consent and encryption key.",
    }
    return data


def as_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")


def as_csv(data: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["programme", "role", "entry", "kind", "status", "created_at", "step",
                     "question", "answer"])
    for group in [data, *data.get("other_memberships", [])]:
        about = group["about_you"]
        _entry_rows(writer, about["programme"], about["role"], group["entries"])
    return buffer.getvalue().encode("utf-8")


def _entry_rows(writer: Any, programme: str, role: str,
                entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        for answer in entry["answers"]:
            writer.writerow(
                [
                    programme,
                    role,
                    entry["entry"],
                    entry["kind"],
                    entry["status"],
                    entry["created_at"],
                    answer["step"],
                    answer["question"],
                    answer["answer"],
                ]
            )
