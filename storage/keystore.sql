-- The key store: a separate SQLite file attached as "keys". It holds every key wrapped by
-- the master key: one data key per participant (by their random subject reference) and the
-- deployment's own keys (lookup HMAC, study secrets). Keeping it out of the main database
-- is what makes erasure reach backups: a database backup restored later is opened with the
-- *current* key store, where an erased person's data key no longer exists.
CREATE TABLE IF NOT EXISTS keys.data_keys (
    subject_ref TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL,
    kek_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys.system_keys (
    name TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL,
    kek_id TEXT NOT NULL
);
-- One line per erasure: a keyed hash (under the lookup key) of the erased person's subject
-- reference, and when. Restoring an older database backup, and every start-up, deletes
-- whatever rows of theirs that backup brings back (storage.store.Store.apply_erasures).
-- Only someone holding this file and the master key can tell which row of an old backup
-- it names, and only to delete it.
CREATE TABLE IF NOT EXISTS keys.erasures (
    ref_hash BLOB PRIMARY KEY,
    erased_at TEXT NOT NULL
);
-- One-off steps the key store has seen, by name: "integrity_signed" is written once every
-- row that existed before tamper evidence (migration 009) has been signed; from then on an
-- unsigned row is a forged one.
CREATE TABLE IF NOT EXISTS keys.markers (
    name TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
