package sqlite

// The SQL of the notify area (notify.go).

const eventColumns = `id, name, client_id, api_key_id, contact_id, email, data, occurred_at, created_at`

const eventColumnCount = 9

const actionColumns = `id, trigger_id, event_id, contact_id, email, due_at, status, cancel_key, digest_key,
	cap_key, message_ids, reason, lease_owner, lease_until, created_at, updated_at`

// actionInsertColumns are actionColumns and the event's time.
const actionInsertColumns = actionColumns + `, event_at`

const actionColumnCount = 16

const triggerColumns = `id, name, event, condition, template, recipients, stream, delay_ns, cancel_if, digest,
	cap_ns, honour_unsubscribes, from_addr, tags, enabled, created_at, updated_at`

// claimableAction is the condition of an action a claim may take at ?1 (now): pending, due,
// and not leased or its lease ended. It starts with the WHERE of the partial index actions_due,
// which SQLite only uses when a query repeats it.
const claimableAction = `status = 'pending' AND due_at <= ?1 AND (lease_owner = '' OR lease_until <= ?1)`

// cancelledAction is the condition of an action a recorded cancel names: a cancel with its key
// at or after its event's time and not after its due time.
const cancelledAction = `cancel_key <> '' AND EXISTS (SELECT 1 FROM event_cancels c
	WHERE c.key = actions.cancel_key AND c.at >= actions.event_at AND c.at <= actions.due_at)`

const (
	qAppEventInsertInto    = `INSERT INTO events (` + eventColumns + `) VALUES `
	qActionInsertInto      = `INSERT INTO actions (` + actionInsertColumns + `) VALUES `
	qActionEventInsertInto = `INSERT INTO action_events (action_id, event_id) VALUES `
	qEventCancelInsertInto = `INSERT INTO event_cancels (key, event_id, at) VALUES `
	qTriggerCapPutInto     = `INSERT OR REPLACE INTO trigger_caps (trigger_id, cap_key, last_at) VALUES `
	qEventsByClient        = `SELECT e.id, e.api_key_id, e.client_id, e.contact_id FROM json_each(?) j
		JOIN events e ON e.api_key_id = j.value ->> 0 AND e.client_id = j.value ->> 1 AND e.client_id <> ''`
	qActionIDsOfEvents = `SELECT id, event_id FROM actions WHERE event_id IN (SELECT value FROM json_each(?1))
		UNION SELECT action_id, event_id FROM action_events WHERE event_id IN (SELECT value FROM json_each(?1))
		ORDER BY 1`
	// digest_key <> '' and status = 'pending': the WHERE of the partial index actions_digest.
	qPendingDigest = `SELECT id FROM actions WHERE trigger_id = ? AND digest_key = ? AND digest_key <> ''
		AND status = 'pending' AND lease_owner = '' ORDER BY due_at LIMIT 1`

	qEventGet        = `SELECT ` + eventColumns + ` FROM events WHERE id = ?`
	qEventsByID      = `SELECT ` + eventColumns + ` FROM events WHERE id IN (SELECT value FROM json_each(?))`
	qActionsOfEvents = `SELECT ` + actionColumns + ` FROM actions WHERE id IN (
		SELECT id FROM actions WHERE event_id IN (SELECT value FROM json_each(?1))
		UNION SELECT action_id FROM action_events WHERE event_id IN (SELECT value FROM json_each(?1)))
		ORDER BY created_at, id`
	qActionJoins = `SELECT action_id, event_id FROM action_events
		WHERE action_id IN (SELECT value FROM json_each(?)) ORDER BY action_id, id`

	// Events whose actions are all finished and whose recorded cancels no pending action
	// waits for, oldest first; deleting one deletes its actions, joins and cancels (ON DELETE
	// CASCADE).
	qEventPurge = `DELETE FROM events WHERE id IN (SELECT id FROM events e WHERE occurred_at < ?1
		AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.event_id = e.id AND a.status = 'pending')
		AND NOT EXISTS (SELECT 1 FROM action_events j JOIN actions a ON a.id = j.action_id
			WHERE j.event_id = e.id AND a.status = 'pending')
		AND NOT EXISTS (SELECT 1 FROM event_cancels c JOIN actions a ON a.cancel_key = c.key
			AND a.status = 'pending' AND a.cancel_key <> '' WHERE c.event_id = e.id)
		ORDER BY occurred_at LIMIT ?2)`

	qTriggerInsert = `INSERT INTO triggers (` + triggerColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qTriggerUpdate = `UPDATE triggers SET name = ?2, event = ?3, condition = ?4, template = ?5, recipients = ?6,
		stream = ?7, delay_ns = ?8, cancel_if = ?9, digest = ?10, cap_ns = ?11, honour_unsubscribes = ?12,
		from_addr = ?13, tags = ?14, enabled = ?15, updated_at = ?17 WHERE id = ?1`
	qTriggerGet        = `SELECT ` + triggerColumns + ` FROM triggers WHERE id = ?`
	qTriggerList       = `SELECT ` + triggerColumns + ` FROM triggers WHERE id > ?1 ORDER BY id LIMIT ?2`
	qTriggerListEv     = `SELECT ` + triggerColumns + ` FROM triggers WHERE event = ?3 AND id > ?1 ORDER BY id LIMIT ?2`
	qTriggerEnabled    = `SELECT ` + triggerColumns + ` FROM triggers WHERE enabled = 1 ORDER BY id`
	qTriggerDelete     = `DELETE FROM triggers WHERE id = ?`
	qTriggerCapsDelete = `DELETE FROM trigger_caps WHERE trigger_id = ?`
	qTriggerCancel     = `UPDATE actions SET status = 'cancelled', reason = 'trigger deleted', lease_owner = '',
		lease_until = NULL, updated_at = ?2 WHERE status = 'pending' AND trigger_id = ?1`

	// The claim first cancels, among the actions it would look at, those a recorded cancel
	// names; the claim itself never takes one (the cancel check is part of its condition), so
	// a cancel and a send never both happen whatever the limit cut.
	qActionCancelDue = `UPDATE actions SET status = 'cancelled', reason = 'cancelled by a later event',
		lease_owner = '', lease_until = NULL, updated_at = ?1
		WHERE id IN (SELECT id FROM actions WHERE ` + claimableAction + ` ORDER BY due_at LIMIT ?2)
		AND ` + cancelledAction
	qActionClaim = `UPDATE actions SET lease_owner = ?2, lease_until = ?3, updated_at = ?1
		WHERE id IN (SELECT id FROM actions WHERE ` + claimableAction + ` AND NOT (` + cancelledAction + `)
			ORDER BY due_at LIMIT ?4)
		RETURNING ` + actionColumns
	qActionsHeld = `SELECT id, trigger_id, event_id, lease_owner FROM actions
		WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending' AND lease_owner <> ''`
	qActionsOf = `SELECT id, trigger_id, event_id FROM actions WHERE id IN (SELECT value FROM json_each(?))`
	qCapsOf    = `SELECT c.trigger_id, c.cap_key, c.last_at FROM json_each(?) j
		JOIN trigger_caps c ON c.trigger_id = j.value ->> 0 AND c.cap_key = j.value ->> 1`
	// Each element of ?1: [id, status, reason, message ids (a JSON array) or null].
	qActionFinish = `UPDATE actions SET status = j.value ->> 1, reason = j.value ->> 2,
		message_ids = j.value ->> 3, lease_owner = '', lease_until = NULL, updated_at = ?2
		FROM json_each(?1) j WHERE actions.id = j.value ->> 0`
	qActionRelease = `UPDATE actions SET lease_owner = '', lease_until = NULL, updated_at = ?2
		WHERE status = 'pending' AND lease_owner <> '' AND substr(lease_owner, 1, length(?1)) = ?1`
	qActionNextDue = `SELECT min(due_at) FROM actions WHERE status = 'pending' AND lease_owner = ''`
)
