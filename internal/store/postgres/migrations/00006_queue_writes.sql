-- Less database work per message on the delivery path.
--
-- The raw MIME is compressed with lz4 rather than pglz (the default): several times cheaper to
-- compress at accept and to decompress at claim, for about the same size on mail. Only new values
-- are affected. A server without lz4 (PostgreSQL 13, or one built without it) keeps pglz.
--
-- messages_lease goes: every claim wrote an entry into it. The rescue and the release find the
-- leased messages through messages_status instead (status 'sending': the messages in flight, a
-- few hundred per node at most).

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE 'ALTER TABLE message_raw ALTER COLUMN raw SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    NULL;
END $$;
-- +goose StatementEnd
DROP INDEX messages_lease;

-- +goose Down
CREATE INDEX messages_lease ON messages (lease_until) WHERE status = 'sending';
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE 'ALTER TABLE message_raw ALTER COLUMN raw SET COMPRESSION pglz';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    NULL;
END $$;
-- +goose StatementEnd
