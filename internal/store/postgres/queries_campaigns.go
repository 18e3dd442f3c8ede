package postgres

// The statements of the campaigns area (campaigns.go). JSON columns are bound as text and cast,
// as everywhere in the driver, so that they work in every query exec mode.
const (
	campaignColumns = `id, name, template, template_version, lists, segment_id, from_addr, reply_to,
	subject, data, tags, rate, schedule, cap, resume_next_day, state, pause_reasons, next_run_at,
	last_run_at, created_at, updated_at`

	qCampaignInsert = `INSERT INTO campaigns (` + campaignColumns + `)
		VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $8, $9, $10::text::json, $11::text::jsonb, $12,
			$13::text::jsonb, $14::text::jsonb, $15, $16, $17::text::jsonb, $18, $19, $20, $21)
		RETURNING ` + campaignColumns

	qCampaignGet = `SELECT ` + campaignColumns + ` FROM campaigns WHERE id = $1`

	// Keyset by id, newest first; $1 = '' for every state, $2 = '' for the first page.
	qCampaignList = `SELECT ` + campaignColumns + ` FROM campaigns
		WHERE ($1 = '' OR state = $1) AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`

	qCampaignUpdate = `UPDATE campaigns SET name = $2, template = $3, template_version = $4,
			lists = $5::text::jsonb, segment_id = $6, from_addr = $7, reply_to = $8, subject = $9,
			data = $10::text::json, tags = $11::text::jsonb, rate = $12, schedule = $13::text::jsonb,
			cap = $14::text::jsonb, resume_next_day = $15, next_run_at = $16, updated_at = $17
		WHERE id = $1 AND state = ANY ($18::text[])
		RETURNING ` + campaignColumns

	qCampaignDelete = `DELETE FROM campaigns WHERE id = $1 AND state = ANY ($2::text[])`

	qCampaignSetState = `UPDATE campaigns SET state = $2, pause_reasons = $3::text::jsonb, next_run_at = $4,
			updated_at = $5
		WHERE id = $1 AND state = ANY ($6::text[])
		RETURNING ` + campaignColumns

	// Through campaigns_due.
	qCampaignsDue = `SELECT ` + campaignColumns + ` FROM campaigns
		WHERE state = 'scheduled' AND next_run_at <= $1 ORDER BY next_run_at, id LIMIT $2`

	qCampaignDayCount = `SELECT messages FROM campaign_days WHERE day = $1`

	// RunCreate: the campaign's row is locked first, so that two nodes starting occurrences of
	// one campaign do it one after the other; the unique (campaign_id, scheduled_at) makes a
	// second start of one occurrence insert nothing.
	qCampaignLockState = `SELECT state FROM campaigns WHERE id = $1 FOR UPDATE`

	qCampaignStarted = `UPDATE campaigns SET state = 'running', pause_reasons = NULL, next_run_at = $2,
			last_run_at = $3, updated_at = $4
		WHERE id = $1`

	runColumns = `id, campaign_id, scheduled_at, state, pause_reasons, template_version, materialised,
	cursor, recipients, excluded, lease_owner, lease_until, started_at, finished_at, updated_at`

	qRunInsert = `INSERT INTO campaign_runs (id, campaign_id, scheduled_at, state, template_version,
			lease_owner, lease_until, started_at, updated_at)
		VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $7)
		ON CONFLICT (campaign_id, scheduled_at) DO NOTHING
		RETURNING ` + runColumns

	qRunGet = `SELECT ` + runColumns + ` FROM campaign_runs WHERE id = $1`

	qRunList = `SELECT ` + runColumns + ` FROM campaign_runs WHERE campaign_id = $1
		ORDER BY scheduled_at DESC LIMIT $2`

	// The claim of runs, as of messages: FOR UPDATE SKIP LOCKED lets every node claim at once
	// without waiting for the others and without two ever taking the same run (a row another
	// claimer holds is passed over; READ COMMITTED re-checks the lease of a row that changed since
	// the statement began). The condition repeats the partial index campaign_runs_running's.
	qRunClaim = `UPDATE campaign_runs SET lease_owner = $1, lease_until = $2, updated_at = $3
		WHERE id IN (
			SELECT id FROM campaign_runs
			WHERE state = 'running' AND (lease_owner = '' OR lease_until IS NULL OR lease_until <= $3)
			ORDER BY started_at, id
			LIMIT $4
			FOR UPDATE SKIP LOCKED)
		RETURNING ` + runColumns

	qRunRenew = `UPDATE campaign_runs SET lease_until = $1 WHERE id = ANY ($2::text[]) AND lease_owner = $3`

	// The leases whose owner begins with $1 ('': every lease), compared with left rather than
	// LIKE, whose _ and % an owner may contain (as qRelease).
	qRunRelease = `UPDATE campaign_runs SET lease_owner = '', lease_until = NULL
		WHERE lease_owner <> '' AND left(lease_owner, length($1)) = $1`

	qRunExists = `SELECT 1 FROM campaign_runs WHERE id = $1`

	// RunQueue and RunSetState lock the run first: RunQueue shares the lock (the chunks of one
	// run may be stored at once), a change of state takes it alone, so that a chunk is stored
	// wholly before a pause or cancel moves its messages, or not at all after it.
	qRunLockShare = `SELECT state, lease_owner, campaign_id FROM campaign_runs WHERE id = $1 FOR SHARE`
	qRunLock      = `SELECT state, campaign_id FROM campaign_runs WHERE id = $1 FOR UPDATE`

	// RunQueue: the outcomes of the recipients still pending ($3…$6, one row each). The rows
	// changed come back: only their messages are inserted, so a repeat inserts none. Each
	// recipient is found by its own probe (LIMIT keeps the subquery from being joined as a
	// whole): planned as a join, a run whose rows the planner has no statistics of yet (a new
	// run) was read whole for each chunk. A row changed by another transaction since it was found
	// is left as it is (its ctid no longer matches).
	qRunRecipientsSet = `WITH t AS (
			SELECT x.rid, u.status, u.message_id, u.reason
			FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS u (contact_id, status, message_id, reason)
			CROSS JOIN LATERAL (
				SELECT r.ctid AS rid FROM campaign_recipients r
				WHERE r.run_id = $1 AND r.contact_id = u.contact_id AND r.status = 'pending'
				LIMIT 1) x)
		UPDATE campaign_recipients r
		SET status = t.status, message_id = nullif(t.message_id, ''), reason = t.reason, updated_at = $2
		FROM t
		WHERE r.ctid = t.rid AND r.status = 'pending'
		RETURNING r.contact_id`

	// The frequency cap's record, for a campaign with a cap only; in contact order, so that
	// concurrent chunks lock the rows in one order.
	qCampaignContactsSet = `INSERT INTO campaign_contacts (campaign_id, contact_id, last_at)
		SELECT $1, c, $2 FROM unnest($3::text[]) AS c
		WHERE EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND cap ->> 'kind' <> '')
		ORDER BY c
		ON CONFLICT (campaign_id, contact_id) DO UPDATE SET last_at = excluded.last_at`

	qCampaignDayAdd = `INSERT INTO campaign_days (day, messages) VALUES ($1, $2)
		ON CONFLICT (day) DO UPDATE SET messages = campaign_days.messages + excluded.messages`

	// RunSetState to paused: the run's messages not handed to a relay are held ($2 HeldUntil),
	// those not held yet (a paused run's message deferred or requeued since it paused, too).
	qRunHold = `UPDATE messages SET next_attempt_at = $2, updated_at = $3
		WHERE run_id = $1 AND status IN ('queued', 'deferred') AND next_attempt_at < $2`

	// Running from paused: the held messages are due at once, with at least the TTL from now
	// ($4 now + TTL) to be sent in.
	qRunUnhold = `UPDATE messages SET next_attempt_at = $3, expires_at = greatest(expires_at, $4), updated_at = $3
		WHERE run_id = $1 AND status IN ('queued', 'deferred') AND next_attempt_at >= $2
		RETURNING stream`

	// Cancelled: the run's messages still waiting, with a cancelled event each (as qMessageCancel),
	// then its pending recipients. A campaign message has one recipient, so it is never split.
	qRunCancelMessages = `WITH c AS (
			UPDATE messages SET status = 'cancelled', updated_at = $2
			WHERE run_id = $1 AND ` + claimable + `
			RETURNING id, coalesce(campaign_id, '') AS campaign_id, run_id),
		e AS (INSERT INTO message_events (message_id, type, at) SELECT id, 'cancelled', $2 FROM c ORDER BY id),
		wh AS (` + outboxFrom + `SELECT 'message.cancelled' AS type, c.id AS subject,
				mr.email_lower AS recipient, c.campaign_id, c.run_id, $2::timestamptz AS at,
				NULL::jsonb AS detail, $2::timestamptz AS created
			FROM c JOIN message_recipients mr ON mr.message_id = c.id
			ORDER BY c.id, mr.email_lower` + outboxTo + `)
		SELECT count(*) FROM wh`
	qRunCancelPending = `UPDATE campaign_recipients SET status = 'cancelled', updated_at = $2
		WHERE run_id = $1 AND status = 'pending'`

	// finished_at is set once, by the first change to finished or cancelled.
	qRunSetState = `UPDATE campaign_runs SET state = $2, pause_reasons = $3::text::jsonb,
			finished_at = CASE WHEN $2 IN ('finished', 'cancelled') THEN coalesce(finished_at, $4) END,
			updated_at = $4
		WHERE id = $1
		RETURNING ` + runColumns

	qCampaignOfRunSetState = `UPDATE campaigns SET state = $2, pause_reasons = $3::text::jsonb,
			next_run_at = $4, updated_at = $5
		WHERE id = $1`

	// RunProgress: recipients without a message (every state but queued) by their stored state
	// (campaign_recipients_status, not reading the queued ones),
	// those with one by their message's status (messages_run; a run's messages are exactly its
	// recipients' messages), and whether the run exists.
	qRunProgress = `SELECT 'r', status, count(*) FROM campaign_recipients
			WHERE run_id = $1 AND status IN ('pending', 'unsubscribed', 'suppressed', 'failed', 'cancelled')
			GROUP BY status
		UNION ALL
		SELECT 'm', status, count(*) FROM messages WHERE run_id = $1 GROUP BY status
		UNION ALL
		SELECT 'x', '', count(*) FROM campaign_runs WHERE id = $1`

	// RunInFlight: three ranges of messages_run, whose size is the run's window, not the run.
	qRunInFlight = `SELECT count(*) FROM messages WHERE run_id = $1 AND status IN ('scheduled', 'queued', 'sending')`

	runRecipientColumns = `r.run_id, r.contact_id, r.email, r.list_id, r.status, coalesce(r.message_id, ''),
	r.reason, r.updated_at`

	// By contact id: through campaign_recipients_status (with $2 status) or the primary key.
	qRunRecipients = `SELECT ` + runRecipientColumns + ` FROM campaign_recipients r
		WHERE r.run_id = $1 AND ($2 = '' OR r.status = $2) AND r.contact_id > $3
		ORDER BY r.contact_id LIMIT $4`

	qRunPending = `SELECT ` + runRecipientColumns + `, ` + contactColumnsC + `
		FROM campaign_recipients r JOIN contacts c ON c.id = r.contact_id
		WHERE r.run_id = $1 AND r.status = 'pending' AND r.contact_id > $2
		ORDER BY r.contact_id LIMIT $3`
)

// RunMaterialise's statement is assembled (materialiseQuery) from these pieces. Its parameters:
// $1 run, $2 owner, $3 limit, $4 now, $5 the cap's start (NULL: no cap, -infinity: once per
// contact), $6 campaign, then $7 the audience lists when there are some, then a segment filter's
// (matFilterFirst).
const (
	// The run, locked, while Owner holds its lease (an empty owner holds none).
	qMatRun = `WITH run AS (
			SELECT id, cursor FROM campaign_runs
			WHERE id = $1 AND lease_owner = $2 AND lease_owner <> '' AND state IN ('running', 'paused')
			FOR UPDATE),`

	// The next contacts of the audience lists after the cursor, each once: the first $3
	// subscriptions of each list (its primary key, in contact order) hold them all. member: has a
	// subscribed subscription; list_id: the lowest such list.
	qMatConsideredLists = `
		considered AS (
			SELECT s.contact_id AS id, min(s.list_id) FILTER (WHERE s.status = 'subscribed') AS list_id,
				coalesce(bool_or(s.status = 'subscribed'), false) AS member,
				coalesce(bool_or(s.status = 'pending'), false) AS pending
			FROM unnest($7::text[]) AS l (id)
			CROSS JOIN LATERAL (
				SELECT contact_id, list_id, status FROM subscriptions
				WHERE list_id = l.id AND contact_id > (SELECT cursor FROM run)
				ORDER BY contact_id LIMIT $3) s
			GROUP BY s.contact_id ORDER BY s.contact_id LIMIT $3),`

	// With a segment alone, the next contacts of the segment (the filter goes between the
	// pieces).
	qMatConsideredSegment = `
		considered AS (
			SELECT contacts.id, NULL::text AS list_id, true AS member, false AS pending
			FROM contacts`

	// What becomes of each considered contact ('' included, else why excluded). A suppression
	// of its email key in the global or broadcast scope leaves a contact out (one of a list is
	// left to delivery): counted as unsubscribed when it is an unsubscribe from all broadcast
	// mail (broadcast scope, reason unsubscribe) and nothing else, as suppressed otherwise.
	qMatClassify = `
		cls AS (
			SELECT k.id, contacts.email, k.list_id,
				CASE WHEN NOT k.member THEN CASE WHEN k.pending THEN 'pending' ELSE 'unsubscribed' END
				ELSE coalesce(
					(SELECT CASE WHEN bool_and(sp.scope = 'broadcast' AND sp.reason = 'unsubscribe')
							THEN 'unsubscribed' ELSE 'suppressed' END
						FROM suppressions sp
						WHERE sp.email = contacts.email_key AND sp.scope IN ('global', 'broadcast')
							AND (sp.expires_at IS NULL OR sp.expires_at > $4)
						HAVING count(*) > 0),
					CASE WHEN $5::timestamptz IS NOT NULL AND EXISTS (
						SELECT 1 FROM campaign_contacts cc
						WHERE cc.campaign_id = $6 AND cc.contact_id = k.id AND cc.last_at > $5)
						THEN 'capped' END,
					'') END AS state
			FROM considered k JOIN contacts ON contacts.id = k.id`

	// The included ones become pending recipients (a repeat of a chunk inserts nothing twice),
	// and the run's cursor, counts and materialised flag move, in the same statement.
	qMatTail = `),
		ins AS (
			INSERT INTO campaign_recipients (run_id, contact_id, email, list_id, status, updated_at)
			SELECT $1, id, email, coalesce(list_id, ''), 'pending', $4 FROM cls WHERE state = '' ORDER BY id
			ON CONFLICT (run_id, contact_id) DO NOTHING
			RETURNING 1),
		n AS (
			SELECT (SELECT count(*) FROM considered) AS considered, (SELECT max(id) FROM considered) AS last,
				(SELECT count(*) FROM ins) AS added,
				count(*) FILTER (WHERE state = 'unsubscribed') AS unsubscribed,
				count(*) FILTER (WHERE state = 'pending') AS pending,
				count(*) FILTER (WHERE state = 'suppressed') AS suppressed,
				count(*) FILTER (WHERE state = 'capped') AS capped
			FROM cls),
		upd AS (
			UPDATE campaign_runs r SET cursor = coalesce(n.last, r.cursor), recipients = r.recipients + n.added,
				excluded = jsonb_build_object(
					'unsubscribed', coalesce((r.excluded ->> 'unsubscribed')::bigint, 0) + n.unsubscribed,
					'pending', coalesce((r.excluded ->> 'pending')::bigint, 0) + n.pending,
					'suppressed', coalesce((r.excluded ->> 'suppressed')::bigint, 0) + n.suppressed,
					'capped', coalesce((r.excluded ->> 'capped')::bigint, 0) + n.capped),
				materialised = n.considered < $3, updated_at = $4
			FROM n, run WHERE r.id = run.id
			RETURNING r.id)
		SELECT n.added, n.unsubscribed, n.pending, n.suppressed, n.capped, n.considered < $3,
			EXISTS (SELECT 1 FROM upd)
		FROM n`
)

// matFilterFirst is the number of a segment filter's first parameter in RunMaterialise's
// statement, with or without audience lists.
func matFilterFirst(lists bool) int {
	if lists {
		return 8
	}
	return 7
}

// materialiseQuery assembles RunMaterialise's statement: lists (with the segment's condition
// in cls, when there is one) or the segment alone (its condition in considered). joins and where
// come from driverkit.FilterWhere, numbered from matFilterFirst ("" and "" for no segment).
func materialiseQuery(lists bool, joins, where string) string {
	q := qMatRun
	if lists {
		q += qMatConsideredLists + qMatClassify
		if where != "" {
			q += joins + ` WHERE ` + where
		}
		return q + qMatTail
	}
	return q + qMatConsideredSegment + joins + ` WHERE (` + where + `) AND contacts.id > (SELECT cursor FROM run)
			ORDER BY contacts.id LIMIT $3),` + qMatClassify + qMatTail
}
