package retention_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/retention"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/drivertest"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// sent stores n messages finished (sent) at at, and one still queued, and returns the sent ids.
func sent(t *testing.T, st store.Store, at time.Time, n int) []string {
	t.Helper()
	ctx := t.Context()
	msgs := make([]store.NewMessage, n)
	for i := range msgs {
		msgs[i] = storetest.Message(at)
	}
	if _, err := st.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: msgs, Now: at}); err != nil {
		t.Fatal(err)
	}
	claimed, err := st.MessageClaim(ctx, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional,
		Limit: n, Now: at, LeaseUntil: at.Add(time.Minute)})
	if err != nil || len(claimed) != n {
		t.Fatalf("claimed %d, %v; want %d", len(claimed), err, n)
	}
	ps := make([]store.MessageFinishParams, n)
	ids := make([]string, n)
	for i, c := range claimed {
		ids[i] = c.ID
		ps[i] = store.MessageFinishParams{ID: c.ID, Owner: "w", Status: store.StatusSent, Attempts: 1, SentAt: at,
			Events: []store.Event{{Type: store.EventSent, At: at}}}
	}
	if k, err := st.MessageFinish(ctx, at, ps); err != nil || k != n {
		t.Fatalf("MessageFinish = %d, %v", k, err)
	}
	return ids
}

// reports records what the service reports.
type reports struct {
	mu     sync.Mutex
	errors []string
}

func (r *reports) Panic(context.Context, string, any, []byte) {}
func (r *reports) Error(_ context.Context, where string, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, where)
}

// clock is the services' time, moved by the test.
type clock struct{ t atomic.Pointer[time.Time] }

func clockAt(t time.Time) *clock {
	c := &clock{}
	c.Set(t)
	return c
}

func (c *clock) Now() time.Time  { return *c.t.Load() }
func (c *clock) Set(t time.Time) { c.t.Store(&t) }

func newService(st retention.Store, clk *clock, rep *reports, mods ...func(*retention.Config)) *retention.Service {
	cfg := retention.Config{Store: st, Bodies: 30 * day, Messages: 400 * day, WebhookDeliveries: 30 * day,
		Inbound: 90 * day, Events: 30 * day, Batch: 2, Now: clk.Now, Errors: rep,
		Sleep: func(context.Context, time.Duration) {}}
	for _, m := range mods {
		m(&cfg)
	}
	return retention.New(cfg)
}

// TestPass: bodies go after Bodies, messages after Messages, in batches, on both drivers; a
// message still to be sent stays.
func TestPass(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		old := sent(t, st, t0, 5)
		recent := sent(t, st, t0.Add(20*day), 1)
		queued := storetest.Message(t0)
		if _, err := st.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{queued}, Now: t0}); err != nil {
			t.Fatal(err)
		}
		clk := clockAt(t0.Add(31 * day))
		rep := &reports{}
		svc := newService(st, clk, rep)

		res := svc.Pass(ctx)
		if res.Err != nil || res.Skipped || res.Purged[retention.KindBodies] != 5 || res.Purged[retention.KindMessages] != 0 {
			t.Fatalf("first pass = %+v; want the 5 old bodies purged (in batches of 2)", res)
		}
		for _, id := range old {
			if _, err := st.MessageRaw(ctx, id); !errors.Is(err, store.ErrBodyPurged) {
				t.Errorf("MessageRaw of an old message: %v, want purged", err)
			}
		}
		for _, id := range append(recent, queued.Message.ID) {
			if _, err := st.MessageRaw(ctx, id); err != nil {
				t.Errorf("MessageRaw of a recent or queued message: %v", err)
			}
		}
		if res := svc.Pass(ctx); res.Purged[retention.KindBodies] != 0 {
			t.Errorf("second pass = %+v; want nothing more", res)
		}

		clk.Set(t0.Add(401 * day))
		res = svc.Pass(ctx)
		if res.Err != nil || res.Purged[retention.KindMessages] != 5 || res.Purged[retention.KindBodies] != 1 {
			t.Fatalf("pass after 401 days = %+v; want the 5 old messages and the recent body purged", res)
		}
		for _, id := range old {
			if _, err := st.MessageGet(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("MessageGet of a message past POSTIE_RETAIN_MESSAGES: %v, want ErrNotFound", err)
			}
		}
		if _, err := st.MessageRaw(ctx, queued.Message.ID); err != nil {
			t.Errorf("MessageRaw of the queued message after 401 days: %v", err)
		}
		if len(rep.errors) != 0 {
			t.Errorf("reported: %v", rep.errors)
		}
	})
}

// TestPassSkippedWhileLocked: a pass while another holder has the purge lock does nothing.
func TestPassSkippedWhileLocked(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		sent(t, st, t0, 1)
		release, ok, err := st.RetentionLock(t.Context())
		if err != nil || !ok {
			t.Fatalf("RetentionLock = %v, %v", ok, err)
		}
		svc := newService(st, clockAt(t0.Add(31*day)), &reports{})
		if res := svc.Pass(t.Context()); !res.Skipped || res.Purged[retention.KindBodies] != 0 {
			t.Errorf("pass while locked = %+v; want skipped", res)
		}
		release()
		if res := svc.Pass(t.Context()); res.Skipped || res.Purged[retention.KindBodies] != 1 {
			t.Errorf("pass after release = %+v; want the body purged", res)
		}
	})
}

// failing fails MessagePurge, as a database error would.
type failing struct{ store.Store }

func (failing) MessagePurge(context.Context, store.PurgeParams) (int, error) {
	return 0, errors.New("disk I/O error")
}

// TestPassReportsFailure: a failed purge is reported and returned; the other kinds still go.
func TestPassReportsFailure(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t)
	ids := sent(t, st, t0, 1)
	rep := &reports{}
	res := newService(failing{st}, clockAt(t0.Add(401*day)), rep).Pass(t.Context())
	if res.Err == nil || res.Purged[retention.KindBodies] != 1 {
		t.Errorf("pass = %+v; want an error and the body purged", res)
	}
	if len(rep.errors) != 1 || rep.errors[0] != "retention purge of messages" {
		t.Errorf("reported %v; want the messages purge", rep.errors)
	}
	if _, err := st.MessageGet(t.Context(), ids[0]); err != nil {
		t.Errorf("message after the failed purge: %v; want it kept", err)
	}
}

// TestPassStopsAtMaxPass: a pass starts no batch after MaxPass; the rest waits for the next.
func TestPassStopsAtMaxPass(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t)
	sent(t, st, t0, 5)
	clk := clockAt(t0.Add(31 * day))
	svc := newService(st, clk, &reports{}, func(c *retention.Config) {
		c.MaxPass = time.Minute
		c.Sleep = func(context.Context, time.Duration) { clk.Set(clk.Now().Add(time.Minute)) }
	})
	if res := svc.Pass(t.Context()); res.Purged[retention.KindBodies] != 2 {
		t.Errorf("pass = %+v; want one batch of 2", res)
	}
	if res := svc.Pass(t.Context()); res.Purged[retention.KindBodies] != 2 {
		t.Errorf("next pass = %+v; want the next batch", res)
	}
}

// TestOneNodePurges: two PostgreSQL nodes on one database: while one is purging, the other's
// pass is skipped, and the data is purged once.
func TestOneNodePurges(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	open := func() store.Store {
		st, err := postgres.Open(context.Background(), postgres.Options{URL: url, Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	a, b := open(), open()
	sent(t, a, t0, 50)
	clk := clockAt(t0.Add(31 * day))
	// Node a pauses after its first batch (holding the lock) until node b has tried its pass.
	holding, tried := make(chan struct{}), make(chan struct{})
	var once sync.Once
	svcA := newService(a, clk, &reports{}, func(c *retention.Config) {
		c.Sleep = func(ctx context.Context, _ time.Duration) {
			once.Do(func() { close(holding) })
			select {
			case <-tried:
			case <-ctx.Done():
			}
		}
	})
	resA := make(chan retention.Result, 1)
	go func() { resA <- svcA.Pass(t.Context()) }()
	<-holding
	resB := newService(b, clk, &reports{}).Pass(t.Context())
	close(tried)
	if !resB.Skipped || resB.Purged[retention.KindBodies] != 0 {
		t.Errorf("node b's pass while node a purges = %+v; want skipped", resB)
	}
	if ra := <-resA; ra.Skipped || ra.Purged[retention.KindBodies] != 50 {
		t.Errorf("node a's pass = %+v; want the 50 bodies", ra)
	}
}

// cutStore purges at most one message per batch, as a store does that cuts a batch short to
// bound its transaction.
type cutStore struct{ retention.Store }

func (s cutStore) MessagePurge(ctx context.Context, p store.PurgeParams) (int, error) {
	p.Limit = min(p.Limit, 1)
	return s.Store.MessagePurge(ctx, p)
}

// TestPassShortBatches: a batch the store cut short is not taken for the end of what is due;
// the pass goes on until a batch purges nothing.
func TestPassShortBatches(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t)
	sent(t, st, t0, 3)
	svc := newService(cutStore{st}, clockAt(t0.Add(401*day)), &reports{})
	if res := svc.Pass(t.Context()); res.Err != nil || res.Purged[retention.KindMessages] != 3 {
		t.Fatalf("pass = %+v; want the 3 old messages purged, one per batch", res)
	}
}
