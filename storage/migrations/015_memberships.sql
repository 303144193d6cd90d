-- People in more than one programme or role (issue 15). An account is one Telegram user:
-- the keyed hash of their Telegram id (how every update finds them) and what is theirs
-- whatever programme they are in (time zone). A participants row is from now on one
-- *membership* of an account: a programme, a role, its pair links, and everything that
-- belongs to that membership alone (entries, consent ledger, reminders, chat id and first
-- name, each under the membership's own data key). The table keeps its name, so every
-- participant_id in the schema now means "membership".
--
-- participants.user_hmac keeps its UNIQUE constraint (SQLite cannot drop a constraint in
-- place, and rebuilding the table under foreign keys would cascade-delete entries): rows
-- written from now on hold a random placeholder there, and lookups read accounts.user_hmac.
--
-- in_use is the membership the person is acting in (the chat's command menu and flows
-- follow it); it is set to NULL when that membership is erased.
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    user_hmac BLOB NOT NULL UNIQUE,
    timezone TEXT NOT NULL DEFAULT 'Europe/London',
    in_use INTEGER REFERENCES participants(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL
);

-- One account and one membership per existing participant (user_hmac was unique).
INSERT INTO accounts (user_hmac, timezone, created_at)
    SELECT user_hmac, timezone, created_at FROM participants ORDER BY id;
ALTER TABLE participants ADD COLUMN account_id INTEGER REFERENCES accounts(id);
UPDATE participants SET account_id =
    (SELECT a.id FROM accounts a WHERE a.user_hmac = participants.user_hmac);
UPDATE accounts SET in_use =
    (SELECT MIN(p.id) FROM participants p WHERE p.account_id = accounts.id);
CREATE INDEX participants_account ON participants (account_id, id);
