-- Foundation schema. Free text, names and chat ids are stored only as AES-GCM ciphertext;
-- Telegram user ids only as a keyed HMAC. Timestamps are ISO-8601 UTC.
CREATE TABLE programmes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);

CREATE TABLE participants (
    id INTEGER PRIMARY KEY,
    programme_id INTEGER NOT NULL REFERENCES programmes(id),
    role TEXT NOT NULL CHECK (role IN ('mentee', 'mentor', 'coordinator')),
    user_hmac BLOB NOT NULL UNIQUE,
    chat_ct BLOB,
    name_ct BLOB,
    timezone TEXT NOT NULL DEFAULT 'Europe/London',
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'unreachable')),
    preferred_framework TEXT,
    menu_version INTEGER NOT NULL DEFAULT 0,
    subject_ref TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE pairs (
    id INTEGER PRIMARY KEY,
    programme_id INTEGER NOT NULL REFERENCES programmes(id),
    mentor_id INTEGER REFERENCES participants(id) ON DELETE SET NULL,
    mentee_id INTEGER REFERENCES participants(id) ON DELETE SET NULL,
    state TEXT NOT NULL DEFAULT 'invited',
    created_at TEXT NOT NULL,
    matched_at TEXT
);

CREATE TABLE invites (
    id INTEGER PRIMARY KEY,
    code_hash BLOB NOT NULL UNIQUE,
    programme_id INTEGER NOT NULL REFERENCES programmes(id),
    pair_id INTEGER REFERENCES pairs(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('mentee', 'mentor', 'coordinator')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    used_by INTEGER REFERENCES participants(id) ON DELETE SET NULL
);

-- Keyed on the HMAC of whoever typed a wrong code, so guessing is slowed per person.
CREATE TABLE invite_failures (
    user_hmac BLOB PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    locked_until TEXT
);

-- Append-only. subject_ref is a random token, so the line that records an erasure can be
-- kept without linking to anything once the participant row is gone.
CREATE TABLE consent_ledger (
    id INTEGER PRIMARY KEY,
    participant_id INTEGER REFERENCES participants(id) ON DELETE SET NULL,
    subject_ref TEXT NOT NULL,
    scope TEXT NOT NULL,
    version TEXT NOT NULL,
    granted INTEGER NOT NULL CHECK (granted IN (0, 1)),
    source TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX consent_ledger_participant ON consent_ledger (participant_id, scope, id);

CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants(id) ON DELETE CASCADE,
    pair_id INTEGER REFERENCES pairs(id) ON DELETE SET NULL,
    flow TEXT NOT NULL,
    flow_version TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'complete', 'discarded')),
    consent_snapshot TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX entries_participant ON entries (participant_id, id);

CREATE TABLE answers (
    entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    step_id TEXT NOT NULL,
    value_ct BLOB NOT NULL,
    answered_at TEXT NOT NULL,
    PRIMARY KEY (entry_id, step_id)
);

CREATE TABLE conversation_state (
    participant_id INTEGER PRIMARY KEY REFERENCES participants(id) ON DELETE CASCADE,
    state_ct BLOB NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    participant_id INTEGER REFERENCES participants(id) ON DELETE CASCADE,
    detail TEXT NOT NULL DEFAULT '{}'
);
