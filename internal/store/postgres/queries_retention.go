package postgres

// The retention area's SQL (store/retention.go, migrations/00017_retention.sql). Each selection
// repeats the WHERE term of its partial index, so the planner can prove the query implies it.
const (
	finishedTerm = `status IN ('sent', 'failed', 'suppressed', 'cancelled', 'bounced', 'complained', 'partially_failed')`

	// The bodies due, oldest finish first (messages_body_due), stamped purged and their MIME
	// deleted in one statement. SKIP LOCKED: a row a concurrent change holds (a bounce being
	// recorded, a retry) waits for the next batch; a retry that waited on this one finds the
	// body purged and skips the message (qRetry).
	qBodyPurge = `WITH due AS (
			SELECT id FROM messages
			WHERE body_purged_at IS NULL AND ` + finishedTerm + ` AND updated_at < $2
			ORDER BY updated_at LIMIT $3
			FOR UPDATE SKIP LOCKED),
		m AS (UPDATE messages SET body_purged_at = $1 WHERE id IN (SELECT id FROM due) RETURNING id),
		r AS (DELETE FROM message_raw WHERE message_id IN (SELECT id FROM m))
		SELECT count(*) FROM m`

	// The messages due, oldest finish first (messages_finished), with the rows hanging off them:
	// those carry no foreign keys (00004), so they are deleted here, in the same statement.
	qMessagePurge = `WITH due AS (
			SELECT id FROM messages
			WHERE ` + finishedTerm + ` AND updated_at < $1
			ORDER BY updated_at LIMIT $2
			FOR UPDATE SKIP LOCKED),
		m AS (DELETE FROM messages WHERE id IN (SELECT id FROM due) RETURNING id),
		r AS (DELETE FROM message_raw WHERE message_id IN (SELECT id FROM m)),
		rc AS (DELETE FROM message_recipients WHERE message_id IN (SELECT id FROM m)),
		e AS (DELETE FROM message_events WHERE message_id IN (SELECT id FROM m))
		SELECT count(*) FROM m`

	qBodyPurgedAt = `SELECT body_purged_at FROM messages WHERE id = $1`

	// Each table by age (00017's indexes; delivery_counts holds a few rows per stream and hour).
	qInboundPurge = `WITH
		ie AS (DELETE FROM inbound_entries WHERE id IN (
			SELECT id FROM inbound_entries WHERE at < $1 ORDER BY at LIMIT $2) RETURNING 1),
		rk AS (DELETE FROM report_keys WHERE key IN (
			SELECT key FROM report_keys WHERE at < $1 ORDER BY at LIMIT $2) RETURNING 1),
		sb AS (DELETE FROM soft_bounces WHERE ctid IN (
			SELECT ctid FROM soft_bounces WHERE at < $1 ORDER BY at LIMIT $2) RETURNING 1),
		dc AS (DELETE FROM delivery_counts WHERE (stream, hour, shard) IN (
			SELECT stream, hour, shard FROM delivery_counts WHERE hour <= $3 LIMIT $2) RETURNING 1)
		SELECT (SELECT count(*) FROM ie) + (SELECT count(*) FROM rk) + (SELECT count(*) FROM sb)
			+ (SELECT count(*) FROM dc)`

	// retentionLockKey is the advisory lock of the purges, one holder among all nodes
	// ("postie" in ASCII, then 1).
	qRetentionLock   = `SELECT pg_try_advisory_lock(x'706f7374696501'::bigint)`
	qRetentionUnlock = `SELECT pg_advisory_unlock(x'706f7374696501'::bigint)`
)
