package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/store/driverkit"
)

// The outbox (store/webhooks.go): a method that makes a change worth reporting inserts, in its
// own write, one webhook_deliveries row per enabled endpoint routed for the change's type
// (webhook_routes). One process owns the file, so the driver knows which types have a route at
// all (routeHint) and a change of a type without one costs no statement.

// outboxEvent is one change to report: a delivery for each enabled endpoint routed for Type.
type outboxEvent = driverkit.OutboxEvent

// webhookWake is the Wakers key of the webhook senders (store.Webhooks.WebhookWakeups); no
// stream has this name.
const webhookWake = "\x00webhooks"

// routeHint is the set of event types that may have a route: every type routed in
// webhook_routes, and while an endpoint method runs, the types it may be adding. It is a
// superset of the table, which stays the truth (the inserts join it): a type outside the set
// has no route, so nothing is written for it.
type routeHint struct {
	mu    sync.Mutex // serialises the endpoint methods' changes
	types atomic.Pointer[map[string]bool]
}

// has reports whether typ may have a route.
func (h *routeHint) has(typ string) bool {
	m := h.types.Load()
	return m == nil || (*m)[typ] // nil: not loaded yet, assume the worst
}

// any reports whether some type may have a route.
func (h *routeHint) any() bool {
	m := h.types.Load()
	return m == nil || len(*m) > 0
}

// add adds types to the set (before the write that may route them commits).
func (h *routeHint) add(types []string) {
	old := h.types.Load()
	m := map[string]bool{}
	if old != nil {
		for t := range *old {
			m[t] = true
		}
	}
	for _, t := range types {
		m[t] = true
	}
	h.types.Store(&m)
}

// loadRoutes sets the route hint to the types webhook_routes holds. The caller holds
// s.routes.mu, or is Open (nothing runs yet).
func (s *Store) loadRoutes(ctx context.Context) error {
	m, err := readSet(ctx, s, qRouteTypes)
	if err != nil {
		return fmt.Errorf("sqlite: webhook routes: %w", err)
	}
	s.routes.types.Store(&m)
	return nil
}

// routesChange runs change, an endpoint method's write that may route types, with the hint
// widened to them meanwhile, then sets the hint to what the table holds. Endpoint changes are
// rare and run one at a time.
func (s *Store) routesChange(ctx context.Context, types []string, change func() error) error {
	s.routes.mu.Lock()
	defer s.routes.mu.Unlock()
	s.routes.add(types)
	err := change()
	if lerr := s.loadRoutes(context.WithoutCancel(ctx)); lerr != nil && err == nil {
		// The hint keeps the widened set: a superset, so nothing is missed.
		s.log.Warn("sqlite: reloading webhook routes", "err", lerr)
	}
	return err
}

// outboxWrite inserts, in the write t, the deliveries of evs for every endpoint routed for their
// types, created and due at now, and returns how many it inserted; after the commit the caller
// passes that to webhooksWritten.
func (s *Store) outboxWrite(t *wtx, now time.Time, evs []outboxEvent) (int, error) {
	n := 0
	for _, e := range evs {
		if !s.routes.has(e.Type) {
			continue
		}
		res, err := t.exec(qOutboxInsert, e.Type, e.Subject, e.Recipient, e.CampaignID, e.RunID,
			micros(e.At), rawJSONText(e.Detail), micros(now))
		if err != nil {
			return n, fmt.Errorf("webhook deliveries: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += int(k)
	}
	return n, nil
}

// outboxMessage inserts, in the write t, the deliveries of a change of type typ to message id:
// one per recipient of the message (or only recipient, when not ""), each with the message's
// campaign and run. It returns how many it inserted.
func (s *Store) outboxMessage(t *wtx, typ, id, recipient string, at time.Time, detail json.RawMessage, now time.Time) (int, error) {
	if !s.routes.has(typ) {
		return 0, nil
	}
	res, err := t.exec(qOutboxMessage, typ, id, micros(at), rawJSONText(detail), micros(now), recipient)
	if err != nil {
		return 0, fmt.Errorf("webhook deliveries: %w", err)
	}
	k, err := res.RowsAffected()
	return int(k), err
}

// webhooksWritten wakes this node's webhook senders after a commit that inserted n deliveries.
func (s *Store) webhooksWritten(n int) {
	if n > 0 {
		s.wake.Signal(webhookWake)
	}
}
