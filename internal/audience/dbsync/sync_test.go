package dbsync

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// postie is postie's own store (SQLite or PostgreSQL) and a clock the syncers share.
type postie struct {
	t     *testing.T
	store store.Store
	now   atomic.Int64 // unix µs
}

func openStore(t *testing.T, kind string) *postie {
	t.Helper()
	p := &postie{t: t}
	p.now.Store(t0.UnixMicro())
	if kind == "sqlite" {
		p.store = sqlitetest.Open(t)
		return p
	}
	s, err := postgres.Open(t.Context(), postgres.Options{URL: pgtest.URL(t), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p.store = s
	return p
}

func (p *postie) clock() time.Time        { return time.UnixMicro(p.now.Load()).UTC() }
func (p *postie) advance(d time.Duration) { p.now.Add(d.Microseconds()) }

// syncer is a node's syncer (a restart is a new one).
func (p *postie) syncer(owner string, pageSize int) *Syncer {
	return New(Config{Store: p.store, Contacts: audience.New(audience.Config{Store: p.store, Now: p.clock}),
		Owner: owner, Now: p.clock, PageSize: pageSize})
}

// run runs one pass of src and returns the source after it.
func (p *postie) run(sy *Syncer, srcID string, reconcile bool) store.Source {
	p.t.Helper()
	src, err := sy.RunOne(p.t.Context(), srcID, reconcile)
	if err != nil {
		p.t.Fatalf("RunOne: %v", err)
	}
	return src
}

// contact returns the contact of the user with that id, or ok false.
func (p *postie) contact(userID int64) (store.Contact, bool) {
	p.t.Helper()
	c, err := p.store.ContactGet(p.t.Context(), store.ContactRef{ExternalID: strconv.FormatInt(userID, 10)})
	if errors.Is(err, store.ErrNotFound) {
		return store.Contact{}, false
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return c, true
}

// subscription is the contact's status on list ("" when none).
func (p *postie) subscription(c store.Contact, list string) string {
	p.t.Helper()
	subs, err := p.store.ContactSubscriptions(p.t.Context(), store.ContactRef{ID: c.ID})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, s := range subs {
		if s.ListID == list {
			return s.Status
		}
	}
	return ""
}

func (p *postie) createSource(a *appDB, lists []string, overlap time.Duration) store.Source {
	p.t.Helper()
	now := p.clock()
	src, err := p.store.SourceCreate(p.t.Context(), store.Source{
		ID: id.New(id.Source), Name: "users", Driver: a.driver, DSN: a.dsn, Query: usersQuery, Mapping: usersMapping,
		Lists: lists, Interval: time.Minute, Overlap: overlap, ReconcileEvery: 24 * time.Hour, NextRunAt: now, CreatedAt: now,
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return src
}

// attr is one attribute of a contact.
func attr(t *testing.T, c store.Contact, key string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.Attributes, &m); err != nil {
		t.Fatalf("attributes %s: %v", c.Attributes, err)
	}
	return m[key]
}

func wantStats(t *testing.T, what string, src store.Source, want store.SourceStats) {
	t.Helper()
	got := src.LastStats
	got.SkipErrors = nil
	if src.Status != store.SourceOK || !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: status %s (%s), stats %+v; want ok, %+v", what, src.Status, src.LastError, src.LastStats, want)
	}
}

// TestSync is the life of a source, against a real MariaDB and PostgreSQL, into SQLite and
// PostgreSQL: rows inserted and updated between passes, updated_at values shared across a page
// boundary, a row committed late (inside the overlap) and one later than the overlap, a restart
// between passes and a node dying mid-pass, an opted-out user never re-subscribed, a deleted user,
// a row deleted outright (reconciliation), and a SELECT that lost a column.
func TestSync(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			eachDriver(t, func(t *testing.T, a *appDB) { testSync(t, a, openStore(t, kind)) })
		})
	}
}

func testSync(t *testing.T, a *appDB, p *postie) {
	ctx := t.Context()
	news, err := p.store.ListCreate(ctx, store.List{ID: "lst_news", Name: "News", CreatedAt: t0, UpdatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	// The rows' times are near the application database's clock (a row committing late is one
	// whose updated_at is a little in the past). Four users share one updated_at: pages of two
	// cut through them.
	base := time.Now().UTC().Truncate(time.Millisecond)
	at := base.Add(-time.Minute)
	a.put(
		user{id: 1, email: "ann@example.com", name: "Ann", plan: "pro", at: at},
		user{id: 2, email: "Bob@Example.com", name: "Bob", plan: "free", at: at},
		user{id: 3, email: "cy@example.com", name: "Cy", optedOut: true, at: at.Add(-time.Minute)},
		user{id: 4, email: "di@example.com", name: "Di", at: at},
		user{id: 5, email: "ed@example.com", name: "Ed", at: at},
		user{id: 9, email: "not an address", at: at.Add(-2 * time.Minute)},
	)
	src := p.createSource(a, []string{news.ID}, 5*time.Minute)
	node1 := p.syncer("node1", 2)
	got := p.run(node1, src.ID, false)
	wantStats(t, "first pass", got, store.SourceStats{Rows: 6, Upserted: 5, Skipped: 1})
	if len(got.LastStats.SkipErrors) != 1 || !strings.Contains(got.LastStats.SkipErrors[0], "key 9") {
		t.Errorf("skip errors %v; want key 9's", got.LastStats.SkipErrors)
	}
	if !got.MarkTime.Equal(at) || string(got.MarkKey) != "5" {
		t.Errorf("mark = %v %s; want %v 5", got.MarkTime, got.MarkKey, at)
	}
	bob, ok := p.contact(2)
	if !ok || bob.EmailKey != "bob@example.com" || bob.Name != "Bob" || attr(t, bob, "plan") != "free" {
		t.Fatalf("bob = %+v, %v", bob, ok)
	}
	if s := p.subscription(bob, news.ID); s != store.SubscriptionSubscribed {
		t.Errorf("bob on news: %q", s)
	}
	cy, ok := p.contact(3)
	if !ok || p.subscription(cy, news.ID) == store.SubscriptionSubscribed {
		t.Errorf("cy (opted out) = %v; subscribed to news", ok)
	}

	// Between passes: an update, an insert, a row committed late inside the overlap (its
	// updated_at before the mark), one later than the overlap (missed until it changes again).
	p.advance(time.Minute)
	a.put(
		user{id: 2, email: "bob@example.com", name: "Robert", plan: "pro", at: base.Add(-30 * time.Second)},
		user{id: 6, email: "fay@example.com", name: "Fay", at: base.Add(-30 * time.Second)},
		user{id: 7, email: "gus@example.com", name: "Gus", at: at.Add(-30 * time.Second)},
		user{id: 8, email: "hal@example.com", name: "Hal", at: at.Add(-30 * time.Minute)},
	)
	// A restart: a new syncer (another process) resumes from the stored mark.
	node2 := p.syncer("node2", 2)
	got = p.run(node2, src.ID, false)
	// Read from mark − overlap: 9 (skipped again), 3, 7 (late), 1, 4, 5 again (harmless), then
	// 2 and 6; not 8, whose updated_at is long before the database's clock.
	wantStats(t, "second pass", got, store.SourceStats{Rows: 8, Upserted: 7, Skipped: 1})
	if bob, _ := p.contact(2); bob.Name != "Robert" || attr(t, bob, "plan") != "pro" {
		t.Errorf("bob after update = %+v", bob)
	}
	for uid, want := range map[int64]bool{6: true, 7: true, 8: false} {
		if _, ok := p.contact(uid); ok != want {
			t.Errorf("user %d synced = %v, want %v", uid, ok, want)
		}
	}

	// Ann opts out, then back in: she is unsubscribed, and never re-subscribed by a sync.
	p.advance(time.Minute)
	a.put(user{id: 1, email: "ann@example.com", name: "Ann", optedOut: true, at: base})
	p.run(node2, src.ID, false)
	ann, _ := p.contact(1)
	if s := p.subscription(ann, news.ID); s != store.SubscriptionUnsubscribed {
		t.Errorf("ann after opting out: %q", s)
	}
	p.advance(time.Minute)
	a.put(user{id: 1, email: "ann@example.com", name: "Ann", at: base.Add(time.Minute)})
	p.run(node2, src.ID, false)
	if s := p.subscription(ann, news.ID); s != store.SubscriptionUnsubscribed {
		t.Errorf("ann after opting in again in the app: %q; a sync must not re-subscribe", s)
	}

	// Di is deleted in the app (deleted_at set): her contact goes. Ed's row is deleted outright:
	// the reconciliation removes his contact, and leaves a contact the source did not write.
	p.advance(time.Minute)
	a.put(user{id: 4, email: "di@example.com", deleted: true, at: base.Add(2 * time.Minute)})
	a.exec("DELETE FROM users WHERE id = ?", 5)
	if _, err := p.store.ContactsUpsert(ctx, store.ContactsUpsertParams{Now: p.clock(), Items: []store.ContactUpsert{
		{Email: "own@example.com", EmailKey: "own@example.com", ExternalID: "own"}}}); err != nil {
		t.Fatal(err)
	}
	got = p.run(node2, src.ID, false)
	if _, ok := p.contact(4); ok || got.LastStats.Deleted != 1 {
		t.Errorf("di after deletion: synced %v, stats %+v", ok, got.LastStats)
	}
	if _, ok := p.contact(5); !ok {
		t.Errorf("ed deleted before a reconciliation")
	}
	got = p.run(node2, src.ID, true)
	if _, ok := p.contact(5); ok || !got.LastStats.Reconciled || got.LastStats.Deleted != 1 || got.ReconciledAt.IsZero() {
		t.Errorf("ed after a reconciliation: synced %v, stats %+v", ok, got.LastStats)
	}
	if _, err := p.store.ContactGet(ctx, store.ContactRef{ExternalID: "own"}); err != nil {
		t.Errorf("a contact the source did not write: %v", err)
	}

	// A node dies mid-pass holding the lease: nobody runs the source until the lease ends, then
	// another node does, from the mark.
	p.advance(time.Minute)
	claimed, err := p.store.SourceClaim(ctx, store.SourceClaimParams{ID: src.ID, Owner: "dead", Now: p.clock(),
		Until: p.clock().Add(time.Minute)})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim by the dying node: %v, %v", claimed, err)
	}
	if _, err := node2.RunOne(ctx, src.ID, false); !errors.Is(err, ErrBusy) {
		t.Errorf("RunOne while another node holds it = %v, want ErrBusy", err)
	}
	p.advance(2 * time.Minute)
	got = p.run(node1, src.ID, false)
	if got.Status != store.SourceOK || got.LeaseOwner != "" {
		t.Errorf("after taking over: %+v", got)
	}

	// The SELECT loses a mapped column: error, with the reason, nothing applied, retried with
	// backoff; once fixed, the next pass succeeds.
	p.advance(time.Minute)
	a.put(user{id: 10, email: "ivy@example.com", at: base.Add(3 * time.Minute)})
	bad := got
	bad.DSN, bad.Query = "", "SELECT id, email, full_name, updated_at FROM users"
	if _, err := p.store.SourceUpdate(ctx, store.SourceUpdateParams{Source: bad, Now: p.clock()}); err != nil {
		t.Fatal(err)
	}
	got = p.run(node1, src.ID, false)
	if got.Status != store.SourceError || !strings.Contains(got.LastError, "opted_out (opt_out)") || got.Failures != 1 ||
		!got.NextRunAt.Equal(p.clock().Add(30*time.Second)) {
		t.Errorf("after a bad SELECT: %s %q failures %d next %v", got.Status, got.LastError, got.Failures, got.NextRunAt)
	}
	if _, ok := p.contact(10); ok {
		t.Error("a failed pass applied a row")
	}
	got = p.run(node1, src.ID, false)
	if got.Failures != 2 || !got.NextRunAt.Equal(p.clock().Add(time.Minute)) {
		t.Errorf("second failure: failures %d next %v; want 2, a minute later", got.Failures, got.NextRunAt)
	}
	bad.Query = usersQuery
	if _, err := p.store.SourceUpdate(ctx, store.SourceUpdateParams{Source: bad, Now: p.clock()}); err != nil {
		t.Fatal(err)
	}
	got = p.run(node1, src.ID, false)
	if _, ok := p.contact(10); got.Status != store.SourceOK || got.Failures != 0 || got.LastError != "" || !ok {
		t.Errorf("after the fix: %s %q failures %d, ivy synced %v", got.Status, got.LastError, got.Failures, ok)
	}
}

// TestSyncDue: RunDue runs only the due sources, and a pass schedules the next one an interval
// later.
func TestSyncDue(t *testing.T) {
	eachDriver(t, func(t *testing.T, a *appDB) {
		p := openStore(t, "sqlite")
		a.put(user{id: 1, email: "ann@example.com", at: t0})
		src := p.createSource(a, nil, 0)
		sy := p.syncer("node", 100)
		ctx := context.Background()
		if n, err := sy.RunDue(ctx); err != nil || n != 1 {
			t.Fatalf("RunDue = %d, %v; want 1", n, err)
		}
		if n, err := sy.RunDue(ctx); err != nil || n != 0 {
			t.Fatalf("RunDue again = %d, %v; want none due", n, err)
		}
		p.advance(time.Minute)
		if n, err := sy.RunDue(ctx); err != nil || n != 1 {
			t.Fatalf("RunDue an interval later = %d, %v; want 1", n, err)
		}
		if got, _ := p.store.SourceGet(ctx, src.ID); got.LastStats.Rows != 0 {
			t.Errorf("with no overlap, nothing after the mark: read %d rows", got.LastStats.Rows)
		}
	})
}

// TestSyncSettled: rows updated long before the database's clock are re-read by no later pass
// (they had committed when the pass that read them began), while the overlap is still re-read
// for rows near it.
func TestSyncSettled(t *testing.T) {
	eachDriver(t, func(t *testing.T, a *appDB) {
		p := openStore(t, "sqlite")
		a.put(user{id: 1, email: "ann@example.com", at: t0}, user{id: 2, email: "bob@example.com", at: t0})
		src := p.createSource(a, nil, 5*time.Minute)
		sy := p.syncer("node", 100)
		if got := p.run(sy, src.ID, false); got.LastStats.Rows != 2 || got.SettledAt.Before(t0) {
			t.Fatalf("first pass: %+v, settled %v", got.LastStats, got.SettledAt)
		}
		if got := p.run(sy, src.ID, false); got.LastStats.Rows != 0 {
			t.Errorf("second pass re-read %d settled rows", got.LastStats.Rows)
		}
		// A recent row: the next passes re-read it while it is within the overlap.
		a.put(user{id: 3, email: "cy@example.com", at: time.Now().UTC()})
		for i := range 2 {
			if got := p.run(sy, src.ID, false); got.LastStats.Rows != 1 {
				t.Errorf("pass %d after a recent row read %d rows, want it", i, got.LastStats.Rows)
			}
		}
	})
}

// TestSyncNodes: nodes sharing a PostgreSQL store, looking for due sources at once, run each
// source once.
func TestSyncNodes(t *testing.T) {
	eachDriver(t, func(t *testing.T, a *appDB) {
		p := openStore(t, "postgres")
		a.put(user{id: 1, email: "ann@example.com", at: t0})
		const sources, nodes = 4, 3
		for range sources {
			p.createSource(a, nil, 0)
		}
		var ran atomic.Int64
		done := make(chan struct{})
		for n := range nodes {
			sy := p.syncer("node"+strconv.Itoa(n), 100)
			go func() {
				defer func() { done <- struct{}{} }()
				k, err := sy.RunDue(t.Context())
				if err != nil {
					t.Errorf("RunDue: %v", err)
				}
				ran.Add(int64(k))
			}()
		}
		for range nodes {
			<-done
		}
		if ran.Load() != sources {
			t.Errorf("%d passes ran, want one per source (%d)", ran.Load(), sources)
		}
	})
}

// stopAfter is the audience service, with the pass's context cancelled after n upserts: a node
// stopped mid-pass.
type stopAfter struct {
	Contacts
	n      int
	cancel context.CancelFunc
}

func (s *stopAfter) Upsert(ctx context.Context, items []store.ContactUpsert) ([]store.ContactUpsertResult, error) {
	res, err := s.Contacts.Upsert(ctx, items)
	if s.n--; s.n == 0 {
		s.cancel()
	}
	return res, err
}

// TestSyncStoppedMidPass: a node stopped after its first page has stored that page's mark; the
// source is due again at once, and the next pass (another process) resumes after that page.
func TestSyncStoppedMidPass(t *testing.T) {
	eachDriver(t, func(t *testing.T, a *appDB) {
		p := openStore(t, "sqlite")
		for i := range int64(5) {
			a.put(user{id: i + 1, email: "u" + strconv.FormatInt(i+1, 10) + "@example.com", at: t0.Add(time.Duration(i) * time.Second)})
		}
		src := p.createSource(a, nil, 0)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		sy := p.syncer("node1", 2)
		sy.cfg.Contacts = &stopAfter{Contacts: sy.cfg.Contacts, n: 1, cancel: cancel}
		if _, err := sy.RunOne(ctx, src.ID, false); err != nil {
			t.Fatal(err)
		}
		got, err := p.store.SourceGet(t.Context(), src.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.SourceOK || got.LeaseOwner != "" || string(got.MarkKey) != "2" || !got.NextRunAt.Equal(p.clock()) {
			t.Fatalf("after a stop: %s lease %q mark %s next %v", got.Status, got.LeaseOwner, got.MarkKey, got.NextRunAt)
		}
		got = p.run(p.syncer("node2", 2), src.ID, false)
		wantStats(t, "resumed", got, store.SourceStats{Rows: 3, Upserted: 3})
		for uid := range int64(5) {
			if _, ok := p.contact(uid + 1); !ok {
				t.Errorf("user %d not synced", uid+1)
			}
		}
	})
}
