-- CSV imports of contacts (package store, imports.go). Same table as SQLite's 00010; times
-- timestamptz, JSON jsonb, ids COLLATE "C" (byte order, as SQLite compares them).

-- +goose Up

-- status: queued | running | done | failed. node: the node whose disk holds the upload's spool
-- file. offset_bytes/row_no: where a resumed worker starts (the spool offset of the next row,
-- rows consumed with the header). counts: {rows, created, updated, merged, skipped, failed,
-- kept}; errors: the first bad rows [{row, field, reason}]; lists and mapping as given.
CREATE TABLE imports (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,  -- imp_…, time-sortable
    status       text        NOT NULL,
    mode         text        NOT NULL,
    lists        jsonb       NOT NULL DEFAULT '[]',
    mapping      jsonb       NOT NULL DEFAULT '{}',
    filename     text        NOT NULL DEFAULT '',
    node         text        NOT NULL DEFAULT '',
    total_rows   bigint      NOT NULL DEFAULT 0,
    counts       jsonb       NOT NULL DEFAULT '{}',
    errors       jsonb       NOT NULL DEFAULT '[]',
    offset_bytes bigint      NOT NULL DEFAULT 0,
    row_no       bigint      NOT NULL DEFAULT 0,
    reason       text        NOT NULL DEFAULT '',
    lease_owner  text        NOT NULL DEFAULT '',
    lease_until  timestamptz,                            -- NULL: not leased
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz
);

-- The claim: unfinished imports, oldest first.
CREATE INDEX imports_claim ON imports (id) WHERE status IN ('queued', 'running');

-- +goose Down
DROP TABLE imports;
