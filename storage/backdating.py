"""Moving what was just written back in time: the demo plays months of a programme in a
minute, then dates each save as if it had happened then. Only the demo uses this; the bot
never rewrites a timestamp."""

from __future__ import annotations

from storage.store import Store


async def high_water(store: Store) -> tuple[int, int]:
    """The newest entry and pair event ids: what a later :func:`saved_at` leaves alone."""
    entries = int(await store.db.scalar("SELECT COALESCE(MAX(id), 0) FROM entries"))
    events = int(await store.db.scalar("SELECT COALESCE(MAX(id), 0) FROM pair_events"))
    return entries, events


async def saved_at(store: Store, since: tuple[int, int], when: str) -> None:
    """Date every entry (and its answers) written after ``since`` (a :func:`high_water`)
    ``when``. Pair events keep their times: the service recorded them on the demo's clock,
    a session's at the date its log gives."""
    await store.db.execute(
        "UPDATE entries SET created_at=?, updated_at=?, completed_at=? WHERE id>?",
        (when, when, when, since[0]),
    )
    await store.db.execute("UPDATE answers SET answered_at=? WHERE entry_id>?", (when, since[0]))


async def matched_at(store: Store, when: str, pair_id: int | None = None) -> None:
    """Every pair (or just ``pair_id``) matched ``when``."""
    if pair_id is None:
        await store.db.execute("UPDATE pairs SET matched_at=?", (when,))
    else:
        await store.db.execute("UPDATE pairs SET matched_at=?, created_at=? WHERE id=?",
                               (when, when, pair_id))
