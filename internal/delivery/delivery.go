// Package delivery is the dispatcher: it claims due messages from the store, hands them to the
// transport, and records every outcome.
//
// # The cycle
//
// Each stream (transactional, broadcast) has its own claimer and its own pool of senders, so a
// broadcast backlog never occupies the workers a password reset needs. The claimer holds a fixed
// number of slots (Concurrency × 2): it waits for at least one free slot, claims up to that many due
// messages in one store call (a lease of Config.Lease each), and queues them for the senders. A
// sender sends one message, records the outcome with MessageFinish (the store commits concurrent
// outcomes together), and frees its slot. With nothing to claim the claimer sleeps until the store
// signals new work (Store.Wakeups), the earliest scheduled message falls due, or the poll interval
// passes, whichever is first.
//
// # Outcomes
//
// A 2xx is sent. A permanent error fails the message at once. A temporary or throttle error counts
// an attempt and defers the message along the retry ladder (±20% jitter) unless its attempts or its
// TTL (expires_at) are used up, which fails it. An unreachable transport does not count an attempt:
// the message waits and is tried again, bounded by its TTL. Every outcome is an event in the
// message's timeline.
//
// # Leases
//
// A message queued for a sender keeps its lease. If the process dies, the rescue loop of any live
// node returns expired leases to queued. On shutdown, Run stops claiming, lets in-flight sends
// finish within ShutdownTimeout, and hands the remaining leases back at once.
package delivery

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/transport"
)

// StreamConfig sizes one stream's worker pool.
type StreamConfig struct {
	Concurrency int // senders working at once (default 8)
	Batch       int // most messages claimed in one store call (default 2 × Concurrency)
}

// Config configures an Engine.
type Config struct {
	Store     store.Store
	Transport transport.Transport
	Owner     string        // this node's lease owner name
	Lease     time.Duration // default 60s
	// RetryDelays is the backoff ladder after the 1st, 2nd, … failed attempt.
	RetryDelays []time.Duration
	// UnreachableDelay is how long a message waits when the transport cannot be reached.
	UnreachableDelay time.Duration // default 30s
	ShutdownTimeout  time.Duration // default 30s
	PollInterval     time.Duration // fallback poll, default 5s
	Streams          map[string]StreamConfig
	Now              func() time.Time
	Jitter           func() float64 // uniform in [0,1); default math/rand
	Logger           *slog.Logger
}

// Engine runs the delivery cycle. Create it with New and start it with Run.
type Engine struct {
	cfg Config
	log *slog.Logger
}

// New returns an engine, filling defaults into cfg.
func New(cfg Config) *Engine {
	if cfg.Lease <= 0 {
		cfg.Lease = 60 * time.Second
	}
	if cfg.UnreachableDelay <= 0 {
		cfg.UnreachableDelay = 30 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	streams := map[string]StreamConfig{}
	for _, name := range store.Streams {
		sc := cfg.Streams[name]
		if sc.Concurrency <= 0 {
			sc.Concurrency = 8
		}
		if sc.Batch <= 0 {
			sc.Batch = 2 * sc.Concurrency
		}
		streams[name] = sc
	}
	cfg.Streams = streams
	return &Engine{cfg: cfg, log: cfg.Logger.With("component", "delivery")}
}

// Run delivers until ctx is cancelled, then stops claiming, waits up to ShutdownTimeout for the
// sends in flight, and returns the leases it still holds. It returns nil after a clean shutdown.
func (e *Engine) Run(ctx context.Context) error {
	// Sends get their own context: cancelling ctx stops claiming, not the sends in flight.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()

	var wg sync.WaitGroup
	for _, name := range store.Streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.runStream(ctx, sendCtx, name, e.cfg.Streams[name])
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.rescueLoop(ctx)
	}()

	<-ctx.Done()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(e.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		e.log.Warn("shutdown timeout: cancelling sends still in flight", "timeout", e.cfg.ShutdownTimeout)
		cancelSends()
		<-done
	}
	relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	n, err := e.cfg.Store.MessageReleaseLeases(relCtx, store.MessageReleaseParams{Owner: e.cfg.Owner, Now: e.cfg.Now()})
	if err != nil {
		return err
	}
	if n > 0 {
		e.log.Info("returned unfinished leases", "messages", n)
	}
	return nil
}

// runStream is one stream's claimer; it starts the stream's senders and returns when they are done.
func (e *Engine) runStream(ctx, sendCtx context.Context, stream string, sc StreamConfig) {
	slots := make(chan struct{}, sc.Concurrency*2)
	for range cap(slots) {
		slots <- struct{}{}
	}
	work := make(chan store.ClaimedMessage, cap(slots))
	var senders sync.WaitGroup
	for range sc.Concurrency {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for m := range work {
				if ctx.Err() != nil {
					// Shutting down: leave the message leased; Run releases it.
					slots <- struct{}{}
					continue
				}
				e.deliver(sendCtx, m)
				slots <- struct{}{}
			}
		}()
	}
	defer func() {
		close(work)
		senders.Wait()
	}()

	wake := e.cfg.Store.Wakeups(stream)
	log := e.log.With("stream", stream)
	for {
		// Wait for a free slot, then take every free slot up to the batch size.
		select {
		case <-ctx.Done():
			return
		case <-slots:
		}
		n := 1
	grab:
		for n < sc.Batch {
			select {
			case <-slots:
				n++
			default:
				break grab
			}
		}
		now := e.cfg.Now()
		claimed, err := e.cfg.Store.MessageClaim(ctx, store.MessageClaimParams{
			Owner: e.cfg.Owner, Stream: stream, Limit: n, Now: now, LeaseUntil: now.Add(e.cfg.Lease),
		})
		for range n - len(claimed) {
			slots <- struct{}{}
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Error("claiming messages failed; retrying", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for _, m := range claimed {
			work <- m
		}
		if len(claimed) < n {
			e.idle(ctx, stream, wake)
		}
	}
}

// idle waits until new work may be due: a wake-up, the next scheduled message, or the poll interval.
func (e *Engine) idle(ctx context.Context, stream string, wake <-chan struct{}) {
	wait := e.cfg.PollInterval
	if next, ok, err := e.cfg.Store.MessageNextDue(ctx, stream); err == nil && ok {
		if d := next.Sub(e.cfg.Now()); d < wait {
			wait = d
		}
	}
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-wake:
	case <-t.C:
	}
}

// rescueLoop returns expired leases (of dead workers) to queued.
func (e *Engine) rescueLoop(ctx context.Context) {
	every := e.cfg.Lease / 4
	if every < time.Second {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids, err := e.cfg.Store.MessageRescue(ctx, e.cfg.Now())
		if err != nil {
			if ctx.Err() == nil {
				e.log.Error("rescuing expired leases failed", "err", err)
			}
			continue
		}
		if len(ids) > 0 {
			e.log.Warn("took over messages whose lease expired", "messages", len(ids), "first", ids[0])
		}
	}
}

// deliver sends one claimed message and records the outcome.
func (e *Engine) deliver(ctx context.Context, c store.ClaimedMessage) {
	m := c.Message
	start := e.cfg.Now()
	var fin store.MessageFinishParams
	if !m.ExpiresAt.IsZero() && !start.Before(m.ExpiresAt) {
		fin = e.expired(m, start)
	} else {
		res, err := e.cfg.Transport.Send(ctx, transport.Envelope{
			MessageID: m.ID, From: m.EnvelopeFrom, To: m.Recipients,
		}, c.Raw)
		fin = e.outcome(m, res, err, e.cfg.Now())
	}
	if _, err := e.cfg.Store.MessageFinish(context.WithoutCancel(ctx), e.cfg.Now(), []store.MessageFinishParams{fin}); err != nil {
		// The lease expires and another worker (or this one) takes the message again: at least once.
		e.log.Error("recording a delivery outcome failed; the message will be retried when its lease expires",
			"message", m.ID, "status", fin.Status, "err", err)
	}
}

// outcome turns a send result into the message's next state. It is pure, for testing.
func (e *Engine) outcome(m store.Message, res transport.Result, err error, now time.Time) store.MessageFinishParams {
	fin := store.MessageFinishParams{ID: m.ID, Owner: e.cfg.Owner, Attempts: m.Attempts + 1, NextAttemptAt: m.NextAttemptAt}
	if err == nil {
		fin.Status = store.StatusSent
		fin.SentAt = now
		fin.ProviderID = res.ProviderID
		detail := map[string]any{"transport": e.cfg.Transport.Name(), "response": res.Response, "attempt": fin.Attempts}
		if res.ProviderID != "" {
			detail["provider_id"] = res.ProviderID
		}
		if len(res.Rejected) > 0 {
			rej := make([]map[string]any, len(res.Rejected))
			for i, r := range res.Rejected {
				rej[i] = map[string]any{"recipient": r.Recipient, "error": deliveryError(r.Err, fin.Attempts, now)}
			}
			detail["rejected"] = rej
		}
		fin.Events = []store.Event{event(store.EventSent, now, detail)}
		return fin
	}

	te := transport.Classify(err)
	de := deliveryError(te, fin.Attempts, now)
	fin.LastError = de
	detail := map[string]any{"transport": e.cfg.Transport.Name(), "error": de, "class": te.Class.String()}
	switch te.Class {
	case transport.Unreachable:
		// Not the message's fault: wait without spending an attempt, within the TTL.
		fin.Attempts = m.Attempts
		de.Attempt = 0
		next := now.Add(e.cfg.UnreachableDelay)
		if !m.ExpiresAt.IsZero() && !next.Before(m.ExpiresAt) {
			return e.expired(m, now)
		}
		fin.Status, fin.NextAttemptAt = store.StatusDeferred, next
		detail["next_attempt_at"] = next
		fin.Events = []store.Event{event(store.EventDeferred, now, detail)}
	case transport.Permanent:
		fin.Status = store.StatusFailed
		fin.Events = []store.Event{event(store.EventFailed, now, detail)}
	default:
		next, ok := e.nextAttempt(m, fin.Attempts, now)
		if !ok {
			fin.Status = store.StatusFailed
			detail["reason"] = "attempts exhausted"
			fin.Events = []store.Event{event(store.EventFailed, now, detail)}
			break
		}
		fin.Status, fin.NextAttemptAt = store.StatusDeferred, next
		detail["next_attempt_at"] = next
		fin.Events = []store.Event{event(store.EventDeferred, now, detail)}
	}
	return fin
}

// nextAttempt returns when to try again after `attempts` failed attempts, or false when the
// attempts or the TTL are used up.
func (e *Engine) nextAttempt(m store.Message, attempts int, now time.Time) (time.Time, bool) {
	maxAttempts := m.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = len(e.cfg.RetryDelays) + 1
	}
	if attempts >= maxAttempts || len(e.cfg.RetryDelays) == 0 {
		return time.Time{}, false
	}
	i := min(attempts-1, len(e.cfg.RetryDelays)-1)
	d := e.cfg.RetryDelays[i]
	d += time.Duration((e.cfg.Jitter()*0.4 - 0.2) * float64(d)) // ±20%
	next := now.Add(d)
	if !m.ExpiresAt.IsZero() && !next.Before(m.ExpiresAt) {
		return time.Time{}, false
	}
	return next, true
}

// expired fails a message whose TTL has passed (RFC 3463 4.4.7: delivery time expired).
func (e *Engine) expired(m store.Message, now time.Time) store.MessageFinishParams {
	de := &store.DeliveryError{Enhanced: "4.4.7", Text: "message expired before it could be delivered", Stage: "queue", Attempt: m.Attempts, At: now}
	return store.MessageFinishParams{
		ID: m.ID, Owner: e.cfg.Owner, Status: store.StatusFailed, Attempts: m.Attempts,
		NextAttemptAt: m.NextAttemptAt, LastError: de,
		Events: []store.Event{event(store.EventFailed, now, map[string]any{"error": de, "reason": "expired"})},
	}
}

func deliveryError(te *transport.Error, attempt int, now time.Time) *store.DeliveryError {
	return &store.DeliveryError{Code: te.Code, Enhanced: te.Enhanced, Text: te.Text, Stage: te.Stage, Attempt: attempt, At: now}
}

func event(typ string, at time.Time, detail map[string]any) store.Event {
	b, err := json.Marshal(detail)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"marshal_error": err.Error()})
	}
	return store.Event{Type: typ, At: at, Detail: b}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
