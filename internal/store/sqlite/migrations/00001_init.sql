-- postie's initial SQLite schema.
--
-- Conventions: times are INTEGER unix microseconds UTC (0 or NULL for "no time"); JSON values are
-- TEXT (never BLOB: SQLite ≥ 3.45 reads a BLOB handed to json_each as binary JSONB); tables are
-- STRICT so a wrongly typed bind fails loudly instead of being stored as something else.

-- +goose Up

-- The message row is the delivery job (see package store). The raw MIME lives in message_raw so
-- that listings never read it and status updates (claim, finish) do not rewrite it: SQLite rewrites
-- a whole record on UPDATE, overflow pages included.
CREATE TABLE messages (
    id               TEXT    NOT NULL PRIMARY KEY,
    stream           TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    from_addr        TEXT    NOT NULL DEFAULT '',
    to_addrs         TEXT,                          -- JSON array of formatted mailboxes
    cc_addrs         TEXT,                          -- JSON array
    bcc_addrs        TEXT,                          -- JSON array
    reply_to         TEXT    NOT NULL DEFAULT '',
    subject          TEXT    NOT NULL DEFAULT '',
    template         TEXT    NOT NULL DEFAULT '',
    template_version INTEGER NOT NULL DEFAULT 0,
    data             TEXT,                          -- JSON template data
    headers          TEXT,                          -- JSON object
    tags             TEXT,                          -- JSON array
    metadata         TEXT,                          -- JSON object
    attachments      TEXT,                          -- JSON array of AttachmentInfo
    envelope_from    TEXT    NOT NULL DEFAULT '',
    recipients       TEXT,                          -- JSON array of bare addresses
    size             INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT    NOT NULL DEFAULT '',
    lease_until      INTEGER,
    last_error       TEXT,                          -- JSON DeliveryError
    provider_id      TEXT    NOT NULL DEFAULT '',
    message_id       TEXT    NOT NULL DEFAULT '',
    idempotency_key  TEXT    NOT NULL DEFAULT '',
    api_key_id       TEXT    NOT NULL DEFAULT '',
    campaign_id      TEXT,                          -- NULL when not part of a campaign (see below)
    created_at       INTEGER NOT NULL,
    send_at          INTEGER,
    sent_at          INTEGER,
    expires_at       INTEGER,
    updated_at       INTEGER NOT NULL
) STRICT;

-- MessageClaim and MessageNextDue: the claimable rows of one stream in due order. Partial, so the
-- index holds only the (small) queue, not the history. Queries must repeat the WHERE term
-- verbatim: SQLite uses a partial index only when it can prove the query implies its WHERE.
CREATE INDEX messages_claim ON messages (stream, next_attempt_at, id)
    WHERE status IN ('scheduled', 'queued', 'deferred');

-- MessageRescue: leases that ran out.
CREATE INDEX messages_lease ON messages (lease_until) WHERE status = 'sending';

-- MessageList by status, newest first.
CREATE INDEX messages_status ON messages (status, id);

-- MessageList by campaign. "campaign_id = ?" implies "campaign_id IS NOT NULL", which is what lets
-- SQLite use this partial index with a bound parameter (hence NULL, not '', for "no campaign").
CREATE INDEX messages_campaign ON messages (campaign_id, id) WHERE campaign_id IS NOT NULL;

CREATE TABLE message_raw (
    message_id TEXT NOT NULL PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    raw        BLOB NOT NULL
) STRICT;

-- One row per distinct lower-cased envelope recipient, for the recipient filter of MessageList.
CREATE TABLE message_recipients (
    message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    email_lower TEXT NOT NULL,
    PRIMARY KEY (message_id, email_lower)
) STRICT, WITHOUT ROWID;

CREATE INDEX message_recipients_email ON message_recipients (email_lower, message_id);

-- AUTOINCREMENT so an event id is never reused, even after the newest events were deleted with
-- their message: ids can then serve as a cursor for event consumers.
CREATE TABLE message_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    type       TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    detail     TEXT                                 -- JSON object
) STRICT;

CREATE INDEX message_events_message ON message_events (message_id, id);

CREATE TABLE idempotency_keys (
    api_key_id   TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash BLOB    NOT NULL,
    status_code  INTEGER NOT NULL,
    response     BLOB,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, key)
) STRICT;

CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL DEFAULT '',
    hash       BLOB    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE api_keys;
DROP TABLE idempotency_keys;
DROP TABLE message_events;
DROP TABLE message_recipients;
DROP TABLE message_raw;
DROP TABLE messages;
