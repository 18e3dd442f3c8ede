-- Campaigns, their runs and each run's recipients (package store, campaigns.go). Times are unix
-- microseconds UTC, JSON is TEXT, as in 00001.

-- +goose Up

-- One row per campaign. lists, data, tags and pause_reasons are JSON arrays/objects (NULL for
-- none); schedule and cap are the JSON of store.Schedule and store.FrequencyCap.
CREATE TABLE campaigns (
    id               TEXT    NOT NULL PRIMARY KEY,     -- cmp_…
    name             TEXT    NOT NULL,
    template         TEXT    NOT NULL,
    template_version INTEGER NOT NULL DEFAULT 0,       -- 0: the latest when a run starts
    lists            TEXT,
    segment_id       TEXT    NOT NULL DEFAULT '',
    from_addr        TEXT    NOT NULL DEFAULT '',
    reply_to         TEXT    NOT NULL DEFAULT '',
    subject          TEXT    NOT NULL DEFAULT '',
    data             TEXT,
    tags             TEXT,
    rate             REAL    NOT NULL DEFAULT 0,
    schedule         TEXT    NOT NULL,
    cap              TEXT    NOT NULL,
    resume_next_day  INTEGER NOT NULL DEFAULT 0,
    state            TEXT    NOT NULL,
    pause_reasons    TEXT,
    next_run_at      INTEGER,                          -- NULL: no occurrence to come
    last_run_at      INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- The scheduler's look-up of the campaigns due.
CREATE INDEX campaigns_due ON campaigns (next_run_at) WHERE state = 'scheduled';

-- One row per occurrence; (campaign_id, scheduled_at) is what makes an occurrence start once.
-- excluded is the JSON of store.ExcludedCounts.
CREATE TABLE campaign_runs (
    id               TEXT    NOT NULL PRIMARY KEY,     -- run_…
    campaign_id      TEXT    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    scheduled_at     INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    pause_reasons    TEXT,
    template_version INTEGER NOT NULL,
    materialised     INTEGER NOT NULL DEFAULT 0,
    cursor           TEXT    NOT NULL DEFAULT '',
    recipients       INTEGER NOT NULL DEFAULT 0,
    excluded         TEXT    NOT NULL DEFAULT '{}',
    lease_owner      TEXT    NOT NULL DEFAULT '',
    lease_until      INTEGER,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    updated_at       INTEGER NOT NULL,
    UNIQUE (campaign_id, scheduled_at)
) STRICT;

-- The runs to claim.
CREATE INDEX campaign_runs_running ON campaign_runs (started_at) WHERE state = 'running';

-- Each run's recipients: pending until its message is created, then queued with message_id
-- (whose status is the recipient's from then on), or unsubscribed, suppressed, failed, cancelled.
CREATE TABLE campaign_recipients (
    run_id     TEXT    NOT NULL REFERENCES campaign_runs (id) ON DELETE CASCADE,
    contact_id TEXT    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    list_id    TEXT    NOT NULL DEFAULT '',
    status     TEXT    NOT NULL,
    message_id TEXT,
    reason     TEXT    NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, contact_id)
) STRICT, WITHOUT ROWID;

-- Pending recipients by contact id, and progress counts by state.
CREATE INDEX campaign_recipients_status ON campaign_recipients (run_id, status, contact_id);
-- Deleting a contact deletes its recipient rows.
CREATE INDEX campaign_recipients_contact ON campaign_recipients (contact_id);

-- The frequency cap: when each contact last had a message of the campaign.
CREATE TABLE campaign_contacts (
    campaign_id TEXT    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id  TEXT    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    last_at     INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX campaign_contacts_contact ON campaign_contacts (contact_id);

-- Campaign messages created per UTC day ("2006-01-02"), against the campaigns' share of the
-- transport's daily quota.
CREATE TABLE campaign_days (
    day      TEXT    NOT NULL PRIMARY KEY,
    messages INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The run a campaign message belongs to (NULL for other messages): a run's progress and its
-- held messages are found by it. Partial, so other messages pay nothing for it.
ALTER TABLE messages ADD COLUMN run_id TEXT;
CREATE INDEX messages_run ON messages (run_id, status) WHERE run_id IS NOT NULL;

-- +goose Down
DROP INDEX messages_run;
ALTER TABLE messages DROP COLUMN run_id;
DROP TABLE campaign_days;
DROP TABLE campaign_contacts;
DROP TABLE campaign_recipients;
DROP TABLE campaign_runs;
DROP TABLE campaigns;
