-- The audience: contacts, lists, subscriptions and their consent records (package store,
-- audience.go). Times are unix microseconds UTC, JSON is TEXT, as in 00001.

-- +goose Up

-- One row per person. email is as the caller last gave it (shown back); email_key is the
-- identity: the lower-cased local part @ the A-label domain, the key the suppression list uses,
-- so addresses differing only in case are one contact. external_id is the id in the customer's
-- own system (NULL when not given). attributes is a JSON object (≤ 64 KB, checked by the caller).
CREATE TABLE contacts (
    id             TEXT    NOT NULL PRIMARY KEY,     -- ctc_…, time-sortable
    email          TEXT    NOT NULL,
    email_key      TEXT    NOT NULL UNIQUE,
    external_id    TEXT             UNIQUE,
    name           TEXT    NOT NULL DEFAULT '',
    locale         TEXT    NOT NULL DEFAULT '',
    timezone       TEXT    NOT NULL DEFAULT '',     -- IANA name, '' when unknown
    attributes     TEXT    NOT NULL DEFAULT '{}',   -- JSON object
    last_active_at INTEGER,                         -- NULL: never seen active
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

-- Lifecycle segments ("not active for 30 days") and listing by activity.
CREATE INDEX contacts_last_active ON contacts (last_active_at, id);

-- Mailing lists. public: shown on the preference page; double_opt_in: a new subscription is
-- pending until confirmed; wording: the consent text shown when subscribing, copied into every
-- consent record so that what a person agreed to is kept even after the list's text changes.
CREATE TABLE lists (
    id            TEXT    NOT NULL PRIMARY KEY,      -- lst_…
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    public        INTEGER NOT NULL DEFAULT 0,
    double_opt_in INTEGER NOT NULL DEFAULT 0,
    wording       TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- One row per contact × list. status: pending | subscribed | unsubscribed. A row is never
-- deleted by an unsubscribe (the status is the memory that the person left), only with its
-- contact or list.
CREATE TABLE subscriptions (
    list_id         TEXT    NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    contact_id      TEXT    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status          TEXT    NOT NULL,
    source          TEXT    NOT NULL DEFAULT '',    -- api | import | sync | form | unsubscribe_link | …
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    confirmed_at    INTEGER,                        -- double opt-in confirmation
    unsubscribed_at INTEGER,
    PRIMARY KEY (list_id, contact_id)
) STRICT, WITHOUT ROWID;

-- A contact's subscriptions; list membership by status (audience counts, campaign runs) uses
-- the primary key.
CREATE INDEX subscriptions_contact ON subscriptions (contact_id, list_id);
CREATE INDEX subscriptions_status ON subscriptions (list_id, status, contact_id);

-- The consent record of every subscription change: what happened, when, from where, and the
-- list's wording at that time. Kept while the contact exists; erased with it.
CREATE TABLE consent_records (
    id         INTEGER NOT NULL PRIMARY KEY,
    contact_id TEXT    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    list_id    TEXT    NOT NULL,                    -- no foreign key: the record outlives a deleted list
    action     TEXT    NOT NULL,                    -- subscribe | confirm | unsubscribe | resubscribe
    source     TEXT    NOT NULL DEFAULT '',
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    wording    TEXT    NOT NULL DEFAULT '',
    at         INTEGER NOT NULL
) STRICT;

CREATE INDEX consent_records_contact ON consent_records (contact_id, id);

-- +goose Down
DROP TABLE consent_records;
DROP TABLE subscriptions;
DROP TABLE lists;
DROP TABLE contacts;
