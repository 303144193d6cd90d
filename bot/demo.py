"""`mentorbot demo`: the whole pipeline on a synthetic programme, with no Telegram account.

A dozen pairs go through six months of the real flows (invites, consent, chemistry
meeting and monthly sessions logged by mentors, GROW and OSKAR reflections by mentees,
wave check-ins) via the same Service the Telegram adapter uses, into an encrypted
database. Timestamps are then moved back month by month, as if it had happened over six
months. Then the evaluator report, the coordinator summary and a research export are
built from it. Everything is written inside the output folder, and nowhere else.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import click

from conversations.capabilities.lifecycle import PairLifecycle
from conversations.capabilities.reminder_planning import ReminderPlanner
from conversations.catalogue import load_flows
from conversations.scripted import button_data, walk
from conversations.service import Response, Sender, Service
from reports.synthetic import PHASE_BY_MONTH, Phrasebank
from storage.crypto import KeyRing, encode_key, generate_key
from storage.db import iso, utcnow
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
    "Zara",
    "Dev",
    "Niamh",
    "Kofi",
    "Ruth",
    "Arjun",
    "Sofia",
    "Liam",
)
MONTH = timedelta(days=30)
PHASES = PHASE_BY_MONTH[:6]  # the demo runs six months


class DemoError(Exception):
    """The scripted journey did not go as the flows say it should."""


@dataclass
class DemoResult:
    database: Path
    key_file: Path
    participants: int
    entries: int
    answers: int
    outputs: dict[str, list[Path]] = field(default_factory=dict)


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


async def log_episode(
    service: Service, who: Sender, bank: Phrasebank, phase: str, kind: str | None = None
) -> None:
    resp = await service.command(who, "log")
    answers = bank.episode(phase)
    if kind is not None:
        answers["kind"] = kind
    resp = await walk(service, who, load_flows()["episode_log"], resp, answers)
    if not any("Logged" in r.text for r in resp.replies):
        raise DemoError("the episode was not logged")


async def check_in(service: Service, who: Sender, bank: Phrasebank) -> None:
    resp = await service.command(who, "checkin")
    flow_id = (
        "baseline" if any("two short questions" in r.text for r in resp.replies) else ("checkin")
    )
    if not any(r.buttons or "?" in r.text for r in resp.replies):
        return  # nothing due
    flow = load_flows()[flow_id]
    answers = {s.id: bank.checkin(s.id) for s in flow.steps if not s.optional}
    await walk(service, who, flow, resp, answers)


async def high_water(store: Store) -> tuple[int, int]:
    entries = int(await store.db.scalar("SELECT COALESCE(MAX(id), 0) FROM entries"))
    events = int(await store.db.scalar("SELECT COALESCE(MAX(id), 0) FROM pair_events"))
    return entries, events


async def backdate(store: Store, since: tuple[int, int], months_ago: float) -> None:
    """Move what was just written back in time, as if it happened ``months_ago``."""
    when = iso(utcnow() - MONTH * months_ago)
    await store.db.execute(
        "UPDATE entries SET created_at=?, updated_at=?, completed_at=? WHERE id>?",
        (when, when, when, since[0]),
    )
    await store.db.execute("UPDATE pair_events SET at=? WHERE id>?", (when, since[1]))


async def run_demo(out: Path, pairs: int = 12, months: int = 6, seed: int = 7) -> DemoResult:
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "mentorbot.sqlite3"
    for stale in out.glob("mentorbot.sqlite3*"):
        stale.unlink()
    key = generate_key()
    key_file = out / "demo-master.key"
    key_file.write_text(encode_key(key) + "\n", encoding="ascii")
    key_file.chmod(0o600)
    rng = random.Random(seed)
    bank = Phrasebank(seed)

    store = await Store.open(db_path, KeyRing(key), load_flows()["consent"].version)
    try:
        service = Service(store)
        planner = ReminderPlanner(store, service.texts)  # lifecycle events, as the bot keeps
        service.install(planner)
        service.install(PairLifecycle(planner))
        programme = await store.programmes.create("Demo mentoring programme")
        click.echo(f"Created {programme.name!r}: {pairs} pairs over {months} months.")
        user_id = 5_000_000
        members: list[tuple[Sender, Sender, int]] = []
        for n in range(pairs):
            pair_id = await store.programmes.create_pair(programme.id)
            pair: list[Sender] = []
            for role in (Role.MENTOR, Role.MENTEE):
                code = await store.programmes.create_invite(programme.id, role, pair_id)
                user_id += 1
                who = Sender(user_id, user_id, FIRST_NAMES[(2 * n + len(pair)) % len(FIRST_NAMES)])
                resp = await service.start(who, code)
                await answer_consent(service, who, resp, rng)
                await check_in(service, who, bank)  # the baseline
                pair.append(who)
            members.append((pair[0], pair[1], pair_id))
        await store.db.execute("UPDATE pairs SET matched_at=?", (iso(utcnow() - MONTH * months),))
        last_scale: dict[int, int | None] = {}
        for month in range(months):
            since = await high_water(store)
            for n, (mentor, mentee, _) in enumerate(members):
                if rng.random() < 0.15 and month > 0:
                    continue  # sessions lapse sometimes, as they do
                kind = "EP_CHEMISTRY_MEETING" if month == 0 else None
                await log_episode(service, mentor, bank, PHASES[month % len(PHASES)], kind)
                if rng.random() < 0.8:  # not every session gets a reflection
                    framework = "grow" if n % 2 == 0 else "oskar"
                    last_scale[n] = await reflect(
                        service, mentee, bank, framework, last_scale.get(n)
                    )
            await backdate(store, since, months - month - 0.5)
        n_people = len(await store.participants.all())
        n_entries = int(
            await store.db.scalar("SELECT COUNT(*) FROM entries WHERE status='complete'")
        )
        n_answers = int(await store.db.scalar("SELECT COUNT(*) FROM answers"))
        click.echo(
            f"{n_people} people joined and consented; {n_entries} reflections, "
            f"episode logs and check-ins with {n_answers} answers were saved, every "
            "answer AES-256-GCM encrypted."
        )
        outputs = await build_outputs(store, programme.id, out)
    finally:
        await store.close()
    click.echo(f"Database: {db_path} (key store beside it)")
    click.echo(f"Demo master key: {key_file} (a real deployment keeps this away from the data)")
    click.echo("Open:")
    for label, paths in outputs.items():
        for path in paths if not label.startswith("_") else ():
            click.echo(f"  {label:<12} {path}")
    return DemoResult(db_path, key_file, n_people, n_entries, n_answers, outputs)


async def build_outputs(store: Store, programme_id: int, out: Path) -> dict[str, list[Path]]:
    from reports.cli_export import run_export
    from reports.coordinator import write_report
    from reports.evaluator import build_report

    evaluator = await build_report(store, out / "evaluator")
    coordinator = await write_report(store, programme_id, out / "coordinator")
    exported = (await run_export(store, out / "research-export", "demo-study", "shift", ())).paths
    return {
        "evaluator": [Path(out / "evaluator" / "report.html")],
        "coordinator": [Path(p) for p in coordinator if str(p).endswith(".html")],
        "research": sorted(Path(p) for p in exported if Path(p).suffix in (".csv", ".qdpx")),
        "_all": [
            *(Path(p) for p in getattr(evaluator, "paths", ())),
            *map(Path, coordinator),
            *map(Path, exported),
        ],
    }
