-- Retention (package store, retention.go): the purges of bodies, messages and inbound reports
-- find what is due through these indexes, so a purge reads only what it deletes, never the
-- history. Times are timestamptz, as in 00001.

-- +goose Up

-- When the message's body (message_raw) was purged; NULL while it is kept. /raw and a retry of a
-- purged message answer 410 with this time.
ALTER TABLE messages ADD COLUMN body_purged_at timestamptz;

-- A finished message's updated_at is when it finished (its last state change). The bodies still
-- kept of finished messages, oldest finish first: the body purge reads the front of this index.
-- Partial, so a message enters it only when it finishes and leaves it when its body goes.
CREATE INDEX messages_body_due ON messages (updated_at)
    WHERE body_purged_at IS NULL
        AND status IN ('sent', 'failed', 'suppressed', 'cancelled', 'bounced', 'complained', 'partially_failed');

-- Every finished message, oldest finish first: the message purge reads the front of this index.
CREATE INDEX messages_finished ON messages (updated_at)
    WHERE status IN ('sent', 'failed', 'suppressed', 'cancelled', 'bounced', 'complained', 'partially_failed');

-- The inbound purge, by age.
CREATE INDEX inbound_entries_at ON inbound_entries (at);
CREATE INDEX report_keys_at ON report_keys (at);
CREATE INDEX soft_bounces_at ON soft_bounces (at);

-- +goose Down
DROP INDEX soft_bounces_at;
DROP INDEX report_keys_at;
DROP INDEX inbound_entries_at;
DROP INDEX messages_finished;
DROP INDEX messages_body_due;
ALTER TABLE messages DROP COLUMN body_purged_at;
