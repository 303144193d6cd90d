-- Sentence embeddings of each typed answer, read by the semantic coding heads
-- (reports/coding/heads.py): made once when the entry is saved, or by `mentorbot recode`.
-- An embedding is computed from what the person wrote and says much of it, so it is personal
-- data like the answer: encrypted with the author's data key, deleted with the entry, and by
-- the triggers below whenever that answer is written, changed or removed, so a stored
-- embedding always describes the answer as it is.
CREATE TABLE answer_embeddings (
    entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    step_id TEXT NOT NULL,
    model TEXT NOT NULL,  -- which encoder and unit split made them
    vectors_ct BLOB NOT NULL,
    PRIMARY KEY (entry_id, step_id)
);

CREATE TRIGGER answers_insert_unembeds AFTER INSERT ON answers
BEGIN
    DELETE FROM answer_embeddings WHERE entry_id = NEW.entry_id AND step_id = NEW.step_id;
END;

CREATE TRIGGER answers_update_unembeds AFTER UPDATE ON answers
BEGIN
    DELETE FROM answer_embeddings
    WHERE (entry_id = OLD.entry_id AND step_id = OLD.step_id)
       OR (entry_id = NEW.entry_id AND step_id = NEW.step_id);
END;

CREATE TRIGGER answers_delete_unembeds AFTER DELETE ON answers
BEGIN
    DELETE FROM answer_embeddings WHERE entry_id = OLD.entry_id AND step_id = OLD.step_id;
END;
