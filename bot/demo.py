"""`mentorbot demo`: the whole pipeline on a synthetic programme, with no Telegram account.

A dozen pairs go through six months of the real flows (invites, consent, starting
check-ins, a chemistry meeting and monthly sessions logged by mentors with the date they
give, GROW and OSKAR reflections by mentees, the 3- and 6-month check-ins, a coordinator
closing pairs that finish or end early, and the closing check-ins; one pair's mentee is
re-matched and starts again with a new mentor who joins through the invite) via the same
Service the Telegram adapter uses, into an encrypted database. Each pair has a course
(:func:`reports.synthetic.demo_courses`): most thrive, some stall, regress or end early.
The service runs on the programme's clock, so waves fall due when they would; each save is
then dated when it happened (:mod:`storage.backdating`). Then the evaluator report, the
coordinator summary and a research export are built from it. Everything is written inside
the output folder, and nowhere else.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import click

from conversations.capabilities.lifecycle import PairLifecycle
from conversations.capabilities.reminder_planning import ReminderPlanner
from conversations.catalogue import load_flows
from conversations.engine import Engine
from conversations.scripted import button_data, walk
from conversations.service import Response, Sender, Service
from reports.synthetic import DAYS_PER_MONTH, demo_courses
from reports.synthetic import Step as CourseStep
from storage import backdating
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


class SimClock:
    """The demo's time: the service, the engine's "Today" and the reminder planner read it,
    so waves fall due and lifecycle events happen when the programme says, not now."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def act(service: Service, who: Sender, step: CourseStep) -> None:
    """One step of a pair's course, through the same paths a chat takes."""
    flows = load_flows()
    if step.action == "reflect":
        resp = await service.command(who, "reflect")
        framework = "grow" if "goal" in step.answers else "oskar"
        if any("Which reflection" in r.text for r in resp.replies):
            resp = await service.press(who, button_data(resp, framework))
        resp = await walk(service, who, flows[framework], resp, dict(step.answers))
        if not any("Saved" in r.text for r in resp.replies):
            raise DemoError("the reflection was not saved")
    elif step.action == "log":
        resp = await service.command(who, "log")
        answers = dict(step.answers) | {"when": step.typed_date}
        resp = await walk(service, who, flows["episode_log"], resp, answers)
        if not any("Logged" in r.text for r in resp.replies):
            raise DemoError("the episode was not logged")
    elif step.action == "checkin":
        resp = await service.command(who, "checkin")
        flow_id = "baseline" if any("two short questions" in r.text for r in resp.replies) else (
            "checkin")
        if not any(r.buttons or "?" in r.text for r in resp.replies):
            raise DemoError(f"no check-in was due on day {step.day:.1f}")
        flow = flows[flow_id]
        answers = {s.id: step.answers[s.id] for s in flow.steps if s.id in step.answers}
        resp = await walk(service, who, flow, resp, answers)
        if not any("Saved" in r.text for r in resp.replies):
            raise DemoError("the check-in was not saved")
        if any("Six optional questions" in r.text for r in resp.replies):
            # asked once, after the first starting check-in, with consent to the evaluation
            about = dict(step.answers.get("about_you") or {})  # type: ignore[call-overload]
            resp = await walk(service, who, flows["about_you"], resp, about)
    elif step.action == "close":
        pair_no = step.answers["pair"]
        args = f"{pair_no} rematch" if step.answers.get("rematch") else str(pair_no)
        resp = await service.command(who, "close", args)
        if not resp.changed:
            raise DemoError(f"the pair was not closed: {[r.text for r in resp.replies]}")


async def rematch(service: Service, who: Sender, step: CourseStep,
                  rng: random.Random) -> int:
    """The coordinator re-matches a pair's mentee (as `mentorbot dyad create --with N:mentee`
    does) and the new mentor joins through the invite; the new pair's id."""
    store = service.store
    programme_id, from_pair = int(step.answers["programme"]), int(step.answers["pair"])
    pair_id, code = await store.programmes.rematch(programme_id, from_pair, Role.MENTEE)
    await store.audit.record("admin", "pair_created", rematch_of=from_pair, role="mentee")
    resp = await service.start(who, code)
    await answer_consent(service, who, resp, rng)
    pair = next(p for p in await store.programmes.pairs(programme_id) if p.id == pair_id)
    if pair.matched_at is None:
        raise DemoError("the new mentor did not join the re-matched pair")
    return pair_id


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
    now = utcnow()
    # matched long enough ago that the last wave (6 months) has been answered
    start = (now - timedelta(days=months * DAYS_PER_MONTH + 16)).replace(
        hour=9, minute=0, second=0, microsecond=0)
    clock = SimClock(start - timedelta(days=1))

    store = await Store.open(db_path, KeyRing(key), load_flows()["consent"].version)
    try:
        service = Service(store, clock=clock)
        service.engine = Engine(service.flows, today=lambda: clock().date())
        planner = ReminderPlanner(store, service.texts, clock=clock)  # lifecycle events
        service.install(planner)
        service.install(PairLifecycle(planner))
        programme = await store.programmes.create("Demo mentoring programme")
        click.echo(f"Created {programme.name!r}: {pairs} pairs over {months} months.")
        lead_code = await store.programmes.create_invite(programme.id, Role.COORDINATOR)
        lead = Sender(4_999_999, 4_999_999, "Jordan")
        await service.start(lead, lead_code)
        user_id = 5_000_000
        courses = demo_courses(pairs, months, start, seed, now)
        timeline: list[tuple[float, int, Sender, CourseStep]] = []
        for n, course in enumerate(courses):
            pair_id = await store.programmes.create_pair(programme.id)
            members: dict[str | tuple[str, int], Sender] = {}
            for role in (Role.MENTOR, Role.MENTEE):
                code = await store.programmes.create_invite(programme.id, role, pair_id)
                user_id += 1
                name = FIRST_NAMES[(2 * n + len(members)) % len(FIRST_NAMES)]
                who = Sender(user_id, user_id, name)
                resp = await service.start(who, code)
                await answer_consent(service, who, resp, rng)
                members[role.value] = who
            if any(step.pair for step in course.steps):  # a re-match: a new mentor, later
                user_id += 1
                members["mentor", 1] = Sender(user_id, user_id,
                                              FIRST_NAMES[(2 * n + 2) % len(FIRST_NAMES)])
            for step in course.steps:
                if step.action in ("close", "rematch"):
                    step.answers.update(pair=pair_id, programme=programme.id)
                people = [lead] if step.who == "coordinator" else [
                    members[(step.who, 1) if step.pair and step.who == "mentor" else step.who]]
                timeline += [(step.day, n, p, step) for p in people]
        await backdating.matched_at(store, iso(start))  # the pairs formed so far
        for day, _, who, step in sorted(timeline, key=lambda t: (t[0], t[1])):
            clock.now = start + timedelta(days=day)
            since = await backdating.high_water(store)
            if step.action == "rematch":  # matched when the new mentor joined
                new_pair = await rematch(service, who, step, rng)
                await backdating.matched_at(store, iso(clock.now), new_pair)
                continue
            await act(service, who, step)
            await backdating.saved_at(store, since, iso(clock.now))
        n_people = len(await store.participants.all())
        n_entries = await store.entries.complete_count()
        n_answers = await store.entries.answer_count()
        arcs = ", ".join(f"{sum(c.arc.startswith(a) for c in courses)} {label}" for a, label in
                         (("thrive", "thrive"), ("stall", "stall"), ("regress", "regress"),
                          ("end_early", "end early")))
        click.echo(
            f"{n_people} people joined and consented; {n_entries} reflections, "
            f"episode logs and check-ins with {n_answers} answers were saved, every "
            f"answer AES-256-GCM encrypted. Pairs: {arcs}."
        )
        await embed_answers(store)
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


async def embed_answers(store: Store) -> int:
    """Store the answers' embeddings with `mentorbot recode`'s own function, where the semantic
    extra is installed, so the showcase report codes with the semantic heads over stored
    embeddings as well as the rules, as a real programme's report does (the bot embeds at save
    time in its embedding worker, bot/embedder.py; the demo drives the Service without the
    bot, so it stores them afterwards, as `mentorbot recode` would)."""
    from reports.coding.embeddings import available
    from reports.entry_codes import recode

    if not available()[0]:
        click.echo("Semantic extra not installed: the report codes with the rules alone.")
        return 0
    started = time.perf_counter()
    result = await recode(store)
    click.echo(f"{result.embedded} answers embedded for the semantic layer in "
               f"{time.perf_counter() - started:.1f} s (as `mentorbot recode` does).")
    return result.embedded


async def build_outputs(store: Store, programme_id: int, out: Path) -> dict[str, list[Path]]:
    from reports.coordinator import write_report
    from reports.evaluator import build_report
    from reports.export.run import run_export

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
