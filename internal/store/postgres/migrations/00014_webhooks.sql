-- Webhook endpoints, their routes, and the deliveries that are the outbox (package store,
-- webhooks.go); the same tables as SQLite's 00014.

-- +goose Up

CREATE TABLE webhook_endpoints (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,  -- whk_…
    url             text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    types           jsonb       NOT NULL,                    -- array of event types
    secret          text        NOT NULL,
    previous_secret text        NOT NULL DEFAULT '',
    previous_until  timestamptz,
    enabled         boolean     NOT NULL,
    disabled_reason text        NOT NULL DEFAULT '',
    failing_since   timestamptz,                             -- NULL: healthy
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- Who receives each event type: one row per type of each ENABLED endpoint (the endpoint methods
-- rewrite them), so that a reporting statement joins this small table alone.
CREATE TABLE webhook_routes (
    type        text COLLATE "C" NOT NULL,
    endpoint_id text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    PRIMARY KEY (type, endpoint_id)
);

CREATE INDEX webhook_routes_endpoint ON webhook_routes (endpoint_id);

-- The outbox and the job: one row per event per endpoint. No foreign key to webhook_endpoints:
-- every delivery inserted would take a share lock on its endpoint's row, which all reporting
-- transactions of the cluster would contend for; WebhookDelete deletes them itself, and a row
-- inserted while its endpoint is deleted is never claimed (the claim joins the endpoint).
CREATE TABLE webhook_deliveries (
    id              bigserial   NOT NULL PRIMARY KEY,
    endpoint_id     text COLLATE "C" NOT NULL,
    type            text COLLATE "C" NOT NULL,
    subject         text COLLATE "C" NOT NULL,
    recipient       text        NOT NULL DEFAULT '',
    campaign_id     text COLLATE "C" NOT NULL DEFAULT '',
    run_id          text COLLATE "C" NOT NULL DEFAULT '',
    at              timestamptz NOT NULL,
    detail          jsonb,
    status          text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_code       integer     NOT NULL DEFAULT 0,
    last_error      text        NOT NULL DEFAULT '',
    lease_owner     text        NOT NULL DEFAULT '',
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz
);

-- The claim: pending rows by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
-- An endpoint's deliveries, newest first (listing, replay, delete).
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
-- The purge of finished rows by age.
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (created_at) WHERE status <> 'pending';

-- Every attempt of a delivery.
CREATE TABLE webhook_attempts (
    delivery_id bigint      NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n           integer     NOT NULL,                        -- 1, 2, … per delivery
    at          timestamptz NOT NULL,
    code        integer     NOT NULL DEFAULT 0,
    response    text        NOT NULL DEFAULT '',
    error       text        NOT NULL DEFAULT '',
    duration_us bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (delivery_id, n)
);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_routes;
DROP TABLE webhook_endpoints;
