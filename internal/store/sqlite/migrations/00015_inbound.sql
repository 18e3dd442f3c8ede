-- The inbound area (package store, inbound.go): what came in, the report keys already applied,
-- the soft bounces of each address, the delivery counts per stream and hour, and the streams'
-- pauses. Times are unix microseconds UTC, JSON is TEXT, as in 00001.

-- +goose Up

-- Every piece of inbound mail and every notification, as received. AUTOINCREMENT: the id is the
-- listing's keyset, newest first.
CREATE TABLE inbound_entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    channel     TEXT    NOT NULL,
    mail_from   TEXT    NOT NULL DEFAULT '',
    rcpt_to     TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '',
    message_ids TEXT,                                  -- JSON array of msg_… ids, NULL for none
    size        INTEGER NOT NULL DEFAULT 0
) STRICT;

-- InboundList by kind or by outcome, newest first.
CREATE INDEX inbound_entries_kind ON inbound_entries (kind, id);
CREATE INDEX inbound_entries_outcome ON inbound_entries (outcome, id);

-- The keys of the reports applied (RecipientReport.Key): a report seen again changes nothing.
CREATE TABLE report_keys (
    key TEXT    NOT NULL PRIMARY KEY,
    at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The soft and undetermined bounces of each address within the policy's window (older ones are
-- deleted as new ones come; a delivery report deletes the address's).
CREATE TABLE soft_bounces (
    email      TEXT    NOT NULL,                       -- lowercased
    class      TEXT    NOT NULL,                       -- soft or undetermined
    message_id TEXT    NOT NULL,
    at         INTEGER NOT NULL
) STRICT;

CREATE INDEX soft_bounces_email ON soft_bounces (email, at);

-- Recipients delivered, bounced and complained about, per stream and hour (the hour's start),
-- summed over the shards (PostgreSQL's shape; one process writes shard 0 only).
CREATE TABLE delivery_counts (
    stream     TEXT    NOT NULL,
    hour       INTEGER NOT NULL,
    shard      INTEGER NOT NULL,
    delivered  INTEGER NOT NULL DEFAULT 0,
    bounced    INTEGER NOT NULL DEFAULT 0,
    complained INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stream, hour, shard)
) STRICT, WITHOUT ROWID;

-- The pause of each stream that was ever paused.
CREATE TABLE stream_states (
    stream     TEXT    NOT NULL PRIMARY KEY,
    paused     INTEGER NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT '',
    paused_at  INTEGER NOT NULL,
    resumed_at INTEGER                                 -- NULL: never resumed
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE stream_states;
DROP TABLE delivery_counts;
DROP TABLE soft_bounces;
DROP TABLE report_keys;
DROP TABLE inbound_entries;
