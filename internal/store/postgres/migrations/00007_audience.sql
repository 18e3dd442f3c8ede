-- The audience: contacts, lists, subscriptions and their consent records (package store,
-- audience.go). Same tables as SQLite's 00007; times timestamptz, JSON jsonb, ids and keys
-- COLLATE "C" (byte order, as SQLite compares them).

-- +goose Up

-- One row per person. email is as the caller last gave it (shown back); email_key is the
-- identity: the lower-cased local part @ the A-label domain, the key the suppression list uses,
-- so addresses differing only in case are one contact. external_id is the id in the customer's
-- own system (NULL when not given). attributes is a JSON object (≤ 64 KB, checked by the caller).
CREATE TABLE contacts (
    id             text COLLATE "C" NOT NULL PRIMARY KEY,  -- ctc_…, time-sortable
    email          text        NOT NULL,
    email_key      text COLLATE "C" NOT NULL UNIQUE,
    external_id    text COLLATE "C" UNIQUE,
    name           text        NOT NULL DEFAULT '',
    locale         text        NOT NULL DEFAULT '',
    timezone       text        NOT NULL DEFAULT '',       -- IANA name, '' when unknown
    attributes     jsonb       NOT NULL DEFAULT '{}',
    last_active_at timestamptz,                           -- NULL: never seen active
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- Lifecycle segments ("not active for 30 days") and listing by activity.
CREATE INDEX contacts_last_active ON contacts (last_active_at, id);

-- Mailing lists. public: shown on the preference page; double_opt_in: a new subscription is
-- pending until confirmed; wording: the consent text shown when subscribing, copied into every
-- consent record so that what a person agreed to is kept even after the list's text changes.
CREATE TABLE lists (
    id            text COLLATE "C" NOT NULL PRIMARY KEY,   -- lst_…
    name          text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    public        boolean     NOT NULL DEFAULT false,
    double_opt_in boolean     NOT NULL DEFAULT false,
    wording       text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- One row per contact × list. status: pending | subscribed | unsubscribed. A row is never
-- deleted by an unsubscribe (the status is the memory that the person left), only with its
-- contact or list.
CREATE TABLE subscriptions (
    list_id         text COLLATE "C" NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    contact_id      text COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status          text        NOT NULL,
    source          text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    confirmed_at    timestamptz,
    unsubscribed_at timestamptz,
    PRIMARY KEY (list_id, contact_id)
);

CREATE INDEX subscriptions_contact ON subscriptions (contact_id, list_id);
CREATE INDEX subscriptions_status ON subscriptions (list_id, status, contact_id);

-- The consent record of every subscription change: what happened, when, from where, and the
-- list's wording at that time. Kept while the contact exists; erased with it.
CREATE TABLE consent_records (
    id         bigserial   PRIMARY KEY,
    contact_id text COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    list_id    text COLLATE "C" NOT NULL,           -- no foreign key: the record outlives a deleted list
    action     text        NOT NULL,                -- subscribe | confirm | unsubscribe | resubscribe
    source     text        NOT NULL DEFAULT '',
    ip         text        NOT NULL DEFAULT '',
    user_agent text        NOT NULL DEFAULT '',
    wording    text        NOT NULL DEFAULT '',
    at         timestamptz NOT NULL
);

CREATE INDEX consent_records_contact ON consent_records (contact_id, id);

-- +goose Down
DROP TABLE consent_records;
DROP TABLE subscriptions;
DROP TABLE lists;
DROP TABLE contacts;
