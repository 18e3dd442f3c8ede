-- Segments: declared attribute types and saved segments (package store, segments.go). Same
-- tables as SQLite's 00009; times timestamptz, JSON jsonb, names and ids COLLATE "C".

-- +goose Up

-- The type of each contact attribute filters may use. Declaring one also creates an index on
-- the attribute's typed value, named contacts_attr_… (driverkit.AttrIndexName), which
-- AttributeDelete drops again.
CREATE TABLE attributes (
    name       text COLLATE "C" NOT NULL PRIMARY KEY,  -- store.AttributeNameValid
    type       text        NOT NULL,                   -- string | number | bool | time
    created_at timestamptz NOT NULL
);

-- Saved filters, kept as the API took them and parsed again whenever used, so that they follow
-- the declarations of their attributes.
CREATE TABLE segments (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,  -- seg_…
    name       text        NOT NULL UNIQUE,
    filter     jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- The value of a time attribute in milliseconds since the epoch: a JSON string in RFC 3339 form
-- with a zone (Z or ±hh:mm up to ±14:00) naming a real time (hours 00–23, seconds 00–59), else
-- NULL, as the SQLite driver's expression reads it. A value that looks right but is no time (February 30th) is NULL too, rather than an
-- error that would fail every query and the index. The cast to timestamptz is only STABLE in
-- general (a string without a zone would depend on the session's TimeZone); with the zone
-- required it is not, so the function is IMMUTABLE and can be indexed. It is PARALLEL UNSAFE:
-- its exception block starts a subtransaction, which a parallel worker (of a parallel index
-- build, say) cannot.
-- +goose StatementBegin
CREATE FUNCTION postie_time_ms(v jsonb) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL UNSAFE AS $$
BEGIN
    IF jsonb_typeof(v) <> 'string'
       OR (v #>> '{}') !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])$' THEN
        RETURN NULL;
    END IF;
    RETURN round(extract(epoch FROM (v #>> '{}')::timestamptz) * 1000)::bigint;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR invalid_time_zone_displacement_value THEN
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The attribute indexes use postie_time_ms or only the contacts table; drop them all by name.
-- +goose StatementBegin
DO $$
DECLARE i text;
BEGIN
    FOR i IN SELECT indexname FROM pg_indexes WHERE tablename = 'contacts' AND indexname LIKE 'contacts\_attr\_%' LOOP
        EXECUTE format('DROP INDEX %I', i);
    END LOOP;
END $$;
-- +goose StatementEnd
DROP FUNCTION postie_time_ms(jsonb);
DROP TABLE segments;
DROP TABLE attributes;
