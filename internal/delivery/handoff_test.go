package delivery

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite"
	"github.com/postie/postie/internal/transport"
)

// claimCounter is the SQLite store (claims at accept included) counting the messages its
// MessageClaim returns.
type claimCounter struct {
	*sqlite.Store
	claimed atomic.Int64
}

func (c *claimCounter) MessageClaim(ctx context.Context, p store.MessageClaimParams) ([]store.ClaimedMessage, error) {
	got, err := c.Store.MessageClaim(ctx, p)
	c.claimed.Add(int64(len(got)))
	return got, err
}

// gate is a transport whose sends wait until it opens (or their context ends), counting the
// sends of each message.
type gate struct {
	open  chan struct{}
	mu    sync.Mutex
	sends map[string]int
	in    atomic.Int64 // sends started
}

func newGate() *gate { return &gate{open: make(chan struct{}), sends: map[string]int{}} }

func (g *gate) Name() string { return "gate" }
func (g *gate) Close() error { return nil }
func (g *gate) Send(ctx context.Context, env transport.Envelope, _ []byte) (transport.Result, error) {
	g.in.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
		return transport.Result{}, &transport.Error{Class: transport.Temporary, Text: "cancelled", Err: ctx.Err()}
	}
	g.mu.Lock()
	g.sends[env.MessageID]++
	g.mu.Unlock()
	return transport.Result{Response: "250 ok"}, nil
}

func (g *gate) count(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sends[id]
}

// TestHandoffDeliversWithoutClaim: on SQLite, messages accepted while the engine has room go
// from the accept to the senders without a claim, and read as claimed ones would: queued, then
// sent.
func TestHandoffDeliversWithoutClaim(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := &claimCounter{Store: b.store.(*sqlite.Store)}
	e := b.engine(&recorder{}, "node-a")
	e.cfg.Store = st
	stop := run(t, e)
	defer stop()

	// Once one message went out, the engine is surely running (the first may come by claim).
	b.waitStatus(t, b.insert(t, store.StreamTransactional, time.Time{}), store.StatusSent)
	st.claimed.Store(0)
	var ids []string
	for range 20 {
		ids = append(ids, b.insert(t, store.StreamTransactional, time.Time{}))
	}
	for _, id := range ids {
		b.waitStatus(t, id, store.StatusSent)
		evs, _ := b.store.MessageEvents(context.Background(), id)
		if len(evs) != 2 || evs[0].Type != store.EventQueued || evs[1].Type != store.EventSent {
			t.Errorf("message %s: events %+v, want queued then sent", id, evs)
		}
	}
	if n := st.claimed.Load(); n != 0 {
		t.Errorf("%d messages came by claim, want none (all handed over at accept)", n)
	}
}

// TestHandoffRespectsRoom: the hand-off never holds more than the stream's room (2 × Batch)
// together with the claims; what does not fit stays queued and is claimed once room frees up,
// each message sent once.
func TestHandoffRespectsRoom(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGate()
	e := New(Config{
		Store: b.store, Transport: g, Owner: "node-a", Lease: time.Minute, PollInterval: 10 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Now: b.clock.Now,
		Streams: map[string]StreamConfig{store.StreamTransactional: {Concurrency: 1, Batch: 2}},
	})
	stop := run(t, e)
	defer stop()

	var ids []string
	for range 10 {
		ids = append(ids, b.insert(t, store.StreamTransactional, time.Time{}))
	}
	for g.in.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	leased := 0
	for _, id := range ids {
		m, err := b.store.MessageGet(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch m.Status {
		case store.StatusSending:
			leased++
		case store.StatusQueued:
		default:
			t.Errorf("message %s is %s before any send ended", id, m.Status)
		}
	}
	if leased > 4 {
		t.Errorf("%d messages leased with room for 4", leased)
	}

	close(g.open)
	for _, id := range ids {
		b.waitStatus(t, id, store.StatusSent)
		if n := g.count(id); n != 1 {
			t.Errorf("message %s sent %d times, want once", id, n)
		}
	}
}

// deadStore is a node that stopped writing to the store (its process died or hangs): it takes
// messages handed over at accept, but renews, finishes and releases nothing.
type deadStore struct {
	*sqlite.Store
}

func (deadStore) MessageRenewLeases(context.Context, store.MessageRenewParams) (int, error) {
	return 0, nil
}
func (deadStore) MessageFinish(context.Context, time.Time, []store.MessageFinishParams) (int, error) {
	return 0, nil
}
func (deadStore) MessageReleaseLeases(context.Context, store.MessageReleaseParams) (int, error) {
	return 0, nil
}
func (deadStore) MessageRescue(context.Context, time.Time) ([]string, error) { return nil, nil }

// TestHandoffLostWithItsNodeIsRescued: messages handed over at accept to a node that dies
// before sending them are stored leased; when the lease runs out another node rescues them
// and delivers each of them: nothing is lost.
func TestHandoffLostWithItsNodeIsRescued(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sq := b.store.(*sqlite.Store)
	hung := newGate() // never opens: the dead node sends nothing
	dead := New(Config{
		Store: deadStore{sq}, Transport: hung, Owner: "node-a", Lease: 3 * time.Second,
		PollInterval: 10 * time.Millisecond, ShutdownTimeout: 50 * time.Millisecond, Now: b.clock.Now,
	})
	stopDead := run(t, dead)

	var ids []string
	for range 5 {
		ids = append(ids, b.insert(t, store.StreamTransactional, time.Time{}))
	}
	for _, id := range ids {
		if m := b.waitStatus(t, id, store.StatusSending); m.LeaseOwner != "node-a" {
			t.Fatalf("message %s leased to %q, want node-a", id, m.LeaseOwner)
		}
	}

	// It dies (without a word to the store); the lease runs out; a live node rescues and
	// delivers them.
	stopDead()
	b.clock.Add(10 * time.Second)
	live := &recorder{}
	stopLive := run(t, New(Config{
		Store: sq, Transport: live, Owner: "node-b", Lease: 3 * time.Second, PollInterval: 10 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Now: b.clock.Now,
	}))
	defer stopLive()
	for _, id := range ids {
		b.waitStatus(t, id, store.StatusSent)
		if live.to(id) == nil {
			t.Errorf("message %s was not sent by the live node", id)
		}
		evs, _ := b.store.MessageEvents(context.Background(), id)
		if len(evs) != 3 || evs[1].Type != store.EventLeaseExpired || evs[2].Type != store.EventSent {
			t.Errorf("message %s: events %+v, want queued, lease_expired, sent", id, evs)
		}
	}
}
