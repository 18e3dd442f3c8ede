package sqlite

// The inbound area's SQL (store/inbound.go, migrations/00015_inbound.sql).
const (
	inboundColumns = `id, at, channel, mail_from, rcpt_to, kind, outcome, detail, message_ids, size`

	qInboundInsert = `INSERT INTO inbound_entries (at, channel, mail_from, rcpt_to, kind, outcome, detail,
			message_ids, size)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

	qReportKeyInsert = `INSERT INTO report_keys (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`

	// A report's recipient's message (which becomes split when its second parameter is true;
	// its recipients' rows are written with qRecipientFinish).
	qReportMessageState = `UPDATE messages SET status = ?1,
			pending_recipients = CASE WHEN ?2 THEN '[]' ELSE pending_recipients END, updated_at = ?3
		WHERE id = ?4`

	// A soft-bounce suppression (?8 true) keeps one for good already there.
	qReportSuppress = `INSERT INTO suppressions (` + suppressionColumns + `)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
		ON CONFLICT (email, scope) DO UPDATE SET
			reason = excluded.reason, detail = excluded.detail, message_id = excluded.message_id,
			created_at = excluded.created_at, expires_at = excluded.expires_at
		WHERE NOT ?8 OR suppressions.expires_at IS NOT NULL`

	qSoftBounceInsert = `INSERT INTO soft_bounces (email, class, message_id, at) VALUES (?, ?, ?, ?)`
	qSoftBounceTrim   = `DELETE FROM soft_bounces WHERE email = ? AND at < ?`
	qSoftBounceCount  = `SELECT count(*) FILTER (WHERE class = 'soft'),
			count(*) FILTER (WHERE class = 'undetermined'),
			count(DISTINCT CASE WHEN class = 'undetermined' THEN message_id END)
		FROM soft_bounces WHERE email = ? AND at >= ?`
	qSoftBounceForget = `DELETE FROM soft_bounces WHERE email = ?`

	// One process, one writer: every count goes to shard 0.
	qCountsAdd = `INSERT INTO delivery_counts (stream, hour, shard, delivered, bounced, complained)
		VALUES (?, ?, 0, ?, ?, ?)
		ON CONFLICT (stream, hour, shard) DO UPDATE SET delivered = delivered + excluded.delivered,
			bounced = bounced + excluded.bounced, complained = complained + excluded.complained`
	// The recipients of the messages a MessageFinish sent whole (a JSON array of ids, ?2), added
	// to their streams' counts of the hour ?1: one statement per batch, reading the rows by key.
	qCountsSent = `INSERT INTO delivery_counts (stream, hour, shard, delivered)
		SELECT stream, ?1, 0, sum(coalesce(json_array_length(recipients), 0)) FROM messages
		WHERE id IN (SELECT value FROM json_each(?2))
		GROUP BY stream
		ON CONFLICT (stream, hour, shard) DO UPDATE SET delivered = delivered + excluded.delivered`
	qCountsSum = `SELECT coalesce(sum(delivered), 0), coalesce(sum(bounced), 0), coalesce(sum(complained), 0)
		FROM delivery_counts WHERE stream = ? AND hour >= ?`

	streamStateColumns = `stream, paused, reason, detail, paused_at, resumed_at`

	// A pause of a stream not paused; no row when it is.
	qStreamPause = `INSERT INTO stream_states (stream, paused, reason, detail, paused_at)
		VALUES (?1, 1, ?2, ?3, ?4)
		ON CONFLICT (stream) DO UPDATE SET paused = 1, reason = ?2, detail = ?3, paused_at = ?4
		WHERE NOT stream_states.paused
		RETURNING stream`
	qStreamResume  = `UPDATE stream_states SET paused = 0, resumed_at = ?2 WHERE stream = ?1 AND paused`
	qStreamStates  = `SELECT ` + streamStateColumns + ` FROM stream_states ORDER BY stream`
	qStreamsPaused = `SELECT stream FROM stream_states WHERE paused`
)
