"""People in more than one programme or role (issue 15): accounts and memberships.

The migration (015) is tested on a copy of a database written before it, with data; the
chat behaviour through the real Application and the Bot API stand-in.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

import storage.db
from conversations.catalogue import load_flows
from storage.crypto import KeyRing
from storage.db import iso, utcnow
from storage.models import Role, Scope
from storage.participants import USER_PURPOSE
from storage.store import Store
from tests.support.harness import TgUser, running_app
from tests.test_bot_flows import joined, said, walk

# the tests that open a store run on SQLite and on PostgreSQL (tests/conftest.py)
pytestmark = pytest.mark.both_backends

CONSENT = load_flows()["consent"].version


async def _old_participant(store: Store, programme_id: int, role: Role, user: int,
                           pair_id: int | None, name: str) -> int:
    """A participant written the way the bot wrote one before migration 015: the Telegram-id
    hash on the participants row (UNIQUE), no account."""
    vault = store.vault
    dek, wrapped, subject_ref = vault.new_participant_key()
    await vault.store_pending_key(subject_ref, wrapped)
    async with store.db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO participants (programme_id, role, user_hmac, subject_ref, created_at, "
            "timezone) VALUES (?, ?, ?, ?, ?, ?)",
            (programme_id, role.value, vault.lookup_hash(USER_PURPOSE, user), subject_ref,
             iso(utcnow()), "Europe/Dublin" if user % 2 else "Europe/London"))
        pid = int(cur.lastrowid or 0)
        vault.remember(pid, dek)
        chat = await vault.encrypt(pid, "participants", pid, "chat_id", user)
        first = await vault.encrypt(pid, "participants", pid, "name", name)
        await conn.execute("UPDATE participants SET chat_ct=?, name_ct=? WHERE id=?",
                           (chat, first, pid))
        if pair_id is not None:
            column = "mentor_id" if role is Role.MENTOR else "mentee_id"
            await conn.execute(f"UPDATE pairs SET {column}=? WHERE id=?",
                               (pid, pair_id))
    await vault.settle_key(subject_ref)
    return pid


async def test_a_database_from_before_memberships_migrates_in_place(
        tmp_path: Path, master_key: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    old_db = tmp_path / "old" / "mentorbot.sqlite3"
    every = storage.db.migrations()
    monkeypatch.setattr(storage.db, "migrations", lambda: [m for m in every if m[0] < 15])
    old = await Store.open(old_db, KeyRing(master_key), CONSENT)
    north = await old.programmes.create("North")
    south = await old.programmes.create("South")
    pair = await old.programmes.create_pair(north.id)
    mentor = await _old_participant(old, north.id, Role.MENTOR, 501, pair, "Morgan")
    mentee = await _old_participant(old, north.id, Role.MENTEE, 502, pair, "Robin")
    lead = await _old_participant(old, south.id, Role.COORDINATOR, 503, None, "Lee")
    for pid in (mentor, mentee):
        ref = await old.db.scalar("SELECT subject_ref FROM participants WHERE id=?", (pid,))
        await old.consent.record(pid, ref, Scope.PARTICIPATE, True, "chat")
        await old.consent.record(pid, ref, Scope.EVALUATION, pid == mentee, "chat")
    entry = await old.entries.create(mentee, pair, "grow", "1", "{}", None)
    await old.entries.save_answer(mentee, entry, "goal", "Lead the handover", (False, "t"))
    await old.entries.set_status(mentee, entry, "complete")
    assert await old.db.schema_version() == 14
    await old.close()

    # a copy of it, opened by this version: migration 015 runs in place on the copy
    copy_db = tmp_path / "copy" / "mentorbot.sqlite3"
    copy_db.parent.mkdir()
    for suffix in ("", ".keys"):
        shutil.copy2(str(old_db) + suffix, str(copy_db) + suffix)
    monkeypatch.setattr(storage.db, "migrations", lambda: every)
    store = await Store.open(copy_db, KeyRing(master_key), CONSENT)
    try:
        assert await store.db.schema_version() >= 15
        # one account and one membership per participant, the membership in use
        rows = await store.db.fetchall(
            "SELECT p.id, p.account_id, a.in_use, a.user_hmac, a.timezone, p.timezone AS ptz "
            "FROM participants p JOIN accounts a ON a.id = p.account_id ORDER BY p.id")
        assert [r["id"] for r in rows] == [mentor, mentee, lead]
        assert len({r["account_id"] for r in rows}) == 3
        assert all(r["in_use"] == r["id"] and r["timezone"] == r["ptz"] for r in rows)
        for user, pid in [(501, mentor), (502, mentee), (503, lead)]:
            me = await store.participants.by_user(user)
            assert me is not None and me.id == pid and me.account_id is not None
            assert await store.participants.chat_id(pid) == user  # still opens
        # entries, answers and consent are the membership's, untouched
        assert await store.entries.answers(mentee, entry) == {"goal": "Lead the handover"}
        assert (await store.consent.state(mentee)).allows(Scope.EVALUATION)
        assert not (await store.consent.state(mentor)).allows(Scope.EVALUATION)
        pair_row = await store.programmes.pair(pair)
        assert pair_row is not None and (pair_row.mentor_id, pair_row.mentee_id) == (mentor,
                                                                                    mentee)
        # the migrated mentee takes a membership in another programme: a new row under
        # the same account, with the account's time zone and no consent yet
        pair2 = await store.programmes.create_pair(south.id)
        code = await store.programmes.create_invite(south.id, Role.MENTOR, pair2)
        joined = await store.join(code, 502, 502, "Robin")
        assert joined.ok and joined.membership and joined.participant_id not in (
            mentor, mentee, lead)
        assert joined.participant_id is not None
        again = await store.participants.get(joined.participant_id)
        old_mentee = await store.participants.get(mentee)
        assert again is not None and old_mentee is not None
        assert again.account_id == old_mentee.account_id
        assert again.timezone == old_mentee.timezone
        assert not (await store.consent.state(again.id)).decisions
        me = await store.participants.by_user(502)
        assert me is not None and me.id == again.id  # the new membership is in use
        assert [m.id for m in await store.participants.memberships(me)] == [mentee, again.id]
    finally:
        await store.close()
    # the original is as it was
    conn = sqlite3.connect(old_db)
    try:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 14
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='accounts'"
                            ).fetchone()[0] == 0
    finally:
        conn.close()


async def test_erasing_one_membership_leaves_the_other_and_the_account_goes_with_the_last(
        store: Store) -> None:
    north = await store.programmes.create("North")
    south = await store.programmes.create("South")
    p1, p2 = await store.programmes.create_pair(north.id), await store.programmes.create_pair(
        south.id)
    first = await store.join(await store.programmes.create_invite(north.id, Role.MENTEE, p1),
                             900, 900, "Robin")
    second = await store.join(await store.programmes.create_invite(south.id, Role.MENTOR, p2),
                              900, 900, "Robin")
    assert first.ok and second.ok and second.membership
    assert first.participant_id is not None and second.participant_id is not None
    for pid in (first.participant_id, second.participant_id):
        person = await store.participants.get(pid)
        assert person is not None
        await store.consent.record(pid, person.subject_ref, Scope.PARTICIPATE, True, "chat")
        eid = await store.entries.create(pid, None, "grow", "1", "{}", None)
        await store.entries.save_answer(pid, eid, "goal", f"goal of {pid}", (False, "t"))
    report = await store.erase(second.participant_id)
    assert report.deleted["entries"] == 1 and report.deleted["account"] == 0
    assert await store.participants.get(second.participant_id) is None
    me = await store.participants.by_user(900)
    assert me is not None and me.id == first.participant_id  # the other one, still found
    assert len(await store.entries.of(first.participant_id)) == 1
    assert (await store.consent.state(first.participant_id)).allows(Scope.PARTICIPATE)
    report = await store.erase(first.participant_id)
    assert report.deleted["account"] == 1
    assert await store.participants.by_user(900) is None
    assert await store.db.scalar("SELECT COUNT(*) FROM accounts") == 0


async def test_an_account_cannot_sit_on_both_sides_of_one_pair(store: Store) -> None:
    north = await store.programmes.create("North")
    pair = await store.programmes.create_pair(north.id)
    mentor_code = await store.programmes.create_invite(north.id, Role.MENTOR, pair)
    mentee_code = await store.programmes.create_invite(north.id, Role.MENTEE, pair)
    assert (await store.join(mentor_code, 901, 901, "Morgan")).ok
    refused = await store.join(mentee_code, 901, 901, "Morgan")
    assert not refused.ok and refused.reason == "already"
    invite = await store.programmes.find_invite(mentee_code)
    assert invite is not None and invite.used_at is None  # still there for the mentee


# -- through the real Application ------------------------------------------------------

GROW = {"goal": None, "reality": "Short-staffed", "options": "Ask", "will": "Book time"}


async def _pair(store: Store, programme_id: int) -> tuple[int, str, str]:
    pair = await store.programmes.create_pair(programme_id)
    return (pair, await store.programmes.create_invite(programme_id, Role.MENTOR, pair),
            await store.programmes.create_invite(programme_id, Role.MENTEE, pair))


def _buttons(user: TgUser) -> list[str]:
    last = user.standin.sent_messages(user.user_id)[-1]
    return [b["text"] for row in (last.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row]


def _menu(user: TgUser) -> set[str]:
    return {c["command"] for c in user.standin.commands(
        {"type": "chat", "chat_id": user.user_id})}


async def test_one_account_in_two_programmes_keeps_the_data_apart_and_mydata_holds_both(
        store: Store, db_path: Path) -> None:
    north = await store.programmes.create("North")
    south = await store.programmes.create("South")
    n_pair, n_mentor, n_mentee = await _pair(store, north.id)
    s_pair, s_mentor, s_mentee = await _pair(store, south.id)
    async with running_app(store) as (app, standin):
        robin = TgUser(app, standin, 620_001, "Robin")
        morgan = TgUser(app, standin, 620_002, "Morgan")
        jo = TgUser(app, standin, 620_003, "Jo")
        await joined(morgan, n_mentor)
        await joined(jo, s_mentor)
        await joined(robin, n_mentee)
        # South's invite: a new membership, with South's own consent questions
        reply = said(await robin.send(f"/start {s_mentee}"))
        assert "You've joined South as a mentee" in reply and "separate membership" in reply
        assert "already joined" not in reply
        # consent given in North is not taken for South: until South's questions are
        # answered, South keeps nothing
        assert "middle of something" in said(await robin.send("/reflect"))  # South's consent
        await robin.send("/cancel")
        assert "Which is this about?" in said(await robin.send("/reflect"))
        assert sorted(_buttons(robin)) == ["North: mentored by Morgan", "South: mentored by Jo"]
        refused = said(await robin.tap("South: mentored by Jo"))
        assert "agree" in refused.lower() or "consent" in refused.lower()
        members = await store.participants.memberships(
            await store.participants.by_user(620_001))  # type: ignore[arg-type]
        north_me, south_me = members
        assert (north_me.programme_id, south_me.programme_id) == (north.id, south.id)
        assert await store.entries.of(south_me.id) == []
        assert (await store.consent.state(north_me.id)).allows(Scope.PARTICIPATE)
        assert not (await store.consent.state(south_me.id)).allows(Scope.PARTICIPATE)
        # now South's consent, with research declined there only
        assert "Which is this about?" in said(await robin.send("/consent"))
        await robin.tap("South: mentored by Jo")
        await robin.tap("Yes, keep them")
        for answer in ("Yes", "Yes", "No"):
            await robin.tap(answer)
        assert (await store.consent.state(north_me.id)).allows(Scope.RESEARCH_EXPORT)
        assert not (await store.consent.state(south_me.id)).allows(Scope.RESEARCH_EXPORT)

        # a reflection in each, each asked for by programme and the partner's name
        for programme, label, goal in (("North", "North: mentored by Morgan", "NORTH-GOAL"),
                                       ("South", "South: mentored by Jo", "SOUTH-GOAL")):
            await robin.send("/reflect")
            await robin.tap(label)
            await robin.tap("GROW: goal, reality, options, will")  # asked per membership
            await walk(robin, "grow", GROW | {"goal": goal})
            assert programme in label
        north_goals = [(await store.entries.answers(north_me.id, e.id)).get("goal")
                       for e in await store.entries.of(north_me.id)]
        south_goals = [(await store.entries.answers(south_me.id, e.id)).get("goal")
                       for e in await store.entries.of(south_me.id)]
        assert north_goals == ["NORTH-GOAL"] and south_goals == ["SOUTH-GOAL"]
        north_entry = (await store.entries.of(north_me.id))[0]
        assert north_entry.pair_id == n_pair
        assert (await store.entries.of(south_me.id))[0].pair_id == s_pair

        # /history asks which, and shows only that membership's entries
        assert "Which is this about?" in said(await robin.send("/history"))
        listing = said(await robin.tap("North: mentored by Morgan"))
        assert "page 1 of 1" in listing and "SOUTH" not in listing

        # /mydata: one file, both memberships, grouped, nothing of one in the other
        await robin.send("/mydata")
        docs = {d["filename"]: d for d in standin.documents(robin.user_id)}
        data = json.loads(docs["mentorbot-my-data.json"]["content"])
        in_use = {k: v for k, v in data.items() if k not in ("other_memberships", "account")}
        groups = [in_use, *data["other_memberships"]]
        by_programme = {g["about_you"]["programme"]: g for g in groups}
        assert set(by_programme) == {"North", "South"}
        for programme, goal, other in (("North", "NORTH-GOAL", "SOUTH-GOAL"),
                                       ("South", "SOUTH-GOAL", "NORTH-GOAL")):
            text = json.dumps(by_programme[programme])
            assert goal in text and other not in text
        assert [m["programme"] for m in data["account"]["memberships"]] == ["North", "South"]
        rows = list(csv.DictReader(io.StringIO(
            docs["mentorbot-my-data.csv"]["content"].decode())))
        assert {(r["programme"], r["answer"]) for r in rows if r["step"] == "goal"} == {
            ("North", "NORTH-GOAL"), ("South", "SOUTH-GOAL")}
        # neither mentor sees anything of the other programme
        for mentor in (morgan, jo):
            blob = json.dumps(mentor.standin.sent_messages(mentor.user_id))
            assert "NORTH-GOAL" not in blob and "SOUTH-GOAL" not in blob


async def test_mentor_in_one_pair_and_mentee_in_another(store: Store) -> None:
    north = await store.programmes.create("North")
    a_pair, a_mentor, a_mentee = await _pair(store, north.id)
    b_pair, b_mentor, b_mentee = await _pair(store, north.id)
    async with running_app(store) as (app, standin):
        morgan = TgUser(app, standin, 630_001, "Morgan")
        robin = TgUser(app, standin, 630_002, "Robin")
        lee = TgUser(app, standin, 630_003, "Lee")
        await joined(morgan, a_mentor)
        await joined(robin, a_mentee)
        await joined(lee, b_mentor)
        # Morgan takes the mentee seat of pair B: a second membership, asked consent anew
        assert "as a mentee" in said(await morgan.send(f"/start {b_mentee}"))
        await morgan.tap("Yes, keep them")
        for _ in range(3):
            await morgan.tap("Yes")
        assert "reflect" in _menu(morgan) and "log" not in _menu(morgan)
        # /log only the mentor membership can run: no question, and the menu follows it
        reply = said(await morgan.send("/log"))
        assert "Which is this about?" not in reply and "Which mentee" not in reply
        assert "log" in _menu(morgan) and "reflect" not in _menu(morgan)
        await morgan.send("/cancel")
        # /reflect: the mentee membership, again without asking
        reply = said(await morgan.send("/reflect"))
        assert "Which is this about?" not in reply
        assert "reflect" in _menu(morgan)
        await morgan.tap("GROW: goal, reality, options, will")
        await walk(morgan, "grow", GROW | {"goal": "MORGAN-AS-MENTEE"})
        # /checkin: both could, so asked, by the partner's name
        assert "Which is this about?" in said(await morgan.send("/checkin"))
        assert sorted(_buttons(morgan)) == ["North: mentored by Lee", "North: mentoring Robin"]
        members = await store.participants.memberships(
            await store.participants.by_user(630_001))  # type: ignore[arg-type]
        as_mentor, as_mentee = members
        assert (as_mentor.role, as_mentee.role) == (Role.MENTOR, Role.MENTEE)
        assert [e.flow for e in await store.entries.of(as_mentee.id)] == ["grow"]
        assert all(e.flow != "grow" for e in await store.entries.of(as_mentor.id))
        assert (await store.entries.of(as_mentee.id))[0].pair_id == b_pair
        pair_a = await store.programmes.pair(a_pair)
        assert pair_a is not None and pair_a.mentor_id == as_mentor.id
        # Robin, Morgan's mentee, sees nothing of Morgan's own reflections
        assert "MORGAN-AS-MENTEE" not in json.dumps(standin.sent_messages(robin.user_id))


def test_erasure_on_request_of_one_membership_by_cli_leaves_the_other(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from bot.cli import main
    from storage.crypto import encode_key, generate_key

    key = generate_key()
    db = tmp_path / "db.sqlite3"
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(key))
    monkeypatch.setenv("MENTORBOT_DB", str(db))
    cli = CliRunner()

    async def setup() -> tuple[int, int, int, int]:
        store = await Store.open(db, KeyRing(key), CONSENT)
        try:
            north = await store.programmes.create("North")
            south = await store.programmes.create("South")
            n_pair, n_mentor, n_mentee = await _pair(store, north.id)
            s_pair, s_mentor, s_mentee = await _pair(store, south.id)
            async with running_app(store) as (app, standin):
                robin = TgUser(app, standin, 640_001, "Robin")
                await joined(TgUser(app, standin, 640_002, "Morgan"), n_mentor)
                await joined(TgUser(app, standin, 640_003, "Jo"), s_mentor)
                await joined(robin, n_mentee)
                await joined(robin, s_mentee)
                for label, goal in (("North: mentored by Morgan", "NORTH-GOAL"),
                                    ("South: mentored by Jo", "SOUTH-GOAL")):
                    await robin.send("/reflect")
                    await robin.tap(label)
                    await robin.tap("GROW: goal, reality, options, will")
                    await walk(robin, "grow", GROW | {"goal": goal})
            me = await store.participants.by_user(640_001)
            assert me is not None
            north_me, south_me = await store.participants.memberships(me)
            now = iso(utcnow())
            await store.db.execute(
                "INSERT INTO reminders (kind, participant_id, pair_id, due_at, dedupe_key, "
                "created_at, updated_at) VALUES ('reflection', ?, ?, ?, 'test:s', ?, ?)",
                (south_me.id, s_pair, now, now, now))
            return n_pair, s_pair, north_me.id, south_me.id
        finally:
            await store.close()

    n_pair, s_pair, north_id, south_id = asyncio.run(setup())
    # the admin names the membership by programme, pair and role; it asks to confirm
    stopped = cli.invoke(main, ["erase", "--programme", "South", "--pair", str(s_pair),
                                "--role", "mentee"], input="n\n")
    assert stopped.exit_code != 0 and "1 other membership(s)" in stopped.output
    assert "those stay" in stopped.output
    done = cli.invoke(main, ["erase", "--programme", "South", "--pair", str(s_pair),
                             "--role", "mentee"], input="y\n")
    assert done.exit_code == 0 and "Erased" in done.output, done.output

    async def check() -> None:
        store = await Store.open(db, KeyRing(key), CONSENT)
        try:
            for table in ("entries", "consent_ledger", "reminders", "conversation_state"):
                assert await store.db.scalar(
                    f"SELECT COUNT(*) FROM {table} WHERE participant_id=?",
                    (south_id,)) == 0, table
            assert await store.db.scalar(
                "SELECT COUNT(*) FROM answers a WHERE NOT EXISTS "
                "(SELECT 1 FROM entries e WHERE e.id = a.entry_id)") == 0
            assert await store.participants.get(south_id) is None
            # North stays whole, and the account still finds it
            me = await store.participants.by_user(640_001)
            assert me is not None and me.id == north_id
            (entry,) = await store.entries.of(north_id)
            assert (await store.entries.answers(north_id, entry.id))["goal"] == "NORTH-GOAL"
            assert (await store.consent.state(north_id)).allows(Scope.PARTICIPATE)
            south_pair = await store.programmes.pair(s_pair)
            assert south_pair is not None and south_pair.mentee_id is None
            audit = await store.db.fetchall(
                "SELECT actor, participant_id, detail FROM audit_log "
                "WHERE action='erased_on_request'")
            assert [tuple(r) for r in audit] == [
                ("admin", None, '{"count": 1, "memberships": "one", "role": "mentee"}')]
        finally:
            await store.close()

    asyncio.run(check())
    # --all: every membership, and the account with the last
    done = cli.invoke(main, ["erase", "--programme", "North", "--pair", str(n_pair),
                             "--role", "mentee", "--all", "--yes"])
    assert done.exit_code == 0, done.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM accounts").fetchone() == (2,)  # mentors'
        assert conn.execute("SELECT COUNT(*) FROM participants WHERE role='mentee'"
                            ).fetchone() == (0,)
