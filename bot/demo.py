"""`mentorbot demo`: a synthetic cohort through the real flows into an encrypted database.

Everything goes through the same Service the Telegram adapter uses, so the demo exercises
invites, consent, GROW and OSKAR reflections, mentor episode logs, per-answer encryption
and the consent ledger for real.
Nothing is written outside the output folder.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import click

from conversations.catalogue import load_flows
from conversations.scripted import button_data, walk
from conversations.service import Response, Sender, Service
from reports.synthetic import Phrasebank
from storage.crypto import KeyRing, encode_key, generate_key
from storage.models import Role
from storage.store import Store

FIRST_NAMES = (
    "Alex",
    "Sam",
    "Priya",
    "Tomasz",
    "Grace",
    "Chidi",
    "Megan",
    "Yusuf",
    "Hannah",
    "Oliver",
    "Aisha",
    "Rhys",
    "Mei",
    "Ewan",
    "Fatima",
    "Callum",
)


class DemoError(Exception):
    """The scripted journey did not go as the flows say it should."""


@dataclass
class DemoResult:
    database: Path
    key_file: Path
    participants: int
    entries: int
    answers: int


async def answer_consent(
    service: Service, who: Sender, resp: Response, rng: random.Random
) -> Response:
    resp = await service.press(who, button_data(resp, "yes"))
    for _ in range(3):
        resp = await service.press(who, button_data(resp, "yes" if rng.random() < 0.85 else "no"))
    return resp


async def reflect(
    service: Service, who: Sender, bank: Phrasebank, framework: str, last_scale: int | None
) -> int | None:
    resp = await service.command(who, "reflect")
    if any("Which reflection" in r.text for r in resp.replies):
        resp = await service.press(who, button_data(resp, framework))
    flows = load_flows()
    answers = bank.grow() if framework == "grow" else bank.oskar(last_scale)
    resp = await walk(service, who, flows[framework], resp, answers)
    if not any("Saved" in r.text for r in resp.replies):
        raise DemoError("the reflection was not saved")
    scale = answers.get("scaling")
    return int(scale) if isinstance(scale, int) else None


async def log_episode(service: Service, who: Sender, bank: Phrasebank, phase: str) -> None:
    resp = await service.command(who, "log")
    resp = await walk(service, who, load_flows()["episode_log"], resp, bank.episode(phase))
    if not any("Logged" in r.text for r in resp.replies):
        raise DemoError("the episode was not logged")


async def run_demo(out: Path, pairs: int = 4, reflections: int = 3, seed: int = 7) -> DemoResult:
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "mentorbot.sqlite3"
    for stale in (db_path, out / "mentorbot.sqlite3-wal", out / "mentorbot.sqlite3-shm"):
        stale.unlink(missing_ok=True)
    key = generate_key()
    key_file = out / "demo-master.key"
    key_file.write_text(encode_key(key) + "\n", encoding="ascii")
    key_file.chmod(0o600)
    rng = random.Random(seed)
    bank = Phrasebank(seed)

    store = await Store.open(db_path, KeyRing(key), load_flows()["consent"].version)
    try:
        service = Service(store)
        programme = await store.programmes.create("Demo mentoring programme")
        click.echo(f"Created {programme.name!r} with {pairs} pairs.")
        user_id = 5_000_000
        names = list(FIRST_NAMES)
        rng.shuffle(names)
        members: list[tuple[Sender, Sender]] = []
        for _ in range(pairs):
            pair_id = await store.programmes.create_pair(programme.id)
            pair: list[Sender] = []
            for role in (Role.MENTOR, Role.MENTEE):
                code = await store.programmes.create_invite(programme.id, role, pair_id)
                user_id += 1
                who = Sender(user_id, user_id, names[user_id % len(names)])
                resp = await service.start(who, code)
                await answer_consent(service, who, resp, rng)
                pair.append(who)
            members.append((pair[0], pair[1]))
        phases = ("PH_BUILDING_RAPPORT", "PH_SETTING_DIRECTION", "PH_PROGRESSION")
        for n, (mentor, mentee) in enumerate(members):
            framework = "grow" if n % 2 == 0 else "oskar"
            last_scale = None
            for session in range(reflections):
                await log_episode(service, mentor, bank, phases[min(session, len(phases) - 1)])
                last_scale = await reflect(service, mentee, bank, framework, last_scale)
        n_people = len(await store.participants.all())
        n_entries = int(
            await store.db.scalar("SELECT COUNT(*) FROM entries WHERE status='complete'")
        )
        n_answers = int(await store.db.scalar("SELECT COUNT(*) FROM answers"))
    finally:
        await store.close()
    click.echo(
        f"{n_people} people joined and consented; {n_entries} reflections and episode logs with "
        f"{n_answers} answers were saved, every answer AES-256-GCM encrypted."
    )
    click.echo(f"Database: {db_path}")
    click.echo(f"Demo master key: {key_file} (a real deployment keeps this away from the data)")
    return DemoResult(db_path, key_file, n_people, n_entries, n_answers)
