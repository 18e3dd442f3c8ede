package postgres

// The webhooks area (webhooks.go, outbox.go).

// endpointColumns is the column list of a store.WebhookEndpoint, in the order scanEndpoint reads
// and endpointArgs writes them.
const endpointColumns = `id, url, description, types, secret, previous_secret, previous_until, enabled,
	disabled_reason, failing_since, created_at, updated_at`

// deliveryColumns is the column list of a store.WebhookDelivery, in the order scanDelivery reads
// them.
const deliveryColumns = `id, endpoint_id, type, subject, recipient, campaign_id, run_id, at, detail,
	status, attempts, next_attempt_at, last_code, last_error, lease_owner, lease_until, created_at,
	delivered_at`

const (
	qEndpointInsert = `INSERT INTO webhook_endpoints (` + endpointColumns + `)
		VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7, $8, $9, $10, $11, $12)`

	// Enabling a disabled endpoint clears its reason and its failing time; created_at stays.
	qEndpointUpdate = `UPDATE webhook_endpoints
		SET url = $2, description = $3, types = $4::text::jsonb, secret = $5, previous_secret = $6,
			previous_until = $7,
			disabled_reason = CASE WHEN $8 THEN '' ELSE $9 END,
			failing_since = CASE WHEN $8 AND NOT enabled THEN NULL ELSE failing_since END,
			enabled = $8, updated_at = $10
		WHERE id = $1`

	qEndpointGet  = `SELECT ` + endpointColumns + ` FROM webhook_endpoints WHERE id = $1`
	qEndpointList = `SELECT ` + endpointColumns + ` FROM webhook_endpoints ORDER BY created_at, id`
	// Its routes go with it (ON DELETE CASCADE); its deliveries have no foreign key (see the
	// migration) and are deleted first, their attempts with them.
	qEndpointDelete = `WITH d AS (DELETE FROM webhook_deliveries WHERE endpoint_id = $1)
		DELETE FROM webhook_endpoints WHERE id = $1`
	qEndpointLock = `SELECT url, enabled FROM webhook_endpoints WHERE id = $1 FOR UPDATE`

	qRoutesDelete = `DELETE FROM webhook_routes WHERE endpoint_id = $1`
	qRoutesInsert = `INSERT INTO webhook_routes (type, endpoint_id)
		SELECT t, $2 FROM unnest($1::text[]) t`

	qEndpointDisable = `UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = $3
		WHERE id = $1`

	// A disabled endpoint's deliveries waiting for an attempt fail (WebhookReplay brings them
	// back): the claim would otherwise walk past them all on every call. Those being sent finish
	// as their sender says.
	qDisableDeliveries = `UPDATE webhook_deliveries SET status = 'failed', last_error = $2
		WHERE endpoint_id = $1 AND status = 'pending' AND (lease_owner = '' OR lease_until <= $3)`

	// The claim sets next_attempt_at to the lease's end: a delivery whose sender died is due
	// again then, so one condition (and one index, webhook_deliveries_due) finds every claimable
	// row, and the next due time is one index read. SKIP LOCKED as for messages: claimers on
	// every node never wait for each other nor take the same row.
	qDeliveryClaim = `UPDATE webhook_deliveries
		SET lease_owner = $1, lease_until = $2, next_attempt_at = $2
		WHERE id IN (
			SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= $3 AND e.enabled
				AND d.endpoint_id <> ALL ($5::text[])
			ORDER BY d.next_attempt_at, d.id
			LIMIT $4
			FOR UPDATE OF d SKIP LOCKED)
		RETURNING ` + deliveryColumns

	// Every attempt of the batch in one statement: the deliveries still leased by their owner
	// are updated, and each gets its attempt row. It returns what the endpoints' health needs.
	qDeliveryFinish = `WITH f AS (
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[],
				$5::integer[], $6::text[], $7::text[], $8::timestamptz[], $9::bigint[])
				AS f (id, owner, status, next_attempt_at, code, response, error, at, duration_us)),
		u AS (
			UPDATE webhook_deliveries d
			SET status = f.status, attempts = d.attempts + 1,
				next_attempt_at = CASE WHEN f.status = 'pending' THEN f.next_attempt_at ELSE d.next_attempt_at END,
				last_code = f.code, last_error = f.error, lease_owner = '', lease_until = NULL,
				delivered_at = CASE WHEN f.status = 'delivered' THEN f.at ELSE d.delivered_at END
			FROM f
			WHERE d.id = f.id AND d.status = 'pending' AND d.lease_owner = f.owner
			RETURNING d.id, d.endpoint_id, f.status, f.at, f.code, f.response, f.error, f.duration_us),
		a AS (
			INSERT INTO webhook_attempts (delivery_id, n, at, code, response, error, duration_us)
			SELECT u.id, coalesce((SELECT max(n) FROM webhook_attempts w WHERE w.delivery_id = u.id), 0) + 1,
				u.at, u.code, u.response, u.error, u.duration_us
			FROM u)
		SELECT endpoint_id, status, at FROM u`

	// The endpoints' health after a batch of attempts (webhookHealth): clear, set (a success in
	// the batch came before the failures) or start (set when not set). Each writes only when
	// that changes something, which a healthy endpoint's success does not.
	qEndpointHealth = `UPDATE webhook_endpoints e
		SET failing_since = CASE h.mode WHEN 'clear' THEN NULL WHEN 'set' THEN h.since
			ELSE coalesce(e.failing_since, h.since) END
		FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS h (id, mode, since)
		WHERE e.id = h.id AND CASE h.mode WHEN 'clear' THEN e.failing_since IS NOT NULL
			WHEN 'set' THEN e.failing_since IS DISTINCT FROM h.since
			ELSE e.failing_since IS NULL END`

	// $1 = '' releases every lease; left() rather than LIKE, whose _ and % an owner may contain.
	// The released rows are due at once.
	qDeliveryRelease = `UPDATE webhook_deliveries
		SET lease_owner = '', lease_until = NULL, next_attempt_at = $2
		WHERE status = 'pending' AND lease_owner <> '' AND left(lease_owner, length($1)) = $1`

	qDeliveryNextDue = `SELECT d.next_attempt_at
		FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND e.enabled
		ORDER BY d.next_attempt_at, d.id LIMIT 1`

	qDeliveryGet    = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries WHERE id = $1`
	qDeliveryExists = `SELECT 1 FROM webhook_deliveries WHERE id = $1`

	qAttemptsGet = `SELECT delivery_id, at, code, response, error, duration_us
		FROM webhook_attempts WHERE delivery_id = $1 ORDER BY n`

	// Keyset by id, newest first; $2, $3 = '' for no filter, $4 = 0 for the first page.
	qDeliveryList = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries
		WHERE endpoint_id = $1 AND ($2 = '' OR status = $2) AND ($3 = '' OR type = $3)
			AND ($4 = 0 OR id < $4)
		ORDER BY endpoint_id DESC, id DESC LIMIT $5`

	// Only a delivery not being sent: one pending whose lease ended is taken back.
	qDeliveryRetry = `UPDATE webhook_deliveries
		SET status = 'pending', attempts = 0, next_attempt_at = $2, lease_owner = '',
			lease_until = NULL, delivered_at = NULL
		WHERE id = $1 AND NOT (status = 'pending' AND lease_owner <> '' AND lease_until > $2)
		RETURNING ` + deliveryColumns

	qDeliveryReplay = `UPDATE webhook_deliveries
		SET status = 'pending', attempts = 0, next_attempt_at = $4, lease_owner = '',
			lease_until = NULL, delivered_at = NULL
		WHERE endpoint_id = $1 AND created_at >= $2 AND created_at < $3 AND status = ANY ($5::text[])
			AND NOT (status = 'pending' AND lease_owner <> '' AND lease_until > $4)`

	// Attempts go with their deliveries (ON DELETE CASCADE).
	qDeliveryPurge = `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries
			WHERE status <> 'pending' AND created_at < $1
			ORDER BY created_at LIMIT $2)`
)
