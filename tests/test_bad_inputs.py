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

from bot.api_standin import BotApiStandin
from bot.harness import TgUser, running_app
from storage.models import Role
from storage.store import Store
from tests.people import Cohort

ME, OTHER = 444_555_666, 777_000_111


@dataclass(frozen=True)
class Case:
    id: str
    where: str  # "idle": joined, nothing active; "flow": at the GROW goal question
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
    Case("over-step-limit", "flow", text("y" * 2001), "limit here is 2000"),
    Case("over-telegram-limit", "flow", text("z" * 4097), "too long"),
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


CASES += [
    Case(f"injection-{n}", "flow", text(value), "Reality", "stored")
    for n, value in enumerate(INJECTIONS)
]


async def rows(store: Store) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table in ("participants", "entries", "answers", "consent_ledger", "invites", "audit_log"):
        out[table] = await store.db.scalar(f"SELECT COUNT(*) FROM {table}")
    out["answers_ct"] = [
        bytes(r[0])
        for r in await store.db.fetchall("SELECT value_ct FROM answers ORDER BY entry_id, step_id")
    ]
    return out


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 50
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input(cohort: Cohort, store: Store, case: Case) -> None:
    standin = BotApiStandin()
    async with running_app(store, standin) as (app, standin):
        user = TgUser(app, standin, ME)
        await user.join(cohort.mentee_code)
        me = await store.participants.by_user(ME)
        assert me is not None
        await store.participants.set_field(me.id, "preferred_framework", "grow")
        if case.where == "flow":
            await user.send("/reflect")
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
