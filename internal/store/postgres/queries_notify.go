package postgres

// The SQL of the notify area (notify.go).

var (
	eventCols = []column{{"id", "text"}, {"name", "text"}, {"client_id", "text"}, {"api_key_id", "text"},
		{"contact_id", "text"}, {"email", "text"}, {"data", "json"}, {"occurred_at", "timestamptz"},
		{"created_at", "timestamptz"}}
	actionCols = []column{{"id", "text"}, {"trigger_id", "text"}, {"event_id", "text"}, {"contact_id", "text"},
		{"email", "text"}, {"due_at", "timestamptz"}, {"status", "text"}, {"cancel_key", "text"},
		{"digest_key", "text"}, {"cap_key", "text"}, {"message_ids", "jsonb"}, {"reason", "text"},
		{"lease_owner", "text"}, {"lease_until", "timestamptz"}, {"created_at", "timestamptz"},
		{"updated_at", "timestamptz"}}
	// actionInsertCols are actionCols and the event's time.
	actionInsertCols = append(append([]column(nil), actionCols...), column{"event_at", "timestamptz"})
	joinCols         = []column{{"action_id", "text"}, {"event_id", "text"}}
	cancelCols       = []column{{"key", "text"}, {"event_id", "text"}, {"at", "timestamptz"}}

	eventColumns  = columnList(eventCols)
	actionColumns = columnList(actionCols)

	eventParamTypes  = paramTypes(eventCols)
	actionParamTypes = paramTypes(actionInsertCols)
	joinParamTypes   = paramTypes(joinCols)
	cancelParamTypes = paramTypes(cancelCols)

	qAppEventInsert    = unnestInsert("events", eventCols)
	qActionInsert      = unnestInsert("actions", actionInsertCols)
	qActionEventInsert = unnestInsert("action_events", joinCols)
	qEventCancelInsert = unnestInsert("event_cancels", cancelCols)

	// The actions of events: those they created and the digests they joined.
	qActionsOfEvents = `SELECT ` + actionColumns + ` FROM actions WHERE event_id = ANY ($1::text[])
		OR id IN (SELECT action_id FROM action_events WHERE event_id = ANY ($1::text[]))
		ORDER BY created_at, id`
	qEventGet   = `SELECT ` + eventColumns + ` FROM events WHERE id = $1`
	qEventsByID = `SELECT ` + eventColumns + ` FROM events WHERE id = ANY ($1::text[])`
)

const triggerColumns = `id, name, event, condition, template, recipients, stream, delay_ns, cancel_if, digest,
	cap_ns, honour_unsubscribes, from_addr, tags, enabled, created_at, updated_at`

// claimableAction is the condition of an action a claim may take at $1 (now): pending, due, and
// not leased or its lease ended (the partial index actions_due).
const claimableAction = `status = 'pending' AND due_at <= $1 AND (lease_owner = '' OR lease_until <= $1)`

// cancelledAction is the condition of an action (of table t) a recorded cancel names: a cancel
// with its key at or after its event's time and not after its due time.
func cancelledAction(t string) string {
	return t + `.cancel_key <> '' AND EXISTS (SELECT 1 FROM event_cancels c
		WHERE c.key = ` + t + `.cancel_key AND c.at >= ` + t + `.event_at AND c.at <= ` + t + `.due_at)`
}

var (
	qEventsByClient = `SELECT e.id, e.api_key_id, e.client_id, e.contact_id
		FROM unnest($1::text[], $2::text[]) AS k (api_key_id, client_id)
		JOIN events e ON e.api_key_id = k.api_key_id AND e.client_id = k.client_id AND e.client_id <> ''`
	qActionIDsOfEvents = `SELECT id, event_id FROM actions WHERE event_id = ANY ($1::text[])
		UNION SELECT action_id, event_id FROM action_events WHERE event_id = ANY ($1::text[])
		ORDER BY 1`
	// FOR UPDATE: two groups joining one digest take turns, and a claim cannot take the action
	// while an event joins it.
	qPendingDigest = `SELECT id FROM actions WHERE trigger_id = $1 AND digest_key = $2 AND digest_key <> ''
		AND status = 'pending' AND lease_owner = '' ORDER BY due_at LIMIT 1 FOR UPDATE`
	qActionJoins = `SELECT action_id, event_id FROM action_events WHERE action_id = ANY ($1::text[])
		ORDER BY action_id, id`

	// Events whose actions are all finished and whose recorded cancels no pending action
	// waits for, oldest first; deleting one deletes its actions, joins and cancels (ON DELETE
	// CASCADE).
	qEventPurge = `DELETE FROM events WHERE id IN (SELECT id FROM events e WHERE occurred_at < $1
		AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.event_id = e.id AND a.status = 'pending')
		AND NOT EXISTS (SELECT 1 FROM action_events j JOIN actions a ON a.id = j.action_id
			WHERE j.event_id = e.id AND a.status = 'pending')
		AND NOT EXISTS (SELECT 1 FROM event_cancels c JOIN actions a ON a.cancel_key = c.key
			AND a.status = 'pending' AND a.cancel_key <> '' WHERE c.event_id = e.id)
		ORDER BY occurred_at LIMIT $2 FOR UPDATE SKIP LOCKED)`

	qTriggerInsert = `INSERT INTO triggers (` + triggerColumns + `)
		VALUES ($1, $2, $3, $4::text::json, $5, $6::text::json, $7, $8, $9::text::json, $10::text::json, $11,
			$12, $13, $14::text::json, $15, $16, $17)`
	qTriggerUpdate = `UPDATE triggers SET name = $2, event = $3, condition = $4::text::json, template = $5,
		recipients = $6::text::json, stream = $7, delay_ns = $8, cancel_if = $9::text::json,
		digest = $10::text::json, cap_ns = $11, honour_unsubscribes = $12, from_addr = $13,
		tags = $14::text::json, enabled = $15, updated_at = $16 WHERE id = $1`
	qTriggerGet     = `SELECT ` + triggerColumns + ` FROM triggers WHERE id = $1`
	qTriggerList    = `SELECT ` + triggerColumns + ` FROM triggers WHERE id > $1 AND ($3 = '' OR event = $3) ORDER BY id LIMIT $2`
	qTriggerEnabled = `SELECT ` + triggerColumns + ` FROM triggers WHERE enabled ORDER BY id`
	qTriggerDelete  = `WITH d AS (DELETE FROM triggers WHERE id = $1 RETURNING id),
		c AS (DELETE FROM trigger_caps WHERE trigger_id IN (SELECT id FROM d)),
		a AS (UPDATE actions SET status = 'cancelled', reason = 'trigger deleted', lease_owner = '',
			lease_until = NULL, updated_at = $2 WHERE status = 'pending' AND trigger_id IN (SELECT id FROM d))
		SELECT count(*) FROM d`

	// The claim ($1 now, $2 owner, $3 lease until, $4 limit): of the due actions it would look
	// at (locked, skipping those another claim holds), those a recorded cancel names are
	// cancelled; it leases due actions no recorded cancel names, in the same statement, so a
	// cancel and a send never both happen.
	qActionClaim = `WITH win AS (
			SELECT id, cancel_key, event_at, due_at FROM actions WHERE ` + claimableAction + `
			ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED),
		cancelled AS (
			UPDATE actions a SET status = 'cancelled', reason = 'cancelled by a later event', lease_owner = '',
				lease_until = NULL, updated_at = $1
			FROM win WHERE a.id = win.id AND ` + cancelledAction("win") + `),
		cand AS (
			SELECT id FROM actions WHERE ` + claimableAction + ` AND NOT (` + cancelledAction("actions") + `)
			ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED),
		claimed AS (
			UPDATE actions a SET lease_owner = $2, lease_until = $3, updated_at = $1
			FROM cand WHERE a.id = cand.id
			RETURNING a.id, a.trigger_id, a.event_id, a.contact_id, a.email, a.due_at, a.status, a.cancel_key,
				a.digest_key, a.cap_key, a.message_ids, a.reason, a.lease_owner, a.lease_until, a.created_at,
				a.updated_at)
		SELECT * FROM claimed ORDER BY due_at, id`

	qActionsHeld = `SELECT id, trigger_id, event_id, lease_owner FROM actions
		WHERE id = ANY ($1::text[]) AND status = 'pending' AND lease_owner <> '' ORDER BY id FOR UPDATE`
	// Locks the caps a finish checks, creating those never used (last_at -infinity), so that
	// concurrent finishes of one cap take turns; returns each one's last send.
	qCapsLock = `INSERT INTO trigger_caps (trigger_id, cap_key, last_at)
		SELECT t, k, '-infinity' FROM unnest($1::text[], $2::text[]) AS u (t, k) ORDER BY t, k
		ON CONFLICT (trigger_id, cap_key) DO UPDATE SET last_at = trigger_caps.last_at
		RETURNING trigger_id, cap_key, last_at`
	qCapsSet = `UPDATE trigger_caps c SET last_at = u.at
		FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u (t, k, at)
		WHERE c.trigger_id = u.t AND c.cap_key = u.k`
	qActionFinish = `UPDATE actions a SET status = u.status, reason = u.reason, message_ids = u.ids::jsonb,
		lease_owner = '', lease_until = NULL, updated_at = $5
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u (id, status, reason, ids)
		WHERE a.id = u.id`
	qActionRelease = `UPDATE actions SET lease_owner = '', lease_until = NULL, updated_at = $2
		WHERE status = 'pending' AND lease_owner <> '' AND left(lease_owner, length($1)) = $1`
	qActionNextDue = `SELECT min(due_at) FROM actions WHERE status = 'pending' AND lease_owner = ''`
)
