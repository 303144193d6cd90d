"""Every issue-3 flow end to end through the real Application and the Bot API stand-in:
OSKAR, the mentor's episode log, check-ins, history with edit, /mydata documents, consent
changes, withdrawal, signposting with the configured text, and a restart in the middle."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from conversations.catalogue import load_flows
from storage.crypto import KeyRing
from storage.store import Store
from tests.conftest import Place
from tests.people import Cohort
from tests.support.harness import TgUser, running_app

# the flow, report and export suites run on both backends (issue #20)
pytestmark = pytest.mark.both_backends

FLOWS = load_flows()


def said(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


async def walk(user: TgUser, flow_id: str, answers: dict[str, Any]) -> str:
    """Answer a flow in Telegram: type texts, tap buttons by their value, /skip the rest."""
    last = ""
    for step in FLOWS[flow_id].steps:
        value = answers.get(step.id)
        if value is None:
            last = said(await user.send("/skip"))
        elif step.kind == "text":
            last = said(await user.send(str(value)))
        else:
            for v in value if isinstance(value, list) else [value]:
                last = said(await user.press(data_for(user, str(v))))
            if isinstance(value, list):
                last = said(await user.press(data_for(user, "_done")))
    if FLOWS[flow_id].summary:
        last = said(await user.press(data_for(user, "_save")))
    return last


def data_for(user: TgUser, value: str) -> str:
    for message in reversed(user.standin.sent_messages(user.user_id)):
        current = user.standin.message(user.user_id, message["message_id"]) or message
        for row in (current.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if button["callback_data"].split(":", 1)[1] == value:
                    return button["callback_data"]
    raise LookupError(value)


async def joined(user: TgUser, code: str) -> None:
    assert "Your choices are saved" in said(await user.join(code))


async def test_every_flow_through_telegram(
    cohort: Cohort, store: Store, place: Place, master_key: bytes
) -> None:
    custom = "Please call the Trust wellbeing line on 0000 000 000.\nYou are not alone."
    async with running_app(store, mentorbot_signpost_text=custom.replace("\n", "\\n")) as (
        app,
        standin,
    ):
        mentor = TgUser(app, standin, 600_001, "Morgan")
        mentee = TgUser(app, standin, 600_002, "Robin")
        await joined(mentor, cohort.mentor_code)
        await joined(mentee, cohort.mentee_code)

        # the mentor's episode log, all buttons but the last answer
        await mentor.send("/log")
        done = await walk(
            mentor,
            "episode_log",
            {
                "when": "_today",
                "kind": "EP_CHEMISTRY_MEETING",
                "mode": "MODE_VIDEO",
                "duration": "m45",
                "topics": ["TOPIC_CAREER_DEVELOPMENT"],
                "offered": [],
                "phase": "PH_BUILDING_RAPPORT",
                "climate": "SC_CONFIRMATION",
                "learned": "Listen first",
            },
        )
        assert "Logged" in done

        # OSKAR with the keypad, signposting mid-flow, back and edit before saving
        await mentee.send("/reflect")
        await mentee.tap("OSKAR: outcome, scaling, know-how, action, review")
        await mentee.send("Feel ready for the panel")
        await mentee.press(data_for(mentee, "3"))
        reply = said(await mentee.send("Some days I just want to disappear and not wake up"))
        assert "Trust wellbeing line" in reply and "You are not alone." in reply
        assert "(4/4) Affirm and action" in reply
        assert "(3/4) Know-how" in said(await mentee.send("/back"))
        await mentee.send("My mentor's questions")
        await mentee.send("Write three examples")
        for _ in range(4):
            last = said(await mentee.send("/skip"))
        assert "Scaling: 3/10" in last
        await mentee.tap("Edit")
        await mentee.tap("Scaling")
        await mentee.press(data_for(mentee, "4"))
        assert "Saved" in said(await mentee.tap("Save"))

    # a restart in the middle of a check-in
    async with running_app(store, standin) as (app, _):
        mentee = TgUser(app, standin, 600_002, "Robin")
        assert "two short questions" in said(await mentee.send("/checkin"))
        await mentee.send("A safe space")
    fresh = await place.open(KeyRing(master_key), FLOWS["consent"].version)
    try:
        async with running_app(fresh, standin) as (app, _):
            mentee = TgUser(app, standin, 600_002, "Robin")
            assert "(2/2) What do you hope to learn" in said(await mentee.send("/checkin"))
            await mentee.send("Confidence")
            await mentee.send("/skip")
            saved = said(await mentee.tap("Save"))
            # the first starting check-in, with consent to the evaluation, goes on to the
            # optional "about you" questions (issue 14): buttons, Prefer not to say, /skip
            assert "Saved" in saved and "Six optional questions" in saved
            assert "groups of five or more" in saved and "Which staff group" in saved
            assert "Band or grade" not in saved
            assert "band or grade" in said(await mentee.tap("Nursing or midwifery"))
            assert "Where do you mainly work" in said(await mentee.tap("Prefer not to say"))
            assert "How long" in said(await mentee.send("/skip"))
            asked = said(await mentee.tap("1 to 3 years"))
            assert "Is your mentor from another organisation" in asked
            assert "own choice" in said(await mentee.tap("Another organisation"))
            assert "won't ask these again" in said(await mentee.tap("Yes, my own idea"))
            stored = await fresh.context.of(
                (await fresh.participants.by_user(600_002)).id)  # type: ignore[union-attr]
            assert stored == {"staff_group": "nursing_midwifery", "band": "prefer_not",
                              "years_in_role": "y1_3", "cross_boundary": "other_org",
                              "own_choice": "own_idea"}

            # history: open the newest entry, edit an answer, and it stays saved
            await mentee.send("/history")
            newest = standin.sent_messages(mentee.user_id)[-1]["reply_markup"]["inline_keyboard"][
                0
            ][0]["text"]
            await mentee.tap(newest)
            await mentee.tap("Edit Expectations")
            await mentee.send("A safe space, and challenge")
            assert "Saved" in said(await mentee.tap("Save"))

            # /mydata arrives as two documents in the chat
            await mentee.send("/mydata")
            docs = {d["filename"]: d for d in standin.documents(mentee.user_id)}
            data = json.loads(docs["mentorbot-my-data.json"]["content"])
            assert data["about_you"]["name"] == "Robin"
            role = {a["question"]: a["answer"] for a in data["about_your_role"]}
            assert role["Which staff group are you in?"] == "Nursing or midwifery"
            assert role["What is your band or grade?"] == "Prefer not to say"
            assert len(role) == 5  # the skipped question is not kept
            texts = {a["answer"] for e in data["entries"] for a in e["answers"]}
            assert "A safe space, and challenge" in texts and "Listen first" not in texts
            rows = list(
                csv.DictReader(io.StringIO(docs["mentorbot-my-data.csv"]["content"].decode()))
            )
            assert {r["kind"] for r in rows} == {"oskar", "baseline"}

            # consent change, then withdrawal of one scope in one tap
            await mentee.send("/consent")
            await mentee.tap("Yes, keep them")
            for answer in ("No", "Yes", "Yes"):
                last = said(await mentee.tap(answer))
            assert "Programme summaries: no" in last and "Research: yes" in last
            await mentee.send("/withdraw")
            assert "Research is now off" in said(await mentee.tap("Stop research use"))
    finally:
        await fresh.close()
