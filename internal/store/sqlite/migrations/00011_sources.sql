-- Sync sources: application databases read into contacts (package store, sources.go). Times are
-- unix microseconds UTC, JSON is TEXT, as in 00001.

-- +goose Up

-- One row per configured source. dsn is a secret (it holds the source's password): the API never
-- returns it. mapping names the SELECT's columns (JSON, store.SourceMapping); mark_time and
-- mark_key are the high-water mark (updated_at of the last row applied, then its key as a JSON
-- value); lease_owner and lease_until: the node running a pass, so that one node at a time does.
CREATE TABLE sources (
    id              TEXT    NOT NULL PRIMARY KEY,      -- src_…
    name            TEXT    NOT NULL,
    driver          TEXT    NOT NULL,                  -- mysql | postgres
    dsn             TEXT    NOT NULL,
    query           TEXT    NOT NULL,
    mapping         TEXT    NOT NULL,                  -- JSON object
    lists           TEXT,                              -- JSON array of list ids, NULL for none
    interval_us     INTEGER NOT NULL,
    overlap_us      INTEGER NOT NULL,
    reconcile_us    INTEGER NOT NULL,                  -- 0: never
    mark_time       INTEGER,                           -- NULL: nothing read yet
    mark_key        TEXT,
    settled_at      INTEGER,             -- rows updated before it had all committed when the last complete pass began
    status          TEXT    NOT NULL,                  -- ok | error | running
    last_error      TEXT    NOT NULL DEFAULT '',
    last_run_at     INTEGER,
    next_run_at     INTEGER NOT NULL,
    reconciled_at   INTEGER,
    failures        INTEGER NOT NULL DEFAULT 0,
    last_stats      TEXT,                              -- JSON, store.SourceStats
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

-- The due sources, claimed by time.
CREATE INDEX sources_due ON sources (next_run_at);

-- Which contact each row of a source became: a reconciliation deletes the contacts whose rows
-- are gone, and only those a source wrote. A contact deleted otherwise takes its links along.
CREATE TABLE source_links (
    source_id  TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    row_key    TEXT NOT NULL,                          -- the row's key, as text
    contact_id TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    PRIMARY KEY (source_id, row_key)
) STRICT, WITHOUT ROWID;

CREATE INDEX source_links_contact ON source_links (contact_id);

-- +goose Down
DROP TABLE source_links;
DROP TABLE sources;
