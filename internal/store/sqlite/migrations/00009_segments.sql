-- Segments: declared attribute types and saved segments (package store, segments.go). Times are
-- unix microseconds UTC, JSON is TEXT, as in 00001.

-- +goose Up

-- The type of each contact attribute filters may use. Declaring one also creates an index on
-- the attribute's typed value, named contacts_attr_… (driverkit.AttrIndexName), which
-- AttributeDelete drops again.
CREATE TABLE attributes (
    name       TEXT    NOT NULL PRIMARY KEY,  -- store.AttributeNameValid
    type       TEXT    NOT NULL,              -- string | number | bool | time
    created_at INTEGER NOT NULL
) STRICT;

-- Saved filters, kept as the API took them (JSON text) and parsed again whenever used, so that
-- they follow the declarations of their attributes.
CREATE TABLE segments (
    id         TEXT    NOT NULL PRIMARY KEY,  -- seg_…
    name       TEXT    NOT NULL UNIQUE,
    filter     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE segments;
DROP TABLE attributes;
