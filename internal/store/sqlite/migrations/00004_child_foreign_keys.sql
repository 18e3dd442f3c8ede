-- In step with PostgreSQL's 00004, which drops the foreign keys of message_raw,
-- message_recipients and message_events for speed (see there). SQLite keeps them: a check is one
-- primary-key lookup in the writer's own connection, with no row lock, and dropping a key would
-- mean rebuilding each table.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
