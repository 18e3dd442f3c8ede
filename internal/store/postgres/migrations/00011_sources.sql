-- Sync sources: application databases read into contacts (package store, sources.go). Same
-- tables as SQLite's 00011; times timestamptz, durations bigint microseconds, JSON jsonb, ids and
-- keys COLLATE "C" (byte order, as SQLite compares them).

-- +goose Up

-- One row per configured source. dsn is a secret (it holds the source's password): the API never
-- returns it. mapping names the SELECT's columns (store.SourceMapping); mark_time and mark_key are
-- the high-water mark (updated_at of the last row applied, then its key as a JSON value);
-- lease_owner and lease_until: the node running a pass, so that one node at a time does.
CREATE TABLE sources (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,  -- src_…
    name            text        NOT NULL,
    driver          text        NOT NULL,                   -- mysql | postgres
    dsn             text        NOT NULL,
    query           text        NOT NULL,
    mapping         jsonb       NOT NULL,
    lists           jsonb,                                  -- list ids, NULL for none
    interval_us     bigint      NOT NULL,
    overlap_us      bigint      NOT NULL,
    reconcile_us    bigint      NOT NULL,                   -- 0: never
    mark_time       timestamptz,                            -- NULL: nothing read yet
    mark_key        text,                                   -- JSON value, kept as written
    settled_at      timestamptz,     -- rows updated before it had all committed when the last complete pass began
    status          text        NOT NULL,                   -- ok | error | running
    last_error      text        NOT NULL DEFAULT '',
    last_run_at     timestamptz,
    next_run_at     timestamptz NOT NULL,
    reconciled_at   timestamptz,
    failures        integer     NOT NULL DEFAULT 0,
    last_stats      jsonb,
    lease_owner     text        NOT NULL DEFAULT '',
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- The due sources, claimed by time.
CREATE INDEX sources_due ON sources (next_run_at);

-- Which contact each row of a source became: a reconciliation deletes the contacts whose rows
-- are gone, and only those a source wrote. A contact deleted otherwise takes its links along.
CREATE TABLE source_links (
    source_id  text COLLATE "C" NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    row_key    text COLLATE "C" NOT NULL,
    contact_id text COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    PRIMARY KEY (source_id, row_key)
);

CREATE INDEX source_links_contact ON source_links (contact_id);

-- +goose Down
DROP TABLE source_links;
DROP TABLE sources;
