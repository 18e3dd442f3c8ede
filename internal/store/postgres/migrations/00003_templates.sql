-- Versioned templates, and the locale variant a message was rendered from.

-- +goose Up

-- One row per template name ever stored: the head of its versions. latest counts every version
-- ever stored, so a (name, version) pair always names one content even after a delete and a new
-- PUT. deleted_at is set by TemplateDelete; the versions stay. TemplatePut locks the head row
-- (FOR UPDATE), which serialises the puts of one name.
CREATE TABLE templates (
    name       text COLLATE "C" NOT NULL PRIMARY KEY,
    latest     integer     NOT NULL,
    origin     text        NOT NULL,           -- origin of the latest version: api or dir
    created_at timestamptz NOT NULL,           -- when version 1 was stored
    deleted_at timestamptz                     -- NULL while live
);

-- Every version, immutable once written.
CREATE TABLE template_versions (
    name        text COLLATE "C" NOT NULL REFERENCES templates (name),
    version     integer     NOT NULL,
    subject     text        NOT NULL DEFAULT '',
    html        text        NOT NULL DEFAULT '',
    text        text        NOT NULL DEFAULT '',
    layout      text        NOT NULL DEFAULT '',
    schema      json,                          -- JSON Schema as stored, NULL when none
    description text        NOT NULL DEFAULT '',
    locales     jsonb,                         -- object: locale → {subject, html, text}
    origin      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (name, version)
);

ALTER TABLE messages ADD COLUMN locale text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE messages DROP COLUMN locale;
DROP TABLE template_versions;
DROP TABLE templates;
