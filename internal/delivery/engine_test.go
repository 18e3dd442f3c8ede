package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
	"github.com/postie/postie/internal/transport"
)

// TestUnreachableRelayPausesWithoutSpendingAttempts: the breaker opens on the first unreachable
// send, nothing else is tried until its backoff passes, a failed probe doubles it, and when the
// relay answers every waiting message goes out with one attempt counted.
func TestUnreachableRelayPausesWithoutSpendingAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	down := &transport.Error{Class: transport.Unreachable, Stage: "connect", Text: "connection refused"}
	tr := &flaky{errs: []error{down, down}}
	stop := run(t, b.engine(tr, "node-a"))
	defer stop()
	first := b.insert(t, store.StreamTransactional, time.Time{})
	m := b.waitStatus(t, first, store.StatusDeferred)
	start := b.clock.Now()
	if m.Attempts != 0 || !m.NextAttemptAt.Equal(start.Add(time.Minute)) || m.LastError.Stage != "connect" {
		t.Fatalf("after the relay refused: attempts %d next %v error %+v", m.Attempts, m.NextAttemptAt, m.LastError)
	}

	var ids []string
	for range 5 {
		ids = append(ids, b.insert(t, store.StreamTransactional, time.Time{}))
	}
	time.Sleep(50 * time.Millisecond) // five polls: nothing may be claimed while the breaker is open
	if n := tr.calls.Load(); n != 1 {
		t.Fatalf("transport called %d times while the breaker was open, want 1", n)
	}
	for _, id := range ids {
		if m, _ := b.store.MessageGet(context.Background(), id); m.Status != store.StatusQueued {
			t.Fatalf("message %s is %s while the relay is down, want queued", id, m.Status)
		}
	}

	// The probe (one message, the one due first) fails: the backoff doubles, no attempt spent.
	b.clock.Add(time.Minute)
	probe := ids[0]
	b.waitFor(t, probe, "deferred by the failed probe", func(m store.Message) bool {
		return m.Status == store.StatusDeferred && m.NextAttemptAt.Equal(start.Add(3*time.Minute)) && m.Attempts == 0
	})
	time.Sleep(30 * time.Millisecond)
	if n := tr.calls.Load(); n != 2 {
		t.Fatalf("transport called %d times after one probe, want 2", n)
	}

	// The relay is back: the next probe closes the breaker and everything goes out.
	b.clock.Add(2 * time.Minute)
	deferrals := 0
	for _, id := range append(ids, first) {
		m := b.waitStatus(t, id, store.StatusSent)
		if m.Attempts != 1 {
			t.Errorf("message %s sent with %d attempts counted, want 1", id, m.Attempts)
		}
		for _, typ := range storetest.EventTypes(t, b.store, id) {
			if typ == store.EventDeferred {
				deferrals++
			}
		}
	}
	if deferrals != 2 {
		t.Errorf("%d deferred events, want 2 (the first send and the failed probe)", deferrals)
	}
}

func TestSuppressedRecipientsAreDropped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if err := b.store.SuppressionUpsert(ctx, []store.Suppression{
		{Email: "gone@example.com", Reason: store.ReasonHardBounce, CreatedAt: b.clock.Now()},
	}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	stop := run(t, b.engine(rec, "node-a"))
	defer stop()

	some := b.insertTo(t, store.StreamTransactional, time.Time{}, "Gone@Example.com", "here@example.com")
	b.waitStatus(t, some, store.StatusSent)
	if got := rec.to(some); len(got) != 1 || got[0] != "here@example.com" {
		t.Errorf("envelope %v, want only here@example.com", got)
	}
	if got := storetest.EventTypes(t, b.store, some); len(got) != 3 || got[1] != "suppressed" || got[2] != "sent" {
		t.Errorf("timeline %v, want queued suppressed sent", got)
	}

	all := b.insertTo(t, store.StreamBroadcast, time.Time{}, "gone@example.com")
	m := b.waitStatus(t, all, store.StatusSuppressed)
	if m.Attempts != 0 || rec.to(all) != nil {
		t.Errorf("fully suppressed message: attempts %d, sent to %v", m.Attempts, rec.to(all))
	}
}

func TestHardBounceSuppressesTheAddress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tr := &flaky{errs: []error{
		&transport.Error{Class: transport.Permanent, Code: 550, Enhanced: "5.1.1", Text: "user unknown", Stage: "rcpt"},
		&transport.Error{Class: transport.Permanent, Code: 550, Enhanced: "5.7.1", Text: "blocked by policy", Stage: "data"},
	}}
	stop := run(t, b.engine(tr, "node-a"))
	defer stop()
	id := b.insertTo(t, store.StreamTransactional, time.Time{}, "Nobody@example.com")
	b.waitStatus(t, id, store.StatusFailed)
	s, err := b.store.SuppressionGet(context.Background(), "nobody@example.com", "", b.clock.Now())
	if err != nil || s.Reason != store.ReasonHardBounce || s.MessageID != id || s.Detail != "550 5.1.1 user unknown" {
		t.Fatalf("suppression after 5.1.1: %+v, %v", s, err)
	}

	// A policy block is about the sender, never the recipient.
	id = b.insertTo(t, store.StreamTransactional, time.Time{}, "blocked@example.com")
	b.waitStatus(t, id, store.StatusFailed)
	if _, err := b.store.SuppressionGet(context.Background(), "blocked@example.com", "", b.clock.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("5.7.1 suppressed the recipient: %v", err)
	}
}

// TestSlowSendKeepsItsLease: while a send is stuck, the engine renews the lease so the rescue
// loop (of this or another node) does not hand the message to someone else.
func TestSlowSendKeepsItsLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tr := &flaky{block: make(chan struct{}), inSend: make(chan struct{}, 1)}
	e := b.engine(tr, "node-a")
	e.cfg.Lease = 90 * time.Millisecond // renewed every 30 ms of real time
	stop := run(t, e)
	defer stop()
	id := b.insert(t, store.StreamTransactional, time.Time{})
	<-tr.inSend
	claimedUntil := b.clock.Now().Add(90 * time.Millisecond)
	b.clock.Add(60 * time.Millisecond)
	b.waitFor(t, id, "lease renewed", func(m store.Message) bool { return m.LeaseUntil.After(claimedUntil) })
	b.clock.Add(60 * time.Millisecond) // past the first lease
	if ids, err := b.store.MessageRescue(context.Background(), b.clock.Now()); err != nil || len(ids) != 0 {
		t.Fatalf("rescue took %v (%v) from a worker still sending", ids, err)
	}
	close(tr.block)
	b.waitStatus(t, id, store.StatusSent)
}

// TestQueuedMessagesKeepTheirLeaseAndAreReleased: messages claimed into the local queue behind a
// stalled send have their leases renewed like the one being sent, and a shutdown hands them back
// unsent at once.
func TestQueuedMessagesKeepTheirLeaseAndAreReleased(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tr := &flaky{block: make(chan struct{}), inSend: make(chan struct{}, 1)}
	e := b.engine(tr, "node-a")
	e.cfg.Lease = 90 * time.Millisecond // renewed every 30 ms of real time
	e.cfg.Streams[store.StreamTransactional] = StreamConfig{Concurrency: 1, Batch: 4}
	var ids []string
	for range 3 {
		ids = append(ids, b.insert(t, store.StreamTransactional, time.Time{}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	<-tr.inSend // one message is being sent, the other two wait in the queue
	for _, id := range ids {
		b.waitStatus(t, id, store.StatusSending)
	}
	claimedUntil := b.clock.Now().Add(90 * time.Millisecond)
	b.clock.Add(60 * time.Millisecond)
	for _, id := range ids {
		b.waitFor(t, id, "lease renewed", func(m store.Message) bool { return m.LeaseUntil.After(claimedUntil) })
	}
	b.clock.Add(60 * time.Millisecond) // past the first lease
	if got, err := b.store.MessageRescue(context.Background(), b.clock.Now()); err != nil || len(got) != 0 {
		t.Fatalf("rescue took %v (%v) from the engine's queue", got, err)
	}

	cancel()        // stop claiming and sending…
	close(tr.block) // …but let the send in flight finish
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	var sent, queued int
	for _, id := range ids {
		m, err := b.store.MessageGet(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Status == store.StatusSent:
			sent++
		case m.Status == store.StatusQueued && m.Attempts == 0 && m.LeaseOwner == "":
			queued++
		default:
			t.Errorf("message %s is %s (attempts %d, lease %q) after shutdown", id, m.Status, m.Attempts, m.LeaseOwner)
		}
	}
	if sent != 1 || queued != 2 || tr.calls.Load() != 1 {
		t.Errorf("after shutdown: %d sent, %d released, %d sends; want 1, 2, 1", sent, queued, tr.calls.Load())
	}
}

// TestOutcomesAreBatched: many sends finishing together are recorded by a few store calls.
func TestOutcomesAreBatched(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for range 200 {
		ids = append(ids, b.insert(t, store.StreamBroadcast, time.Time{}))
	}
	cs := &countingStore{Store: b.store}
	e := b.engine(&recorder{}, "node-a")
	e.cfg.Store = cs
	stop := run(t, e)
	for _, id := range ids {
		b.waitStatus(t, id, store.StatusSent)
	}
	stop()
	if calls := cs.finishCalls.Load(); calls >= 200 {
		t.Errorf("200 outcomes took %d MessageFinish calls; they should share calls", calls)
	}
}

func TestPossibleDuplicateIsRecorded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tr := &flaky{errs: []error{&transport.Error{Class: transport.Temporary, Stage: "data", MaybeDelivered: true,
		Text: "connection lost after DATA: possible duplicate: EOF"}}}
	stop := run(t, b.engine(tr, "node-a"))
	defer stop()
	id := b.insert(t, store.StreamTransactional, time.Time{})
	b.waitStatus(t, id, store.StatusDeferred)
	evs, _ := b.store.MessageEvents(context.Background(), id)
	var detail map[string]any
	if err := json.Unmarshal(evs[len(evs)-1].Detail, &detail); err != nil || detail["possible_duplicate"] != true {
		t.Fatalf("deferred event %s does not flag a possible duplicate", evs[len(evs)-1].Detail)
	}
}

// unavailableStore refuses the first failures MessageFinish calls, as a database that cannot be
// reached would.
type unavailableStore struct {
	store.Store
	failures atomic.Int64
}

func (u *unavailableStore) MessageFinish(ctx context.Context, now time.Time, p []store.MessageFinishParams) (int, error) {
	if u.failures.Add(-1) >= 0 {
		return 0, fmt.Errorf("connection refused: %w", store.ErrUnavailable)
	}
	return u.Store.MessageFinish(ctx, now, p)
}

// TestOutcomeWaitsForTheDatabase: an outcome the database cannot take at once is retried until it
// can, so a message sent during a database outage is recorded as sent, once, not sent again.
func TestOutcomeWaitsForTheDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	us := &unavailableStore{Store: b.store}
	us.failures.Store(4)
	tr := &recorder{}
	e := b.engine(tr, "node-a")
	e.cfg.Store = us
	stop := run(t, e)
	defer stop()
	id := b.insert(t, store.StreamTransactional, time.Time{})
	m := b.waitStatus(t, id, store.StatusSent)
	if m.Attempts != 1 || len(tr.to(id)) == 0 {
		t.Errorf("attempts %d, sent to %v; want one attempt", m.Attempts, tr.to(id))
	}
	if n := us.failures.Load(); n != -1 {
		t.Errorf("MessageFinish calls left over from the failures: %d, want -1 (the failures, then one success)", n)
	}
}
