-- Unsubscribe: the node-shared secrets (store/secrets.go).

-- +goose Up

-- One row per secret, written once (INSERT … ON CONFLICT DO NOTHING) and never replaced: the
-- signing key of unsubscribe links when POSTIE_SECRET_KEY is unset, the key of erased addresses.
CREATE TABLE secrets (
    name       text        NOT NULL PRIMARY KEY,
    value      bytea       NOT NULL,
    created_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE secrets;
