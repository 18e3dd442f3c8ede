package sqlite

// The retention area's SQL (store/retention.go, migrations/00017_retention.sql). Each selection
// repeats the WHERE term of its partial index verbatim, so that SQLite can use the index (see
// messages_claim in 00001).
const (
	finishedTerm = `status IN ('sent', 'failed', 'suppressed', 'cancelled', 'bounced', 'complained', 'partially_failed')`

	// The bodies due, oldest finish first (messages_body_due), with the size of each MIME
	// (length() of a BLOB reads its header, not its content): MessageBodyPurge cuts the batch
	// by size before it takes the writer. INDEXED BY here and in qMessagePurgeDue: without
	// ANALYZE statistics SQLite prefers the equality on messages_status and sorts every
	// finished message for the ORDER BY (0.6 s a batch with a million of them; 1 ms so).
	qBodyPurgeDue = `SELECT id, coalesce((SELECT length(raw) FROM message_raw WHERE message_id = messages.id), 0)
		FROM messages INDEXED BY messages_body_due
		WHERE body_purged_at IS NULL AND ` + finishedTerm + ` AND updated_at < ?1
		ORDER BY updated_at LIMIT ?2`
	// The batch chosen (?3, a JSON array of ids), stamped purged if still due; their ids come
	// back for the delete of their MIME in the same transaction.
	qBodyPurgeMark = `UPDATE messages SET body_purged_at = ?1
		WHERE id IN (SELECT value FROM json_each(?3))
			AND body_purged_at IS NULL AND ` + finishedTerm + ` AND updated_at < ?2
		RETURNING id`
	qBodyPurgeRaw = `DELETE FROM message_raw WHERE message_id IN (SELECT value FROM json_each(?))`

	// The messages due, oldest finish first (messages_finished), with the size of their MIME and
	// the count of the rows their delete cascades to (recipients and timeline): MessagePurge
	// cuts the batch by both before it takes the writer.
	qMessagePurgeDue = `SELECT id, coalesce((SELECT length(raw) FROM message_raw WHERE message_id = messages.id), 0),
			(SELECT count(*) FROM message_recipients WHERE message_id = messages.id)
			+ (SELECT count(*) FROM message_events WHERE message_id = messages.id)
		FROM messages INDEXED BY messages_finished
		WHERE ` + finishedTerm + ` AND updated_at < ?1
		ORDER BY updated_at LIMIT ?2`
	// The batch chosen (?2), if still due. Their body, recipients and timeline go with them
	// (ON DELETE CASCADE: SQLite keeps those foreign keys, see 00004).
	qMessagePurge = `DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?2))
			AND ` + finishedTerm + ` AND updated_at < ?1`

	qBodyPurgedAt = `SELECT body_purged_at FROM messages WHERE id = ?`

	qInboundEntriesPurge = `DELETE FROM inbound_entries WHERE id IN (SELECT id FROM inbound_entries
			WHERE at < ?1 ORDER BY at LIMIT ?2)`
	qReportKeysPurge = `DELETE FROM report_keys WHERE key IN (SELECT key FROM report_keys
			WHERE at < ?1 ORDER BY at LIMIT ?2)`
	qSoftBouncesPurge = `DELETE FROM soft_bounces WHERE rowid IN (SELECT rowid FROM soft_bounces
			WHERE at < ?1 ORDER BY at LIMIT ?2)`
	// A few rows per stream and hour: no index needed.
	qDeliveryCountsPurge = `DELETE FROM delivery_counts WHERE (stream, hour, shard) IN (
			SELECT stream, hour, shard FROM delivery_counts WHERE hour <= ?1 LIMIT ?2)`
)
