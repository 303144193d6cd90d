-- The safety rule's verdict on each answer, encrypted with the author's data key like the
-- answer itself (associated data: answers, the answer's row, the person, field "safety"), so
-- a copy of the database or of a backup no longer shows who was signposted. safety_rule names
-- the version of the rule that judged the answer (it says nothing about the verdict): an
-- answer judged by another version, or not at all, is judged again by `mentorbot recode`
-- and, by the lexicon, by every report or export that reads it.
--
-- The plaintext `flags` column of migration 002 is retired: the store moves any flag still
-- in it into safety_ct when it opens (storage.entries.Entries.seal_legacy_flags) and clears
-- it. The audit rows that recorded a signposting in plain words go now.
ALTER TABLE answers ADD COLUMN safety_ct BLOB;
ALTER TABLE answers ADD COLUMN safety_rule TEXT;
DELETE FROM audit_log WHERE action = 'signposted';

-- A new verdict is not a new answer: stored codes go only when what was written changes.
DROP TRIGGER answers_update_uncodes;
CREATE TRIGGER answers_update_uncodes AFTER UPDATE OF entry_id, step_id, value_ct ON answers
BEGIN
    DELETE FROM entry_codes WHERE entry_id = NEW.entry_id OR entry_id = OLD.entry_id;
END;
