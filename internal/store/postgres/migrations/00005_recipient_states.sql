-- Per-recipient delivery state (package store: RecipientStatus, DeriveStatus).
--
-- A message is split iff pending_recipients IS NOT NULL iff every one of its message_recipients
-- rows has a status. A message whose recipients share one outcome (one recipient, or all with
-- the same result: the common case) is not split: its rows keep status NULL and each recipient's
-- state is the message's, so accepting and finishing it writes nothing more than before. Only
-- an attempt whose recipients fare differently writes their rows, and from then on the message
-- is sent to pending_recipients (a JSON array of addresses) alone. The new columns have no
-- default but 0 for attempts, so adding them rewrites no table.

-- +goose Up
ALTER TABLE message_recipients
    ADD COLUMN status     text,
    ADD COLUMN attempts   integer NOT NULL DEFAULT 0,
    ADD COLUMN last_error jsonb,
    ADD COLUMN sent_at    timestamptz,
    ADD COLUMN updated_at timestamptz;
ALTER TABLE messages ADD COLUMN pending_recipients jsonb;

-- +goose Down
ALTER TABLE messages DROP COLUMN pending_recipients;
ALTER TABLE message_recipients
    DROP COLUMN status, DROP COLUMN attempts, DROP COLUMN last_error, DROP COLUMN sent_at,
    DROP COLUMN updated_at;
