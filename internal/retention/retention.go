// Package retention deletes what postie keeps past its retention: message bodies, then
// messages, webhook deliveries, inbound reports, events and expired idempotency keys, each on
// its own clock (POSTIE_RETAIN_*, POSTIE_EVENT_RETENTION).
//
// A pass runs every Config.Every. It takes the store's purge lock first (store.Retention: on
// PostgreSQL one node purges at a time, the others skip the pass), then purges each kind in
// batches of at most Config.Batch, oldest first, each batch one short transaction that deletes
// all it selected or nothing, with a pause between batches: on SQLite every batch holds the only
// writer (the store cuts a batch shorter when its rows or octets would hold it long), and the
// pause lets delivery's writes through. A kind is purged until a batch comes back empty
// (nothing more is due) or the pass's time, if limited, is up (Config.MaxPass: what is left
// waits for the next pass). A failed batch is reported (Config.Errors) and ends that kind for
// this pass; the others go on.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/store"
)

// Store is the slice of the store the purges use.
type Store interface {
	store.Retention
	// IdempotencyPurge, WebhookPurge and EventPurge: the purges of the areas that own them.
	IdempotencyPurge(ctx context.Context, now time.Time) (int, error)
	WebhookPurge(ctx context.Context, before time.Time, limit int) (int, error)
	EventPurge(ctx context.Context, before time.Time, limit int) (int, error)
}

// Config configures the service. The retention periods are the settings of the same names
// (config.Config); a period of 0 or less turns that purge off.
type Config struct {
	Store Store

	Bodies            time.Duration // POSTIE_RETAIN_BODIES: a finished message's body
	Messages          time.Duration // POSTIE_RETAIN_MESSAGES: a finished message
	WebhookDeliveries time.Duration // POSTIE_RETAIN_WEBHOOK_DELIVERIES: a delivered or failed delivery
	Inbound           time.Duration // POSTIE_RETAIN_INBOUND: received reports and their bookkeeping
	Events            time.Duration // POSTIE_EVENT_RETENTION: application events

	Every   time.Duration // between passes; default 5 minutes
	Batch   int           // at most this many items per batch (per transaction); default 500
	Pause   time.Duration // between batches; default 10ms
	MaxPass time.Duration // a pass stops starting batches after this long; 0: when nothing is due

	Now    func() time.Time // default time.Now
	Log    *slog.Logger     // default: discard
	Errors errtrack.Reporter
	// Sleep waits d or until ctx ends (between batches); default a timer. Tests make it return
	// at once.
	Sleep func(ctx context.Context, d time.Duration)
}

// Kinds of data purged, as Result and the log name them.
const (
	KindBodies            = "bodies"
	KindMessages          = "messages"
	KindWebhookDeliveries = "webhook_deliveries"
	KindInbound           = "inbound"
	KindEvents            = "events"
	KindIdempotencyKeys   = "idempotency_keys"
)

// Result is what one pass purged.
type Result struct {
	// Skipped: another holder had the purge lock (another node on PostgreSQL); nothing was done.
	Skipped bool
	Purged  map[string]int // by Kind…
	// Err joins the errors of the kinds whose purge failed this pass (each also reported).
	Err error
}

// Service runs the purges. Its methods are safe for concurrent use; passes do not overlap
// (the purge lock).
type Service struct {
	cfg Config
	log *slog.Logger
}

// New returns a service with cfg's defaults filled in.
func New(cfg Config) *Service {
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Pause < 0 {
		cfg.Pause = 0
	} else if cfg.Pause == 0 {
		cfg.Pause = 10 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Errors == nil {
		cfg.Errors = errtrack.Log(cfg.Log)
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	return &Service{cfg: cfg, log: cfg.Log}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Serve runs a pass every Config.Every until ctx ends, the first a minute after it starts (or
// Every, when shorter), so that a node restarted more often than Every still purges.
func (s *Service) Serve(ctx context.Context) {
	t := time.NewTimer(min(s.cfg.Every, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A panic ends the pass (the lock is released), is reported, and the next pass runs.
		errtrack.Guard(ctx, s.cfg.Errors, "retention pass", func() { s.Pass(ctx) })
		t.Reset(s.cfg.Every)
	}
}

// Pass runs one pass now: every purge that is due, in order (bodies before messages, so a
// message's body never outlives it), and returns what it purged.
func (s *Service) Pass(ctx context.Context) Result {
	res := Result{Purged: map[string]int{}}
	release, ok, err := s.cfg.Store.RetentionLock(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Errors.Error(ctx, "retention lock", err)
		}
		res.Err = err
		return res
	}
	if !ok {
		s.log.Debug("retention: another node is purging; this pass is skipped")
		res.Skipped = true
		return res
	}
	defer release()

	now := s.cfg.Now().UTC()
	var deadline time.Time // zero: none
	if s.cfg.MaxPass > 0 {
		deadline = now.Add(s.cfg.MaxPass)
	}
	batches := []struct {
		kind   string
		period time.Duration
		purge  func(before time.Time, limit int) (int, error)
	}{
		{KindBodies, s.cfg.Bodies, func(before time.Time, limit int) (int, error) {
			return s.cfg.Store.MessageBodyPurge(ctx, store.PurgeParams{Before: before, Limit: limit, Now: s.cfg.Now().UTC()})
		}},
		{KindMessages, s.cfg.Messages, func(before time.Time, limit int) (int, error) {
			return s.cfg.Store.MessagePurge(ctx, store.PurgeParams{Before: before, Limit: limit, Now: s.cfg.Now().UTC()})
		}},
		{KindWebhookDeliveries, s.cfg.WebhookDeliveries, func(before time.Time, limit int) (int, error) {
			return s.cfg.Store.WebhookPurge(ctx, before, limit)
		}},
		{KindInbound, s.cfg.Inbound, func(before time.Time, limit int) (int, error) {
			return s.cfg.Store.InboundPurge(ctx, store.PurgeParams{Before: before, Limit: limit, Now: s.cfg.Now().UTC()})
		}},
		{KindEvents, s.cfg.Events, func(before time.Time, limit int) (int, error) {
			return s.cfg.Store.EventPurge(ctx, before, limit)
		}},
	}
	for _, b := range batches {
		if b.period <= 0 {
			continue
		}
		before := now.Add(-b.period)
		n, err := s.drain(ctx, deadline, func(limit int) (int, error) { return b.purge(before, limit) })
		s.record(ctx, &res, b.kind, n, err, "before", before)
	}
	// Expired idempotency keys: one statement through their expiry index.
	n, err := s.cfg.Store.IdempotencyPurge(ctx, now)
	s.record(ctx, &res, KindIdempotencyKeys, n, err)
	return res
}

// drain runs purge in batches until one purges nothing, ctx ends or deadline passes, pausing
// between batches, and returns the total purged. A short batch is not the end: a store may cut
// a batch to bound its transaction (store.Retention).
func (s *Service) drain(ctx context.Context, deadline time.Time, purge func(limit int) (int, error)) (int, error) {
	total := 0
	for {
		n, err := purge(s.cfg.Batch)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
		s.cfg.Sleep(ctx, s.cfg.Pause)
		if err := ctx.Err(); err != nil {
			return total, err
		}
		if !deadline.IsZero() && !s.cfg.Now().Before(deadline) {
			return total, nil
		}
	}
}

// record counts what a kind's purge did and logs it; a failure (not the end of ctx) is reported.
func (s *Service) record(ctx context.Context, res *Result, kind string, n int, err error, attrs ...any) {
	res.Purged[kind] += n
	if n > 0 {
		s.log.Info("retention: purged", append([]any{"kind", kind, "count", n}, attrs...)...)
	}
	if err == nil {
		return
	}
	res.Err = errors.Join(res.Err, fmt.Errorf("%s: %w", kind, err))
	if ctx.Err() == nil {
		s.cfg.Errors.Error(ctx, "retention purge of "+kind, err)
	}
}
