package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// WebhookCreate implements store.Webhooks.
func (s *Store) WebhookCreate(ctx context.Context, e store.WebhookEndpoint) error {
	if err := driverkit.CheckWebhookEndpoint(e); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	args, err := endpointArgs(e)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, qEndpointInsert, args...); err != nil {
			return err
		}
		return writeRoutes(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("postgres: creating webhook endpoint %s: %w", e.ID, unavailable(err))
	}
	return nil
}

// writeRoutes writes the routes of e, enabled: one per type.
func writeRoutes(ctx context.Context, tx pgx.Tx, e store.WebhookEndpoint) error {
	if !e.Enabled {
		return nil
	}
	_, err := tx.Exec(ctx, qRoutesInsert, e.Types, e.ID)
	return err
}

// WebhookUpdate implements store.Webhooks.
func (s *Store) WebhookUpdate(ctx context.Context, e store.WebhookEndpoint) error {
	if err := driverkit.CheckWebhookEndpoint(e); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	types, err := json.Marshal(e.Types)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, qEndpointUpdate, e.ID, e.URL, e.Description, string(types), e.Secret,
			e.PreviousSecret, ts(e.PreviousUntil), e.Enabled, e.DisabledReason, tsNotNull(e.UpdatedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("webhook endpoint %s: %w", e.ID, store.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, qRoutesDelete, e.ID); err != nil {
			return err
		}
		return writeRoutes(ctx, tx, e)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("postgres: updating webhook endpoint %s: %w", e.ID, unavailable(err))
	}
	if e.Enabled {
		s.webhooksWritten(1) // its deliveries may be claimable again
	}
	return nil
}

// WebhookGet implements store.Webhooks.
func (s *Store) WebhookGet(ctx context.Context, id string) (store.WebhookEndpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, qEndpointGet, id))
	if noRows(err) {
		return store.WebhookEndpoint{}, fmt.Errorf("webhook endpoint %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.WebhookEndpoint{}, fmt.Errorf("postgres: webhook endpoint %s: %w", id, unavailable(err))
	}
	return e, nil
}

// WebhookList implements store.Webhooks.
func (s *Store) WebhookList(ctx context.Context) ([]store.WebhookEndpoint, error) {
	out, err := readAll(ctx, s, qEndpointList, nil, scanEndpoint)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing webhook endpoints: %w", unavailable(err))
	}
	return out, nil
}

// WebhookDelete implements store.Webhooks.
func (s *Store) WebhookDelete(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, qEndpointDelete, id)
	if err != nil {
		return fmt.Errorf("postgres: deleting webhook endpoint %s: %w", id, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook endpoint %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// WebhookDisable implements store.Webhooks. The endpoint's deliveries waiting for an attempt
// fail with the reason (WebhookReplay brings them back once it is enabled again).
func (s *Store) WebhookDisable(ctx context.Context, id, reason string, now time.Time) error {
	written := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		written = 0
		var (
			url     string
			enabled bool
		)
		err := tx.QueryRow(ctx, qEndpointLock, id).Scan(&url, &enabled)
		if noRows(err) {
			return fmt.Errorf("webhook endpoint %s: %w", id, store.ErrNotFound)
		}
		if err != nil || !enabled {
			return err
		}
		if _, err := tx.Exec(ctx, qEndpointDisable, id, reason, tsNotNull(now)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, qRoutesDelete, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, qDisableDeliveries, id, driverkit.DisabledError(reason), tsNotNull(now)); err != nil {
			return err
		}
		written, err = outboxWrite(ctx, tx, now, []outboxEvent{{Type: store.WebhookEndpointDisabled,
			Subject: id, At: now, Detail: driverkit.DisabledDetail(url, reason)}})
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("postgres: disabling webhook endpoint %s: %w", id, unavailable(err))
	}
	s.webhooksWritten(written)
	return nil
}

// WebhookClaim implements store.Webhooks. Owner and LeaseUntil are required; a Limit <= 0 claims
// nothing. While leased, a delivery's NextAttemptAt is its lease's end.
func (s *Store) WebhookClaim(ctx context.Context, p store.WebhookClaimParams) ([]store.WebhookDelivery, error) {
	if p.Owner == "" || p.LeaseUntil.IsZero() {
		return nil, errors.New("postgres: WebhookClaim needs an Owner and a LeaseUntil")
	}
	if p.Limit <= 0 {
		return nil, nil
	}
	out, err := readAll(ctx, s, qDeliveryClaim,
		[]any{p.Owner, tsNotNull(p.LeaseUntil), tsNotNull(p.Now), int32(min(p.Limit, 1<<30)), nonNilStrings(p.ExceptEndpoints)},
		scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("postgres: claiming webhook deliveries: %w", unavailable(err))
	}
	// RETURNING does not keep the subquery's order; the lease's end is every row's due time now.
	slices.SortFunc(out, func(a, b store.WebhookDelivery) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// WebhookFinish implements store.Webhooks: every attempt in one statement, then the endpoints'
// health, in one transaction. An attempt with a zero At happened at now.
func (s *Store) WebhookFinish(ctx context.Context, now time.Time, ps []store.WebhookFinishParams) (int, error) {
	ps, err := driverkit.PrepareWebhookFinishes(ps, now)
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	if len(ps) == 0 {
		return 0, nil
	}
	rows := make([][]any, len(ps))
	again := false
	for i, p := range ps {
		a := p.Attempt
		rows[i] = []any{p.ID, p.Owner, p.Status, tsNotNull(p.NextAttemptAt), int32(a.Code), a.Response,
			a.Error, tsNotNull(a.At), a.Duration.Microseconds()}
		again = again || p.Status == store.DeliveryPending
	}
	args := columns(rows, "bigint", "text", "text", "timestamptz", "integer", "text", "text", "timestamptz", "bigint")
	applied := 0
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		done, err := queryTx(ctx, tx, qDeliveryFinish, args, func(sc scanner) (driverkit.WebhookOutcome, error) {
			var (
				o  driverkit.WebhookOutcome
				at pgtype.Timestamptz
			)
			err := sc.Scan(&o.EndpointID, &o.Status, &at)
			o.At = fromTS(at)
			return o, err
		})
		if err != nil {
			return err
		}
		applied = len(done)
		health := driverkit.WebhookHealth(done)
		if len(health) == 0 {
			return nil
		}
		hrows := make([][]any, len(health))
		for i, h := range health {
			hrows[i] = []any{h.EndpointID, h.Mode, ts(h.Since)}
		}
		_, err = tx.Exec(ctx, qEndpointHealth, columns(hrows, "text", "text", "timestamptz")...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: finishing webhook deliveries: %w", unavailable(err))
	}
	if again {
		s.wake.Signal(webhookWake) // a new due time to wait for (this node's senders alone)
	}
	return applied, nil
}

// WebhookReleaseLeases implements store.Webhooks. The deliveries released are due at now.
func (s *Store) WebhookReleaseLeases(ctx context.Context, ownerPrefix string, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, qDeliveryRelease, ownerPrefix, tsNotNull(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: releasing webhook leases: %w", unavailable(err))
	}
	n := int(tag.RowsAffected())
	s.webhooksWritten(n)
	return n, nil
}

// WebhookNextDue implements store.Webhooks. A leased delivery is due at its lease's end.
func (s *Store) WebhookNextDue(ctx context.Context) (time.Time, bool, error) {
	var next pgtype.Timestamptz
	err := s.pool.QueryRow(ctx, qDeliveryNextDue).Scan(&next)
	if noRows(err) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("postgres: next due webhook delivery: %w", unavailable(err))
	}
	return fromTS(next), true, nil
}

// WebhookWakeups implements store.Webhooks: this node's reports and those of the other nodes
// (NOTIFY, see the package doc).
func (s *Store) WebhookWakeups() <-chan struct{} {
	return s.wake.Chan(webhookWake)
}

// WebhookDeliveryGet implements store.Webhooks.
func (s *Store) WebhookDeliveryGet(ctx context.Context, id int64) (store.WebhookDelivery, []store.WebhookAttempt, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, qDeliveryGet, id))
	if noRows(err) {
		return store.WebhookDelivery{}, nil, fmt.Errorf("webhook delivery %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.WebhookDelivery{}, nil, fmt.Errorf("postgres: webhook delivery %d: %w", id, unavailable(err))
	}
	attempts, err := readAll(ctx, s, qAttemptsGet, []any{id}, scanAttempt)
	if err != nil {
		return store.WebhookDelivery{}, nil, fmt.Errorf("postgres: attempts of webhook delivery %d: %w", id, unavailable(err))
	}
	return d, attempts, nil
}

// WebhookDeliveries implements store.Webhooks. Limit defaults to 50 and is capped at 1000.
func (s *Store) WebhookDeliveries(ctx context.Context, p store.WebhookDeliveryListParams) ([]store.WebhookDelivery, string, error) {
	after, err := store.WebhookDeliveryCursorAfter(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := driverkit.ListLimit(p.Limit)
	page, err := readAll(ctx, s, qDeliveryList, []any{p.EndpointID, p.Status, p.Type, after, int32(limit + 1)},
		scanDelivery)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing webhook deliveries: %w", unavailable(err))
	}
	page, next := driverkit.DeliveryPage(page, limit)
	return page, next, nil
}

// WebhookRetry implements store.Webhooks.
func (s *Store) WebhookRetry(ctx context.Context, id int64, now time.Time) (store.WebhookDelivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, qDeliveryRetry, id, tsNotNull(now)))
	if noRows(err) {
		var one int
		err = s.pool.QueryRow(ctx, qDeliveryExists, id).Scan(&one)
		if noRows(err) {
			return store.WebhookDelivery{}, fmt.Errorf("webhook delivery %d: %w", id, store.ErrNotFound)
		}
		if err == nil {
			return store.WebhookDelivery{}, fmt.Errorf("webhook delivery %d is being sent: %w", id, store.ErrConflict)
		}
	}
	if err != nil {
		return store.WebhookDelivery{}, fmt.Errorf("postgres: retrying webhook delivery %d: %w", id, unavailable(err))
	}
	s.webhooksWritten(1)
	return d, nil
}

// WebhookReplay implements store.Webhooks. A delivery being sent is left to its sender.
func (s *Store) WebhookReplay(ctx context.Context, p store.WebhookReplayParams) (int, error) {
	statuses, err := driverkit.ReplayStatuses(p)
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	tag, err := s.pool.Exec(ctx, qDeliveryReplay, p.EndpointID, tsNotNull(p.From), tsNotNull(p.To),
		tsNotNull(p.Now), statuses)
	if err != nil {
		return 0, fmt.Errorf("postgres: replaying webhook deliveries: %w", unavailable(err))
	}
	n := int(tag.RowsAffected())
	s.webhooksWritten(n)
	return n, nil
}

// WebhookPurge implements store.Webhooks.
func (s *Store) WebhookPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, qDeliveryPurge, tsNotNull(before), int32(min(limit, 1<<30)))
	if err != nil {
		return 0, fmt.Errorf("postgres: purging webhook deliveries: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}

// endpointArgs returns the values of endpointColumns for e.
func endpointArgs(e store.WebhookEndpoint) ([]any, error) {
	types, err := json.Marshal(e.Types)
	if err != nil {
		return nil, err
	}
	reason := e.DisabledReason
	if e.Enabled {
		reason = ""
	}
	return []any{e.ID, e.URL, e.Description, string(types), e.Secret, e.PreviousSecret,
		ts(e.PreviousUntil), e.Enabled, reason, ts(e.FailingSince), tsNotNull(e.CreatedAt),
		tsNotNull(e.UpdatedAt)}, nil
}

func scanEndpoint(sc scanner) (store.WebhookEndpoint, error) {
	var (
		e                                    store.WebhookEndpoint
		types                                []byte
		prevUntil, failing, created, updated pgtype.Timestamptz
	)
	if err := sc.Scan(&e.ID, &e.URL, &e.Description, &types, &e.Secret, &e.PreviousSecret, &prevUntil,
		&e.Enabled, &e.DisabledReason, &failing, &created, &updated); err != nil {
		return e, err
	}
	if err := json.Unmarshal(types, &e.Types); err != nil {
		return e, fmt.Errorf("webhook endpoint %s: types: %w", e.ID, err)
	}
	e.PreviousUntil, e.FailingSince = fromTS(prevUntil), fromTS(failing)
	e.CreatedAt, e.UpdatedAt = fromTS(created), fromTS(updated)
	return e, nil
}

func scanDelivery(sc scanner) (store.WebhookDelivery, error) {
	var (
		d                                        store.WebhookDelivery
		detail                                   []byte
		at, next, leaseUntil, created, delivered pgtype.Timestamptz
		attempts, code                           int32
	)
	if err := sc.Scan(&d.ID, &d.EndpointID, &d.Type, &d.Subject, &d.Recipient, &d.CampaignID, &d.RunID,
		&at, &detail, &d.Status, &attempts, &next, &code, &d.LastError, &d.LeaseOwner,
		&leaseUntil, &created, &delivered); err != nil {
		return d, err
	}
	if len(detail) > 0 {
		d.Detail = json.RawMessage(detail)
	}
	d.Attempts, d.LastCode = int(attempts), int(code)
	d.At, d.NextAttemptAt, d.CreatedAt = fromTS(at), fromTS(next), fromTS(created)
	d.LeaseUntil, d.DeliveredAt = fromTS(leaseUntil), fromTS(delivered)
	return d, nil
}

func scanAttempt(sc scanner) (store.WebhookAttempt, error) {
	var (
		a    store.WebhookAttempt
		at   pgtype.Timestamptz
		code int32
		us   int64
	)
	if err := sc.Scan(&a.DeliveryID, &at, &code, &a.Response, &a.Error, &us); err != nil {
		return a, err
	}
	a.At, a.Code, a.Duration = fromTS(at), int(code), time.Duration(us)*time.Microsecond
	return a, nil
}
