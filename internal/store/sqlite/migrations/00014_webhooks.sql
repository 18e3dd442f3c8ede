-- Webhook endpoints, their routes, and the deliveries that are the outbox (package store,
-- webhooks.go). Times are unix microseconds UTC, JSON is TEXT, as in 00001.

-- +goose Up

-- One row per endpoint; types is the JSON array of the event types it subscribes to.
CREATE TABLE webhook_endpoints (
    id              TEXT    NOT NULL PRIMARY KEY,      -- whk_…
    url             TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    types           TEXT    NOT NULL,
    secret          TEXT    NOT NULL,
    previous_secret TEXT    NOT NULL DEFAULT '',
    previous_until  INTEGER,
    enabled         INTEGER NOT NULL,
    disabled_reason TEXT    NOT NULL DEFAULT '',
    failing_since   INTEGER,                           -- NULL: healthy
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

-- Who receives each event type: one row per type of each ENABLED endpoint (the endpoint methods
-- rewrite them), so that a report joins this table alone. The driver keeps which types have a
-- route in memory too, and a change of a type without one writes nothing here.
CREATE TABLE webhook_routes (
    type        TEXT NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    PRIMARY KEY (type, endpoint_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX webhook_routes_endpoint ON webhook_routes (endpoint_id);

-- The outbox and the job: one row per event per endpoint. AUTOINCREMENT: the id is the
-- webhook-id receivers deduplicate by, never to be handed out again after a purge.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    type            TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL DEFAULT '',
    campaign_id     TEXT    NOT NULL DEFAULT '',
    run_id          TEXT    NOT NULL DEFAULT '',
    at              INTEGER NOT NULL,
    detail          TEXT,                              -- JSON object, NULL for none
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_code       INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
) STRICT;

-- The claim: pending rows by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
-- An endpoint's deliveries, newest first (listing, replay, delete).
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
-- The purge of finished rows by age.
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (created_at) WHERE status <> 'pending';

-- Every attempt of a delivery.
CREATE TABLE webhook_attempts (
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,                      -- 1, 2, … per delivery
    at          INTEGER NOT NULL,
    code        INTEGER NOT NULL DEFAULT 0,
    response    TEXT    NOT NULL DEFAULT '',
    error       TEXT    NOT NULL DEFAULT '',
    duration_us INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (delivery_id, n)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_routes;
DROP TABLE webhook_endpoints;
