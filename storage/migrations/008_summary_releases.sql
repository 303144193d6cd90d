-- Every coordinator-summary figure group as it was released (chat, digest or file), with a
-- fingerprint of each counted pair's contribution to it. The disclosure rule
-- (reports/releases.py) compares a new release against every earlier one of the same group:
-- a group changes only when at least k pairs' contributions differ, so no two releases can
-- be subtracted to reveal one pair. Pair ids and fingerprints only: no person, no text.
CREATE TABLE summary_releases (
    id INTEGER PRIMARY KEY,
    programme_id INTEGER NOT NULL REFERENCES programmes(id) ON DELETE CASCADE,
    grp TEXT NOT NULL,
    released_on TEXT NOT NULL,
    figures TEXT NOT NULL,
    fingerprints TEXT NOT NULL
);
CREATE INDEX summary_releases_by_group ON summary_releases (programme_id, grp, id);
