-- Per-recipient delivery state (package store: RecipientStatus, DeriveStatus).
--
-- A message is split iff pending_recipients IS NOT NULL iff every one of its message_recipients
-- rows has a status. A message whose recipients share one outcome (one recipient, or all with
-- the same result: the common case) is not split: its rows keep status NULL and each recipient's
-- state is the message's, so accepting and finishing it writes nothing more than before. Only
-- an attempt whose recipients fare differently writes their rows, and from then on the message
-- is sent to pending_recipients (a JSON array of addresses) alone.

-- +goose Up
ALTER TABLE message_recipients ADD COLUMN status TEXT;
ALTER TABLE message_recipients ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message_recipients ADD COLUMN last_error TEXT; -- JSON DeliveryError
ALTER TABLE message_recipients ADD COLUMN sent_at INTEGER;
ALTER TABLE message_recipients ADD COLUMN updated_at INTEGER;
ALTER TABLE messages ADD COLUMN pending_recipients TEXT;   -- JSON array of bare addresses

-- +goose Down
ALTER TABLE messages DROP COLUMN pending_recipients;
ALTER TABLE message_recipients DROP COLUMN updated_at;
ALTER TABLE message_recipients DROP COLUMN sent_at;
ALTER TABLE message_recipients DROP COLUMN last_error;
ALTER TABLE message_recipients DROP COLUMN attempts;
ALTER TABLE message_recipients DROP COLUMN status;
