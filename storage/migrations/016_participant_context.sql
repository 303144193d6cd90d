-- "For whom" (issue 14): optional context a participant gives once, at their starting
-- check-in (staff group, band, sector, years in role, a mentor from another organisation or
-- profession, whether joining was their own choice). Each answer is a choice id, personal
-- data like any answer: sealed with the person's data key (AES-256-GCM, associated data
-- binding it to this table, the question and the person), erased with them, handed over by
-- /mydata. The row whose question is 'asked' records only that the questions were put to the
-- person (so they are asked once); it holds no answer. Keyed on the participant row.
CREATE TABLE participant_context (
    participant_id INTEGER NOT NULL REFERENCES participants(id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    answer_ct BLOB,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (participant_id, question),
    CHECK ((question = 'asked') = (answer_ct IS NULL))
);
