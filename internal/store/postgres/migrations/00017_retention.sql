-- Retention (package store, retention.go): the purges of bodies, messages and inbound reports
-- find what is due through these indexes, so a purge reads only what it deletes, never the
-- history. Times are timestamptz, as in 00001.
--
-- The indexes are built CONCURRENTLY, outside a transaction: messages may hold millions of rows,
-- and a plain CREATE INDEX would block every accept and delivery of the nodes still running
-- while it reads them all. IF NOT EXISTS lets a migration cut short be run again.

-- +goose NO TRANSACTION
-- +goose Up

-- When the message's body (message_raw) was purged; NULL while it is kept. /raw and a retry of a
-- purged message answer 410 with this time. Adding a nullable column rewrites nothing.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS body_purged_at timestamptz;

-- A finished message's updated_at is when it finished (its last state change). The bodies still
-- kept of finished messages, oldest finish first: the body purge reads the front of this index.
-- Partial, so a message enters it only when it finishes and leaves it when its body goes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_body_due ON messages (updated_at)
    WHERE body_purged_at IS NULL
        AND status IN ('sent', 'failed', 'suppressed', 'cancelled', 'bounced', 'complained', 'partially_failed');

-- Every finished message, oldest finish first: the message purge reads the front of this index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_finished ON messages (updated_at)
    WHERE status IN ('sent', 'failed', 'suppressed', 'cancelled', 'bounced', 'complained', 'partially_failed');

-- The inbound purge, by age.
CREATE INDEX CONCURRENTLY IF NOT EXISTS inbound_entries_at ON inbound_entries (at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS report_keys_at ON report_keys (at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS soft_bounces_at ON soft_bounces (at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS soft_bounces_at;
DROP INDEX CONCURRENTLY IF EXISTS report_keys_at;
DROP INDEX CONCURRENTLY IF EXISTS inbound_entries_at;
DROP INDEX CONCURRENTLY IF EXISTS messages_finished;
DROP INDEX CONCURRENTLY IF EXISTS messages_body_due;
ALTER TABLE messages DROP COLUMN IF EXISTS body_purged_at;
