-- A person's chat preferences that are not about reminders. tidy_chat: once an entry is
-- saved, the bot deletes the person's typed answers and its summary from the chat (for a
-- shared or unlocked phone); the entry itself stays in /history.
CREATE TABLE chat_prefs (
    participant_id INTEGER PRIMARY KEY REFERENCES participants(id) ON DELETE CASCADE,
    tidy_chat INTEGER NOT NULL DEFAULT 0 CHECK (tidy_chat IN (0, 1)),
    updated_at TEXT NOT NULL
);
