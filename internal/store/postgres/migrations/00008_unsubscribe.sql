-- Unsubscribe: the node-shared secrets (store/secrets.go), suppression scopes, and the list a
-- broadcast message was sent for.

-- +goose Up

-- One row per secret, written once (INSERT … ON CONFLICT DO NOTHING) and never replaced: the
-- signing key of unsubscribe links when POSTIE_SECRET_KEY is unset, the key of erased addresses.
CREATE TABLE secrets (
    name       text        NOT NULL PRIMARY KEY,
    value      bytea       NOT NULL,
    created_at timestamptz NOT NULL
);

-- Suppressions get a scope: 'global' (every stream), 'broadcast' (broadcast mail) or a list id
-- (that list's mail). One row per address and scope; the primary key (email, scope) is the probe
-- of SuppressionMatch. Every existing suppression becomes global.
ALTER TABLE suppressions ADD COLUMN scope text COLLATE "C" NOT NULL DEFAULT 'global';
ALTER TABLE suppressions DROP CONSTRAINT suppressions_pkey;
ALTER TABLE suppressions ADD PRIMARY KEY (email, scope);

-- SuppressionList, newest first; the keyset is (created_at, email, scope).
DROP INDEX suppressions_created;
DROP INDEX suppressions_reason;
CREATE INDEX suppressions_created ON suppressions (created_at, email, scope);
CREATE INDEX suppressions_reason ON suppressions (reason, created_at, email, scope);
CREATE INDEX suppressions_scope ON suppressions (scope, created_at, email);

-- The list a broadcast message was sent for (lst_…), NULL for none: its unsubscribe link
-- leaves that list, and delivery checks that list's suppressions. No foreign key: a list may be
-- deleted while its messages stay.
ALTER TABLE messages ADD COLUMN list_id text;

-- +goose Down
ALTER TABLE messages DROP COLUMN list_id;
DELETE FROM suppressions WHERE scope <> 'global';
DROP INDEX suppressions_scope;
DROP INDEX suppressions_created;
DROP INDEX suppressions_reason;
ALTER TABLE suppressions DROP CONSTRAINT suppressions_pkey;
ALTER TABLE suppressions DROP COLUMN scope;
ALTER TABLE suppressions ADD PRIMARY KEY (email);
CREATE INDEX suppressions_created ON suppressions (created_at, email);
CREATE INDEX suppressions_reason ON suppressions (reason, created_at, email);
DROP TABLE secrets;
