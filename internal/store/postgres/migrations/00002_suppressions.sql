-- Suppressions, and the columns that let MessageList and MessageRetry filter by the last error.

-- +goose Up

-- One row per suppressed address. email is the bare address lowercased by the driver, so the
-- primary key is also the case-insensitive lookup of SuppressionMatch (one probe per recipient on
-- the delivery path). expires_at NULL: the suppression never expires.
CREATE TABLE suppressions (
    email      text COLLATE "C" NOT NULL PRIMARY KEY,
    reason     text        NOT NULL,
    detail     text        NOT NULL DEFAULT '',
    message_id text        NOT NULL DEFAULT '',  -- no foreign key: messages may be purged
    created_at timestamptz NOT NULL,
    expires_at timestamptz
);

-- SuppressionList, newest first, with or without the reason filter. The keyset cursor is
-- (created_at, email), which these indexes serve in order.
CREATE INDEX suppressions_created ON suppressions (created_at, email);
CREATE INDEX suppressions_reason ON suppressions (reason, created_at, email);

-- The last error's reply code and enhanced code, read out of last_error. STORED (PostgreSQL has
-- no virtual generated columns); COLLATE "C" so that the range of a prefix ("5.1." up to "5.1/")
-- compares bytes, whatever the database's collation.
ALTER TABLE messages ADD COLUMN error_code integer
    GENERATED ALWAYS AS ((last_error ->> 'code')::integer) STORED;
ALTER TABLE messages ADD COLUMN error_enhanced text COLLATE "C"
    GENERATED ALWAYS AS (last_error ->> 'enhanced') STORED;

-- MessageList and MessageRetry by error code. Partial: messages without a last error cost nothing.
CREATE INDEX messages_error_code ON messages (error_code, id) WHERE error_code IS NOT NULL;
CREATE INDEX messages_error_enhanced ON messages (error_enhanced, id) WHERE error_enhanced IS NOT NULL;

-- +goose Down
DROP INDEX messages_error_enhanced;
DROP INDEX messages_error_code;
ALTER TABLE messages DROP COLUMN error_enhanced;
ALTER TABLE messages DROP COLUMN error_code;
DROP TABLE suppressions;
