package delivery

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/store/storetest"
	"github.com/postie/postie/internal/transport"
	"github.com/postie/postie/internal/transport/capture"
)

// clock is a test clock that only moves when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type bundle struct {
	store store.Store
	clock *clock
}

func setup(t *testing.T) *bundle {
	t.Helper()
	st := sqlitetest.Open(t)
	return &bundle{store: st, clock: &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}}
}

func (b *bundle) engine(tr transport.Transport, owner string) *Engine {
	return New(Config{
		Store: b.store, Transport: tr, Owner: owner, Lease: time.Minute,
		RetryDelays: []time.Duration{time.Minute, 10 * time.Minute}, PollInterval: 10 * time.Millisecond,
		BreakerMin: time.Minute, BreakerMax: 4 * time.Minute,
		ShutdownTimeout: 5 * time.Second, Now: b.clock.Now, Jitter: func() float64 { return 0.5 },
	})
}

func (b *bundle) insert(t *testing.T, stream string, sendAt time.Time) string {
	t.Helper()
	return b.insertTo(t, stream, sendAt, "b@example.com")
}

func (b *bundle) insertTo(t *testing.T, stream string, sendAt time.Time, to ...string) string {
	t.Helper()
	return b.insertWith(t, stream, sendAt, nil, to...)
}

// insertWith is insertTo with mod applied to the message before it is stored.
func (b *bundle) insertWith(t *testing.T, stream string, sendAt time.Time, mod func(*store.Message), to ...string) string {
	t.Helper()
	now := b.clock.Now()
	m := store.Message{
		ID: id.New(id.Message), Stream: stream, Status: store.StatusQueued, From: "a@example.com",
		To: to, Subject: "hi", EnvelopeFrom: "a@example.com",
		Recipients: to, MaxAttempts: 3, NextAttemptAt: now, CreatedAt: now,
		ExpiresAt: now.Add(24 * time.Hour), UpdatedAt: now, MessageID: "x@example.com",
	}
	if !sendAt.IsZero() {
		m.Status, m.SendAt, m.NextAttemptAt = store.StatusScheduled, sendAt, sendAt
	}
	if mod != nil {
		mod(&m)
	}
	if _, err := b.store.MessagesAccept(context.Background(), store.MessagesAcceptParams{
		Messages: []store.NewMessage{{Message: m, Raw: []byte("Subject: hi\r\n\r\nhi\r\n")}}, Now: now,
	}); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func (b *bundle) waitStatus(t *testing.T, id string, want store.Status) store.Message {
	t.Helper()
	return b.waitFor(t, id, string(want), func(m store.Message) bool { return m.Status == want })
}

func (b *bundle) waitFor(t *testing.T, id, what string, ok func(store.Message) bool) store.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := b.store.MessageGet(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s is %s after %d attempts, want %s", id, m.Status, m.Attempts, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func run(t *testing.T, e *Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestCaptureDeliversAndSchedules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stop := run(t, b.engine(capture.New(), "node-a"))
	defer stop()

	now := b.clock.Now()
	ids := []string{b.insert(t, store.StreamTransactional, time.Time{}), b.insert(t, store.StreamBroadcast, time.Time{})}
	later := b.insert(t, store.StreamTransactional, now.Add(time.Hour))
	for _, id := range ids {
		m := b.waitStatus(t, id, store.StatusSent)
		if m.Attempts != 1 || m.ProviderID != "capture-"+id || !m.SentAt.Equal(now) {
			t.Errorf("sent message: attempts %d provider %q sent_at %v", m.Attempts, m.ProviderID, m.SentAt)
		}
		evs, _ := b.store.MessageEvents(context.Background(), id)
		if len(evs) != 2 || evs[1].Type != store.EventSent {
			t.Errorf("events %+v, want queued then sent", evs)
		}
	}
	// The scheduled message waits for its time (the engine polls every 10ms meanwhile)...
	time.Sleep(100 * time.Millisecond)
	if m, _ := b.store.MessageGet(context.Background(), later); m.Status != store.StatusScheduled {
		t.Fatalf("scheduled message is %s before its time", m.Status)
	}
	// ...and goes out once the clock reaches it.
	b.clock.Add(time.Hour)
	b.waitStatus(t, later, store.StatusSent)
}

// flaky fails per a script of errors, then succeeds (with ok, or a plain 250).
type flaky struct {
	mu     sync.Mutex
	errs   []error
	ok     *transport.Result
	calls  atomic.Int64
	block  chan struct{} // when set, Send waits for it (or ctx)
	inSend chan struct{}
}

func (f *flaky) Name() string { return "flaky" }
func (f *flaky) Close() error { return nil }
func (f *flaky) Send(ctx context.Context, env transport.Envelope, raw []byte) (transport.Result, error) {
	f.calls.Add(1)
	if f.block != nil {
		f.inSend <- struct{}{}
		select {
		case <-f.block:
		case <-ctx.Done():
			return transport.Result{}, &transport.Error{Class: transport.Temporary, Text: "cancelled", Err: ctx.Err()}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return transport.Result{}, err
	}
	if f.ok != nil {
		return *f.ok, nil
	}
	return transport.Result{ProviderID: "q1", Response: "250 ok"}, nil
}

// TestRelayTextIsCleaned: whatever a transport reports (a relay's reply text is the remote
// server's to choose) is stored without NULs, other control characters or invalid UTF-8, in the
// last error, the timeline, the provider id and a hard bounce's suppression.
func TestRelayTextIsCleaned(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tr := &flaky{
		errs: []error{
			&transport.Error{Class: transport.Temporary, Code: 451, Text: "busy\x00now\xff", Stage: "data"},
			&transport.Error{Class: transport.Permanent, Code: 550, Enhanced: "5.1.1", Text: "no\x00such\x1buser", Stage: "rcpt"},
		},
		ok: &transport.Result{ProviderID: "A\x00B", Response: "250 queued as A\x00B\x7f"},
	}
	stop := run(t, b.engine(tr, "node-a"))
	defer stop()

	deferred := b.insertTo(t, store.StreamTransactional, time.Time{}, "d@example.com")
	m := b.waitStatus(t, deferred, store.StatusDeferred)
	if m.LastError == nil || m.LastError.Text != "busy\uFFFDnow\uFFFD" {
		t.Fatalf("deferred: last error %+v", m.LastError)
	}
	bounced := b.insertTo(t, store.StreamTransactional, time.Time{}, "gone@example.com")
	m = b.waitStatus(t, bounced, store.StatusFailed)
	if m.LastError == nil || m.LastError.Text != "no\uFFFDsuch\uFFFDuser" {
		t.Fatalf("failed: last error %+v", m.LastError)
	}
	supp, err := b.store.SuppressionGet(context.Background(), "gone@example.com", store.ScopeGlobal, b.clock.Now())
	if err != nil || supp.Detail != "550 5.1.1 no\uFFFDsuch\uFFFDuser" {
		t.Fatalf("suppression %+v, %v", supp, err)
	}
	sent := b.insertTo(t, store.StreamTransactional, time.Time{}, "s@example.com")
	if m = b.waitStatus(t, sent, store.StatusSent); m.ProviderID != "A\uFFFDB" {
		t.Fatalf("provider id %q", m.ProviderID)
	}
	for _, id := range []string{deferred, bounced, sent} {
		evs, err := b.store.MessageEvents(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if bytes.Contains(ev.Detail, []byte(`\u0000`)) || bytes.Contains(ev.Detail, []byte(`\u001b`)) ||
				bytes.ContainsAny(ev.Detail, "\x00\x1b\x7f") || !utf8.Valid(ev.Detail) {
				t.Errorf("%s event %s: %s", id, ev.Type, ev.Detail)
			}
		}
	}
}

func TestRetryLadderAndPermanentFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tr := &flaky{errs: []error{
		&transport.Error{Class: transport.Temporary, Code: 451, Enhanced: "4.3.0", Text: "try later", Stage: "data"},
		&transport.Error{Class: transport.Temporary, Code: 451, Enhanced: "4.3.0", Text: "try later", Stage: "data"},
	}}
	stop := run(t, b.engine(tr, "node-a"))
	defer stop()
	id := b.insert(t, store.StreamTransactional, time.Time{})
	m := b.waitStatus(t, id, store.StatusDeferred)
	if m.Attempts != 1 || m.LastError == nil || m.LastError.Code != 451 || !m.NextAttemptAt.Equal(b.clock.Now().Add(time.Minute)) {
		t.Fatalf("after first 451: %+v %+v", m, m.LastError)
	}
	b.clock.Add(time.Minute)
	b.waitFor(t, id, "deferred twice", func(m store.Message) bool { return m.Status == store.StatusDeferred && m.Attempts == 2 })
	b.clock.Add(10 * time.Minute)
	m = b.waitStatus(t, id, store.StatusSent)
	if m.Attempts != 3 {
		t.Fatalf("sent after %d attempts, want 3", m.Attempts)
	}
	types := storetest.EventTypes(t, b.store, id)
	if len(types) != 4 || types[1] != "deferred" || types[2] != "deferred" || types[3] != "sent" {
		t.Fatalf("timeline %v", types)
	}

	tr.mu.Lock()
	tr.errs = []error{&transport.Error{Class: transport.Permanent, Code: 550, Enhanced: "5.1.1", Text: "no such user", Stage: "rcpt"}}
	tr.mu.Unlock()
	id = b.insert(t, store.StreamTransactional, time.Time{})
	m = b.waitStatus(t, id, store.StatusFailed)
	if m.Attempts != 1 || m.LastError.Enhanced != "5.1.1" || m.LastError.Stage != "rcpt" {
		t.Fatalf("permanent failure recorded as %+v", m.LastError)
	}
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(capture.New(), "n")
	now := b.clock.Now()
	m := store.ClaimedMessage{ID: "msg_1", Attempts: 0, MaxAttempts: 3, ExpiresAt: now.Add(time.Hour)}
	tmp := &transport.Error{Class: transport.Temporary, Code: 451, Text: "later"}

	if f := e.outcome(m, []string{"b@example.com"}, nil, transport.Result{}, tmp, now); f.Status != store.StatusDeferred || f.Attempts != 1 {
		t.Errorf("first temporary: %s/%d", f.Status, f.Attempts)
	}
	m.Attempts = 2
	if f := e.outcome(m, []string{"b@example.com"}, nil, transport.Result{}, tmp, now); f.Status != store.StatusFailed || f.Attempts != 3 {
		t.Errorf("last temporary: %s/%d, want failed after 3", f.Status, f.Attempts)
	}
	m.Attempts = 0
	m.ExpiresAt = now.Add(30 * time.Second) // the next retry would be past the TTL
	if f := e.outcome(m, []string{"b@example.com"}, nil, transport.Result{}, tmp, now); f.Status != store.StatusFailed {
		t.Errorf("retry past TTL: %s, want failed", f.Status)
	}
	m.ExpiresAt = now.Add(time.Hour)
	un := &transport.Error{Class: transport.Unreachable, Text: "connection refused", Stage: "connect"}
	if f := e.outcome(m, []string{"b@example.com"}, nil, transport.Result{}, un, now); f.Status != store.StatusDeferred || f.Attempts != 0 {
		t.Errorf("unreachable: %s/%d, want deferred without spending an attempt", f.Status, f.Attempts)
	}
	if f := e.outcome(m, []string{"b@example.com"}, nil, transport.Result{}, errors.New("boom"), now); f.Status != store.StatusDeferred || f.LastError.Text != "boom" {
		t.Errorf("unclassified error: %s %+v, want temporary", f.Status, f.LastError)
	}
	if f := e.expired(m, now); f.Status != store.StatusFailed || f.LastError.Enhanced != "4.4.7" {
		t.Errorf("expired: %+v", f.LastError)
	}
}

// TestShutdownFinishesInFlight: stopping lets a send in progress finish, and returns the leases of
// messages claimed but not started at once.
func TestShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tr := &flaky{block: make(chan struct{}), inSend: make(chan struct{}, 100)}
	e := New(Config{
		Store: b.store, Transport: tr, Owner: "node-a", Lease: time.Minute, PollInterval: 10 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Now: b.clock.Now,
		Streams: map[string]StreamConfig{store.StreamTransactional: {Concurrency: 1, Batch: 2}},
	})
	first := b.insert(t, store.StreamTransactional, time.Time{})
	second := b.insert(t, store.StreamTransactional, time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	<-tr.inSend // the first message is being sent; the second waits in the engine
	cancel()
	time.Sleep(20 * time.Millisecond)
	close(tr.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sent, _ := b.store.MessageGet(context.Background(), first)
	waiting, _ := b.store.MessageGet(context.Background(), second)
	if sent.Status != store.StatusSent || waiting.Status != store.StatusQueued || waiting.LeaseOwner != "" {
		t.Fatalf("after shutdown: first %s, second %s (owner %q)", sent.Status, waiting.Status, waiting.LeaseOwner)
	}
}

// recorder accepts everything and remembers each message's envelope.
type recorder struct {
	mu   sync.Mutex
	envs map[string][]string
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Close() error { return nil }
func (r *recorder) Send(_ context.Context, env transport.Envelope, _ []byte) (transport.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.envs == nil {
		r.envs = map[string][]string{}
	}
	r.envs[env.MessageID] = env.To
	return transport.Result{Response: "250 ok"}, nil
}

func (r *recorder) to(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.envs[id]
}

// countingStore counts MessageFinish calls.
type countingStore struct {
	store.Store
	finishCalls atomic.Int64
}

func (c *countingStore) MessageFinish(ctx context.Context, now time.Time, p []store.MessageFinishParams) (int, error) {
	c.finishCalls.Add(1)
	return c.Store.MessageFinish(ctx, now, p)
}
