-- Suppressions, and the columns that let MessageList and MessageRetry filter by the last error.

-- +goose Up

-- One row per suppressed address. email is the bare address lowercased by the driver, so the
-- primary key is also the case-insensitive lookup of SuppressionMatch (one probe per recipient on
-- the delivery path). expires_at NULL: the suppression never expires.
CREATE TABLE suppressions (
    email      TEXT    NOT NULL PRIMARY KEY,
    reason     TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '',
    message_id TEXT    NOT NULL DEFAULT '',    -- the message whose outcome caused it; no foreign
                                               -- key: messages may be purged, the suppression stays
    created_at INTEGER NOT NULL,
    expires_at INTEGER
) STRICT, WITHOUT ROWID;

-- SuppressionList, newest first, with or without the reason filter. The keyset cursor is
-- (created_at, email), which these indexes serve in order.
CREATE INDEX suppressions_created ON suppressions (created_at, email);
CREATE INDEX suppressions_reason ON suppressions (reason, created_at, email);

-- The last error's reply code and enhanced code, read out of the last_error JSON. VIRTUAL: nothing
-- is stored in the row (ALTER TABLE cannot add STORED columns anyway); only the indexes below
-- hold the values.
ALTER TABLE messages ADD COLUMN error_code INTEGER
    GENERATED ALWAYS AS (json_extract(last_error, '$.code')) VIRTUAL;
ALTER TABLE messages ADD COLUMN error_enhanced TEXT
    GENERATED ALWAYS AS (json_extract(last_error, '$.enhanced')) VIRTUAL;

-- MessageList and MessageRetry by error code ("550", "5.1.1", "5.1." as a range). Partial: the
-- accepted and sent messages, which have no last error, cost nothing. "error_code = ?" and
-- "error_enhanced >= ?" imply IS NOT NULL, which is what lets SQLite use them.
CREATE INDEX messages_error_code ON messages (error_code, id) WHERE error_code IS NOT NULL;
CREATE INDEX messages_error_enhanced ON messages (error_enhanced, id) WHERE error_enhanced IS NOT NULL;

-- +goose Down
DROP INDEX messages_error_enhanced;
DROP INDEX messages_error_code;
ALTER TABLE messages DROP COLUMN error_enhanced;
ALTER TABLE messages DROP COLUMN error_code;
DROP TABLE suppressions;
