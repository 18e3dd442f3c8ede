-- The sent event of a message whose recipients were all sent to in one attempt (the common case)
-- is kept on the message row, as the first event already is derived from it: the finish that
-- sets status sent writes its detail there instead of inserting a message_events row, which
-- saves that row's and its index's B-tree inserts on the writer's critical path. Its id is taken
-- from message_events' AUTOINCREMENT sequence (sqlite_sequence), so it is unique and orders
-- among the stored events as a stored one would. MessageEvents reads it back with the others.

-- +goose Up
ALTER TABLE messages ADD COLUMN sent_event_id INTEGER; -- NULL: no sent event kept here
ALTER TABLE messages ADD COLUMN sent_detail TEXT;      -- JSON object, the event's detail

-- The sequence row exists once any event was stored; the finish reserves ids from it.
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'message_events', coalesce((SELECT max(id) FROM message_events), 0)
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'message_events');

-- +goose Down
INSERT INTO message_events (id, message_id, type, at, detail)
    SELECT sent_event_id, id, 'sent', sent_at, sent_detail FROM messages WHERE sent_event_id IS NOT NULL;
ALTER TABLE messages DROP COLUMN sent_detail;
ALTER TABLE messages DROP COLUMN sent_event_id;
