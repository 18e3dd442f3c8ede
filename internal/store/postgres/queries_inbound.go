package postgres

// The inbound area's SQL (store/inbound.go, migrations/00015_inbound.sql).
const (
	inboundColumns = `id, at, channel, mail_from, rcpt_to, kind, outcome, detail, message_ids, size`

	qInboundInsert = `INSERT INTO inbound_entries (at, channel, mail_from, rcpt_to, kind, outcome, detail,
			message_ids, size)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9)`

	qReportKeyInsert = `INSERT INTO report_keys (key, at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`

	// A report's recipient's message (which becomes split when its second parameter is true;
	// its recipients' rows are written with qRecipientFinish).
	qReportMessageState = `UPDATE messages SET status = $1,
			pending_recipients = CASE WHEN $2 THEN '[]'::jsonb ELSE pending_recipients END, updated_at = $3
		WHERE id = $4`

	// A soft-bounce suppression ($8 true) keeps one for good already there.
	qReportSuppress = `INSERT INTO suppressions (` + suppressionColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		` + onSuppressionConflict + `
		WHERE NOT $8 OR suppressions.expires_at IS NOT NULL`

	// Records a bounce ($2: soft or undetermined), forgets those of the address before $5, and
	// counts those left with it (every part of the statement sees the rows as they were before
	// it, so the new one is added to the count by hand).
	qSoftBounce = `WITH ins AS (
			INSERT INTO soft_bounces (email, class, message_id, at) VALUES ($1, $2, $3, $4)),
		del AS (DELETE FROM soft_bounces WHERE email = $1 AND at < $5),
		cur AS (
			SELECT class, message_id FROM soft_bounces WHERE email = $1 AND at >= $5
			UNION ALL SELECT $2::text, $3::text)
		SELECT count(*) FILTER (WHERE class = 'soft'), count(*) FILTER (WHERE class = 'undetermined'),
			count(DISTINCT message_id) FILTER (WHERE class = 'undetermined')
		FROM cur`
	qSoftBounceForget = `DELETE FROM soft_bounces WHERE email = $1`

	// The counts of stream $1 and hour $2, added to shard $6 (countShard).
	qCountsAdd = `INSERT INTO delivery_counts AS c (stream, hour, delivered, bounced, complained, shard)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (stream, hour, shard) DO UPDATE SET delivered = c.delivered + excluded.delivered,
			bounced = c.bounced + excluded.bounced, complained = c.complained + excluded.complained`
	qCountsSum = `SELECT coalesce(sum(delivered), 0)::bigint, coalesce(sum(bounced), 0)::bigint,
			coalesce(sum(complained), 0)::bigint
		FROM delivery_counts WHERE stream = $1 AND hour >= $2`

	// A pause of a stream not paused ($1 … $4) and its stream.paused report (detail $5), in one
	// statement; it returns whether it paused and how many deliveries it wrote.
	qStreamPause = `WITH p AS (
			INSERT INTO stream_states (stream, paused, reason, detail, paused_at)
			VALUES ($1, true, $2, $3, $4)
			ON CONFLICT (stream) DO UPDATE SET paused = true, reason = $2, detail = $3, paused_at = $4
			WHERE NOT stream_states.paused
			RETURNING stream),
		wh AS (` + outboxFrom + `SELECT 'stream.paused'::text AS type, p.stream AS subject, ''::text AS recipient,
				''::text AS campaign_id, ''::text AS run_id, $4::timestamptz AS at, $5::text::jsonb AS detail,
				$4::timestamptz AS created
			FROM p` + outboxTo + `)
		SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM wh)`
	qStreamResume  = `UPDATE stream_states SET paused = false, resumed_at = $2 WHERE stream = $1 AND paused`
	qStreamStates  = `SELECT stream, paused, reason, detail, paused_at, resumed_at FROM stream_states ORDER BY stream`
	qStreamsPaused = `SELECT stream FROM stream_states WHERE paused`

	// The condition, appended to a claim's and to MessageNextDue's, that stream $n is not
	// paused (notPaused + "$n" + notPausedEnd).
	notPaused    = ` AND NOT EXISTS (SELECT 1 FROM stream_states ss WHERE ss.stream = `
	notPausedEnd = ` AND ss.paused)`
)
