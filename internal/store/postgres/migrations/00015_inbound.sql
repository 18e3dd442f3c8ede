-- The inbound area (package store, inbound.go): the same tables as SQLite's 00015.

-- +goose Up

-- Every piece of inbound mail and every notification, as received; the id is the listing's
-- keyset, newest first.
CREATE TABLE inbound_entries (
    id          bigserial   NOT NULL PRIMARY KEY,
    at          timestamptz NOT NULL,
    channel     text        NOT NULL,
    mail_from   text        NOT NULL DEFAULT '',
    rcpt_to     text        NOT NULL DEFAULT '',
    kind        text COLLATE "C" NOT NULL,
    outcome     text COLLATE "C" NOT NULL,
    detail      text        NOT NULL DEFAULT '',
    message_ids jsonb,                                       -- array of msg_… ids, NULL for none
    size        integer     NOT NULL DEFAULT 0
);

-- InboundList by kind or by outcome, newest first.
CREATE INDEX inbound_entries_kind ON inbound_entries (kind, id);
CREATE INDEX inbound_entries_outcome ON inbound_entries (outcome, id);

-- The keys of the reports applied (RecipientReport.Key): a report seen again changes nothing.
CREATE TABLE report_keys (
    key text COLLATE "C" NOT NULL PRIMARY KEY,
    at  timestamptz NOT NULL
);

-- The soft and undetermined bounces of each address within the policy's window (older ones are
-- deleted as new ones come; a delivery report deletes the address's).
CREATE TABLE soft_bounces (
    email      text COLLATE "C" NOT NULL,                    -- lowercased
    class      text        NOT NULL,                         -- soft or undetermined
    message_id text COLLATE "C" NOT NULL,
    at         timestamptz NOT NULL
);

CREATE INDEX soft_bounces_email ON soft_bounces (email, at);

-- Recipients delivered, bounced and complained about, per stream and hour (the hour's start),
-- summed over the shards: each writer adds to a shard of its own choice, so that concurrent
-- finishes (on every node) do not all wait for one row's lock.
CREATE TABLE delivery_counts (
    stream     text COLLATE "C" NOT NULL,
    hour       timestamptz NOT NULL,
    shard      smallint    NOT NULL,
    delivered  bigint      NOT NULL DEFAULT 0,
    bounced    bigint      NOT NULL DEFAULT 0,
    complained bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (stream, hour, shard)
);

-- The pause of each stream that was ever paused.
CREATE TABLE stream_states (
    stream     text COLLATE "C" NOT NULL PRIMARY KEY,
    paused     boolean     NOT NULL,
    reason     text        NOT NULL DEFAULT '',
    detail     text        NOT NULL DEFAULT '',
    paused_at  timestamptz NOT NULL,
    resumed_at timestamptz                                   -- NULL: never resumed
);

-- +goose Down
DROP TABLE stream_states;
DROP TABLE delivery_counts;
DROP TABLE soft_bounces;
DROP TABLE report_keys;
DROP TABLE inbound_entries;
