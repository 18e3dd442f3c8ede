-- postie's initial PostgreSQL schema, in step with the SQLite one (internal/store/sqlite/migrations:
-- same versions, same tables and columns, same meaning; only the types and index kinds differ).
--
-- Conventions: times are timestamptz (microseconds, as SQLite's unix µs); a NOT NULL time with no
-- value is '-infinity' (it sorts first, as SQLite's 0 does), a nullable one is NULL. JSON is jsonb,
-- except the template data (json: kept byte for byte, as the caller sent it). Identifiers and keys
-- that listings order or range over are COLLATE "C", so that they sort by byte as in SQLite and as
-- the id encoding promises, whatever the database's default collation.

-- +goose Up

-- The message row is the delivery job (see package store). The raw MIME lives in message_raw so
-- that listings never read it and status updates (claim, finish) never copy it: an UPDATE writes a
-- new version of the whole row, and a 1.5 KB body is below the TOAST threshold.
CREATE TABLE messages (
    id               text COLLATE "C" NOT NULL PRIMARY KEY,
    stream           text        NOT NULL,
    status           text        NOT NULL,
    from_addr        text        NOT NULL DEFAULT '',
    to_addrs         jsonb,                         -- array of formatted mailboxes
    cc_addrs         jsonb,
    bcc_addrs        jsonb,
    reply_to         text        NOT NULL DEFAULT '',
    subject          text        NOT NULL DEFAULT '',
    template         text        NOT NULL DEFAULT '',
    template_version integer     NOT NULL DEFAULT 0,
    data             json,                          -- template data, as sent
    headers          jsonb,                         -- object
    tags             jsonb,                         -- array of strings
    metadata         jsonb,                         -- object
    attachments      jsonb,                         -- array of AttachmentInfo
    envelope_from    text        NOT NULL DEFAULT '',
    recipients       jsonb,                         -- array of bare addresses
    size             integer     NOT NULL DEFAULT 0,
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text        NOT NULL DEFAULT '',
    lease_until      timestamptz,
    last_error       jsonb,                         -- DeliveryError
    provider_id      text        NOT NULL DEFAULT '',
    message_id       text        NOT NULL DEFAULT '',
    idempotency_key  text        NOT NULL DEFAULT '',
    api_key_id       text        NOT NULL DEFAULT '',
    campaign_id      text,                          -- NULL when not part of a campaign
    created_at       timestamptz NOT NULL,
    send_at          timestamptz,
    sent_at          timestamptz,
    expires_at       timestamptz,
    updated_at       timestamptz NOT NULL
);

-- MessageClaim and MessageNextDue: the claimable rows of one stream in due order. Partial, so the
-- index holds only the (small) queue, not the history. Queries repeat the WHERE term verbatim so
-- the planner can prove they imply it.
CREATE INDEX messages_claim ON messages (stream, next_attempt_at, id)
    WHERE status IN ('scheduled', 'queued', 'deferred');

-- MessageRescue: leases that ran out.
CREATE INDEX messages_lease ON messages (lease_until) WHERE status = 'sending';

-- MessageList by status, newest first; MessageReleaseLeases (status 'sending').
CREATE INDEX messages_status ON messages (status, id);

-- MessageList by campaign.
CREATE INDEX messages_campaign ON messages (campaign_id, id) WHERE campaign_id IS NOT NULL;

-- MessageList by tag: "tags @> '["orders"]'".
CREATE INDEX messages_tags ON messages USING gin (tags jsonb_path_ops);

CREATE TABLE message_raw (
    message_id text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    raw        bytea NOT NULL
);

-- One row per distinct lower-cased envelope recipient, for the recipient filter of MessageList.
CREATE TABLE message_recipients (
    message_id  text COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    email_lower text NOT NULL,
    PRIMARY KEY (message_id, email_lower)
);

CREATE INDEX message_recipients_email ON message_recipients (email_lower, message_id);

-- An identity, never reused: ids can serve as a cursor for event consumers.
CREATE TABLE message_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text COLLATE "C" NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    type       text        NOT NULL,
    at         timestamptz NOT NULL,
    detail     jsonb
);

CREATE INDEX message_events_message ON message_events (message_id, id);

CREATE TABLE idempotency_keys (
    api_key_id   text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    status_code  integer     NOT NULL,
    response     bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (api_key_id, key)
);

CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

CREATE TABLE api_keys (
    id         text        NOT NULL PRIMARY KEY,
    name       text        NOT NULL DEFAULT '',
    hash       bytea       NOT NULL UNIQUE,
    prefix     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE idempotency_keys;
DROP TABLE message_events;
DROP TABLE message_recipients;
DROP TABLE message_raw;
DROP TABLE messages;
