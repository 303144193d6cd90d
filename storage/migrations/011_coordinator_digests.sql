-- A coordinator's weekly programme summary: the day and time they chose with /digest (in
-- their own time zone). Created by the bot itself before this migration, hence IF NOT EXISTS.
CREATE TABLE IF NOT EXISTS coordinator_digests (
    id INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL UNIQUE REFERENCES participants(id) ON DELETE CASCADE,
    weekday INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
