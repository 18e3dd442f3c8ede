-- The notify area: application events, triggers, the actions they create, the cancels events
-- record and the triggers' frequency caps (package store, notify.go); the same tables as
-- SQLite's 00013. Ids and keys COLLATE "C" (byte order, as SQLite compares them).

-- +goose Up

-- One row per accepted event. client_id is the id the client gave (or its Idempotency-Key), ''
-- for none: unique per API key, which makes an event exactly-once while it is kept.
CREATE TABLE events (
    id          text COLLATE "C" NOT NULL PRIMARY KEY,   -- evt_…, time-sortable
    name        text COLLATE "C" NOT NULL,
    client_id   text COLLATE "C" NOT NULL DEFAULT '',
    api_key_id  text COLLATE "C" NOT NULL DEFAULT '',
    contact_id  text COLLATE "C" NOT NULL DEFAULT '',
    email       text        NOT NULL DEFAULT '',
    data        json,                                     -- as given (key order kept), NULL for none
    occurred_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE UNIQUE INDEX events_client ON events (api_key_id, client_id) WHERE client_id <> '';
CREATE INDEX events_occurred ON events (occurred_at);
CREATE INDEX events_name ON events (name, id);
CREATE INDEX events_contact ON events (contact_id, id) WHERE contact_id <> '';

-- Triggers. recipients is store.TriggerTo; cancel_if and digest store.TriggerCancel and
-- store.TriggerDigest (NULL for none); condition the filter as given (NULL for none).
CREATE TABLE triggers (
    id                  text COLLATE "C" NOT NULL PRIMARY KEY,  -- trg_…
    name                text        NOT NULL DEFAULT '',
    event               text COLLATE "C" NOT NULL,
    condition           json,
    template            text        NOT NULL,
    recipients          json        NOT NULL,
    stream              text        NOT NULL,
    delay_ns            bigint      NOT NULL DEFAULT 0,
    cancel_if           json,
    digest              json,
    cap_ns              bigint      NOT NULL DEFAULT 0,
    honour_unsubscribes boolean     NOT NULL DEFAULT false,
    from_addr           text        NOT NULL DEFAULT '',
    tags                json,
    enabled             boolean     NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);

CREATE INDEX triggers_event ON triggers (event, id);

-- Actions: one trigger's work for one event (or a digest's events, action_events), the row as
-- the job like messages. event_at is the occurred_at of its event, which a cancel must not
-- precede. trigger_id has no reference: a deleted trigger's actions stay as its history.
CREATE TABLE actions (
    id          text COLLATE "C" NOT NULL PRIMARY KEY,    -- act_…
    trigger_id  text COLLATE "C" NOT NULL,
    event_id    text COLLATE "C" NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    event_at    timestamptz NOT NULL,
    contact_id  text COLLATE "C" NOT NULL DEFAULT '',
    email       text        NOT NULL DEFAULT '',
    due_at      timestamptz NOT NULL,
    status      text        NOT NULL,
    cancel_key  text COLLATE "C" NOT NULL DEFAULT '',
    digest_key  text COLLATE "C" NOT NULL DEFAULT '',
    cap_key     text COLLATE "C" NOT NULL DEFAULT '',
    message_ids jsonb,                                    -- array of message ids, NULL for none
    reason      text        NOT NULL DEFAULT '',
    lease_owner text        NOT NULL DEFAULT '',
    lease_until timestamptz,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE INDEX actions_due ON actions (due_at) WHERE status = 'pending';
CREATE INDEX actions_leased ON actions (lease_until) WHERE status = 'pending' AND lease_owner <> '';
CREATE INDEX actions_event ON actions (event_id);
CREATE INDEX actions_digest ON actions (trigger_id, digest_key) WHERE status = 'pending' AND digest_key <> '';
-- The pending actions a recorded cancel may still cancel (kept from the purge).
CREATE INDEX actions_cancel ON actions (cancel_key) WHERE status = 'pending' AND cancel_key <> '';

-- The events a digest action carries, in the order they joined (id).
CREATE TABLE action_events (
    id        bigserial PRIMARY KEY,
    action_id text COLLATE "C" NOT NULL REFERENCES actions (id) ON DELETE CASCADE,
    event_id  text COLLATE "C" NOT NULL REFERENCES events (id) ON DELETE CASCADE
);
CREATE INDEX action_events_action ON action_events (action_id, id);
CREATE INDEX action_events_event ON action_events (event_id);

-- The cancel keys accepted events satisfied, at the time those events occurred.
CREATE TABLE event_cancels (
    key      text COLLATE "C" NOT NULL,
    at       timestamptz NOT NULL,
    event_id text COLLATE "C" NOT NULL REFERENCES events (id) ON DELETE CASCADE
);
CREATE INDEX event_cancels_key ON event_cancels (key, at);
CREATE INDEX event_cancels_event ON event_cancels (event_id);

-- Frequency caps: when each trigger last sent to each key (deleted with the trigger by
-- TriggerDelete; no reference, so that an action finishing as its trigger goes still can).
CREATE TABLE trigger_caps (
    trigger_id text COLLATE "C" NOT NULL,
    cap_key    text COLLATE "C" NOT NULL,
    last_at    timestamptz NOT NULL,
    PRIMARY KEY (trigger_id, cap_key)
);

-- The event and trigger whose action created a message (NULL for other messages).
ALTER TABLE messages ADD COLUMN event_id text;
ALTER TABLE messages ADD COLUMN trigger_id text;

-- +goose Down
ALTER TABLE messages DROP COLUMN trigger_id;
ALTER TABLE messages DROP COLUMN event_id;
DROP TABLE trigger_caps;
DROP TABLE event_cancels;
DROP TABLE action_events;
DROP TABLE actions;
DROP TABLE triggers;
DROP TABLE events;
