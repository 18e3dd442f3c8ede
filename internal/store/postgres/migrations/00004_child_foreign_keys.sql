-- The rows that hang off a message (its MIME, its recipients, its timeline) no longer carry
-- foreign keys to messages.
--
-- Each such key made every insert run a referential-integrity trigger: a lookup of the message
-- row and a FOR KEY SHARE lock on it, per child row. Accepts write a message_raw and at least one
-- message_recipients row per message, and every delivery outcome a message_events row; without
-- the keys, batch accepts ran 8–20% and single accepts 7–31% faster in alternating runs
-- (docs/BENCHMARKS.md). The keys guarded nothing the code can break: message_raw and
-- message_recipients are inserted in the same transaction as their message, and every event is
-- inserted from the RETURNING of an UPDATE of its message. Messages are never deleted yet; the
-- purge that comes with retention must delete a message's children with it (ON DELETE CASCADE
-- did that before). SQLite keeps its keys (its 00004 is empty): there a check is one lookup in
-- the same connection, without row locks.

-- +goose Up
ALTER TABLE message_raw DROP CONSTRAINT message_raw_message_id_fkey;
ALTER TABLE message_recipients DROP CONSTRAINT message_recipients_message_id_fkey;
ALTER TABLE message_events DROP CONSTRAINT message_events_message_id_fkey;

-- +goose Down
ALTER TABLE message_raw ADD CONSTRAINT message_raw_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE;
ALTER TABLE message_recipients ADD CONSTRAINT message_recipients_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE;
ALTER TABLE message_events ADD CONSTRAINT message_events_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE;
