package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postie/postie/internal/store/driverkit"
)

// The outbox (store/webhooks.go): a method that makes a change worth reporting inserts, in the
// same statement or transaction, one webhook_deliveries row per enabled endpoint routed for the
// change's type (webhook_routes, which holds the enabled endpoints' types alone). A statement
// that is the whole method embeds outboxFrom … outboxTo; a transaction calls outboxWrite.

// outboxEvent is one change to report: a delivery for each enabled endpoint routed for Type.
type outboxEvent = driverkit.OutboxEvent

// webhookWake is the wake-up key (and NOTIFY payload stream) of the webhook senders
// (store.Webhooks.WebhookWakeups); no stream has this name.
const webhookWake = "webhooks"

// outboxDeliveryColumns are the columns an outbox insert writes.
const outboxDeliveryColumns = `endpoint_id, type, subject, recipient, campaign_id, run_id, at,
	detail, next_attempt_at, created_at`

// outboxFrom + src + outboxTo is the INSERT of a data-modifying CTE (WITH wh AS (…)) writing
// the deliveries of the changes src selects, for every endpoint routed for their types. src is a
// query whose rows have the columns type, subject, recipient, campaign_id, run_id (text, not
// NULL), at (timestamptz), detail (jsonb) and created (timestamptz: the deliveries' creation and
// first due time, the method's now); the ids of one statement's deliveries follow no order. The INSERT
// returns one row per delivery, so the statement can count them ((SELECT count(*) FROM wh)) for
// webhooksWritten.
//
// With no route at all the one-time EXISTS on webhook_routes is false and src is never run: a
// statement reporting a change nobody listens to pays one probe of an empty table.
const (
	outboxFrom = `INSERT INTO webhook_deliveries (` + outboxDeliveryColumns + `)
		SELECT r.endpoint_id, o.type, o.subject, o.recipient, o.campaign_id, o.run_id, o.at,
			o.detail, o.created, o.created
		FROM (`
	outboxTo = `) o
			JOIN webhook_routes r ON r.type = o.type
		WHERE EXISTS (SELECT 1 FROM webhook_routes)
		RETURNING 1`
)

// qRouted tells whether some enabled endpoint receives type $1: a method that must count
// something for a report asks first.
const qRouted = `SELECT EXISTS (SELECT 1 FROM webhook_routes WHERE type = $1)`

// qOutboxInsert writes the deliveries of changes given as arrays ($1 … $7), created and due at
// $8 (see outboxWrite).
const qOutboxInsert = `WITH wh AS (` + outboxFrom + `SELECT type, subject, recipient, campaign_id,
			run_id, at, detail::jsonb AS detail, $8::timestamptz AS created
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
			$7::text[]) WITH ORDINALITY AS e (type, subject, recipient, campaign_id, run_id, at, detail, n)
		ORDER BY n` + outboxTo + `)
	SELECT count(*) FROM wh`

// outboxWrite inserts, in tx (the transaction of the change), the deliveries of evs for every endpoint routed for their
// types, created and due at now, and returns how many it inserted; after the commit the caller
// passes that to webhooksWritten.
func outboxWrite(ctx context.Context, tx querier, now time.Time, evs []outboxEvent) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	n, err := queryTx(ctx, tx, qOutboxInsert, outboxArgs(now, evs), scanValue[int64])
	if err != nil {
		return 0, fmt.Errorf("webhook deliveries: %w", err)
	}
	return int(n[0]), nil
}

// outboxArgs are the parameters of qOutboxInsert for evs created at now.
func outboxArgs(now time.Time, evs []outboxEvent) []any {
	rows := make([][]any, len(evs))
	for i, e := range evs {
		rows[i] = []any{e.Type, e.Subject, e.Recipient, e.CampaignID, e.RunID, tsNotNull(e.At),
			rawJSON(e.Detail)}
	}
	args := columns(rows, "text", "text", "text", "text", "text", "timestamptz", "text")
	return append(args, tsNotNull(now))
}

// sendOutboxBatch sends b in tx, after queueing at its end the insert of the deliveries of evs
// (created at now) when there are any, and returns how many deliveries that wrote.
func sendOutboxBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch, now time.Time, evs []outboxEvent) (int, error) {
	if len(evs) > 0 {
		b.Queue(qOutboxInsert, outboxArgs(now, evs)...)
	}
	if b.Len() == 0 {
		return 0, nil
	}
	br := tx.SendBatch(ctx, b)
	var (
		n   int64
		err error
	)
	for i := range b.Len() {
		if i == b.Len()-1 && len(evs) > 0 {
			err = br.QueryRow().Scan(&n)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			break
		}
	}
	return int(n), errors.Join(err, br.Close())
}

// webhooksWritten wakes the webhook senders (this node's at once, the others' through NOTIFY)
// after a commit that inserted n deliveries.
func (s *Store) webhooksWritten(n int) {
	if n > 0 {
		s.signal(map[string]struct{}{webhookWake: {}})
	}
}

// scanValue reads a row of one column.
func scanValue[T any](sc scanner) (T, error) {
	var v T
	err := sc.Scan(&v)
	return v, err
}

// qOutboxMessage writes the deliveries of a change of type $1 to message $2: one per recipient
// (only $6 unless it is ”), with the message's campaign and run, at $3 with detail $4, created
// and due at $5.
const qOutboxMessage = `WITH wh AS (` + outboxFrom + `SELECT $1::text AS type, m.id AS subject,
			mr.email_lower AS recipient, coalesce(m.campaign_id, '') AS campaign_id,
			coalesce(m.run_id, '') AS run_id, $3::timestamptz AS at, $4::text::jsonb AS detail,
			$5::timestamptz AS created
		FROM messages m JOIN message_recipients mr ON mr.message_id = m.id
		WHERE m.id = $2 AND ($6 = '' OR mr.email_lower = $6)
		ORDER BY mr.email_lower` + outboxTo + `)
	SELECT count(*) FROM wh`

// outboxMessage inserts, in tx, the deliveries of a change of type typ to message id: one per
// recipient of the message (or only recipient, when not ""), each with the message's campaign
// and run. It returns how many it inserted.
func outboxMessage(ctx context.Context, tx querier, typ, id, recipient string, at time.Time, detail json.RawMessage, now time.Time) (int, error) {
	n, err := queryTx(ctx, tx, qOutboxMessage, []any{typ, id, tsNotNull(at), textOrNil(rawJSON(detail)),
		tsNotNull(now), recipient}, scanValue[int64])
	if err != nil {
		return 0, fmt.Errorf("webhook deliveries: %w", err)
	}
	return int(n[0]), nil
}
