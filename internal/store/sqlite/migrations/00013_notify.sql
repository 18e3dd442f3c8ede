-- The notify area: application events, triggers, the actions they create, the cancels events
-- record and the triggers' frequency caps (package store, notify.go). Times are unix
-- microseconds UTC, durations nanoseconds, JSON is TEXT, as in 00001.

-- +goose Up

-- One row per accepted event. client_id is the id the client gave (or its Idempotency-Key), ''
-- for none: unique per API key, which makes an event exactly-once while it is kept. contact_id
-- and email are '' when the event names no contact (no reference: a contact erased later
-- leaves its events).
CREATE TABLE events (
    id          TEXT    NOT NULL PRIMARY KEY,          -- evt_…, time-sortable
    name        TEXT    NOT NULL,
    client_id   TEXT    NOT NULL DEFAULT '',
    api_key_id  TEXT    NOT NULL DEFAULT '',
    contact_id  TEXT    NOT NULL DEFAULT '',
    email       TEXT    NOT NULL DEFAULT '',
    data        TEXT,                                  -- JSON object, NULL for none
    occurred_at INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX events_client ON events (api_key_id, client_id) WHERE client_id <> '';
-- The retention purge, and listings by name or contact (newest first, by id).
CREATE INDEX events_occurred ON events (occurred_at);
CREATE INDEX events_name ON events (name, id);
CREATE INDEX events_contact ON events (contact_id, id) WHERE contact_id <> '';

-- Triggers. recipients is the JSON of store.TriggerTo; cancel_if and digest those of
-- store.TriggerCancel and store.TriggerDigest (NULL for none); condition the filter (NULL for
-- none); tags a JSON array (NULL for none).
CREATE TABLE triggers (
    id                  TEXT    NOT NULL PRIMARY KEY,  -- trg_…
    name                TEXT    NOT NULL DEFAULT '',
    event               TEXT    NOT NULL,
    condition           TEXT,
    template            TEXT    NOT NULL,
    recipients          TEXT    NOT NULL,
    stream              TEXT    NOT NULL,
    delay_ns            INTEGER NOT NULL DEFAULT 0,
    cancel_if           TEXT,
    digest              TEXT,
    cap_ns              INTEGER NOT NULL DEFAULT 0,
    honour_unsubscribes INTEGER NOT NULL DEFAULT 0,
    from_addr           TEXT    NOT NULL DEFAULT '',
    tags                TEXT,
    enabled             INTEGER NOT NULL DEFAULT 1,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE INDEX triggers_event ON triggers (event, id);

-- Actions: one trigger's work for one event (or a digest's events, action_events), the row as
-- the job like messages. event_at is the occurred_at of its event, which a cancel must not
-- precede. trigger_id has no reference: a deleted trigger's actions stay as its history.
-- message_ids is a JSON array (NULL for none).
CREATE TABLE actions (
    id          TEXT    NOT NULL PRIMARY KEY,          -- act_…
    trigger_id  TEXT    NOT NULL,
    event_id    TEXT    NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    event_at    INTEGER NOT NULL,
    contact_id  TEXT    NOT NULL DEFAULT '',
    email       TEXT    NOT NULL DEFAULT '',
    due_at      INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    cancel_key  TEXT    NOT NULL DEFAULT '',
    digest_key  TEXT    NOT NULL DEFAULT '',
    cap_key     TEXT    NOT NULL DEFAULT '',
    message_ids TEXT,
    reason      TEXT    NOT NULL DEFAULT '',
    lease_owner TEXT    NOT NULL DEFAULT '',
    lease_until INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- The claim and ActionNextDue: pending actions by due time; the leased ones by lease end.
CREATE INDEX actions_due ON actions (due_at) WHERE status = 'pending';
CREATE INDEX actions_leased ON actions (lease_until) WHERE status = 'pending' AND lease_owner <> '';
CREATE INDEX actions_event ON actions (event_id);
-- A digest's pending action, which the events of its key join.
CREATE INDEX actions_digest ON actions (trigger_id, digest_key) WHERE status = 'pending' AND digest_key <> '';
-- The pending actions a recorded cancel may still cancel (kept from the purge).
CREATE INDEX actions_cancel ON actions (cancel_key) WHERE status = 'pending' AND cancel_key <> '';

-- The events a digest action carries, in the order they joined (id).
CREATE TABLE action_events (
    id        INTEGER NOT NULL PRIMARY KEY,
    action_id TEXT    NOT NULL REFERENCES actions (id) ON DELETE CASCADE,
    event_id  TEXT    NOT NULL REFERENCES events (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX action_events_action ON action_events (action_id, id);
CREATE INDEX action_events_event ON action_events (event_id);

-- The cancel keys accepted events satisfied, at the time those events occurred.
CREATE TABLE event_cancels (
    key      TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    event_id TEXT    NOT NULL REFERENCES events (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX event_cancels_key ON event_cancels (key, at);
CREATE INDEX event_cancels_event ON event_cancels (event_id);

-- Frequency caps: when each trigger last sent to each key (deleted with the trigger by
-- TriggerDelete; no reference, so that an action finishing as its trigger goes still can).
CREATE TABLE trigger_caps (
    trigger_id TEXT    NOT NULL,
    cap_key    TEXT    NOT NULL,
    last_at    INTEGER NOT NULL,
    PRIMARY KEY (trigger_id, cap_key)
) STRICT, WITHOUT ROWID;

-- The event and trigger whose action created a message (NULL for other messages).
ALTER TABLE messages ADD COLUMN event_id TEXT;
ALTER TABLE messages ADD COLUMN trigger_id TEXT;

-- +goose Down
ALTER TABLE messages DROP COLUMN trigger_id;
ALTER TABLE messages DROP COLUMN event_id;
DROP TABLE trigger_caps;
DROP TABLE event_cancels;
DROP TABLE action_events;
DROP TABLE actions;
DROP TABLE triggers;
DROP TABLE events;
