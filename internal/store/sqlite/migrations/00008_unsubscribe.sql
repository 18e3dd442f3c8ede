-- Unsubscribe: the node-shared secrets (store/secrets.go), suppression scopes, and the list a
-- broadcast message was sent for.

-- +goose Up

-- One row per secret, written once (INSERT … ON CONFLICT DO NOTHING) and never replaced: the
-- signing key of unsubscribe links when POSTIE_SECRET_KEY is unset, the key of erased addresses.
CREATE TABLE secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Suppressions get a scope: 'global' (every stream), 'broadcast' (broadcast mail) or a list id
-- (that list's mail). One row per address and scope; the primary key (email, scope) is the probe
-- of SuppressionMatch. SQLite cannot change a primary key in place: the table is rebuilt, every
-- existing suppression becoming global.
CREATE TABLE suppressions_scoped (
    email      TEXT    NOT NULL,
    scope      TEXT    NOT NULL DEFAULT 'global',
    reason     TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '',
    message_id TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (email, scope)
) STRICT, WITHOUT ROWID;
INSERT INTO suppressions_scoped (email, scope, reason, detail, message_id, created_at, expires_at)
    SELECT email, 'global', reason, detail, message_id, created_at, expires_at FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_scoped RENAME TO suppressions;

-- SuppressionList, newest first; the keyset is (created_at, email, scope).
CREATE INDEX suppressions_created ON suppressions (created_at, email, scope);
CREATE INDEX suppressions_reason ON suppressions (reason, created_at, email, scope);
CREATE INDEX suppressions_scope ON suppressions (scope, created_at, email);

-- The list a broadcast message was sent for (lst_…), NULL for none: its unsubscribe link
-- leaves that list, and delivery checks that list's suppressions. No foreign key: a list may be
-- deleted while its messages stay.
ALTER TABLE messages ADD COLUMN list_id TEXT;

-- +goose Down
ALTER TABLE messages DROP COLUMN list_id;
CREATE TABLE suppressions_global (
    email      TEXT    NOT NULL PRIMARY KEY,
    reason     TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '',
    message_id TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER
) STRICT, WITHOUT ROWID;
INSERT INTO suppressions_global SELECT email, reason, detail, message_id, created_at, expires_at
    FROM suppressions WHERE scope = 'global';
DROP TABLE suppressions;
ALTER TABLE suppressions_global RENAME TO suppressions;
CREATE INDEX suppressions_created ON suppressions (created_at, email);
CREATE INDEX suppressions_reason ON suppressions (reason, created_at, email);
DROP TABLE secrets;
