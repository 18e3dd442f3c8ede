package postgres

import (
	"strconv"
	"strings"
)

// The SQL of the driver, one constant per statement. Batches of rows travel as one array
// parameter per column and are turned back into rows with unnest: one statement text serves any
// number of rows (pgx prepares it once per connection), and a batch of 500 messages is one
// statement, not 500.

// column is one column of a table written with unnest, with the SQL type of its array parameter.
type column struct{ name, typ string }

// messageCols are the columns every message query selects, in the order scanMessage reads and
// messageArgs writes them. They never include the raw MIME (table message_raw).
var messageCols = []column{
	{"id", "text"}, {"stream", "text"}, {"status", "text"}, {"from_addr", "text"},
	{"to_addrs", "jsonb"}, {"cc_addrs", "jsonb"}, {"bcc_addrs", "jsonb"}, {"reply_to", "text"},
	{"subject", "text"}, {"template", "text"}, {"template_version", "integer"}, {"locale", "text"},
	{"data", "json"}, {"headers", "jsonb"}, {"tags", "jsonb"}, {"metadata", "jsonb"},
	{"attachments", "jsonb"}, {"envelope_from", "text"}, {"recipients", "jsonb"}, {"size", "integer"},
	{"attempts", "integer"}, {"max_attempts", "integer"}, {"next_attempt_at", "timestamptz"},
	{"lease_owner", "text"}, {"lease_until", "timestamptz"}, {"last_error", "jsonb"},
	{"provider_id", "text"}, {"message_id", "text"}, {"idempotency_key", "text"},
	{"api_key_id", "text"}, {"campaign_id", "text"}, {"created_at", "timestamptz"},
	{"send_at", "timestamptz"}, {"sent_at", "timestamptz"}, {"expires_at", "timestamptz"},
	{"updated_at", "timestamptz"}, {"list_id", "text"}, {"run_id", "text"},
	{"event_id", "text"}, {"trigger_id", "text"},
}

// claimedColumns are the columns of a store.ClaimedMessage, in the order scanClaimed reads them:
// a split message is sent to its pending recipients only.
const claimedColumns = `id, stream, envelope_from, coalesce(pending_recipients, recipients), attempts,
	max_attempts, next_attempt_at, expires_at, last_error, pending_recipients IS NOT NULL, coalesce(list_id, '')`

// messageColumns is the column list of messageCols.
var (
	messageColumns    = columnList(messageCols)
	messageParamTypes = paramTypes(messageCols)
	// The array types of the other batched inserts, built once rather than per batch.
	rawParamTypes       = paramTypes(rawCols)
	recipientParamTypes = paramTypes(recipientCols)
)

// suppressionColumns are the columns of the suppression queries, in the order scanSuppression
// reads and suppressionArgs writes them.
const suppressionColumns = `email, scope, reason, detail, message_id, created_at, expires_at`

// finishSuppressionParamTypes are those of MessageFinish's suppressions: each row's outcome
// position, then suppressionColumns.
var finishSuppressionParamTypes = append([]string{"integer"}, suppressionParamTypes...)

// suppressionParamTypes are the array parameter types of suppressionColumns (see columns).
var suppressionParamTypes = []string{"text", "text", "text", "text", "text", "timestamptz", "timestamptz"}

func columnList(cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// paramType is the element type of the array parameter that carries a column of SQL type typ.
// JSON travels as text and is cast back in the statement, so that every parameter is an array of
// a type pgx knows from the Go value alone: the statements then also work without their
// description, as with default_query_exec_mode=exec or simple_protocol (PgBouncer in transaction
// mode).
func paramType(typ string) string {
	if typ == "json" || typ == "jsonb" {
		return "text"
	}
	return typ
}

func paramTypes(cols []column) []string {
	types := make([]string, len(cols))
	for i, c := range cols {
		types[i] = paramType(c.typ)
	}
	return types
}

// unnestInsert returns "INSERT INTO table (cols) SELECT c1, c2::jsonb, … FROM unnest($1::text[],
// $2::text[], …) AS u (c1, c2, …)": the rows come as one array parameter per column (see columns,
// with paramTypes(cols)).
func unnestInsert(table string, cols []column) string {
	sel, params, names := make([]string, len(cols)), make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		names[i] = "c" + strconv.Itoa(i+1)
		sel[i] = names[i]
		if pt := paramType(c.typ); pt != c.typ {
			sel[i] += "::" + c.typ
		}
		params[i] = "$" + strconv.Itoa(i+1) + "::" + paramType(c.typ) + "[]"
	}
	return "INSERT INTO " + table + " (" + columnList(cols) + ") SELECT " + strings.Join(sel, ", ") +
		" FROM unnest(" + strings.Join(params, ", ") + ") AS u (" + strings.Join(names, ", ") + ")"
}

// acceptInsert is the accept's insert of messages (unnestInsert's, with a check): a message
// handed off at accept (status sending, store.AcceptClaims) whose stream is paused when the
// statement runs is stored queued, without a lease, as if it had not been handed off; the
// statement returns those streams, whose messages the accept then gives back to their receiver.
// So once a pause has committed, on any node, no accept hands its stream's messages over, what
// this node's view of the pauses (pausedCache) says.
func acceptInsert() string {
	sel, params, names := make([]string, len(messageCols)), make([]string, len(messageCols)), make([]string, len(messageCols))
	col := map[string]string{}
	for i, c := range messageCols {
		names[i] = "c" + strconv.Itoa(i+1)
		col[c.name] = names[i]
		params[i] = "$" + strconv.Itoa(i+1) + "::" + paramType(c.typ) + "[]"
	}
	held := "(" + col["status"] + " = 'sending' AND " + col["stream"] + " IN (SELECT stream FROM p))"
	for i, c := range messageCols {
		sel[i] = names[i]
		if pt := paramType(c.typ); pt != c.typ {
			sel[i] += "::" + c.typ
		}
		switch c.name {
		case "status":
			sel[i] = "CASE WHEN " + held + " THEN 'queued' ELSE " + sel[i] + " END"
		case "lease_owner":
			sel[i] = "CASE WHEN " + held + " THEN '' ELSE " + sel[i] + " END"
		case "lease_until":
			sel[i] = "CASE WHEN " + held + " THEN NULL ELSE " + sel[i] + " END"
		}
	}
	return `WITH u AS (
			SELECT * FROM unnest(` + strings.Join(params, ", ") + `) AS u (` + strings.Join(names, ", ") + `)),
		p AS (
			SELECT stream FROM stream_states
			WHERE paused AND stream IN (SELECT ` + col["stream"] + ` FROM u WHERE ` + col["status"] + ` = 'sending')),
		i AS (
			INSERT INTO messages (` + columnList(messageCols) + `) SELECT ` + strings.Join(sel, ", ") + ` FROM u)
		SELECT stream FROM p`
}

// requeueQuery returns the statement that returns the leased messages matching cond to the queue,
// each with an event of type event naming the owner it was taken from, and returns their (id,
// stream). The rows are locked with SKIP LOCKED: a row that another transaction is finishing or
// requeueing right now is left to it.
func requeueQuery(cond, event string) string {
	return `WITH old AS (
			SELECT id, lease_owner FROM messages WHERE ` + cond + `
			FOR UPDATE SKIP LOCKED),
		u AS (
			UPDATE messages m SET status = 'queued', lease_owner = '', lease_until = NULL, updated_at = $1
			FROM old WHERE m.id = old.id
			RETURNING m.id, m.stream, old.lease_owner),
		e AS (
			INSERT INTO message_events (message_id, type, at, detail)
			SELECT id, '` + event + `', $1, jsonb_build_object('owner', lease_owner) FROM u ORDER BY id)
		SELECT id, stream FROM u`
}

var (
	// MessageRescue ($1 now): the expired leases, among the messages in flight (messages_status).
	qRescue = requeueQuery(`status = 'sending' AND lease_until < $1`, "lease_expired")
	// MessageReleaseLeases ($1 now, $2 owner, $3 owner prefix): $2 = '' releases every lease, $3
	// = '' any owner's. The prefix is compared with left rather than LIKE, whose _ and % a node
	// id may contain.
	qRelease = requeueQuery(`status = 'sending' AND ($2 = '' OR lease_owner = $2)
		AND left(lease_owner, length($3)) = $3`, "released")
)

// The tables MessagesAccept writes.
var (
	rawCols       = []column{{"message_id", "text"}, {"raw", "bytea"}}
	recipientCols = []column{{"message_id", "text"}, {"email_lower", "text"}}
)

// Inserts of MessagesAccept.
var (
	qMessageInsert   = acceptInsert()
	qRawInsert       = unnestInsert("message_raw", rawCols)
	qRecipientInsert = unnestInsert("message_recipients", recipientCols)
)

// claimable is the status condition of a message a worker may claim. It repeats the WHERE of the
// partial index messages_claim (migrations/00001_init.sql) so the planner can use it.
const claimable = `status IN ('scheduled', 'queued', 'deferred')`

var (
	qMessageGet = `SELECT ` + messageColumns + ` FROM messages WHERE id = $1`

	// The MessageCancel update and its event in one statement; no row: not cancellable, absent,
	// or split (qCancelSplitCheck tells which; a split one is cancelled by qCancel*).
	qMessageCancel = messageCancel + ` SELECT ` + messageColumns + ` FROM c`
	messageCancel  = `WITH c AS (
			UPDATE messages SET status = 'cancelled', updated_at = $1
			WHERE id = $2 AND ` + claimable + ` AND pending_recipients IS NULL
			RETURNING ` + messageColumns + `),
		e AS (INSERT INTO message_events (message_id, type, at) SELECT id, 'cancelled', $1 FROM c)`

	// qMessageCancel writing the message.cancelled reports of every recipient too (outboxFrom),
	// whose number follows the message's columns.
	qMessageCancelReported = messageCancel + `,
		wh AS (` + outboxFrom + `SELECT 'message.cancelled' AS type, c.id AS subject,
				mr.email_lower AS recipient, coalesce(c.campaign_id, '') AS campaign_id,
				coalesce(c.run_id, '') AS run_id, $1::timestamptz AS at, NULL::jsonb AS detail,
				$1::timestamptz AS created
			FROM c JOIN message_recipients mr ON mr.message_id = c.id
			ORDER BY mr.email_lower` + outboxTo + `)
		SELECT ` + messageColumns + `, (SELECT count(*) FROM wh) FROM c`

	// MessageCancel of a split message (see qCancelSplitCheck): the derived status.
	qCancelSplit = `UPDATE messages SET status = $1, pending_recipients = '[]', updated_at = $2
		WHERE id = $3
		RETURNING ` + messageColumns

	// The claim: pick the due rows of one stream through messages_claim and lease them, in one
	// statement. FOR UPDATE SKIP LOCKED lets claimers on every node run at once without waiting
	// for each other and without ever taking the same row: a row another transaction is claiming
	// is skipped, not waited for (and READ COMMITTED re-checks the status of a row that changed
	// since the statement began). The MIME comes back with the row. RETURNING does not promise the
	// subquery's order, so the driver sorts the result.
	qMessageClaim = `UPDATE messages
		SET status = 'sending', lease_owner = $1, lease_until = $2, updated_at = $3
		WHERE id IN (
			SELECT id FROM messages
			WHERE stream = $4 AND ` + claimable + ` AND next_attempt_at <= $3` + notPaused + `$4` + notPausedEnd + `
			ORDER BY next_attempt_at, id
			LIMIT $5
			FOR UPDATE SKIP LOCKED)
		RETURNING ` + claimedColumns + `,
			(SELECT raw FROM message_raw r WHERE r.message_id = messages.id)`
)

const (
	qMessageStatus = `SELECT status FROM messages WHERE id = $1`

	// MessageCancel of a split message, in one transaction: lock the message and see whether it
	// is split and cancellable; cancel its pending recipients (their addresses returned, for the
	// event); give it the status derived from all its recipients' states (qRecipientStates,
	// store.DeriveStatus).
	qCancelSplitCheck = `SELECT status, pending_recipients IS NOT NULL FROM messages WHERE id = $1 FOR UPDATE`
	qCancelRecipients = `UPDATE message_recipients SET status = 'cancelled', updated_at = $1
		WHERE message_id = $2 AND status IN ('queued', 'deferred')
		RETURNING email_lower`

	// Every recipient of a message with its own state (NULL while the message is not split).
	qRecipientStates = `SELECT email_lower, status, attempts, last_error, sent_at, updated_at
		FROM message_recipients WHERE message_id = $1 ORDER BY email_lower`

	// A split finish (store.MessageFinishParams.Split), rare: only where an attempt's recipients
	// fared differently. In one transaction: the lease is checked with the row locked, the
	// recipients' rows are written, then the message (whose status may be derived from those
	// rows). provider_id and sent_at keep the values of an earlier attempt that sent to other
	// recipients.
	qFinishSplitLease = `SELECT stream FROM messages
		WHERE id = $1 AND status = 'sending' AND lease_owner = $2 FOR UPDATE`
	qRecipientFinish = `UPDATE message_recipients
		SET status = $1, attempts = $2, last_error = $3::text::jsonb, sent_at = $4, updated_at = $5
		WHERE message_id = $6 AND email_lower = $7`
	qMessageFinishSplit = `UPDATE messages
		SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4::text::jsonb,
			provider_id = CASE WHEN $5 = '' THEN provider_id ELSE $5 END,
			sent_at = coalesce($6, sent_at), pending_recipients = $7::text::jsonb,
			lease_owner = '', lease_until = NULL, updated_at = $8
		WHERE id = $9`
	qEventInsertOne = `INSERT INTO message_events (message_id, type, at, detail)
		VALUES ($1, $2, $3, $4::text::jsonb)`

	qRawGet = `SELECT raw FROM message_raw WHERE message_id = $1`
	// substring counts from 1 and works in octets on bytea (whose values are under 1 GB: int).
	qRawPart = `SELECT length(raw), substring(raw FROM ($2::bigint + 1)::int FOR $3::int) FROM message_raw WHERE message_id = $1`

	// The first event of every message ("queued", or "scheduled" when it was accepted for later)
	// is not stored: it is derived from the message row, which saves an insert per accepted
	// message. Its id is 0, before every stored event.
	qEventsGet = `SELECT 0::bigint, id, CASE WHEN send_at > created_at THEN 'scheduled' ELSE 'queued' END,
			created_at, NULL::jsonb
		FROM messages WHERE id = $1
		UNION ALL
		SELECT id, message_id, type, at, detail FROM message_events WHERE message_id = $1
		ORDER BY 1`

	// MessageFinish: every outcome of the batch in one statement. f holds the outcomes (the first
	// one of an id wins, as when they are applied in turn: the later ones no longer hold the
	// lease); u applies those whose lease is still held by their owner; the events and
	// suppressions of the applied ones (joined on the outcome's position, ord) are inserted.
	// Suppressions are upserted in address order, one row per address (the last one wins), so
	// two concurrent finishes lock the same addresses in the same order and cannot deadlock.
	// The status is compared with f's own 'sending' (leased), not with the literal: the rows are
	// then found from f's ids through the primary key. With the literal, a planner without
	// statistics (a table younger than autovacuum's first ANALYZE) walked every 'sending' entry
	// of messages_status for each finish, the dead ones every claim leaves there included. wh
	// writes the webhook reports (outboxFrom) of the applied outcomes: a message not split
	// reports its status for every recipient, with the time and detail of the outcome's first
	// event of that type (driverkit.FinishReports, the same rule, serves split ones). dc adds
	// the recipients of the messages sent to their streams' delivery counts of the hour $23, in
	// shard $25 (countShard), one row per stream in stream order, unless $24 is false (a batch
	// with split outcomes counts them all at its end, addCounts).
	qMessageFinish = `WITH f AS (
			SELECT DISTINCT ON (id) *, 'sending' AS leased
			FROM unnest($1::integer[], $2::text[], $3::text[], $4::text[], $5::integer[],
				$6::timestamptz[], $7::text[], $8::text[], $9::timestamptz[])
				AS f (ord, id, owner, status, attempts, next_attempt_at, last_error, provider_id, sent_at)
			ORDER BY id, ord),
		u AS (
			UPDATE messages m
			SET status = f.status, attempts = f.attempts, next_attempt_at = f.next_attempt_at,
				last_error = f.last_error::jsonb, provider_id = f.provider_id, sent_at = f.sent_at,
				lease_owner = '', lease_until = NULL, updated_at = $10
			FROM f
			WHERE m.id = f.id AND m.status = f.leased AND m.lease_owner = f.owner
			RETURNING f.ord, m.id, m.stream, m.status, coalesce(m.campaign_id, '') AS campaign_id,
				coalesce(m.run_id, '') AS run_id,
				CASE WHEN m.status = 'sent' THEN coalesce(jsonb_array_length(m.recipients), 0) ELSE 0 END
					AS delivered),
		ev AS (
			INSERT INTO message_events (message_id, type, at, detail)
			SELECT u.id, e.type, e.at, e.detail::jsonb
			FROM unnest($11::integer[], $12::text[], $13::timestamptz[], $14::text[]) WITH ORDINALITY
				AS e (ord, type, at, detail, n)
			JOIN u ON u.ord = e.ord
			ORDER BY e.n),
		sup AS (
			INSERT INTO suppressions (` + suppressionColumns + `)
			SELECT DISTINCT ON (s.email, s.scope) s.email, s.scope, s.reason, s.detail, s.message_id,
				s.created_at, s.expires_at
			FROM unnest($15::integer[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[],
				$21::timestamptz[], $22::timestamptz[]) WITH ORDINALITY
				AS s (ord, email, scope, reason, detail, message_id, created_at, expires_at, n)
			JOIN u ON u.ord = s.ord
			ORDER BY s.email, s.scope, s.n DESC
			` + onSuppressionConflict + `),
		wh AS (` + outboxFrom + `SELECT 'message.' || u.status AS type, u.id AS subject,
				mr.email_lower AS recipient, u.campaign_id, u.run_id, coalesce(e.at, $10) AS at,
				e.detail::jsonb AS detail, $10::timestamptz AS created
			FROM u
				JOIN message_recipients mr ON mr.message_id = u.id
				LEFT JOIN (
					SELECT DISTINCT ON (ord, type) ord, type, at, detail
					FROM unnest($11::integer[], $12::text[], $13::timestamptz[], $14::text[])
						WITH ORDINALITY AS e (ord, type, at, detail, n)
					ORDER BY ord, type, n) e ON e.ord = u.ord AND e.type = u.status
			WHERE u.status IN ('sent', 'deferred', 'failed', 'suppressed')
			ORDER BY u.id, mr.email_lower` + outboxTo + `),
		dc AS (
			INSERT INTO delivery_counts AS c (stream, hour, shard, delivered)
			SELECT stream, $23, $25::smallint, sum(delivered) FROM u
			WHERE $24 AND delivered > 0
			GROUP BY stream ORDER BY stream
			ON CONFLICT (stream, hour, shard) DO UPDATE SET delivered = c.delivered + excluded.delivered)
		SELECT u.stream, u.status, (SELECT count(*) FROM wh), u.delivered FROM u`

	// MessageRetry, per batch of ids ($2). FOR UPDATE (waiting): a concurrent retry of the same
	// message finishes first, and the status check then fails on the row it left. A split
	// message's failed recipients (failed, read before r changes them: every part of the
	// statement sees the same snapshot) are queued again and become its pending recipients. The
	// event records the attempts made before and those recipients (store.EventDetail: each an
	// object, none when there were none); last_error is kept for the record. A message whose
	// body was purged cannot be sent again: it is skipped.
	qRetry = `WITH old AS (
			SELECT id, attempts, pending_recipients IS NOT NULL AS split FROM messages
			WHERE id = ANY ($2::text[]) AND status IN ('failed', 'partially_failed')
				AND body_purged_at IS NULL
			ORDER BY id
			FOR UPDATE),
		failed AS (
			SELECT r.message_id, jsonb_agg(r.email_lower ORDER BY r.email_lower) AS emails,
				jsonb_agg(jsonb_build_object('recipient', r.email_lower) ORDER BY r.email_lower) AS entries
			FROM message_recipients r JOIN old ON old.id = r.message_id AND old.split
			WHERE r.status = 'failed'
			GROUP BY r.message_id),
		r AS (
			UPDATE message_recipients mr SET status = 'queued', attempts = 0, updated_at = $1
			FROM old WHERE mr.message_id = old.id AND old.split AND mr.status = 'failed'),
		u AS (
			UPDATE messages m SET status = 'queued', attempts = 0, next_attempt_at = $1,
				expires_at = $3, lease_owner = '', lease_until = NULL, updated_at = $1,
				pending_recipients = CASE WHEN old.split THEN coalesce(failed.emails, '[]') END
			FROM old LEFT JOIN failed ON failed.message_id = old.id
			WHERE m.id = old.id
			RETURNING m.id, m.stream, old.attempts, old.split, failed.entries),
		e AS (
			INSERT INTO message_events (message_id, type, at, detail)
			SELECT id, 'retried', $1, CASE WHEN split
					THEN jsonb_strip_nulls(jsonb_build_object('attempts', attempts, 'recipients', entries))
					ELSE jsonb_build_object('attempts', attempts) END
			FROM u ORDER BY id)
		SELECT id, stream FROM u`

	// The earliest due time through messages_claim (an index-only min).
	qMessageNextDue = `SELECT min(next_attempt_at) FROM messages WHERE stream = $1 AND ` + claimable +
		notPaused + `$1` + notPausedEnd

	// Only leases still held: a lease already rescued or taken over stays with its new owner.
	qMessageRenew = `UPDATE messages SET lease_until = $1
		WHERE id = ANY ($2::text[]) AND status = 'sending' AND lease_owner = $3`

	// Claims the idempotency key for this request: inserts it, or replaces an expired record with
	// the same key. No row back: an unexpired record holds the key (the statement waited for the
	// transaction that wrote it, so it is committed), and qIdempotencyGet reads it.
	qIdempotencyClaim = `INSERT INTO idempotency_keys
			(api_key_id, key, request_hash, status_code, response, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (api_key_id, key) DO UPDATE SET
			request_hash = excluded.request_hash, status_code = excluded.status_code,
			response = excluded.response, created_at = excluded.created_at,
			expires_at = excluded.expires_at
		WHERE idempotency_keys.expires_at <= $8
		RETURNING true`

	qIdempotencyGet = `SELECT request_hash, status_code, response FROM idempotency_keys
		WHERE api_key_id = $1 AND key = $2`

	qIdempotencyPurge = `DELETE FROM idempotency_keys WHERE expires_at <= $1`

	qAPIKeyCreate = `INSERT INTO api_keys (id, name, hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (hash) DO NOTHING`

	qAPIKeyByHash = `SELECT id, name, hash, prefix, created_at FROM api_keys WHERE hash = $1`

	qAPIKeyCount = `SELECT count(*) FROM api_keys`

	qAPIKeyList = `SELECT id, name, hash, prefix, created_at FROM api_keys ORDER BY created_at, id`

	qAPIKeyDelete = `DELETE FROM api_keys WHERE id = $1`

	// Wakes the workers of other nodes (see notifier). The payload is "stream sender".
	qNotify = `SELECT pg_notify('` + wakeupChannel + `', s) FROM unnest($1::text[]) s`
)

// MessageList is assembled from these pieces (listQuery); every filter is optional. Each piece
// takes its arguments in the order listed, numbered by listQuery.
const (
	qListStatuses  = `status = ANY (?::text[])`
	qListStream    = `stream = ?`
	qListTag       = `tags @> ?::text::jsonb`
	qListRecipient = `id IN (SELECT message_id FROM message_recipients WHERE email_lower = ?)`
	qListCampaign  = `campaign_id = ?`
	qListAfter     = `created_at >= ?`
	qListBefore    = `created_at < ?`
	qListCursor    = `id < ?`
	qListOrder     = ` ORDER BY id DESC LIMIT ?`

	// ErrorCode: the generated columns of migrations/00002_suppressions.sql, each with a partial
	// index. A prefix ("5.1.") is the range [prefix, prefix with its last "." replaced by "/"),
	// "/" being the byte after ".", so that the index serves it.
	qListErrorCode     = `error_code = ?`
	qListErrorEnhanced = `error_enhanced = ?`
	qListErrorPrefix   = `error_enhanced >= ? AND error_enhanced < ?`

	// With both a recipient and statuses (in place of qListStatuses): the message's status, or
	// that recipient's own state (NULL, never matching, while the message is not split: its
	// state is then the message's).
	qListStatusesOrRecipient = `(status = ANY (?::text[]) OR id IN (
		SELECT message_id FROM message_recipients WHERE email_lower = ? AND status = ANY (?::text[])))`
)

// Suppressions. Emails are lowercased by the driver before they are bound.
const (
	onSuppressionConflict = `ON CONFLICT (email, scope) DO UPDATE SET
			reason = excluded.reason, detail = excluded.detail, message_id = excluded.message_id,
			created_at = excluded.created_at, expires_at = excluded.expires_at`

	// One row per address and scope, the last one given winning, in address order (see
	// qMessageFinish).
	qSuppressionUpsert = `INSERT INTO suppressions (` + suppressionColumns + `)
		SELECT DISTINCT ON (email, scope) email, scope, reason, detail, message_id, created_at, expires_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
			WITH ORDINALITY AS s (email, scope, reason, detail, message_id, created_at, expires_at, n)
		ORDER BY email, scope, n DESC
		` + onSuppressionConflict

	// $2 NULL: expired suppressions count too.
	qSuppressionGet = `SELECT ` + suppressionColumns + ` FROM suppressions
		WHERE email = $1 AND scope = $3 AND ($2::timestamptz IS NULL OR expires_at IS NULL OR expires_at > $2)`

	qSuppressionDelete = `DELETE FROM suppressions WHERE email = $1 AND scope = $2`

	// One primary-key probe per address and scope.
	qSuppressionMatch = `SELECT ` + suppressionColumns + ` FROM suppressions
		WHERE email = ANY ($1::text[]) AND scope = ANY ($3::text[]) AND (expires_at IS NULL OR expires_at > $2)`

	// SuppressionList is assembled from these pieces (see qList*); every filter is optional. The
	// keyset is (created_at, email, scope), newest first, served by suppressions_created,
	// suppressions_reason or suppressions_scope.
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

	// TemplatePut makes sure the head exists (latest 0 for a new name), then locks it: the puts
	// and deletes of one name run one after the other.
	qTemplateHeadEnsure = `INSERT INTO templates (name, latest, origin, created_at) VALUES ($1, 0, $2, $3)
		ON CONFLICT (name) DO NOTHING`

	qTemplateHeadLock = `SELECT latest, origin, deleted_at FROM templates WHERE name = $1 FOR UPDATE`

	qTemplateHeadUpdate = `UPDATE templates SET latest = $2, origin = $3, deleted_at = NULL WHERE name = $1`

	qTemplateVersionInsert = `INSERT INTO template_versions (name, version, subject, html, text,
			layout, schema, description, locales, origin, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7::text::json, $8, $9::text::jsonb, $10, $11)`

	// The latest version, which only a live name has.
	qTemplateGetLatest = `SELECT ` + templateColumns + `
		FROM templates t JOIN template_versions v ON v.name = t.name AND v.version = t.latest
		WHERE t.name = $1 AND t.deleted_at IS NULL`

	// Any version, of a live or a deleted name.
	qTemplateGetVersion = `SELECT ` + templateColumns + `
		FROM templates t JOIN template_versions v ON v.name = t.name
		WHERE t.name = $1 AND v.version = $2`

	// Keyset by name; $1 = '' for no origin filter.
	qTemplateList = `SELECT ` + templateColumns + `
		FROM templates t JOIN template_versions v ON v.name = t.name AND v.version = t.latest
		WHERE t.deleted_at IS NULL AND ($1 = '' OR t.origin = $1) AND t.name > $2
		ORDER BY t.name LIMIT $3`

	// A message still waiting to be sent that was made from the template: a scan of the queue
	// (messages_claim), not of the history.
	qTemplateUsedByMessage = `SELECT id FROM messages WHERE ` + claimable + ` AND template = $1 LIMIT 1`

	// A live template whose latest version wraps itself in the layout $1.
	qTemplateUsedAsLayout = `SELECT t.name
		FROM templates t JOIN template_versions v ON v.name = t.name AND v.version = t.latest
		WHERE t.deleted_at IS NULL AND v.layout = $1 AND t.name <> $1
		ORDER BY t.name LIMIT 1`

	qTemplateDelete = `UPDATE templates SET deleted_at = $1 WHERE name = $2 AND deleted_at IS NULL`
)
