-- Joins held for the coordinator (a programme setting, "join_approval"): a person who opened
-- a mentor or mentee invite waits here, not yet in their pair, until a coordinator approves
-- (the pair is linked then) or refuses (the person is erased and the invite stays spent).
ALTER TABLE participants ADD COLUMN awaiting_approval INTEGER NOT NULL DEFAULT 0;
