package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// WebhookCreate implements store.Webhooks.
func (s *Store) WebhookCreate(ctx context.Context, e store.WebhookEndpoint) error {
	if err := driverkit.CheckWebhookEndpoint(e); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	args, err := endpointArgs(e)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	err = s.routesChange(ctx, e.Types, func() error {
		return s.w.do(ctx, 1, func(t *wtx) error {
			if _, err := t.exec(qEndpointInsert, args...); err != nil {
				return err
			}
			return writeRoutes(t, e)
		})
	})
	if err != nil {
		return fmt.Errorf("sqlite: creating webhook endpoint %s: %w", e.ID, err)
	}
	return nil
}

// writeRoutes writes the routes of e, enabled: one per type.
func writeRoutes(t *wtx, e store.WebhookEndpoint) error {
	if !e.Enabled {
		return nil
	}
	for _, typ := range e.Types {
		if _, err := t.exec(qRouteInsert, typ, e.ID); err != nil {
			return fmt.Errorf("route %s: %w", typ, err)
		}
	}
	return nil
}

// WebhookUpdate implements store.Webhooks.
func (s *Store) WebhookUpdate(ctx context.Context, e store.WebhookEndpoint) error {
	if err := driverkit.CheckWebhookEndpoint(e); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	types, err := json.Marshal(e.Types)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	err = s.routesChange(ctx, e.Types, func() error {
		return s.w.do(ctx, 1, func(t *wtx) error {
			res, err := t.exec(qEndpointUpdate, e.ID, e.URL, e.Description, string(types), e.Secret,
				e.PreviousSecret, nullMicros(e.PreviousUntil), e.Enabled, e.DisabledReason, micros(e.UpdatedAt))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return cmpErr(err, fmt.Errorf("webhook endpoint %s: %w", e.ID, store.ErrNotFound))
			}
			if _, err := t.exec(qRoutesDelete, e.ID); err != nil {
				return err
			}
			return writeRoutes(t, e)
		})
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("sqlite: updating webhook endpoint %s: %w", e.ID, err)
	}
	if e.Enabled {
		s.wake.Signal(webhookWake) // its deliveries may be claimable again
	}
	return nil
}

// cmpErr returns err when it is not nil, else otherwise.
func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// WebhookGet implements store.Webhooks.
func (s *Store) WebhookGet(ctx context.Context, id string) (store.WebhookEndpoint, error) {
	e, err := readOne(ctx, s, qEndpointGet, []any{id}, scanEndpoint)
	if errors.Is(err, sql.ErrNoRows) {
		return store.WebhookEndpoint{}, fmt.Errorf("webhook endpoint %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.WebhookEndpoint{}, fmt.Errorf("sqlite: webhook endpoint %s: %w", id, err)
	}
	return e, nil
}

// WebhookList implements store.Webhooks.
func (s *Store) WebhookList(ctx context.Context) ([]store.WebhookEndpoint, error) {
	out, err := readAll(ctx, s, qEndpointList, nil, scanEndpoint)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing webhook endpoints: %w", err)
	}
	return out, nil
}

// WebhookDelete implements store.Webhooks. Its routes, deliveries and attempts go with it
// (foreign keys ON DELETE CASCADE).
func (s *Store) WebhookDelete(ctx context.Context, id string) error {
	err := s.routesChange(ctx, nil, func() error {
		return s.w.do(ctx, 1, func(t *wtx) error {
			res, err := t.exec(qEndpointDelete, id)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return cmpErr(err, fmt.Errorf("webhook endpoint %s: %w", id, store.ErrNotFound))
			}
			return nil
		})
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("sqlite: deleting webhook endpoint %s: %w", id, err)
	}
	return nil
}

// WebhookDisable implements store.Webhooks. The endpoint's deliveries waiting for an attempt
// fail with the reason (WebhookReplay brings them back once it is enabled again).
func (s *Store) WebhookDisable(ctx context.Context, id, reason string, now time.Time) error {
	written := 0
	err := s.routesChange(ctx, nil, func() error {
		return s.w.do(ctx, 1, func(t *wtx) error {
			written = 0
			var url string
			err := t.queryRow(qEndpointDisable, []any{id, reason, micros(now)}, &url)
			if errors.Is(err, sql.ErrNoRows) {
				err = t.queryRow(qEndpointExists, []any{id}, &url)
				if errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("webhook endpoint %s: %w", id, store.ErrNotFound)
				}
				return err // disabled already: nothing to do
			}
			if err != nil {
				return err
			}
			if _, err := t.exec(qRoutesDelete, id); err != nil {
				return err
			}
			if _, err := t.exec(qDisableDeliveries, id, driverkit.DisabledError(reason), micros(now)); err != nil {
				return err
			}
			written, err = s.outboxWrite(t, now, []outboxEvent{{Type: store.WebhookEndpointDisabled,
				Subject: id, At: now, Detail: driverkit.DisabledDetail(url, reason)}})
			return err
		})
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("sqlite: disabling webhook endpoint %s: %w", id, err)
	}
	s.webhooksWritten(written)
	return nil
}

// WebhookClaim implements store.Webhooks. Owner and LeaseUntil are required; a Limit <= 0 claims
// nothing. While leased, a delivery's NextAttemptAt is its lease's end.
func (s *Store) WebhookClaim(ctx context.Context, p store.WebhookClaimParams) ([]store.WebhookDelivery, error) {
	if p.Owner == "" || p.LeaseUntil.IsZero() {
		return nil, errors.New("sqlite: WebhookClaim needs an Owner and a LeaseUntil")
	}
	if p.Limit <= 0 {
		return nil, nil
	}
	except := jsonStrings(p.ExceptEndpoints)
	var out []store.WebhookDelivery
	err := s.w.do(ctx, p.Limit, func(t *wtx) error {
		out = out[:0]
		rows, err := t.query(qDeliveryClaim, p.Owner, micros(p.LeaseUntil), micros(p.Now), int64(p.Limit), except)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claiming webhook deliveries: %w", err)
	}
	// RETURNING does not keep the subquery's order; the lease's end is every row's due time now.
	slices.SortFunc(out, func(a, b store.WebhookDelivery) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// WebhookFinish implements store.Webhooks. An attempt with a zero At happened at now.
func (s *Store) WebhookFinish(ctx context.Context, now time.Time, ps []store.WebhookFinishParams) (int, error) {
	ps, err := driverkit.PrepareWebhookFinishes(ps, now)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	applied, again := 0, false
	err = s.w.do(ctx, len(ps), func(t *wtx) error {
		applied, again = 0, false
		for _, p := range ps {
			var endpoint string
			err := t.queryRow(qDeliveryFinish, []any{p.Status, micros(p.NextAttemptAt),
				int64(p.Attempt.Code), p.Attempt.Error, micros(p.Attempt.At), p.ID, p.Owner}, &endpoint)
			if errors.Is(err, sql.ErrNoRows) {
				continue // no longer leased by this owner
			}
			if err != nil {
				return fmt.Errorf("delivery %d: %w", p.ID, err)
			}
			applied++
			again = again || p.Status == store.DeliveryPending
			a := p.Attempt
			if _, err := t.exec(qAttemptInsert, p.ID, micros(a.At), int64(a.Code), a.Response, a.Error,
				a.Duration.Microseconds()); err != nil {
				return fmt.Errorf("delivery %d: attempt: %w", p.ID, err)
			}
			health, args := qEndpointFailing, []any{endpoint, micros(a.At)}
			if p.Status == store.DeliveryDelivered {
				health, args = qEndpointHealthy, args[:1]
			}
			if _, err := t.exec(health, args...); err != nil {
				return fmt.Errorf("delivery %d: endpoint %s: %w", p.ID, endpoint, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: finishing webhook deliveries: %w", err)
	}
	if again {
		s.wake.Signal(webhookWake) // a new due time to wait for
	}
	return applied, nil
}

// WebhookReleaseLeases implements store.Webhooks. The deliveries released are due at now.
func (s *Store) WebhookReleaseLeases(ctx context.Context, ownerPrefix string, now time.Time) (int, error) {
	n, err := s.execCount(ctx, qDeliveryRelease, ownerPrefix, micros(now))
	if err != nil {
		return 0, fmt.Errorf("sqlite: releasing webhook leases: %w", err)
	}
	s.webhooksWritten(n)
	return n, nil
}

// WebhookNextDue implements store.Webhooks. A leased delivery is due at its lease's end.
func (s *Store) WebhookNextDue(ctx context.Context) (time.Time, bool, error) {
	next, err := readOne(ctx, s, qDeliveryNextDue, nil, scanValue[int64])
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: next due webhook delivery: %w", err)
	}
	return fromMicros(next), true, nil
}

// WebhookWakeups implements store.Webhooks.
func (s *Store) WebhookWakeups() <-chan struct{} {
	return s.wake.Chan(webhookWake)
}

// WebhookDeliveryGet implements store.Webhooks.
func (s *Store) WebhookDeliveryGet(ctx context.Context, id int64) (store.WebhookDelivery, []store.WebhookAttempt, error) {
	d, err := readOne(ctx, s, qDeliveryGet, []any{id}, scanDelivery)
	if errors.Is(err, sql.ErrNoRows) {
		return store.WebhookDelivery{}, nil, fmt.Errorf("webhook delivery %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.WebhookDelivery{}, nil, fmt.Errorf("sqlite: webhook delivery %d: %w", id, err)
	}
	attempts, err := readAll(ctx, s, qAttemptsGet, []any{id}, scanAttempt)
	if err != nil {
		return store.WebhookDelivery{}, nil, fmt.Errorf("sqlite: attempts of webhook delivery %d: %w", id, err)
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
	page, err := readAll(ctx, s, qDeliveryList, []any{p.EndpointID, p.Status, p.Type, after, int64(limit + 1)},
		scanDelivery)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: listing webhook deliveries: %w", err)
	}
	page, next := driverkit.DeliveryPage(page, limit)
	return page, next, nil
}

// WebhookRetry implements store.Webhooks.
func (s *Store) WebhookRetry(ctx context.Context, id int64, now time.Time) (store.WebhookDelivery, error) {
	var d store.WebhookDelivery
	err := s.w.do(ctx, 1, func(t *wtx) error {
		rows, err := t.query(qDeliveryRetry, id, micros(now))
		if err != nil {
			return err
		}
		ok := rows.Next()
		if ok {
			d, err = scanDelivery(rows)
		}
		if err := errors.Join(err, rows.Err(), rows.Close()); err != nil {
			return err
		}
		if !ok {
			var one int
			err := t.queryRow(qDeliveryExists, []any{id}, &one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("webhook delivery %d: %w", id, store.ErrNotFound)
			}
			return cmpErr(err, fmt.Errorf("webhook delivery %d is being sent: %w", id, store.ErrConflict))
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			return store.WebhookDelivery{}, err
		}
		return store.WebhookDelivery{}, fmt.Errorf("sqlite: retrying webhook delivery %d: %w", id, err)
	}
	s.webhooksWritten(1)
	return d, nil
}

// WebhookReplay implements store.Webhooks. A delivery being sent is left to its sender.
func (s *Store) WebhookReplay(ctx context.Context, p store.WebhookReplayParams) (int, error) {
	statuses, err := driverkit.ReplayStatuses(p)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	arr, err := json.Marshal(statuses)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	n, err := s.execCount(ctx, qDeliveryReplay, p.EndpointID, micros(p.From), micros(p.To), micros(p.Now), string(arr))
	if err != nil {
		return 0, fmt.Errorf("sqlite: replaying webhook deliveries: %w", err)
	}
	s.webhooksWritten(n)
	return n, nil
}

// WebhookPurge implements store.Webhooks.
func (s *Store) WebhookPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	n, err := s.execCount(ctx, qDeliveryPurge, micros(before), int64(limit))
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging webhook deliveries: %w", err)
	}
	return n, nil
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
		nullMicros(e.PreviousUntil), e.Enabled, reason, nullMicros(e.FailingSince),
		micros(e.CreatedAt), micros(e.UpdatedAt)}, nil
}

func scanEndpoint(sc scanner) (store.WebhookEndpoint, error) {
	var (
		e                  store.WebhookEndpoint
		types              string
		prevUntil, failing sql.NullInt64
		created, updated   int64
	)
	if err := sc.Scan(&e.ID, &e.URL, &e.Description, &types, &e.Secret, &e.PreviousSecret, &prevUntil,
		&e.Enabled, &e.DisabledReason, &failing, &created, &updated); err != nil {
		return e, err
	}
	if err := json.Unmarshal([]byte(types), &e.Types); err != nil {
		return e, fmt.Errorf("webhook endpoint %s: types: %w", e.ID, err)
	}
	e.PreviousUntil, e.FailingSince = fromMicros(prevUntil.Int64), fromMicros(failing.Int64)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	return e, nil
}

func scanDelivery(sc scanner) (store.WebhookDelivery, error) {
	var (
		d                     store.WebhookDelivery
		detail                []byte
		at, next, created     int64
		leaseUntil, delivered sql.NullInt64
	)
	if err := sc.Scan(&d.ID, &d.EndpointID, &d.Type, &d.Subject, &d.Recipient, &d.CampaignID, &d.RunID,
		&at, &detail, &d.Status, &d.Attempts, &next, &d.LastCode, &d.LastError, &d.LeaseOwner,
		&leaseUntil, &created, &delivered); err != nil {
		return d, err
	}
	if len(detail) > 0 {
		d.Detail = json.RawMessage(detail)
	}
	d.At, d.NextAttemptAt, d.CreatedAt = fromMicros(at), fromMicros(next), fromMicros(created)
	d.LeaseUntil, d.DeliveredAt = fromMicros(leaseUntil.Int64), fromMicros(delivered.Int64)
	return d, nil
}

func scanAttempt(sc scanner) (store.WebhookAttempt, error) {
	var (
		a      store.WebhookAttempt
		at, us int64
	)
	if err := sc.Scan(&a.DeliveryID, &at, &a.Code, &a.Response, &a.Error, &us); err != nil {
		return a, err
	}
	a.At, a.Duration = fromMicros(at), time.Duration(us)*time.Microsecond
	return a, nil
}
