"""Joins held for a coordinator (programme setting ``join_approval``, issue 17 item 10): the
coordinator sees only the pair number and role, and lets the person in or turns them away."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from storage.crypto import encode_key, generate_key
from storage.models import Role
from storage.store import JOIN_APPROVAL, Store
from tests.support.harness import TOKEN, TgUser, running_app

pytestmark = pytest.mark.both_backends

LEAD, MENTEE, STRANGER, MENTOR = 591_000_001, 592_000_002, 593_000_003, 594_000_004


async def _programme(store: Store) -> tuple[int, int, str, str, str]:
    programme = await store.programmes.create("Held joins", {JOIN_APPROVAL: True})
    pair = await store.programmes.create_pair(programme.id)
    lead = await store.programmes.create_invite(programme.id, Role.COORDINATOR)
    mentee = await store.programmes.create_invite(programme.id, Role.MENTEE, pair)
    mentor = await store.programmes.create_invite(programme.id, Role.MENTOR, pair)
    return programme.id, pair, lead, mentee, mentor


async def test_a_held_join_waits_and_the_coordinator_lets_them_in(store: Store) -> None:
    _, pair, lead_code, mentee_code, mentor_code = await _programme(store)
    async with running_app(store) as (app, standin):
        lead = TgUser(app, standin, LEAD, "Philippa", "pip_lead")
        await lead.send(f"/start {lead_code}")  # coordinators are not held
        lead.new()
        mentee = TgUser(app, standin, MENTEE, "Amara", "amara_k")
        said = mentee.last_texts(await mentee.send(f"/start {mentee_code}"))
        assert "confirm each place first" in said and "keep your reflections" not in said
        ask = lead.last_texts(lead.new())
        assert f"mentee invite link for pair {pair}" in ask
        for needle in ("Amara", "amara_k", str(MENTEE)):  # the pair number and role only
            assert needle not in ask
        # waiting: every command gets the same answer, and no pair seat is taken
        assert "hasn't confirmed your place" in mentee.last_texts(await mentee.send("/reflect"))
        assert "hasn't confirmed" in mentee.last_texts(await mentee.send("hello"))
        assert (await store.programmes.pair(pair)).mentee_id is None  # type: ignore[union-attr]

        # a coordinator of another programme (or a forged press) changes nothing
        other = await store.programmes.create("Elsewhere")
        other_lead = TgUser(app, standin, LEAD + 9, "Ola")
        other_code = await store.programmes.create_invite(other.id, Role.COORDINATOR)
        await other_lead.send(f"/start {other_code}")
        _, data = lead.find_button("Let them in")
        await other_lead.press(data)
        assert (await store.programmes.pair(pair)).mentee_id is None  # type: ignore[union-attr]

        await lead.tap("Let them in")
        assert f"Let in: the mentee of pair {pair}" in lead.last_texts(
            [standin.message(LEAD, m["message_id"]) or m for m in standin.sent_messages(LEAD)])
        welcome = mentee.last_texts(mentee.new())
        assert "confirmed your place" in welcome and "keep your reflections" in welcome
        me = await store.participants.by_user(MENTEE)
        seated = await store.programmes.pair(pair)
        assert me is not None and seated is not None and seated.mentee_id == me.id
        # a second press (another coordinator, or twice) is already decided
        await lead.press(data)
        assert await store.held(me.id) is None

        # the mentor's join is held too; both in: the pair is matched
        mentor = TgUser(app, standin, MENTOR, "Morgan")
        await mentor.send(f"/start {mentor_code}")
        lead.new()
        await lead.tap("Let them in")
        assert (await store.programmes.pair(pair)).state == "matched"  # type: ignore[union-attr]


async def test_a_stranger_with_a_forwarded_link_is_turned_away(store: Store) -> None:
    _, pair, lead_code, mentee_code, _ = await _programme(store)
    async with running_app(store) as (app, standin):
        lead = TgUser(app, standin, LEAD, "Philippa")
        await lead.send(f"/start {lead_code}")
        stranger = TgUser(app, standin, STRANGER, "Eve")
        await stranger.send(f"/start {mentee_code}")
        await lead.tap("Turn away")
        assert "deleted what I held about you" in stranger.last_texts(stranger.new())
        assert await store.participants.by_user(STRANGER) is None
        assert (await store.programmes.pair(pair)).mentee_id is None  # type: ignore[union-attr]
        # the link stays spent: the stranger cannot try it again
        again = stranger.last_texts(await stranger.send(f"/start {mentee_code}"))
        assert "confirm each place" not in again


def test_the_setting_is_switched_from_the_cli(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "m.sqlite3"
    monkeypatch.setenv("MENTORBOT_DB", str(db))
    monkeypatch.setenv("MENTORBOT_MASTER_KEY", encode_key(generate_key()))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    runner = CliRunner()
    made = runner.invoke(main, ["programme", "create", "Held", "--approve-joins"])
    assert made.exit_code == 0 and "wait for a coordinator" in made.output, made.output
    runner.invoke(main, ["programme", "create", "Open"])
    on = runner.invoke(main, ["programme", "approve-joins", "Open", "on"])
    off = runner.invoke(main, ["programme", "approve-joins", "Held", "off"])
    assert on.exit_code == off.exit_code == 0, on.output + off.output
    with sqlite3.connect(db) as conn:
        settings = dict(conn.execute("SELECT name, settings FROM programmes").fetchall())
    assert json.loads(settings["Open"])[JOIN_APPROVAL] is True
    assert json.loads(settings["Held"])[JOIN_APPROVAL] is False


async def test_a_held_person_can_still_erase_themselves(store: Store) -> None:
    _, pair, lead_code, mentee_code, _ = await _programme(store)
    async with running_app(store) as (app, standin):
        lead = TgUser(app, standin, LEAD, "Philippa")
        await lead.send(f"/start {lead_code}")
        mentee = TgUser(app, standin, MENTEE, "Amara")
        await mentee.send(f"/start {mentee_code}")
        assert "hasn't confirmed" in mentee.last_texts(await mentee.send("/history"))
        await mentee.send("/withdraw")
        await mentee.tap("Erase everything")
        await mentee.tap("Yes, erase everything")
        assert await store.participants.by_user(MENTEE) is None
        await lead.tap("Let them in")  # too late: nothing to let in
        assert (await store.programmes.pair(pair)).mentee_id is None  # type: ignore[union-attr]
