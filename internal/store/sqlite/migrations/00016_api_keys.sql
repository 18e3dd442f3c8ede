-- Scoped API keys (store.APIKey): what a key may do, the From domains it may send from, its
-- rate limit in messages per second with its burst, when it was last used, and when it was
-- revoked (a revoked key stays listed, refused). Times are unix microseconds UTC, JSON is TEXT,
-- as in 00001.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';         -- JSON array of scopes
ALTER TABLE api_keys ADD COLUMN sender_domains TEXT NOT NULL DEFAULT '[]'; -- JSON array; [] = any
ALTER TABLE api_keys ADD COLUMN rate_limit REAL NOT NULL DEFAULT 0;        -- messages/s; 0 = none
ALTER TABLE api_keys ADD COLUMN burst INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;                      -- NULL: never used
ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;                        -- NULL: live

-- The keys made before scopes existed could do everything: they keep doing so. (The column's
-- default stays the empty list, so a key inserted without scopes can do nothing.)
UPDATE api_keys SET scopes = '["admin"]';

-- +goose Down
ALTER TABLE api_keys DROP COLUMN revoked_at;
ALTER TABLE api_keys DROP COLUMN last_used_at;
ALTER TABLE api_keys DROP COLUMN burst;
ALTER TABLE api_keys DROP COLUMN rate_limit;
ALTER TABLE api_keys DROP COLUMN sender_domains;
ALTER TABLE api_keys DROP COLUMN scopes;
