-- The rules layer's coding of each complete entry, made once when the entry is saved, so the
-- offline jobs read it instead of coding every answer again. Encrypted like the answers it
-- is derived from (the author's data key), and it goes with them: deleted with the entry,
-- and by the triggers below whenever one of the entry's answers is written, changed or
-- removed, so stored codes always describe the answers as they are.
CREATE TABLE entry_codes (
    entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    coder TEXT NOT NULL,  -- which coder made them: codebook hash and coding version
    codes_ct BLOB NOT NULL
);

CREATE TRIGGER answers_insert_uncodes AFTER INSERT ON answers
BEGIN
    DELETE FROM entry_codes WHERE entry_id = NEW.entry_id;
END;

CREATE TRIGGER answers_update_uncodes AFTER UPDATE ON answers
BEGIN
    DELETE FROM entry_codes WHERE entry_id = NEW.entry_id OR entry_id = OLD.entry_id;
END;

CREATE TRIGGER answers_delete_uncodes AFTER DELETE ON answers
BEGIN
    DELETE FROM entry_codes WHERE entry_id = OLD.entry_id;
END;
