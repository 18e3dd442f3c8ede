-- Scoped API keys (store.APIKey): the same columns as SQLite's 00016.

-- +goose Up
ALTER TABLE api_keys
    ADD COLUMN scopes         jsonb            NOT NULL DEFAULT '[]',  -- array of scopes
    ADD COLUMN sender_domains jsonb            NOT NULL DEFAULT '[]',  -- array; [] = any
    ADD COLUMN rate_limit     double precision NOT NULL DEFAULT 0,     -- messages/s; 0 = none
    ADD COLUMN burst          integer          NOT NULL DEFAULT 0,
    ADD COLUMN last_used_at   timestamptz,                             -- NULL: never used
    ADD COLUMN revoked_at     timestamptz;                             -- NULL: live

-- The keys made before scopes existed could do everything: they keep doing so. (The column's
-- default stays the empty list, so a key inserted without scopes can do nothing.)
UPDATE api_keys SET scopes = '["admin"]';

-- +goose Down
ALTER TABLE api_keys
    DROP COLUMN revoked_at,
    DROP COLUMN last_used_at,
    DROP COLUMN burst,
    DROP COLUMN rate_limit,
    DROP COLUMN sender_domains,
    DROP COLUMN scopes;
