package sqlite

// The webhooks area (webhooks.go, outbox.go).

// deliveryColumns is the column list of a store.WebhookDelivery, in the order scanDelivery reads
// them.
const deliveryColumns = `id, endpoint_id, type, subject, recipient, campaign_id, run_id, at, detail,
	status, attempts, next_attempt_at, last_code, last_error, lease_owner, lease_until, created_at,
	delivered_at`

const (
	qRouteTypes = `SELECT DISTINCT type FROM webhook_routes`

	// One delivery per endpoint routed for ?1.
	qOutboxInsert = `INSERT INTO webhook_deliveries (endpoint_id, type, subject, recipient,
			campaign_id, run_id, at, detail, next_attempt_at, created_at)
		SELECT endpoint_id, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8
		FROM webhook_routes WHERE type = ?1
		ORDER BY endpoint_id`

	// One delivery per endpoint routed for ?1 and recipient of message ?2 (only ?6 unless it is
	// ''), with the message's campaign and run.
	qOutboxMessage = `INSERT INTO webhook_deliveries (endpoint_id, type, subject, recipient,
			campaign_id, run_id, at, detail, next_attempt_at, created_at)
		SELECT r.endpoint_id, ?1, m.id, mr.email_lower, coalesce(m.campaign_id, ''),
			coalesce(m.run_id, ''), ?3, ?4, ?5, ?5
		FROM messages m
			JOIN message_recipients mr ON mr.message_id = m.id
			JOIN webhook_routes r ON r.type = ?1
		WHERE m.id = ?2 AND (?6 = '' OR mr.email_lower = ?6)
		ORDER BY mr.email_lower, r.endpoint_id`
)

// endpointColumns is the column list of a store.WebhookEndpoint, in the order scanEndpoint reads
// and endpointArgs writes them.
const endpointColumns = `id, url, description, types, secret, previous_secret, previous_until, enabled,
	disabled_reason, failing_since, created_at, updated_at`

const (
	qEndpointInsert = `INSERT INTO webhook_endpoints (` + endpointColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	// Enabling a disabled endpoint clears its reason and its failing time; created_at stays.
	qEndpointUpdate = `UPDATE webhook_endpoints
		SET url = ?2, description = ?3, types = ?4, secret = ?5, previous_secret = ?6,
			previous_until = ?7,
			disabled_reason = CASE WHEN ?8 THEN '' ELSE ?9 END,
			failing_since = CASE WHEN ?8 AND NOT enabled THEN NULL ELSE failing_since END,
			enabled = ?8, updated_at = ?10
		WHERE id = ?1`

	qEndpointGet    = `SELECT ` + endpointColumns + ` FROM webhook_endpoints WHERE id = ?`
	qEndpointList   = `SELECT ` + endpointColumns + ` FROM webhook_endpoints ORDER BY created_at, id`
	qEndpointDelete = `DELETE FROM webhook_endpoints WHERE id = ?`
	qEndpointExists = `SELECT url FROM webhook_endpoints WHERE id = ?`

	qRoutesDelete = `DELETE FROM webhook_routes WHERE endpoint_id = ?`
	qRouteInsert  = `INSERT INTO webhook_routes (type, endpoint_id) VALUES (?, ?)`

	qEndpointDisable = `UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?2, updated_at = ?3
		WHERE id = ?1 AND enabled
		RETURNING url`

	// A disabled endpoint's deliveries waiting for an attempt fail (WebhookReplay brings them
	// back): the claim would otherwise walk past them all on every call. Those being sent finish
	// as their sender says.
	qDisableDeliveries = `UPDATE webhook_deliveries SET status = 'failed', last_error = ?2
		WHERE endpoint_id = ?1 AND status = 'pending' AND (lease_owner = '' OR lease_until <= ?3)`

	// The claim sets next_attempt_at to the lease's end: a delivery whose sender died is due
	// again then, so one condition (and one index, webhook_deliveries_due) finds every claimable
	// row, and the next due time is one index read.
	// ?5: a JSON array of the endpoints left out (WebhookClaimParams.ExceptEndpoints).
	qDeliveryClaim = `UPDATE webhook_deliveries
		SET lease_owner = ?1, lease_until = ?2, next_attempt_at = ?2
		WHERE id IN (
			SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= ?3 AND e.enabled
				AND d.endpoint_id NOT IN (SELECT value FROM json_each(?5))
			ORDER BY d.next_attempt_at, d.id
			LIMIT ?4)
		RETURNING ` + deliveryColumns

	qDeliveryFinish = `UPDATE webhook_deliveries
		SET status = ?1, attempts = attempts + 1,
			next_attempt_at = CASE WHEN ?1 = 'pending' THEN ?2 ELSE next_attempt_at END,
			last_code = ?3, last_error = ?4, lease_owner = '', lease_until = NULL,
			delivered_at = CASE WHEN ?1 = 'delivered' THEN ?5 ELSE delivered_at END
		WHERE id = ?6 AND status = 'pending' AND lease_owner = ?7
		RETURNING endpoint_id`

	qAttemptInsert = `INSERT INTO webhook_attempts (delivery_id, n, at, code, response, error, duration_us)
		VALUES (?1, (SELECT coalesce(max(n), 0) + 1 FROM webhook_attempts WHERE delivery_id = ?1),
			?2, ?3, ?4, ?5, ?6)`

	// A success clears the endpoint's failing time; a failure sets it when it is not set. Each
	// writes only when that changes something, which a healthy endpoint's success does not.
	qEndpointHealthy = `UPDATE webhook_endpoints SET failing_since = NULL
		WHERE id = ? AND failing_since IS NOT NULL`
	qEndpointFailing = `UPDATE webhook_endpoints SET failing_since = ?2
		WHERE id = ?1 AND failing_since IS NULL`

	// ?1 = '' releases every lease; substr rather than LIKE, whose _ and % an owner may contain.
	// The released rows are due at once.
	qDeliveryRelease = `UPDATE webhook_deliveries
		SET lease_owner = '', lease_until = NULL, next_attempt_at = ?2
		WHERE status = 'pending' AND lease_owner <> '' AND substr(lease_owner, 1, length(?1)) = ?1`

	qDeliveryNextDue = `SELECT d.next_attempt_at
		FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND e.enabled
		ORDER BY d.next_attempt_at, d.id LIMIT 1`

	qDeliveryExists = `SELECT 1 FROM webhook_deliveries WHERE id = ?`
	qDeliveryGet    = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries WHERE id = ?`

	qAttemptsGet = `SELECT delivery_id, at, code, response, error, duration_us
		FROM webhook_attempts WHERE delivery_id = ? ORDER BY n`

	// Keyset by id, newest first; ?2, ?3 = '' for no filter, ?4 = 0 for the first page.
	qDeliveryList = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries
		WHERE endpoint_id = ?1 AND (?2 = '' OR status = ?2) AND (?3 = '' OR type = ?3)
			AND (?4 = 0 OR id < ?4)
		ORDER BY endpoint_id DESC, id DESC LIMIT ?5`

	// Only a delivery not being sent: one pending whose lease ended is taken back.
	qDeliveryRetry = `UPDATE webhook_deliveries
		SET status = 'pending', attempts = 0, next_attempt_at = ?2, lease_owner = '',
			lease_until = NULL, delivered_at = NULL
		WHERE id = ?1 AND NOT (status = 'pending' AND lease_owner <> '' AND lease_until > ?2)
		RETURNING ` + deliveryColumns

	// ?5: a JSON array of statuses.
	qDeliveryReplay = `UPDATE webhook_deliveries
		SET status = 'pending', attempts = 0, next_attempt_at = ?4, lease_owner = '',
			lease_until = NULL, delivered_at = NULL
		WHERE endpoint_id = ?1 AND created_at >= ?2 AND created_at < ?3
			AND status IN (SELECT value FROM json_each(?5))
			AND NOT (status = 'pending' AND lease_owner <> '' AND lease_until > ?4)`

	qDeliveryPurge = `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries
			WHERE status <> 'pending' AND created_at < ?1
			ORDER BY created_at LIMIT ?2)`
)
