-- CSV imports of contacts (package store, imports.go): one row per import, the job a worker
-- runs under a lease. Times are unix microseconds UTC, JSON is TEXT, as in 00001.

-- +goose Up

-- status: queued | running | done | failed. node: the node whose disk holds the upload's spool
-- file. offset_bytes/row_no: where a resumed worker starts (the spool offset of the next row,
-- rows consumed with the header). counts: {rows, created, updated, merged, skipped, failed,
-- kept}; errors: the first bad rows [{row, field, reason}]; lists and mapping as given.
CREATE TABLE imports (
    id           TEXT    NOT NULL PRIMARY KEY,      -- imp_…, time-sortable
    status       TEXT    NOT NULL,
    mode         TEXT    NOT NULL,
    lists        TEXT    NOT NULL DEFAULT '[]',
    mapping      TEXT    NOT NULL DEFAULT '{}',
    filename     TEXT    NOT NULL DEFAULT '',
    node         TEXT    NOT NULL DEFAULT '',
    total_rows   INTEGER NOT NULL DEFAULT 0,
    counts       TEXT    NOT NULL DEFAULT '{}',
    errors       TEXT    NOT NULL DEFAULT '[]',
    offset_bytes INTEGER NOT NULL DEFAULT 0,
    row_no       INTEGER NOT NULL DEFAULT 0,
    reason       TEXT    NOT NULL DEFAULT '',
    lease_owner  TEXT    NOT NULL DEFAULT '',
    lease_until  INTEGER,                          -- NULL: not leased
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER
) STRICT;

-- The claim: unfinished imports, oldest first.
CREATE INDEX imports_claim ON imports (id) WHERE status IN ('queued', 'running');

-- +goose Down
DROP TABLE imports;
