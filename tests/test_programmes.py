"""Programmes as they run (issue 15), through the real Application and the Bot API stand-in:
a mentor with several mentees, the cap, which-mentee questions, resuming, re-matching and
withdrawn invites."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage.models import Role
from storage.programmes import ProgrammeError
from storage.store import Store
from tests.conftest import Place
from tests.support import raw
from tests.support.harness import TgUser, running_app
from tests.test_bot_flows import data_for, joined, said, walk

LOG = {
    "when": "_today",
    "kind": "EP_FORMAL_SESSION",
    "mode": "MODE_VIDEO",
    "duration": "m45",
    "topics": ["TOPIC_CAREER_DEVELOPMENT"],
    "offered": [],
    "phase": "PH_BUILDING_RAPPORT",
    "climate": "SC_CONFIRMATION",
    "learned": "Listen first",
}
MENTEES = ("Robin", "Sam", "Alex")

pytestmark = pytest.mark.both_backends


async def _programme(store: Store, pairs: int) -> tuple[int, list[int], list[tuple[str, str]]]:
    programme = await store.programmes.create("North")
    ids, codes = [], []
    for _ in range(pairs):
        pair = await store.programmes.create_pair(programme.id)
        ids.append(pair)
        codes.append((
            await store.programmes.create_invite(programme.id, Role.MENTOR, pair),
            await store.programmes.create_invite(programme.id, Role.MENTEE, pair),
        ))
    return programme.id, ids, codes


def _buttons(user: TgUser) -> list[str]:
    last = user.standin.sent_messages(user.user_id)[-1]
    return [b["text"] for row in (last.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row]


async def test_a_mentor_holds_three_pairs_logs_for_each_and_the_fourth_is_refused(
    store: Store, place: Place
) -> None:
    programme_id, pairs, codes = await _programme(store, 4)
    lead_code = await store.programmes.create_invite(programme_id, Role.COORDINATOR)
    async with running_app(store) as (app, standin):
        lead = TgUser(app, standin, 610_000, "Lee")
        await lead.send(f"/start {lead_code}")
        mentor = TgUser(app, standin, 610_001, "Morgan")
        mentees = [TgUser(app, standin, 610_010 + n, name) for n, name in enumerate(MENTEES)]
        await joined(mentor, codes[0][0])
        for mentee, (_, mentee_code) in zip(mentees, codes, strict=False):
            await joined(mentee, mentee_code)
        # the second and third pairs: no consent asked again, the mentee named
        for n in (1, 2):
            reply = said(await mentor.send(f"/start {codes[n][0]}"))
            assert f"further mentoring pair, with {MENTEES[n]}" in reply
            assert "keep them" not in reply
        # the fourth: refused, the invite left unused, the coordinator told by number
        lead.new()
        reply = said(await mentor.send(f"/start {codes[3][0]}"))
        assert "3 open mentoring pairs" in reply and "haven't added" in reply
        note = said(lead.new())
        assert f"pair {pairs[3]}" in note and "already holds 3 open pair(s)" in note
        assert "Morgan" not in note

        # /log asks which mentee, by name, and logs for that pair
        for name in MENTEES:
            assert "Which mentee is this about?" in said(await mentor.send("/log"))
            assert sorted(_buttons(mentor)) == sorted(MENTEES)
            await mentor.tap(name)
            assert "Logged" in await walk(mentor, "episode_log", LOG)

        # /history asks too, and shows that pair's entries only
        await mentor.send("/history")
        await mentor.tap("Sam")
        listed = [b for b in _buttons(mentor) if "Episode log" in b]
        assert len(listed) == 1

        # each mentee's reflection prompt comes from their own pair; they see no one else
        for mentee, name in zip(mentees, MENTEES, strict=True):
            seen = said(standin.sent_messages(mentee.user_id))
            assert all(other not in seen for other in MENTEES if other != name)
    with raw.connect(place.db) as conn:
        logged = conn.execute(
            "SELECT pair_id FROM entries WHERE flow='episode_log' AND status='complete' "
            "ORDER BY pair_id").fetchall()
        assert [r[0] for r in logged] == pairs[:3]
        seats = conn.execute("SELECT id, mentor_id FROM pairs ORDER BY id").fetchall()
        mentor_ids = {r[1] for r in seats[:3]}
        assert len(mentor_ids) == 1 and seats[3][1] is None
        assert conn.execute("SELECT used_at FROM invites WHERE pair_id=? AND role='mentor'",
                            (pairs[3],)).fetchone() == (None,)
        prompts = conn.execute(
            "SELECT r.pair_id, r.participant_id, p.mentee_id FROM reminders r "
            "JOIN pairs p ON p.id = r.pair_id WHERE r.kind='reflection'").fetchall()
        assert len(prompts) == 3 and all(r[1] == r[2] for r in prompts)
        assert conn.execute("SELECT COUNT(*) FROM participants WHERE role='mentor'"
                            ).fetchone() == (1,)


async def test_a_cancelled_log_or_checkin_is_offered_back_by_its_own_command(
    store: Store,
) -> None:
    _, _, codes = await _programme(store, 2)
    async with running_app(store) as (app, standin):
        mentor = TgUser(app, standin, 620_001, "Morgan")
        first, second = (TgUser(app, standin, 620_010 + n, name)
                         for n, name in enumerate(MENTEES[:2]))
        await joined(first, codes[0][1])
        await joined(second, codes[1][1])
        await joined(mentor, codes[0][0])
        await mentor.send(f"/start {codes[1][0]}")

        await mentor.send("/log")
        await mentor.tap("Sam")
        await mentor.press(data_for(mentor, "_today"))
        assert "/log lets you carry on" in said(await mentor.send("/cancel"))
        # the other mentee's log starts afresh; Sam's offers the draft back
        await mentor.send("/log")
        assert "unfinished" not in said(await mentor.tap("Robin"))
        await mentor.send("/cancel")
        await mentor.send("/log")
        assert "unfinished one from earlier" in said(await mentor.tap("Sam"))
        reply = said(await mentor.tap("Carry on"))
        assert "What kind of contact" in reply
        await mentor.send("/cancel")

        # a check-in: /checkin offers it back; /reflect is not the mentor's
        await mentor.send("/checkin")
        await mentor.tap("Robin")
        await mentor.send("Somebody to think aloud with")
        assert "/checkin lets you carry on" in said(await mentor.send("/cancel"))
        assert "is for mentees" in said(await mentor.send("/reflect"))
        await mentor.send("/checkin")
        assert "unfinished one from earlier" in said(await mentor.tap("Robin"))
        assert "(2/" in said(await mentor.tap("Carry on"))


async def test_a_rematch_gives_the_mentee_a_new_pair_and_their_entries_stay_theirs(
    store: Store, place: Place
) -> None:
    programme_id, pairs, codes = await _programme(store, 1)
    lead_code = await store.programmes.create_invite(programme_id, Role.COORDINATOR)
    async with running_app(store) as (app, standin):
        lead = TgUser(app, standin, 630_000, "Lee")
        await lead.send(f"/start {lead_code}")
        mentor = TgUser(app, standin, 630_001, "Morgan")
        mentee = TgUser(app, standin, 630_002, "Robin")
        await joined(mentor, codes[0][0])
        await joined(mentee, codes[0][1])
        assert "What do you expect" in said(await mentee.send("/checkin"))
        await mentee.send("A sounding board")
        await mentee.send("Confidence")
        await mentee.send("/skip")
        assert "Saved" in said(await mentee.tap("Save"))

        # still open: no second pair for the mentee
        with pytest.raises(ProgrammeError, match="close pair"):
            await store.programmes.rematch(programme_id, pairs[0], Role.MENTEE)
        assert "closed for a re-match" in said(await lead.send(f"/close {pairs[0]} rematch"))
        new_pair, code = await store.programmes.rematch(programme_id, pairs[0], Role.MENTEE)
        assert new_pair != pairs[0]
        new_mentor = TgUser(app, standin, 630_003, "Kim")
        await joined(new_mentor, code)
        # a new relationship: its own starting check-in, beside the closing one of the first
        assert "Which mentor is this one about?" in said(await mentee.send("/checkin"))
        assert sorted(_buttons(mentee)) == ["Kim", "Morgan"]
        assert "What do you expect" in said(await mentee.tap("Kim"))
        await mentee.send("/cancel")
        await mentee.send("/checkin")
        assert "closing" in said(await mentee.tap("Morgan"))
    with raw.connect(place.db) as conn:
        rows = conn.execute("SELECT id, mentor_id, mentee_id, state, matched_at FROM pairs "
                            "ORDER BY id").fetchall()
        assert rows[0][3] == "closed" and rows[1][3] == "matched" and rows[1][4]
        assert rows[0][2] == rows[1][2] and rows[0][1] != rows[1][1]
        done = conn.execute("SELECT pair_id FROM entries WHERE participant_id=? AND "
                            "status='complete'", (rows[0][2],)).fetchall()
        assert done == [(pairs[0],)]


async def test_a_withdrawn_invite_opens_nothing(store: Store) -> None:
    programme_id, _, codes = await _programme(store, 1)
    listed = await store.programmes.invites(programme_id)
    mentee_invite = next(i for i in listed if i.role is Role.MENTEE)
    await store.programmes.revoke_invite(programme_id, mentee_invite.id)
    async with running_app(store) as (app, standin):
        person = TgUser(app, standin, 640_001, "Robin")
        assert "withdrawn" in said(await person.send(f"/start {codes[0][1]}"))
        assert await store.participants.by_user(640_001) is None


async def test_the_coordinator_runs_the_programme_from_the_chat(
    store: Store, place: Place
) -> None:
    programme_id, pairs, codes = await _programme(store, 2)
    lead_code = await store.programmes.create_invite(programme_id, Role.COORDINATOR)
    async with running_app(store) as (app, standin):
        lead = TgUser(app, standin, 650_000, "Lee")
        await lead.send(f"/start {lead_code}")
        mentor = TgUser(app, standin, 650_001, "Morgan")
        mentee = TgUser(app, standin, 650_002, "Robin")
        await joined(mentor, codes[0][0])
        await joined(mentee, codes[0][1])

        listed = said(await lead.send("/pairs"))
        assert f"Pair {pairs[0]}: Matched, not yet met" in listed
        assert "last contact 0 week(s) ago" in listed and "1 more pair(s) not listed" in listed
        assert "Morgan" not in listed and "Robin" not in listed

        invites = said(await lead.send("/invites"))
        mentee_invite = next(i for i in await store.programmes.invites(programme_id)
                             if i.pair_id == pairs[1] and i.role is Role.MENTEE)
        assert f"#{mentee_invite.id}: pair {pairs[1]}, mentee, open" in invites
        reissued = said(await lead.send(f"/reissue {mentee_invite.id}"))
        assert "is withdrawn. New mentee invite" in reissued
        new_code = reissued.split("\n")[1].split()[0]
        # the old link opens nothing; the new one works
        late = TgUser(app, standin, 650_003, "Sam")
        assert "withdrawn" in said(await late.send(f"/start {codes[1][1]}"))
        await joined(late, new_code)
        assert "withdrawn already" in said(await lead.send(f"/revoke {mentee_invite.id}"))
        newest = (await store.programmes.invites(programme_id))[-1]
        assert newest.used_at is not None
        assert "used already" in said(await lead.send(f"/revoke {newest.id}"))

        # settings: shown, validated, changed
        shown = said(await lead.send("/programme"))
        assert "quiet_pair_weeks = 5" in shown and "mentor_pair_cap = 3" in shown
        assert "Nothing changed" in said(await lead.send("/programme quiet_pair_weeks=-2"))
        assert "Nothing changed" in said(await lead.send("/programme colour=blue"))
        done = said(await lead.send("/programme quiet_pair_weeks=4 mentor_pair_cap=2"))
        assert "quiet_pair_weeks = 4" in done and "mentor_pair_cap = 2" in done

        # erasure on request: by pair and role, confirmed, audited without personal data
        preview = said(await lead.send(f"/erase {pairs[0]} mentee"))
        assert "This erases the mentee" in preview and f"/erase {pairs[0]} mentee yes" in preview
        assert await store.participants.by_user(650_002) is not None
        assert "Erased" in said(await lead.send(f"/erase {pairs[0]} mentee yes"))
        assert await store.participants.by_user(650_002) is None
        assert await store.participants.by_user(650_001) is not None
    with raw.connect(place.db) as conn:
        audit = conn.execute("SELECT actor, detail FROM audit_log WHERE action="
                             "'erased_on_request'").fetchall()
        assert audit == [("coordinator",
                          '{"count": 1, "memberships": "one", "role": "mentee"}')]
        settings = conn.execute("SELECT settings FROM programmes WHERE id=?",
                                (programme_id,)).fetchone()[0]
        assert '"quiet_pair_weeks": 4' in settings


def test_the_admin_runs_the_programme_from_the_shell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import asyncio

    from click.testing import CliRunner

    from bot.cli import main
    from storage.crypto import KeyRing, encode_key, generate_key
    from tests.test_bot_flows import FLOWS

    key = generate_key()
    db = tmp_path / "db.sqlite3"
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(key))
    monkeypatch.setenv("MENTORBOT_DB", str(db))
    cli = CliRunner()

    def ok(*args: str, input: str | None = None) -> str:
        result = cli.invoke(main, list(args), input=input)
        assert result.exit_code == 0, result.output
        return result.output

    ok("programme", "create", "North")
    codes = ok("dyad", "create", "--programme", "North").split()
    mentor_code, mentee_code = codes[codes.index("mentor:") + 1], codes[codes.index("mentee:") + 1]

    async def join_both() -> None:
        store = await Store.open(db, KeyRing(key), FLOWS["consent"].version)
        try:
            for uid, code in ((660_001, mentor_code), (660_002, mentee_code)):
                assert (await store.join(code, uid, uid, "X")).ok
        finally:
            await store.close()

    asyncio.run(join_both())
    # nobody has agreed to programme summaries yet: the pair is not counted, so not listed
    listed = ok("pair", "list", "--programme", "North")
    assert "Pair 1:" not in listed and "1 more pair(s) not listed" in listed
    # settings: validated, then changed
    bad = cli.invoke(main, ["programme", "settings", "North", "--set", "quiet_pair_weeks=x"])
    assert bad.exit_code != 0 and "not a number" in bad.output
    assert "quiet_pair_weeks = 4" in ok("programme", "settings", "North", "--set",
                                        "quiet_pair_weeks=4")
    # re-matching: refused while the pair is open, then a new pair and one invite
    refused = cli.invoke(main, ["dyad", "create", "--programme", "North", "--with", "1:mentee"])
    assert refused.exit_code != 0 and "close pair 1 first" in refused.output
    assert "closed for a re-match" in ok("pair", "close", "--programme", "North", "1",
                                         "--rematch")
    made = ok("dyad", "create", "--programme", "North", "--with", "1:mentee")
    assert "Pair 2" in made and "mentor:" in made and "mentee:" not in made
    # invites: listed, one withdrawn
    listed = ok("invite", "list", "--programme", "North")
    assert "#3: pair 2, mentor, open" in listed
    assert "withdrawn" in ok("invite", "revoke", "--programme", "North", "3")
    assert "#3: pair 2, mentor, revoked" in ok("invite", "list", "--programme", "North")
    # erasure on request: previewed, confirmed, the mentee erased and the mentor kept
    stopped = cli.invoke(main, ["erase", "--programme", "North", "--pair", "1", "--role",
                                "mentee"], input="n\n")
    assert stopped.exit_code != 0 and "This erases the mentee of pair 1" in stopped.output
    assert "also in pair(s) 2" in stopped.output
    done = ok("erase", "--programme", "North", "--pair", "1", "--role", "mentee", input="y\n")
    assert "Erased: the mentee of pair 1" in done
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM participants").fetchone() == (1,)
        assert conn.execute("SELECT role FROM participants").fetchone() == ("mentor",)
        assert conn.execute("SELECT actor, participant_id, detail FROM audit_log WHERE "
                            "action='erased_on_request'").fetchall() == [
            ("admin", None, '{"count": 1, "memberships": "one", "role": "mentee"}')]


async def test_the_console_chat_drives_coordinator_commands(store: Store) -> None:
    from bot.console import console_capabilities, dispatch
    from conversations.service import Sender, Service

    programme_id, pairs, _ = await _programme(store, 1)
    code = await store.programmes.create_invite(programme_id, Role.COORDINATOR)
    service = Service(store)
    for capability in console_capabilities(service, lambda c: f"link:{c}"):
        service.install(capability)
    lead = Sender(900_000_003, 900_000_003, "Console")

    async def say(line: str) -> str:
        return "\n".join(r.text for r in (await dispatch(service, lead, line, [])).replies)

    assert "programme lead" in await say(f"/start {code}")
    assert "1 more pair(s) not listed" in await say("/pairs")
    assert f"pair {pairs[0]}, mentee, open" in await say("/invites")
    invite = (await store.programmes.invites(programme_id))[0]
    assert "link:" in await say(f"/reissue {invite.id}")
    assert "quiet_pair_weeks = 6" in await say("/programme quiet_pair_weeks=6")
    assert "too small to summarise" in await say("/summary")
    assert "isn't matched yet" in await say(f"/close {pairs[0]}")
