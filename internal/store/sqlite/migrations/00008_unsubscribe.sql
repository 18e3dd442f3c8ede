-- Unsubscribe: the node-shared secrets (store/secrets.go).

-- +goose Up

-- One row per secret, written once (INSERT … ON CONFLICT DO NOTHING) and never replaced: the
-- signing key of unsubscribe links when POSTIE_SECRET_KEY is unset, the key of erased addresses.
CREATE TABLE secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE secrets;
