"""A corpus of hostile and malformed inputs, each with its expected outcome.

Every case runs through the real Application with a real Update from the Bot API
stand-in. "unchanged" means no row count moved and no stored answer changed; "stored"
means a text step took the input verbatim (plain text is inert: no parse mode is used,
so HTML, Markdown and template syntax are never interpreted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from storage.models import Role
from storage.store import Store
from tests.people import Cohort
from tests.support.api_standin import BotApiStandin
from tests.support.harness import TgUser, running_app

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends

ME, OTHER = 444_555_666, 777_000_111


@dataclass(frozen=True)
class Case:
    id: str
    # "idle": a mentee, joined, nothing active; "flow": at the GROW goal question;
    # "multi": at GROW's first multiple-choice step; "scale": at OSKAR's 0-10 question;
    # "history": /history open on one saved entry; "coord": a coordinator of a matched pair
    where: str
    build: Any  # (standin, user_id) -> update dict
    expect: str  # text the reply must contain ("" = no reply required)
    outcome: str = "unchanged"  # or "stored": the goal answer equals the text sent


def text(value: str) -> Any:
    return lambda s, u: s.text_message(u, value)


INJECTIONS = [
    "'; DROP TABLE entries; --",
    "1 OR 1=1",
    "Robert'); DELETE FROM answers;--",
    "<script>alert('x')</script>",
    "<b>bold</b> <a href='http://evil'>x</a>",
    "*bold* _it_ `code` [link](http://evil.example)",
    "{name} {0} %s %(x)s",
    "{{7*7}} {% raw %}",
    "\u202eevil\u202c",
    "zero\u200bwidth\u200djoin",
    "🙂" * 200,
    "e\u0301\u0301\u0301 combining",
    "tab\there\nnew line\r\nwindows",
    "\\x00 literal",
    "ﷺ ﷽ long glyphs",
    "A" * 2000,
]

CASES: list[Case] = [
    # update kinds a reflection bot cannot use
    Case("sticker", "idle", lambda s, u: s.sticker(u), "ignored that sticker"),
    Case("photo", "idle", lambda s, u: s.photo(u), "ignored that photo"),
    Case(
        "photo-caption", "flow", lambda s, u: s.photo(u, caption="my goal"), "ignored that photo"
    ),
    Case("voice", "flow", lambda s, u: s.voice(u), "ignored that voice"),
    Case("file", "idle", lambda s, u: s.document(u), "ignored that file"),
    Case("file-exe", "flow", lambda s, u: s.document(u, "run.exe"), "ignored that file"),
    Case("edited", "flow", lambda s, u: s.edited_message(u, 1, "changed"), "Edits aren't"),
    # sizes
    Case("blank", "flow", text("   "), "didn't catch any words"),
    Case("over-step-limit", "flow", text("y" * 2001), "limit here is 2,000"),
    Case("over-telegram-limit", "flow", text("z" * 4097), "limit here is 2,000"),
    Case("huge", "idle", text("q" * 20000), "too long"),
    # commands out of place, unknown, for the wrong role, or for another bot
    Case("skip-idle", "idle", text("/skip"), "nothing in progress"),
    Case("back-idle", "idle", text("/back"), "nothing in progress"),
    Case("cancel-idle", "idle", text("/cancel"), "nothing in progress"),
    Case("skip-required", "flow", text("/skip"), "can't be skipped"),
    Case("back-first", "flow", text("/back"), "first question"),
    Case("unknown", "idle", text("/sudo"), "I don't know /sudo"),
    Case("unknown-in-flow", "flow", text("/rm -rf"), "I don't know /rm"),
    Case("wrong-role-log", "idle", text("/log"), "/log is for mentors"),
    Case("wrong-role-close", "idle", text("/close 1"), "is for coordinators"),
    Case("reflect-in-flow", "flow", text("/reflect"), "middle of something"),
    Case("other-bot", "idle", text("/reflect@someone_else_bot"), ""),
    Case("start-again", "idle", text("/start abcdefghijklmnop"), "already joined"),
    # forged and stale buttons
    Case("forged-empty", "flow", lambda s, u: s.callback_query(u, " "), "isn't one of mine"),
    Case("forged-format", "flow", lambda s, u: s.callback_query(u, "abc"), "isn't one of mine"),
    Case("forged-seq", "flow", lambda s, u: s.callback_query(u, "1:_save"), "earlier question"),
    Case("forged-long", "flow", lambda s, u: s.callback_query(u, "9" * 64), "isn't one of mine"),
    Case("forged-sql", "idle", lambda s, u: s.callback_query(u, "1';--"), "earlier message"),
    Case("forged-idle", "idle", lambda s, u: s.callback_query(u, "123:_save"), "earlier message"),
    Case("forged-history-other", "idle", lambda s, u: s.callback_query(u, "5:o1"), "earlier"),
    Case("forged-snooze", "idle", lambda s, u: s.callback_query(u, "r:999999:1h"), ""),
    Case("forged-unicode", "flow", lambda s, u: s.callback_query(u, "１:_save"), "isn't one"),
    Case("forged-negative", "flow", lambda s, u: s.callback_query(u, "-1:_save"), "isn't one"),
    # other kinds of message
    Case("location", "idle", lambda s, u: location(s, u), "ignored that location"),
    Case("contact", "flow", lambda s, u: contact(s, u), "ignored that contact"),
    Case("group-message", "idle", lambda s, u: group(s, u, "my goal"), ""),
    Case("group-command", "idle", lambda s, u: group(s, u, "/reflect"), ""),  # told in group
    # invites
    Case("replayed-own-invite", "idle", text("/start REPLAY"), "already joined"),
    Case("start-oversized-code", "idle", text("/start " + "a" * 300), "already joined"),
    Case("exactly-4096", "idle", text("w" * 4096), "not expecting a message"),
]


def location(s: BotApiStandin, u: int) -> dict[str, Any]:
    update = s.text_message(u, "x")
    message = update["message"]
    del message["text"]
    message["location"] = {"latitude": 51.5, "longitude": -0.12}
    return update


def contact(s: BotApiStandin, u: int) -> dict[str, Any]:
    update = s.text_message(u, "x")
    message = update["message"]
    del message["text"]
    message["contact"] = {"phone_number": "+440000000000", "first_name": "Someone"}
    return update


def group(s: BotApiStandin, u: int, value: str) -> dict[str, Any]:
    update = s.text_message(u, value)
    update["message"]["chat"] = {"id": -100123, "type": "group", "title": "Ward team"}
    return update


def current(s: BotApiStandin, u: int, value: str) -> dict[str, Any]:
    """A press with the generation number of the bot's latest keyboard: forged data that
    gets past the staleness check, as a tampering client's would."""
    for message in reversed(s.sent_messages(u)):
        rows = (message.get("reply_markup") or {}).get("inline_keyboard")
        if rows:
            seq = rows[0][0]["callback_data"].split(":", 1)[0]
            return s.callback_query(u, f"{seq}:{value}", message["message_id"])
    raise LookupError("no keyboard")


def press(value: str) -> Any:
    return lambda s, u: current(s, u, value)


def no_data(s: BotApiStandin, u: int) -> dict[str, Any]:
    update = s.callback_query(u, "x")
    del update["callback_query"]["data"]  # a game button, or a client that sends none
    return update


def other_update(kind: str) -> Any:
    def build(s: BotApiStandin, u: int) -> dict[str, Any]:
        update = s.text_message(u, "x")
        message = update.pop("message")
        del message["text"]
        if kind == "dice":
            update["message"] = {**message, "dice": {"emoji": "🎲", "value": 3}}
        elif kind == "video_note":
            note = {"file_id": "DQAC", "file_unique_id": "AgAD", "length": 240, "duration": 3}
            update["message"] = {**message, "video_note": note}
        else:  # a channel post: never for a private reflection bot
            message["chat"] = {"id": -100999, "type": "channel", "title": "News"}
            update["channel_post"] = {**message, "text": "/reflect"}
        return update

    return build


SCALE_ONLY = "tap a number from 0 to 10"
RANGE = "numbers from 1 to 8"
DIGITS = "digits 0 to 9"
CLOSE_USAGE = "Usage: /close"
EXTEND_USAGE = "Usage: /extend"
DIGEST_BAD = "day and a 24-hour time"
STALE = "earlier message"
NOT_HERE = "isn't valid"

CASES += [
    Case(f"injection-{n}", "flow", text(value), "Reality", "stored")
    for n, value in enumerate(INJECTIONS)
]

CASES += [
    # numbers where a 0-10 answer is asked: ASCII digits in range only
    Case("scale-superscript", "scale", text("²"), SCALE_ONLY),
    Case("scale-arabic-indic", "scale", text("٥"), SCALE_ONLY),
    Case("scale-devanagari", "scale", text("५"), SCALE_ONLY),
    Case("scale-fullwidth", "scale", text("５"), SCALE_ONLY),
    Case("scale-eleven", "scale", text("11"), SCALE_ONLY),
    Case("scale-negative", "scale", text("-1"), SCALE_ONLY),
    Case("scale-decimal", "scale", text("5.5"), SCALE_ONLY),
    Case("scale-thirty-digits", "scale", text("9" * 30), SCALE_ONLY),
    Case("scale-words", "scale", text("seven"), SCALE_ONLY),
    Case("scale-blank", "scale", text("\u200b\u200d"), "didn't catch"),
    Case("scale-press-eleven", "scale", press("11"), NOT_HERE),
    Case("scale-press-superscript", "scale", press("²"), NOT_HERE),
    Case("scale-press-negative", "scale", press("-1"), NOT_HERE),
    # typed numbers on a multiple-choice step: in range, ASCII, or refused with the range
    Case("multi-twelve", "multi", text("12"), RANGE),
    Case("multi-zero", "multi", text("0"), RANGE),
    Case("multi-one-bad-of-two", "multi", text("2 9"), RANGE),
    Case("multi-huge", "multi", text("9" * 30), RANGE),
    Case("multi-superscript", "multi", text("²"), DIGITS),
    Case("multi-mixed-scripts", "multi", text("1 ١"), DIGITS),
    Case("multi-fullwidth", "multi", text("３"), DIGITS),
    Case("multi-press-unknown", "multi", press("NOT_A_CHOICE"), NOT_HERE),
    Case("multi-press-keep", "multi", press("_keep"), NOT_HERE),
    # presses with the current generation but values the question does not have
    Case("multi-press-save", "multi", press("_save"), NOT_HERE),
    Case("scale-press-keep-unanswered", "scale", press("_keep"), NOT_HERE),
    Case("multi-press-full", "multi", press("_full"), NOT_HERE),
    Case("multi-press-oversized", "multi", press("x" * 100), NOT_HERE),
    Case("flow-press-no-data", "flow", no_data, "isn't one of mine"),
    Case("idle-press-no-data", "idle", no_data, STALE),
    # /history presses naming pages and entries no one could have
    Case("history-open-superscript", "history", press("o²"), "no longer exists"),
    Case("history-open-30-digits", "history", press("o" + "9" * 30), "no longer exists"),
    Case("history-page-arabic-indic", "history", press("p١"), "no longer exists"),
    Case("history-page-huge", "history", press("p" + "9" * 14), "no longer exists"),
    Case("history-edit-unopened", "history", press("egoal"), "no longer exists"),
    Case("history-delete-unopened", "history", press("dy"), "no longer exists"),
    Case("history-unknown-action", "history", press("zz"), "no longer exists"),
    # coordinator commands: only ASCII numbers act, and only in range
    Case("close-superscript", "coord", text("/close ²"), CLOSE_USAGE),
    Case("close-arabic-indic", "coord", text("/close ١"), CLOSE_USAGE),
    Case("close-hash-arabic-indic", "coord", text("/close #١"), CLOSE_USAGE),
    Case("close-30-digits", "coord", text("/close " + "9" * 30), CLOSE_USAGE),
    Case("close-zero", "coord", text("/close 0"), CLOSE_USAGE),
    Case("close-negative", "coord", text("/close -1"), CLOSE_USAGE),
    Case("close-decimal", "coord", text("/close 1.5"), CLOSE_USAGE),
    Case("close-nothing", "coord", text("/close"), CLOSE_USAGE),
    Case("close-unknown-pair", "coord", text("/close 4242"), "no pair 4242"),
    Case("extend-months-superscript", "coord", text("/extend 1 ²"), EXTEND_USAGE),
    Case("extend-months-too-many", "coord", text("/extend 1 99"), EXTEND_USAGE),
    Case("extend-months-zero", "coord", text("/extend 1 0"), EXTEND_USAGE),
    Case("extend-nothing", "coord", text("/extend"), EXTEND_USAGE),
    Case("digest-superscript-hour", "coord", text("/digest mon ²:00"), DIGEST_BAD),
    Case("digest-arabic-indic", "coord", text("/digest mon ٠٨:٣٠"), DIGEST_BAD),
    Case("digest-hour-25", "coord", text("/digest mon 25:00"), DIGEST_BAD),
    Case("digest-one-digit-minute", "coord", text("/digest mon 8:5"), DIGEST_BAD),
    Case("digest-no-day", "coord", text("/digest xyz 08:00"), DIGEST_BAD),
    Case("digest-extra-words", "coord", text("/digest mon 08:30 please"), DIGEST_BAD),
    Case("coord-reflect", "coord", text("/reflect"), "is for mentees"),
    Case("coord-text", "coord", text("hello"), "not expecting a message"),
    # blank-looking text, and messages the bot cannot read
    Case("flow-zero-width-only", "flow", text("\u200b\u200d\u2060"), "didn't catch"),
    Case("flow-no-break-spaces", "flow", text("\u00a0\u3000"), "didn't catch"),
    Case("dice", "idle", other_update("dice"), "ignored that message"),
    Case("video-note", "flow", other_update("video_note"), "ignored that video"),
    Case("channel-post", "idle", other_update("channel"), ""),
    Case("back-other-bot", "flow", text("/back@someone_else_bot"), ""),
    Case("skip-addressed-to-me", "flow", text("/skip@mentorbot_test_bot"), "can't be skipped"),
    Case("emoji-over-telegram-units", "idle", text("🙂" * 2100), "not expecting a message"),
    Case("quiet-superscript", "idle", text("/quiet ²¹:00-07:00"), "couldn't read that"),
    Case("quiet-arabic-indic", "idle", text("/quiet ٢١:٠٠-٠٧:٠٠"), "couldn't read that"),
    Case("snooze-arabic-indic-id", "idle", lambda s, u: s.callback_query(u, "r:z:١:h"), ""),
]


async def rows(store: Store) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table in (
        "participants",
        "entries",
        "answers",
        "consent_ledger",
        "invites",
        "audit_log",
        "pair_events",
        "reminders",
        "reminder_prefs",
        "coordinator_digests",
    ):
        out[table] = await store.db.scalar(f"SELECT COUNT(*) FROM {table}")
    out["answers_ct"] = [
        bytes(r[0])
        for r in await store.db.fetchall("SELECT value_ct FROM answers ORDER BY entry_id, step_id")
    ]
    return out


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input(cohort: Cohort, store: Store, case: Case) -> None:
    standin = BotApiStandin()
    async with running_app(store, standin) as (app, standin):
        user = TgUser(app, standin, ME)
        if case.where == "coord":
            await TgUser(app, standin, OTHER, "Morgan").join(cohort.mentor_code)
            await TgUser(app, standin, ME + 1, "Robin").join(cohort.mentee_code)
            code = await store.programmes.create_invite(cohort.programme_id, Role.COORDINATOR)
            await user.send(f"/start {code}")
            await user.send("/close")  # records the pair's matching, as the sweep would
        else:
            await user.join(cohort.mentee_code)
        me = await store.participants.by_user(ME)
        assert me is not None
        framework = "oskar" if case.where == "scale" else "grow"
        await store.participants.set_field(me.id, "preferred_framework", framework)
        if case.where in ("flow", "multi", "scale", "history"):
            await user.send("/reflect")
        if case.where == "scale":
            await user.send("an outcome")
        if case.where in ("multi", "history"):
            for answer in ("g", "r", "o", "w"):
                await user.send(answer)
            await user.send("/skip")
        if case.where == "history":
            for _ in range(3):
                await user.send("/skip")
            await user.tap("Save")
            await user.send("/history")
        user.new()
        before = await rows(store)
        update = case.build(standin, ME)
        if "REPLAY" in str(update):
            update = standin.text_message(ME, f"/start {cohort.mentee_code}")
        replies = await user.raw(update)
        said = "\n".join(m.get("text", "") for m in replies)
        if case.expect:
            assert case.expect in said, said
        assert "Traceback" not in said and "Error" not in said
        after = await rows(store)
        if case.outcome == "stored":
            entry = (await store.entries.of(me.id))[0]
            sent = update["message"]["text"]
            assert (await store.entries.answers(me.id, entry.id))["goal"] == sent.strip()
        else:
            assert after == before, case.id


async def test_many_wrong_codes_are_slowed_down(cohort: Cohort, store: Store) -> None:
    async with running_app(store) as (app, standin):
        guesser = TgUser(app, standin, OTHER)
        said = ""
        for n in range(12):
            said = "\n".join(m["text"] for m in await guesser.send(f"/start guess{n:016d}"))
        assert "Too many wrong codes" in said
        # even the right code is refused while locked
        said = "\n".join(m["text"] for m in await guesser.send(f"/start {cohort.mentor_code}"))
        assert "Too many wrong codes" in said
        assert await store.participants.by_user(OTHER) is None
        assert await store.programmes.find_invite(cohort.mentor_code) is not None


async def test_history_press_naming_another_persons_entry(cohort: Cohort, store: Store) -> None:
    """Forged callback data naming someone else's entry opens nothing."""
    async with running_app(store) as (app, standin):
        mentor = TgUser(app, standin, OTHER, "Morgan")
        await mentor.join(cohort.mentor_code)
        code = await store.programmes.create_invite(cohort.programme_id, Role.MENTEE)
        mentee = TgUser(app, standin, ME)
        await mentee.join(code)
        await mentee.send("/reflect")
        await mentee.tap("GROW: goal, reality, options, will")
        await mentee.send("MENTEE SECRET GOAL")
        said = "\n".join(m["text"] for m in await mentor.send("/history"))
        assert "haven't saved any" in said
        entry = (await store.entries.of(2))[0]
        for seq in ("1", "999999999999"):
            replies = await mentor.press(f"{seq}:o{entry.id}")
            assert "MENTEE SECRET GOAL" not in "\n".join(m["text"] for m in replies)
