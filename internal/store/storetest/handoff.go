package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

// receiver is a store.AcceptReceiver with room for a fixed number of messages; it keeps what
// it receives.
type receiver struct {
	mu       sync.Mutex
	room     int
	lease    store.AcceptLease
	received []store.ClaimedMessage
	reserved int // held now
}

func (r *receiver) Reserve(n int) (int, store.AcceptLease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	took := min(n, r.room)
	r.room -= took
	r.reserved += took
	return took, r.lease
}

func (r *receiver) Receive(c []store.ClaimedMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received = append(r.received, c...)
	r.reserved -= len(c)
}

func (r *receiver) Unreserve(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.room += n
	r.reserved -= n
}

// testAcceptClaims: a driver implementing store.AcceptClaims stores the due queued messages of
// the receiver's stream that it has room for as a claim leaves them, hands them over as a claim
// returns them, and leaves everything else to claims; a replay hands over nothing. Messages
// whose receiver dies with them are rescued when their lease runs out.
func testAcceptClaims(t *testing.T, s store.Store) {
	ac, ok := s.(store.AcceptClaims)
	if !ok {
		t.Skip("the driver does not claim at accept")
	}
	ctx := t.Context()
	lease := store.AcceptLease{Owner: "node-a/1", Until: t0.Add(time.Minute)}
	r := &receiver{room: 2, lease: lease}
	stop := ac.ClaimAtAccept(store.StreamTransactional, r)

	first := Message(t0, func(m *store.Message) { m.NextAttemptAt = t0.Add(-time.Second) })
	second, third := Message(t0), Message(t0)
	later := Message(t0, func(m *store.Message) {
		m.Status, m.SendAt, m.NextAttemptAt = store.StatusScheduled, t0.Add(time.Hour), t0.Add(time.Hour)
	})
	other := Message(t0, func(m *store.Message) { m.Stream = store.StreamBroadcast })
	accept(t, s, t0, later, other, first, second, third)

	// Room for two: the first two due ones, in accept order.
	if diff := cmp.Diff([]string{first.Message.ID, second.Message.ID}, claimedIDs(r.received)); diff != "" {
		t.Fatalf("handed over (-want +got):\n%s", diff)
	}
	if r.reserved != 0 || r.room != 0 {
		t.Fatalf("after the accept: %d reserved, room %d; want 0, 0", r.reserved, r.room)
	}
	for i, src := range []store.NewMessage{first, second} {
		want := src.Message
		want.Status, want.LeaseOwner, want.LeaseUntil, want.UpdatedAt = store.StatusSending, lease.Owner, lease.Until, t0
		if diff := cmp.Diff(claimedOf(want, src.Raw), r.received[i], cmpOpts); diff != "" {
			t.Errorf("handed over as a claim returns it (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, get(t, s, want.ID), cmpOpts); diff != "" {
			t.Errorf("stored as a claim leaves it (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{store.EventQueued}, eventTypes(t, s, want.ID)); diff != "" {
			t.Errorf("timeline (-want +got):\n%s", diff)
		}
	}
	for _, m := range []store.NewMessage{later, other, third} {
		if got := get(t, s, m.Message.ID); got.Status != m.Message.Status || got.LeaseOwner != "" {
			t.Errorf("message %s: %s leased to %q, want %s and no lease", m.Message.ID, got.Status, got.LeaseOwner, m.Message.Status)
		}
	}
	// A claim finds only what was not handed over.
	p := store.MessageClaimParams{Owner: "node-b/1", Stream: store.StreamTransactional, Limit: 10, Now: t0,
		LeaseUntil: t0.Add(time.Minute)}
	if diff := cmp.Diff([]string{third.Message.ID}, claimedIDs(claim(t, s, p))); diff != "" {
		t.Errorf("claim after the hand-off (-want +got):\n%s", diff)
	}

	// A replay stores nothing and hands nothing over: the room comes back.
	r.room = 2
	key := idem("key_1", "k", "h", t0)
	replayed := Message(t0)
	if _, err := acceptIdem(t, s, t0, key, Message(t0)); err != nil {
		t.Fatal(err)
	}
	if res, err := acceptIdem(t, s, t0, key, replayed); err != nil || !res.Replayed {
		t.Fatalf("replay = %+v, %v", res, err)
	}
	if len(r.received) != 3 || r.room != 1 || r.reserved != 0 {
		t.Fatalf("after a replay: %d received, room %d, %d reserved; want 3, 1, 0", len(r.received), r.room, r.reserved)
	}

	// The receiver dies with them: the leases run out and the messages are rescued, then
	// claimed again.
	ids, err := s.MessageRescue(ctx, lease.Until.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{first.Message.ID, second.Message.ID, r.received[2].ID, third.Message.ID}
	if diff := cmp.Diff(slices.Sorted(slices.Values(want)), ids); diff != "" {
		t.Errorf("rescued (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{store.EventQueued, store.EventLeaseExpired}, eventTypes(t, s, first.Message.ID)); diff != "" {
		t.Errorf("timeline after the rescue (-want +got):\n%s", diff)
	}

	// Stopped: nothing more is offered.
	stop()
	r.room = 5
	after := Message(t0)
	accept(t, s, t0, after)
	if len(r.received) != 3 {
		t.Errorf("handed over after stop: %v", claimedIDs(r.received[3:]))
	}
	if got := get(t, s, after.Message.ID); got.Status != store.StatusQueued {
		t.Errorf("accepted after stop: %s, want queued", got.Status)
	}
}

// testAcceptClaimsBroadcast: a broadcast message handed over at accept carries what a claim of
// it returns, its list id included (delivery checks the list's suppressions by it).
func testAcceptClaimsBroadcast(t *testing.T, s store.Store) {
	ac, ok := s.(store.AcceptClaims)
	if !ok {
		t.Skip("the driver does not claim at accept")
	}
	lease := store.AcceptLease{Owner: "node-a/1", Until: t0.Add(time.Minute)}
	r := &receiver{room: 1, lease: lease}
	defer ac.ClaimAtAccept(store.StreamBroadcast, r)()

	m := Message(t0, func(m *store.Message) { m.Stream, m.ListID = store.StreamBroadcast, "lst_news" })
	accept(t, s, t0, m)
	want := m.Message
	want.Status, want.LeaseOwner, want.LeaseUntil, want.UpdatedAt = store.StatusSending, lease.Owner, lease.Until, t0
	if len(r.received) != 1 {
		t.Fatalf("handed over %d messages, want 1", len(r.received))
	}
	if diff := cmp.Diff(claimedOf(want, m.Raw), r.received[0], cmpOpts); diff != "" {
		t.Errorf("handed over as a claim returns it (-want +got):\n%s", diff)
	}
}
