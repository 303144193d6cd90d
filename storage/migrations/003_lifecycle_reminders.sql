-- Pair lifecycle events and reminders. Neither table holds free text or anything that names
-- a person: event names, codes, counts and UTC timestamps only.

-- A pair's history. Events derived from a diary entry (the mentor's episode log, a button
-- answer) are that person's data and go with the entry or the person; events that record a
-- decision about the pair itself (a coordinator's /close) have no participant_id and stay.
CREATE TABLE pair_events (
    id INTEGER PRIMARY KEY,
    pair_id INTEGER NOT NULL REFERENCES pairs(id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('system', 'episode_log', 'answer', 'coordinator')),
    participant_id INTEGER REFERENCES participants(id) ON DELETE CASCADE,
    entry_id INTEGER REFERENCES entries(id) ON DELETE CASCADE,
    detail TEXT NOT NULL DEFAULT '{}',
    -- NULL for repeatable events; otherwise recording the same fact twice is a no-op.
    dedupe_key TEXT UNIQUE
);
CREATE INDEX pair_events_pair ON pair_events (pair_id, at, id);
CREATE INDEX pair_events_entry ON pair_events (entry_id);
CREATE INDEX pair_events_participant ON pair_events (participant_id);

-- The source of truth for every reminder; the JobQueue only holds a sweep that reads it, so
-- nothing is lost when the process restarts. claimed_at is written just before a send and
-- cleared on a known outcome, so a row that is still pending with claimed_at set was in
-- flight when the process stopped.
CREATE TABLE reminders (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL
        CHECK (kind IN ('reflection', 'quiet_pair', 'wave', 'six_month', 'chemistry')),
    participant_id INTEGER NOT NULL REFERENCES participants(id) ON DELETE CASCADE,
    pair_id INTEGER REFERENCES pairs(id) ON DELETE CASCADE,
    due_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'skipped', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_at TEXT,
    sent_at TEXT,
    reason TEXT,
    acted TEXT,
    snoozes INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '{}',
    dedupe_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX reminders_pending ON reminders (due_at) WHERE status = 'pending';
CREATE INDEX reminders_participant ON reminders (participant_id, status);
CREATE INDEX reminders_pair ON reminders (pair_id, kind, status);

-- A person's own quiet hours, when they differ from their programme's.
CREATE TABLE reminder_prefs (
    participant_id INTEGER PRIMARY KEY REFERENCES participants(id) ON DELETE CASCADE,
    quiet_start TEXT NOT NULL,
    quiet_end TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
