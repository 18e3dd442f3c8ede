-- Campaigns, their runs and each run's recipients (package store, campaigns.go); the same
-- tables as SQLite's 00012.

-- +goose Up

CREATE TABLE campaigns (
    id               text COLLATE "C" NOT NULL PRIMARY KEY,  -- cmp_…
    name             text        NOT NULL,
    template         text        NOT NULL,
    template_version integer     NOT NULL DEFAULT 0,         -- 0: the latest when a run starts
    lists            jsonb,                                   -- array of list ids, NULL for none
    segment_id       text        NOT NULL DEFAULT '',
    from_addr        text        NOT NULL DEFAULT '',
    reply_to         text        NOT NULL DEFAULT '',
    subject          text        NOT NULL DEFAULT '',
    data             json,                                    -- as given (key order kept), NULL for none
    tags             jsonb,
    rate             double precision NOT NULL DEFAULT 0,
    schedule         jsonb       NOT NULL,                    -- store.Schedule
    cap              jsonb       NOT NULL,                    -- store.FrequencyCap
    resume_next_day  boolean     NOT NULL DEFAULT false,
    state            text        NOT NULL,
    pause_reasons    jsonb,
    next_run_at      timestamptz,                             -- NULL: no occurrence to come
    last_run_at      timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- The scheduler's look-up of the campaigns due.
CREATE INDEX campaigns_due ON campaigns (next_run_at) WHERE state = 'scheduled';

-- One row per occurrence; (campaign_id, scheduled_at) is what makes an occurrence start once.
CREATE TABLE campaign_runs (
    id               text COLLATE "C" NOT NULL PRIMARY KEY,  -- run_…
    campaign_id      text COLLATE "C" NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    scheduled_at     timestamptz NOT NULL,
    state            text        NOT NULL,
    pause_reasons    jsonb,
    template_version integer     NOT NULL,
    materialised     boolean     NOT NULL DEFAULT false,
    cursor           text COLLATE "C" NOT NULL DEFAULT '',
    recipients       integer     NOT NULL DEFAULT 0,
    excluded         jsonb       NOT NULL DEFAULT '{}',       -- store.ExcludedCounts
    lease_owner      text        NOT NULL DEFAULT '',
    lease_until      timestamptz,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL,
    UNIQUE (campaign_id, scheduled_at)
);

-- The runs to claim.
CREATE INDEX campaign_runs_running ON campaign_runs (started_at) WHERE state = 'running';

-- Each run's recipients: pending until its message is created, then queued with message_id
-- (whose status is the recipient's from then on), or unsubscribed, suppressed, failed, cancelled.
CREATE TABLE campaign_recipients (
    run_id     text COLLATE "C" NOT NULL REFERENCES campaign_runs (id) ON DELETE CASCADE,
    contact_id text COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    email      text        NOT NULL,
    list_id    text        NOT NULL DEFAULT '',
    status     text        NOT NULL,
    message_id text COLLATE "C",
    reason     text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, contact_id)
);

-- Pending recipients by contact id, and progress counts by state.
CREATE INDEX campaign_recipients_status ON campaign_recipients (run_id, status, contact_id);
-- Deleting a contact deletes its recipient rows.
CREATE INDEX campaign_recipients_contact ON campaign_recipients (contact_id);

-- The frequency cap: when each contact last had a message of the campaign.
CREATE TABLE campaign_contacts (
    campaign_id text COLLATE "C" NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id  text COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    last_at     timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX campaign_contacts_contact ON campaign_contacts (contact_id);

-- Campaign messages created per UTC day ("2006-01-02"), against the campaigns' share of the
-- transport's daily quota.
CREATE TABLE campaign_days (
    day      text    NOT NULL PRIMARY KEY,
    messages integer NOT NULL
);

-- The run a campaign message belongs to (NULL for other messages): a run's progress and its
-- held messages are found by it. Partial, so other messages pay nothing for it.
ALTER TABLE messages ADD COLUMN run_id text COLLATE "C";
CREATE INDEX messages_run ON messages (run_id, status) WHERE run_id IS NOT NULL;

-- +goose Down
DROP INDEX messages_run;
ALTER TABLE messages DROP COLUMN run_id;
DROP TABLE campaign_days;
DROP TABLE campaign_contacts;
DROP TABLE campaign_recipients;
DROP TABLE campaign_runs;
DROP TABLE campaigns;
