package sqlite

// The statements of the campaigns area (campaigns.go). A run's materialisation statement is
// assembled for each audience (materialiseQuery).
const (
	campaignColumns = `id, name, template, template_version, lists, segment_id, from_addr, reply_to, subject,
	data, tags, rate, schedule, cap, resume_next_day, state, pause_reasons, next_run_at, last_run_at,
	created_at, updated_at`

	// ON CONFLICT DO NOTHING: an id already stored returns no row (ErrConflict).
	qCampaignInsert = `INSERT INTO campaigns (` + campaignColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING
		RETURNING ` + campaignColumns

	qCampaignGet = `SELECT ` + campaignColumns + ` FROM campaigns WHERE id = ?`

	// ?1 state ('' for all), ?2 cursor ('' for the first page), newest first.
	qCampaignList = `SELECT ` + campaignColumns + ` FROM campaigns
		WHERE (?1 = '' OR state = ?1) AND (?2 = '' OR id < ?2) ORDER BY id DESC LIMIT ?3`

	// The states allowed are a JSON array (?2).
	qCampaignUpdate = `UPDATE campaigns SET name = ?3, template = ?4, template_version = ?5, lists = ?6,
			segment_id = ?7, from_addr = ?8, reply_to = ?9, subject = ?10, data = ?11, tags = ?12, rate = ?13,
			schedule = ?14, cap = ?15, resume_next_day = ?16, next_run_at = ?17, updated_at = ?18
		WHERE id = ?1 AND state IN (SELECT value FROM json_each(?2))
		RETURNING ` + campaignColumns

	qCampaignDelete = `DELETE FROM campaigns WHERE id = ?1 AND state IN (SELECT value FROM json_each(?2))`

	qCampaignState = `SELECT state FROM campaigns WHERE id = ?`

	qCampaignSetState = `UPDATE campaigns SET state = ?3, pause_reasons = ?4, next_run_at = ?5, updated_at = ?6
		WHERE id = ?1 AND state IN (SELECT value FROM json_each(?2))
		RETURNING ` + campaignColumns

	// Through the partial index campaigns_due, whose condition it repeats.
	qCampaignsDue = `SELECT ` + campaignColumns + ` FROM campaigns
		WHERE state = 'scheduled' AND next_run_at <= ?1 ORDER BY next_run_at, id LIMIT ?2`

	qCampaignDayCount = `SELECT messages FROM campaign_days WHERE day = ?`

	runColumns = `id, campaign_id, scheduled_at, state, pause_reasons, template_version, materialised,
	cursor, recipients, excluded, lease_owner, lease_until, started_at, finished_at, updated_at`

	// ON CONFLICT DO NOTHING: an occurrence (or id) already stored returns no row.
	qRunInsert = `INSERT INTO campaign_runs (id, campaign_id, scheduled_at, state, template_version,
			lease_owner, lease_until, started_at, updated_at)
		VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?7)
		ON CONFLICT DO NOTHING
		RETURNING ` + runColumns

	qRunCampaignStarted = `UPDATE campaigns SET state = 'running', pause_reasons = NULL, next_run_at = ?2,
			last_run_at = ?3, updated_at = ?4
		WHERE id = ?1`

	qRunGet = `SELECT ` + runColumns + ` FROM campaign_runs WHERE id = ?`

	qRunList = `SELECT ` + runColumns + ` FROM campaign_runs WHERE campaign_id = ?1
		ORDER BY scheduled_at DESC LIMIT ?2`

	// Oldest started first, through the partial index campaign_runs_running.
	qRunClaim = `UPDATE campaign_runs SET lease_owner = ?1, lease_until = ?3
		WHERE id IN (SELECT id FROM campaign_runs
			WHERE state = 'running' AND (lease_owner = '' OR lease_until IS NULL OR lease_until <= ?2)
			ORDER BY started_at, id LIMIT ?4)
		RETURNING ` + runColumns

	qRunRenew = `UPDATE campaign_runs SET lease_until = ?1
		WHERE id IN (SELECT value FROM json_each(?2)) AND lease_owner = ?3`

	// The leases whose owner begins with ?1 (compared with substr rather than LIKE, whose _ and
	// % a node id may contain): '' releases every lease.
	qRunRelease = `UPDATE campaign_runs SET lease_owner = '', lease_until = NULL
		WHERE lease_owner <> '' AND substr(lease_owner, 1, length(?1)) = ?1`

	// The run as a chunk of its materialisation or queue finds it, with its campaign's cap.
	qRunWork = `SELECT r.campaign_id, r.state, r.lease_owner, r.materialised, r.cursor, r.excluded, c.cap
		FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id WHERE r.id = ?`

	// After a chunk's INSERT: the last contact it considered (the chunk's ids are above every
	// earlier chunk's).
	qRunLastContact = `SELECT max(contact_id) FROM campaign_recipients WHERE run_id = ?`

	// The contacts a chunk considered but left out were inserted with a state naming why
	// (materialiseQuery): they are deleted, through campaign_recipients_status, and counted.
	qRunDropExcluded = `DELETE FROM campaign_recipients INDEXED BY campaign_recipients_status
		WHERE run_id = ?1 AND status IN ('-unsubscribed', '-pending', '-suppressed', '-capped')
		RETURNING status`

	qRunMaterialised = `UPDATE campaign_runs SET cursor = ?2, recipients = recipients + ?3, excluded = ?4,
			materialised = ?5, updated_at = ?6
		WHERE id = ?1`

	// RunPending and RunRecipients: a recipient, then (RunPending) its contact.
	recipientColumns = `r.contact_id, r.email, r.list_id, r.status, coalesce(r.message_id, ''), r.reason,
	r.updated_at`

	qRunPending = `SELECT ` + recipientColumns + `, c.id, c.email, c.email_key, c.external_id, c.name,
			c.locale, c.timezone, c.attributes, c.last_active_at, c.created_at, c.updated_at
		FROM campaign_recipients r INDEXED BY campaign_recipients_status
			JOIN contacts c ON c.id = r.contact_id
		WHERE r.run_id = ?1 AND r.status = 'pending' AND r.contact_id > ?2
		ORDER BY r.contact_id LIMIT ?3`

	qRunRecipients = `SELECT ` + recipientColumns + ` FROM campaign_recipients r
		WHERE r.run_id = ?1 AND r.contact_id > ?2 ORDER BY r.contact_id LIMIT ?3`

	qRunRecipientsByStatus = `SELECT ` + recipientColumns + ` FROM campaign_recipients r
		INDEXED BY campaign_recipients_status
		WHERE r.run_id = ?1 AND r.status = ?4 AND r.contact_id > ?2 ORDER BY r.contact_id LIMIT ?3`

	// RunQueue: which of the chunk's contacts (a JSON array) are still pending.
	qRunQueuePending = `SELECT contact_id FROM campaign_recipients
		WHERE run_id = ?1 AND status = 'pending' AND contact_id IN (SELECT value FROM json_each(?2))`

	// The outcomes, a JSON array of [contact id, state, message id or null, reason]. INDEXED BY
	// makes the outcomes the outer loop, each finding its row by contact, rather than every
	// pending recipient of the run being matched against the array.
	qRunQueueRecipients = `UPDATE campaign_recipients INDEXED BY campaign_recipients_contact
		SET status = o.value ->> 1, message_id = o.value ->> 2, reason = o.value ->> 3, updated_at = ?2
		FROM json_each(?3) o
		WHERE campaign_recipients.run_id = ?1 AND campaign_recipients.contact_id = o.value ->> 0
			AND campaign_recipients.status = 'pending'`

	qRunQueueContacts = `INSERT INTO campaign_contacts (campaign_id, contact_id, last_at)
		SELECT ?1, value, ?2 FROM json_each(?3) WHERE true
		ON CONFLICT (campaign_id, contact_id) DO UPDATE SET last_at = excluded.last_at`

	qRunQueueDay = `INSERT INTO campaign_days (day, messages) VALUES (?1, ?2)
		ON CONFLICT (day) DO UPDATE SET messages = messages + excluded.messages`

	qRunState = `SELECT state FROM campaign_runs WHERE id = ?`

	// ?3 is the new state, ?5 its finished_at (NULL unless finished or cancelled).
	qRunSetState = `UPDATE campaign_runs SET state = ?3, pause_reasons = ?4, finished_at = ?5, updated_at = ?6
		WHERE id = ?1 AND state IN (SELECT value FROM json_each(?2))
		RETURNING ` + runColumns

	// Holding: the run's messages still waiting (through messages_run) are not due until
	// resumed; resumed, they are due at once with at least the TTL from then (a NULL expiry,
	// none, stays).
	qRunHold = `UPDATE messages SET next_attempt_at = ?2, updated_at = ?3
		WHERE run_id = ?1 AND status IN ('scheduled', 'queued', 'deferred') AND next_attempt_at <> ?2`

	qRunUnhold = `UPDATE messages SET next_attempt_at = ?3,
			expires_at = CASE WHEN expires_at IS NULL THEN NULL ELSE max(expires_at, ?4) END, updated_at = ?3
		WHERE run_id = ?1 AND status IN ('scheduled', 'queued', 'deferred') AND next_attempt_at = ?2`

	// Cancelling: the events first, while the messages are still cancellable (campaign
	// messages have one recipient each, so none is split), then the messages and the
	// recipients still pending.
	qRunCancelEvents = `INSERT INTO message_events (message_id, type, at, detail)
		SELECT id, 'cancelled', ?2, NULL FROM messages
		WHERE run_id = ?1 AND status IN ('scheduled', 'queued', 'deferred') AND pending_recipients IS NULL
		ORDER BY id`

	// The message.cancelled reports of those messages (outbox.go), first too.
	qRunCancelWebhooks = `INSERT INTO webhook_deliveries (endpoint_id, type, subject, recipient,
			campaign_id, run_id, at, detail, next_attempt_at, created_at)
		SELECT r.endpoint_id, 'message.cancelled', m.id, mr.email_lower, coalesce(m.campaign_id, ''),
			m.run_id, ?2, NULL, ?2, ?2
		FROM messages m
			JOIN message_recipients mr ON mr.message_id = m.id
			JOIN webhook_routes r ON r.type = 'message.cancelled'
		WHERE m.run_id = ?1 AND m.status IN ('scheduled', 'queued', 'deferred') AND m.pending_recipients IS NULL
		ORDER BY m.id, mr.email_lower, r.endpoint_id`

	qRunCancelMessages = `UPDATE messages SET status = 'cancelled', updated_at = ?2
		WHERE run_id = ?1 AND status IN ('scheduled', 'queued', 'deferred') AND pending_recipients IS NULL`

	qRunCancelRecipients = `UPDATE campaign_recipients SET status = 'cancelled', updated_at = ?2
		WHERE run_id = ?1 AND status = 'pending'`

	qRunCampaignState = `UPDATE campaigns SET state = ?2, pause_reasons = ?3, next_run_at = ?4, updated_at = ?5
		WHERE id = ?1`

	// RunInFlight: three ranges of messages_run, as long as the run's window, not the run.
	qRunInFlight = `SELECT count(*) FROM messages WHERE run_id = ?1 AND status IN ('scheduled', 'queued', 'sending')`

	// Progress in one statement (one snapshot): the run's messages by status, through
	// messages_run, and its recipients without a message by state, through
	// campaign_recipients_status.
	qRunProgress = `SELECT 'm', status, count(*) FROM messages WHERE run_id = ?1 GROUP BY status
		UNION ALL
		SELECT 'r', status, count(*) FROM campaign_recipients
		WHERE run_id = ?1 AND status IN ('pending', 'unsubscribed', 'suppressed', 'failed', 'cancelled')
		GROUP BY status`
)
