-- In step with SQLite's 00006, which keeps the sent event of a message sent whole on the message
-- row instead of a message_events row. PostgreSQL keeps inserting the row: nothing changes here.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
