package sqlite

// The SQL of the driver, one constant per statement. Times are bound as unix microseconds; JSON is
// bound as a Go string so SQLite stores TEXT (a []byte would be a BLOB, which SQLite ≥ 3.45 reads
// as binary JSONB in json_each).

// messageColumns is the column list every message query selects, in the order scanMessage reads
// and messageArgs writes them. It never includes the raw MIME (table message_raw).
const messageColumns = `id, stream, status, from_addr, to_addrs, cc_addrs, bcc_addrs, reply_to,
	subject, template, template_version, locale, data, headers, tags, metadata, attachments, envelope_from,
	recipients, size, attempts, max_attempts, next_attempt_at, lease_owner, lease_until, last_error,
	provider_id, message_id, idempotency_key, api_key_id, campaign_id, created_at, send_at, sent_at,
	expires_at, updated_at, list_id, run_id, event_id, trigger_id`

// claimedColumns are the columns of a store.ClaimedMessage, in the order scanClaimed reads them:
// a split message is sent to its pending recipients only.
const claimedColumns = `id, stream, envelope_from, coalesce(pending_recipients, recipients), attempts,
	max_attempts, next_attempt_at, expires_at, last_error, pending_recipients IS NOT NULL, coalesce(list_id, '')`

// messageColumnCount is the number of columns in messageColumns.
const messageColumnCount = 40

// claimable is the status condition of a message a worker may claim. It must stay textually
// identical to the WHERE of the partial index messages_claim (migrations/00001_init.sql): SQLite
// only uses a partial index when the query repeats the index's condition.
const claimable = `status IN ('scheduled', 'queued', 'deferred')`

// Transaction control of the group commit (writer.go). BEGIN IMMEDIATE takes the write lock at
// once, so a group never fails half-way with SQLITE_BUSY when upgrading a read lock; one SAVEPOINT
// per operation lets an operation fail alone.
const (
	qBegin             = `BEGIN IMMEDIATE`
	qCommit            = `COMMIT`
	qRollback          = `ROLLBACK`
	qSavepoint         = `SAVEPOINT op`
	qReleaseSavepoint  = `RELEASE op`
	qRollbackSavepoint = `ROLLBACK TO op`
)

// Inserts. MessagesAccept writes many rows per statement (see multiInsert): one statement
// execution costs a few microseconds beyond its rows, which matters at 20,000 messages a second.
const (
	qMessageInsertInto   = `INSERT INTO messages (` + messageColumns + `) VALUES `
	qRawInsertInto       = `INSERT INTO message_raw (message_id, raw) VALUES `
	qRecipientInsertInto = `INSERT INTO message_recipients (message_id, email_lower) VALUES `
	qEventInsertInto     = `INSERT INTO message_events (message_id, type, at, detail) VALUES `

	qEventInsert = qEventInsertInto + `(?, ?, ?, ?)`
)

const (
	qMessageGet = `SELECT ` + messageColumns + ` FROM messages WHERE id = ?`

	qMessageStatus = `SELECT status FROM messages WHERE id = ?`

	qRawGet = `SELECT raw FROM message_raw WHERE message_id = ?`
	// substr counts from 1 and works in octets on a BLOB. SQLite still reads the whole value
	// for it (its incremental blob I/O is not reachable through database/sql), but into its own
	// buffer, freed at once: the caller holds only the part.
	qRawPart = `SELECT length(raw), substr(raw, ? + 1, ?) FROM message_raw WHERE message_id = ?`

	// The first event of every message ("queued", or "scheduled" when it was accepted for
	// later) is not stored: it is derived from the message row, which saves two B-tree inserts
	// per accepted message on the writer's critical path. Its id is 0, before every stored event.
	// So is the sent event of a message sent to all its recipients in one attempt
	// (migrations/00006_sent_event.sql), with the id MessageFinish reserved for it.
	qEventsGet = `SELECT 0, id, CASE WHEN send_at > created_at THEN 'scheduled' ELSE 'queued' END,
			created_at, NULL
		FROM messages WHERE id = ?1
		UNION ALL
		SELECT sent_event_id, id, 'sent', sent_at, sent_detail
		FROM messages WHERE id = ?1 AND sent_event_id IS NOT NULL
		UNION ALL
		SELECT id, message_id, type, at, detail FROM message_events WHERE message_id = ?1
		ORDER BY 1`

	// A message that is not split; a split one is cancelled recipient by recipient (qCancel*).
	qMessageCancel = `UPDATE messages SET status = 'cancelled', updated_at = ?
		WHERE id = ? AND status IN ('scheduled', 'queued', 'deferred') AND pending_recipients IS NULL
		RETURNING ` + messageColumns

	// MessageCancel of a split message: is it one, is it cancellable; its pending recipients
	// are cancelled (their addresses returned, for the event); then the message gets the status
	// derived from all its recipients' states (qRecipientStates, store.DeriveStatus).
	qCancelSplitCheck = `SELECT status, pending_recipients IS NOT NULL FROM messages WHERE id = ?`
	qCancelRecipients = `UPDATE message_recipients SET status = 'cancelled', updated_at = ?1
		WHERE message_id = ?2 AND status IN ('queued', 'deferred')
		RETURNING email_lower`
	qCancelSplit = `UPDATE messages SET status = ?1, pending_recipients = '[]', updated_at = ?2
		WHERE id = ?3 AND ` + claimable + `
		RETURNING ` + messageColumns

	// Every recipient of a message with its own state (NULL while the message is not split).
	qRecipientStates = `SELECT email_lower, status, attempts, last_error, sent_at, updated_at
		FROM message_recipients WHERE message_id = ? ORDER BY email_lower`

	// The claim picks the due rows through messages_claim and leases them in one statement. The
	// PostgreSQL driver writes the same with "… FOR UPDATE SKIP LOCKED" in the subquery; SQLite
	// needs no row locks because every write runs on the one writer connection. It returns only
	// the ids: the rows and their MIME are read after the commit, from the read pool
	// (qMessageClaimed), so the writer never decodes a row or copies a body.
	qMessageClaim = `UPDATE messages
		SET status = 'sending', lease_owner = ?, lease_until = ?, updated_at = ?
		WHERE id IN (
			SELECT id FROM messages
			WHERE stream = ? AND ` + claimable + ` AND next_attempt_at <= ?
			ORDER BY next_attempt_at, id
			LIMIT ?)
		RETURNING id`

	// The claimed rows (a JSON array of ids, ?1) with their MIME. message_raw is read through a
	// correlated subquery because messages has a message_id column of its own (the Message-ID
	// header). No ORDER BY: sorting rows that carry their bodies spills to a temporary file;
	// the driver sorts them.
	qMessageClaimed = `SELECT ` + claimedColumns + `,
			(SELECT raw FROM message_raw WHERE message_raw.message_id = messages.id)
		FROM messages WHERE id IN (SELECT value FROM json_each(?1))`

	// sent_event_id and sent_detail: the sent event kept on the row (NULL, NULL for none).
	qMessageFinish = `UPDATE messages
		SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, provider_id = ?,
			sent_at = ?, sent_event_id = ?, sent_detail = ?, lease_owner = '', lease_until = NULL,
			updated_at = ?
		WHERE id = ? AND status = 'sending' AND lease_owner = ?`

	// Reserves ?1 event ids for the sent events a finish keeps on their rows and returns the
	// last: AUTOINCREMENT never hands out an id at or below the sequence. The sequence row is
	// created by migration 00006 if no event was stored before; qEventSeqCreate stands in if it
	// went missing since (someone deleted it), above every id stored or kept (a scan of
	// messages, on that path only).
	qEventIDsReserve = `UPDATE sqlite_sequence SET seq = seq + ?1 WHERE name = 'message_events' RETURNING seq`
	qEventSeqCreate  = `INSERT INTO sqlite_sequence (name, seq)
		VALUES ('message_events', max(
			coalesce((SELECT max(id) FROM message_events), 0),
			coalesce((SELECT max(sent_event_id) FROM messages), 0)) + ?1) RETURNING seq`

	// Appended to qMessageFinish for an outcome that makes the message claimable again, whose
	// stream's workers are then woken.
	qReturningStream = ` RETURNING stream`

	// A split finish (store.MessageFinishParams.Split), rare: only where an attempt's recipients
	// fared differently. The lease is checked first, then the recipients' rows are written, then
	// the message (whose status may be derived from those rows). provider_id and sent_at keep the
	// values of an earlier attempt that sent to other recipients.
	qFinishSplitLease = `SELECT stream FROM messages WHERE id = ? AND status = 'sending' AND lease_owner = ?`
	qRecipientFinish  = `UPDATE message_recipients
		SET status = ?, attempts = ?, last_error = ?, sent_at = ?, updated_at = ?
		WHERE message_id = ? AND email_lower = ?`
	qMessageFinishSplit = `UPDATE messages
		SET status = ?1, attempts = ?2, next_attempt_at = ?3, last_error = ?4,
			provider_id = CASE WHEN ?5 = '' THEN provider_id ELSE ?5 END,
			sent_at = coalesce(?6, sent_at), pending_recipients = ?7,
			lease_owner = '', lease_until = NULL, updated_at = ?8
		WHERE id = ?9 AND status = 'sending' AND lease_owner = ?10`

	// The events are written first because the UPDATE clears lease_owner, which the event records.
	// Both statements select the same rows: they run in one transaction on the only writer.
	// INDEXED BY: without ANALYZE statistics SQLite prefers the equality on messages_status
	// (every in-flight row) to the range on the partial index messages_lease (only the expired
	// leases); naming the index also makes the statement fail loudly if the index ever goes.
	qRescueEvents = `INSERT INTO message_events (message_id, type, at, detail)
		SELECT id, 'lease_expired', ?1, json_object('owner', lease_owner)
		FROM messages INDEXED BY messages_lease
		WHERE status = 'sending' AND lease_until < ?1
		ORDER BY id`

	qRescue = `UPDATE messages INDEXED BY messages_lease
		SET status = 'queued', lease_owner = '', lease_until = NULL, updated_at = ?1
		WHERE status = 'sending' AND lease_until < ?1
		RETURNING id, stream`

	// ?2 = '' releases every lease (MessageReleaseParams.Owner == ""); ?3 is OwnerPrefix ('' for
	// any), compared with substr rather than LIKE, whose _ and % a node id may contain.
	qReleaseEvents = `INSERT INTO message_events (message_id, type, at, detail)
		SELECT id, 'released', ?1, json_object('owner', lease_owner) FROM messages
		WHERE status = 'sending' AND (?2 = '' OR lease_owner = ?2)
			AND substr(lease_owner, 1, length(?3)) = ?3
		ORDER BY id`

	qRelease = `UPDATE messages SET status = 'queued', lease_owner = '', lease_until = NULL,
			updated_at = ?1
		WHERE status = 'sending' AND (?2 = '' OR lease_owner = ?2)
			AND substr(lease_owner, 1, length(?3)) = ?3
		RETURNING id, stream`

	qMessageNextDue = `SELECT min(next_attempt_at) FROM messages
		WHERE stream = ? AND ` + claimable

	// Only leases still held: a lease already rescued or taken over stays with its new owner.
	qMessageRenew = `UPDATE messages SET lease_until = ?1
		WHERE id IN (SELECT value FROM json_each(?2)) AND status = 'sending' AND lease_owner = ?3`

	// MessageRetry, per batch of ids (a JSON array, ?2). The events first, while attempts still
	// holds the count the message failed with and the failed recipients of a split message are
	// still failed; then those recipients are queued again, and the message is given them as its
	// pending recipients. The statements select the same rows (one transaction on the only
	// writer). last_error is kept for the record. json() keeps the array an array inside
	// json_object (a subquery's result is plain text). A message whose body was purged cannot be
	// sent again: it is skipped.
	qRetryEvents = `INSERT INTO message_events (message_id, type, at, detail)
		SELECT id, 'retried', ?1, CASE WHEN pending_recipients IS NULL
				THEN json_object('attempts', attempts)
				ELSE json_object('attempts', attempts, 'recipients', json((
					SELECT json_group_array(json_object('recipient', email_lower)) FROM message_recipients
					WHERE message_id = messages.id AND status = 'failed')))
				END
		FROM messages
		WHERE id IN (SELECT value FROM json_each(?2)) AND status IN ('failed', 'partially_failed')
			AND body_purged_at IS NULL
		ORDER BY id`

	qRetryRecipients = `UPDATE message_recipients SET status = 'queued', attempts = 0, updated_at = ?1
		WHERE status = 'failed' AND message_id IN (
			SELECT id FROM messages
			WHERE id IN (SELECT value FROM json_each(?2)) AND status IN ('failed', 'partially_failed')
				AND body_purged_at IS NULL AND pending_recipients IS NOT NULL)`

	qRetry = `UPDATE messages SET status = 'queued', attempts = 0, next_attempt_at = ?1,
			expires_at = ?3, lease_owner = '', lease_until = NULL, updated_at = ?1,
			pending_recipients = CASE WHEN pending_recipients IS NULL THEN NULL ELSE (
				SELECT json_group_array(email_lower) FROM message_recipients
				WHERE message_id = messages.id AND status = 'queued') END
		WHERE id IN (SELECT value FROM json_each(?2)) AND status IN ('failed', 'partially_failed')
			AND body_purged_at IS NULL
		RETURNING id, stream`

	qIdempotencyGet = `SELECT request_hash, status_code, response, expires_at FROM idempotency_keys
		WHERE api_key_id = ? AND key = ?`

	// An expired record with the same key is replaced in place.
	qIdempotencyPut = `INSERT INTO idempotency_keys
			(api_key_id, key, request_hash, status_code, response, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (api_key_id, key) DO UPDATE SET
			request_hash = excluded.request_hash, status_code = excluded.status_code,
			response = excluded.response, created_at = excluded.created_at,
			expires_at = excluded.expires_at`

	qIdempotencyPurge = `DELETE FROM idempotency_keys WHERE expires_at <= ?`

	qAPIKeyCreate = `INSERT INTO api_keys (id, name, hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (hash) DO NOTHING`

	qAPIKeyByHash = `SELECT id, name, hash, prefix, created_at FROM api_keys WHERE hash = ?`

	qAPIKeyCount = `SELECT count(*) FROM api_keys`

	qAPIKeyList = `SELECT id, name, hash, prefix, created_at FROM api_keys ORDER BY created_at, id`

	qAPIKeyDelete = `DELETE FROM api_keys WHERE id = ?`
)

// MessageList is assembled from these pieces (list.go); every filter is optional.
const (
	qListStream    = `stream = ?`
	qListTag       = `EXISTS (SELECT 1 FROM json_each(messages.tags) WHERE json_each.value = ?)`
	qListRecipient = `id IN (SELECT message_id FROM message_recipients WHERE email_lower = ?)`
	qListCampaign  = `campaign_id = ?`
	qListAfter     = `created_at >= ?`
	qListBefore    = `created_at < ?`
	qListCursor    = `id < ?`
	qListOrder     = ` ORDER BY id DESC LIMIT ?`

	// ErrorCode: the generated columns of migrations/00002_suppressions.sql, each with a partial
	// index. A prefix ("5.1.") is the range [prefix, prefix with its last "." replaced by "/"),
	// "/" being the character after ".", so that the index serves it (LIKE would not, being
	// case-insensitive).
	qListErrorCode     = `error_code = ?`
	qListErrorEnhanced = `error_enhanced = ?`
	qListErrorPrefix   = `error_enhanced >= ? AND error_enhanced < ?`

	// With both a recipient and statuses: the message's status, or that recipient's own state
	// (NULL, never matching, while the message is not split: its state is then the message's).
	// The statuses are appended by listQuery: "status IN (…) OR id IN (… status IN (…))".
	qListRecipientState = `id IN (SELECT message_id FROM message_recipients WHERE email_lower = ? AND status IN `
)

// Suppressions. Emails are lowercased by the driver before they are bound.
const (
	suppressionColumns = `email, scope, reason, detail, message_id, created_at, expires_at`

	qSuppressionUpsert = `INSERT INTO suppressions (` + suppressionColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (email, scope) DO UPDATE SET
			reason = excluded.reason, detail = excluded.detail, message_id = excluded.message_id,
			created_at = excluded.created_at, expires_at = excluded.expires_at`

	// ?2 = 0: expired suppressions count too.
	qSuppressionGet = `SELECT ` + suppressionColumns + ` FROM suppressions
		WHERE email = ?1 AND scope = ?3 AND (?2 = 0 OR expires_at IS NULL OR expires_at > ?2)`

	qSuppressionDelete = `DELETE FROM suppressions WHERE email = ? AND scope = ?`

	// One primary-key probe per address and scope; the addresses and the scopes come as JSON
	// arrays so one prepared statement serves any number of them.
	qSuppressionMatch = `SELECT ` + suppressionColumns + ` FROM suppressions
		WHERE email IN (SELECT value FROM json_each(?1)) AND scope IN (SELECT value FROM json_each(?3))
			AND (expires_at IS NULL OR expires_at > ?2)`

	// SuppressionList is assembled from these pieces; every filter is optional. The keyset is
	// (created_at, email, scope), newest first, served by suppressions_created, suppressions_reason
	// or suppressions_scope.
	qSuppressionListSelect = `SELECT ` + suppressionColumns + ` FROM suppressions`
	qSuppressionListReason = `reason = ?`
	qSuppressionListScope  = `scope = ?`
	qSuppressionListEmail  = `email = ?`
	qSuppressionListActive = `(expires_at IS NULL OR expires_at > ?)`
	qSuppressionListCursor = `(created_at, email, scope) < (?, ?, ?)`
	qSuppressionListOrder  = ` ORDER BY created_at DESC, email DESC, scope DESC LIMIT ?`
)

// Templates. A template's live state is its head row in templates (latest, origin, deleted_at);
// its content is the template_versions row of (name, latest).
const (
	templateColumns = `v.name, v.version, v.subject, v.html, v.text, v.layout, v.schema,
	v.description, v.locales, v.origin, v.created_at, t.deleted_at`

	qTemplateHead = `SELECT latest, origin, deleted_at FROM templates WHERE name = ?`

	qTemplateVersionInsert = `INSERT INTO template_versions (name, version, subject, html, text,
			layout, schema, description, locales, origin, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	// The head first (template_versions references it); a deleted name comes back to life.
	qTemplateHeadUpsert = `INSERT INTO templates (name, latest, origin, created_at, deleted_at)
		VALUES (?1, ?2, ?3, ?4, NULL)
		ON CONFLICT (name) DO UPDATE SET latest = ?2, origin = ?3, deleted_at = NULL`

	// The latest version, which only a live name has.
	qTemplateGetLatest = `SELECT ` + templateColumns + `
		FROM templates t JOIN template_versions v ON v.name = t.name AND v.version = t.latest
		WHERE t.name = ? AND t.deleted_at IS NULL`

	// Any version, of a live or a deleted name.
	qTemplateGetVersion = `SELECT ` + templateColumns + `
		FROM templates t JOIN template_versions v ON v.name = t.name
		WHERE t.name = ? AND v.version = ?`

	// Keyset by name; ?1 = '' for no origin filter.
	qTemplateList = `SELECT ` + templateColumns + `
		FROM templates t JOIN template_versions v ON v.name = t.name AND v.version = t.latest
		WHERE t.deleted_at IS NULL AND (?1 = '' OR t.origin = ?1) AND t.name > ?2
		ORDER BY t.name LIMIT ?3`

	// A message still waiting to be sent that was made from the template. SQLite reads the queue
	// (the three statuses, through messages_status), not the history. There is no index on
	// template: it would cost every accept a B-tree insert for a check that only runs on delete.
	qTemplateUsedByMessage = `SELECT id FROM messages WHERE ` + claimable + ` AND template = ? LIMIT 1`

	// A live template whose latest version wraps itself in the layout ?1. CROSS JOIN keeps
	// templates as the outer loop (one probe per name), where SQLite would otherwise scan every
	// version ever stored.
	qTemplateUsedAsLayout = `SELECT t.name
		FROM templates t CROSS JOIN template_versions v ON v.name = t.name AND v.version = t.latest
		WHERE t.deleted_at IS NULL AND v.layout = ?1 AND t.name <> ?1
		ORDER BY t.name LIMIT 1`

	qTemplateDelete = `UPDATE templates SET deleted_at = ? WHERE name = ? AND deleted_at IS NULL`
)
