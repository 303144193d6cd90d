"""People in more than one programme or role (issue 15): accounts and memberships.

The migration (015) is tested on a copy of a database written before it, with data; the
chat behaviour through the real Application and the Bot API stand-in.
"""

from __future__ import annotations

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
