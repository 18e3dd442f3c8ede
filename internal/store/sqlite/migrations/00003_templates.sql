-- Versioned templates, and the locale variant a message was rendered from.

-- +goose Up

-- One row per template name ever stored: the head of its versions. latest counts every version
-- ever stored, so a (name, version) pair always names one content even after a delete and a new
-- PUT (compiled-template caches and messages' template_version rely on it). deleted_at is set by
-- TemplateDelete; the versions stay. Few rows: listings and the layout check scan it.
CREATE TABLE templates (
    name       TEXT    NOT NULL PRIMARY KEY,
    latest     INTEGER NOT NULL,
    origin     TEXT    NOT NULL,               -- origin of the latest version: api or dir
    created_at INTEGER NOT NULL,               -- when version 1 was stored
    deleted_at INTEGER                         -- NULL while live
) STRICT, WITHOUT ROWID;

-- Every version, immutable once written.
CREATE TABLE template_versions (
    name        TEXT    NOT NULL REFERENCES templates (name),
    version     INTEGER NOT NULL,
    subject     TEXT    NOT NULL DEFAULT '',
    html        TEXT    NOT NULL DEFAULT '',
    text        TEXT    NOT NULL DEFAULT '',
    layout      TEXT    NOT NULL DEFAULT '',
    schema      TEXT,                          -- JSON Schema, NULL when none
    description TEXT    NOT NULL DEFAULT '',
    locales     TEXT,                          -- JSON object: locale → {subject, html, text}
    origin      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) STRICT, WITHOUT ROWID;

ALTER TABLE messages ADD COLUMN locale TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE messages DROP COLUMN locale;
DROP TABLE template_versions;
DROP TABLE templates;
