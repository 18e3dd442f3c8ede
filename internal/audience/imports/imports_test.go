package imports_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/audience/imports"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/sqlite"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a test's "now", moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// driver opens a fresh store and, given the first one's reopen key, the same database again
// (a restarted process).
type driver struct {
	name string
	open func(t *testing.T) (store.Store, func(t *testing.T) store.Store)
}

func drivers() []driver {
	return []driver{
		{"sqlite", func(t *testing.T) (store.Store, func(t *testing.T) store.Store) {
			path := filepath.Join(t.TempDir(), "postie.db")
			reopen := func(t *testing.T) store.Store {
				return sqlitetest.OpenPath(t, path, sqlite.Options{Migrate: true})
			}
			return reopen(t), reopen
		}},
		{"postgres", func(t *testing.T) (store.Store, func(t *testing.T) store.Store) {
			url := pgtest.URL(t)
			reopen := func(t *testing.T) store.Store {
				st, err := postgres.Open(t.Context(), postgres.Options{URL: url, Migrate: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			return reopen(t), reopen
		}},
	}
}

// forEachDriver runs fn on each driver, in parallel.
func forEachDriver(t *testing.T, fn func(t *testing.T, st store.Store, reopen func(t *testing.T) store.Store)) {
	for _, d := range drivers() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			st, reopen := d.open(t)
			fn(t, st, reopen)
		})
	}
}

type setup struct {
	clock *clock
	dir   string
}

func newSetup(t *testing.T) *setup {
	return &setup{clock: &clock{now: t0}, dir: filepath.Join(t.TempDir(), "spool")}
}

// importer is a worker of node on st, with chunks of chunk rows.
func (s *setup) importer(t *testing.T, st imports.Store, node, owner string, chunk int) *imports.Importer {
	t.Helper()
	im, err := imports.New(imports.Config{Store: st, Dir: s.dir, Node: node, Owner: owner, Chunk: chunk,
		Now: s.clock.Now, MaxRows: 5000,
		AttributeTypes: func(context.Context) (map[string]string, error) {
			return map[string]string{"seats": store.AttrNumber, "trial": store.AttrBool}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// start spools csv and starts an import of it.
func start(t *testing.T, im *imports.Importer, csv string, o imports.Options) store.Import {
	t.Helper()
	up, err := im.Spool(t.Context(), strings.NewReader(csv))
	if err != nil {
		t.Fatalf("Spool: %v", err)
	}
	imp, err := im.Start(t.Context(), up, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return imp
}

func runOnce(t *testing.T, im *imports.Importer) {
	t.Helper()
	ran, err := im.RunOnce(t.Context())
	if err != nil || !ran {
		t.Fatalf("RunOnce = %v, %v; want an import run", ran, err)
	}
}

func getImport(t *testing.T, st store.Store, id string) store.Import {
	t.Helper()
	imp, err := st.ImportGet(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return imp
}

func newList(t *testing.T, st store.Store, id string) {
	t.Helper()
	if _, err := st.ListCreate(t.Context(), store.List{ID: id, Name: id, CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
}

func upsert(t *testing.T, st store.Store, items ...store.ContactUpsert) {
	t.Helper()
	res, err := st.ContactsUpsert(t.Context(), store.ContactsUpsertParams{Items: items, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

func contact(t *testing.T, st store.Store, key string) store.Contact {
	t.Helper()
	c, err := st.ContactGet(t.Context(), store.ContactRef{EmailKey: key})
	if err != nil {
		t.Fatalf("ContactGet(%s): %v", key, err)
	}
	return c
}

func subscription(t *testing.T, st store.Store, key, list string) string {
	t.Helper()
	subs, err := st.ContactSubscriptions(t.Context(), store.ContactRef{EmailKey: key})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if s.ListID == list {
			return s.Status
		}
	}
	return ""
}

// TestImportApplies: every outcome of a row, counted, and the bad rows kept with their reasons.
func TestImportApplies(t *testing.T) {
	t.Parallel()
	forEachDriver(t, func(t *testing.T, st store.Store, _ func(*testing.T) store.Store) {
		s := newSetup(t)
		newList(t, st, "lst_news")
		name := "Old"
		upsert(t, st,
			store.ContactUpsert{Email: "Bob@example.com", EmailKey: "bob@example.com", Name: &name},
			store.ContactUpsert{Email: "carl@example.com", EmailKey: "carl@example.com", Name: &name},
			store.ContactUpsert{Email: "dora@example.com", EmailKey: "dora@example.com", Lists: []string{"lst_news"}})
		if _, err := st.SubscriptionSet(t.Context(), store.SubscriptionSetParams{ListID: "lst_news",
			Contact: store.ContactRef{EmailKey: "dora@example.com"}, Status: store.SubscriptionUnsubscribed, Now: t0}); err != nil {
			t.Fatal(err)
		}
		im := s.importer(t, st, "n1", "n1/1/a", 4)
		csv := "\ufeffE-mail,name,seats,trial,Plan\r\n" +
			"ann@example.com,Ann,3,yes,pro\r\n" + // 2 created
			"bob@example.com,New name,,,\r\n" + // 3 merged: the address differs from the stored Bob@ only in case
			"carl@example.com,Old,,,\r\n" + // 4 updated: only subscribed
			"not-an-address,X,,,\r\n" + // 5 bad
			"eve@example.com,Eve,many,,\r\n" + // 6 bad: seats is a number
			"EVE@example.com,Eve,,\r\n" + // 7 bad: 4 fields
			"fay@example.com,\"Fay, \"\"F\"\"\",,,\r\n" + // 8 created, quoted
			"FAY@example.com,Fay,,,\r\n" + // 9 bad: duplicate of 8 in this chunk
			"dora@example.com,Dora,,,\r\n" // 10 updated, kept unsubscribed
		imp := start(t, im, csv, imports.Options{Lists: []string{"lst_news"}, Mapping: map[string]string{"E-mail": "email"}})
		if imp.Status != store.ImportQueued || imp.TotalRows != 9 {
			t.Fatalf("started import = %+v", imp)
		}
		runOnce(t, im)
		got := getImport(t, st, imp.ID)
		if got.Status != store.ImportDone || got.FinishedAt.IsZero() || got.LeaseOwner != "" {
			t.Fatalf("import = %+v; want done", got)
		}
		want := store.ImportCounts{Rows: 9, Created: 2, Updated: 2, Merged: 1, Skipped: 0, Failed: 4, Kept: 1}
		if got.Counts != want {
			t.Errorf("counts = %+v, want %+v", got.Counts, want)
		}
		rows := []int{}
		for _, e := range got.Errors {
			rows = append(rows, e.Row)
		}
		if diff := cmp.Diff([]int{5, 6, 7, 9}, rows); diff != "" {
			t.Errorf("bad rows (-want +got):\n%s\n%+v", diff, got.Errors)
		}
		if got.Errors[1].Field != "attributes.seats" || !strings.Contains(got.Errors[3].Reason, "row 8") {
			t.Errorf("errors = %+v", got.Errors)
		}
		ann := contact(t, st, "ann@example.com")
		if ann.Name != "Ann" || string(ann.Attributes) == "" || !strings.Contains(string(ann.Attributes), `"seats": 3`) &&
			!strings.Contains(string(ann.Attributes), `"seats":3`) {
			t.Errorf("ann = %+v (attributes %s)", ann, ann.Attributes)
		}
		if fay := contact(t, st, "fay@example.com"); fay.Name != `Fay, "F"` {
			t.Errorf("fay's name = %q", fay.Name)
		}
		if bob := contact(t, st, "bob@example.com"); bob.Name != "New name" {
			t.Errorf("bob's name = %q", bob.Name)
		}
		for key, status := range map[string]string{"ann@example.com": store.SubscriptionSubscribed,
			"bob@example.com": store.SubscriptionSubscribed, "dora@example.com": store.SubscriptionUnsubscribed} {
			if got := subscription(t, st, key, "lst_news"); got != status {
				t.Errorf("%s's subscription = %q, want %q", key, got, status)
			}
		}
		if _, err := st.ContactGet(t.Context(), store.ContactRef{EmailKey: "eve@example.com"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("eve, all of whose rows were bad, was stored: %v", err)
		}
		if entries, _ := os.ReadDir(s.dir); len(entries) != 0 {
			t.Errorf("spool files left: %v", entries)
		}
	})
}

// TestImportCreateOnly: existing contacts are left exactly as they were.
func TestImportCreateOnly(t *testing.T) {
	t.Parallel()
	forEachDriver(t, func(t *testing.T, st store.Store, _ func(*testing.T) store.Store) {
		s := newSetup(t)
		name := "Kept"
		upsert(t, st, store.ContactUpsert{Email: "bob@example.com", EmailKey: "bob@example.com", Name: &name})
		im := s.importer(t, st, "n1", "n1/1/a", 100)
		imp := start(t, im, "email,name\nann@example.com,Ann\nbob@example.com,Changed\n", imports.Options{Mode: store.ImportCreateOnly})
		runOnce(t, im)
		got := getImport(t, st, imp.ID)
		if want := (store.ImportCounts{Rows: 2, Created: 1, Skipped: 1}); got.Counts != want || got.Mode != store.ImportCreateOnly {
			t.Errorf("import = %+v, want counts %+v", got, want)
		}
		if bob := contact(t, st, "bob@example.com"); bob.Name != "Kept" {
			t.Errorf("bob's name = %q, want it kept", bob.Name)
		}
	})
}

// killAfter is the real store, except that the worker's process "dies" (its context ends)
// right after the chunk number n is committed, before its progress is recorded.
type killAfter struct {
	store.Store
	mu     sync.Mutex
	n      int
	cancel func()
}

func (k *killAfter) ContactsUpsert(ctx context.Context, p store.ContactsUpsertParams) ([]store.ContactUpsertResult, error) {
	res, err := k.Store.ContactsUpsert(ctx, p)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n--; k.n == 0 {
		k.cancel()
		return nil, context.Canceled
	}
	return res, err
}

// TestImportResumes: a worker that dies mid-import leaves it running with its last saved
// progress; the node's next run, on a store opened again, takes its lease back and resumes from
// the saved offset; the chunk applied but not recorded is applied again, which changes nothing.
func TestImportResumes(t *testing.T) {
	t.Parallel()
	forEachDriver(t, func(t *testing.T, st store.Store, reopen func(*testing.T) store.Store) {
		s := newSetup(t)
		newList(t, st, "lst_news")
		csv := usersCSV(10)
		ctx, cancel := context.WithCancel(t.Context())
		dying := &killAfter{Store: st, n: 3, cancel: cancel}
		im := s.importer(t, dying, "n1", "n1/1/a", 3)
		imp := start(t, im, csv, imports.Options{Lists: []string{"lst_news"}})
		if ran, err := im.RunOnce(ctx); !ran || !errors.Is(err, context.Canceled) {
			t.Fatalf("RunOnce = %v, %v; want the worker killed", ran, err)
		}
		mid := getImport(t, st, imp.ID)
		if mid.Status != store.ImportRunning || mid.Counts.Rows != 6 || mid.Row != 7 || mid.Offset == 0 {
			t.Fatalf("after the kill: %+v; want running with 2 chunks (6 rows) recorded", mid)
		}

		// The node starts again on the same database: it takes back its previous run's leases.
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st2 := reopen(t)
		if n, err := st2.ImportReleaseLeases(t.Context(), store.ImportReleaseParams{OwnerPrefix: "n1/", Now: s.clock.Now()}); err != nil || n != 1 {
			t.Fatalf("ImportReleaseLeases = %d, %v", n, err)
		}
		im2 := s.importer(t, st2, "n1", "n1/2/b", 3)
		runOnce(t, im2)
		got := getImport(t, st2, imp.ID)
		if got.Status != store.ImportDone || got.Counts.Rows != 10 || got.Counts.Failed != 0 ||
			got.Counts.Created+got.Counts.Skipped != 10 || got.Counts.Created < 7 {
			t.Fatalf("after resuming: %+v", got)
		}
		contacts, _, err := st2.ContactList(t.Context(), store.ContactListParams{ListID: "lst_news", Limit: 100})
		if err != nil || len(contacts) != 10 {
			t.Fatalf("contacts on the list: %d, %v; want 10", len(contacts), err)
		}
	})
}

// TestImportSpoolGone: a node that dies for good leaves its imports to the others, which, not
// having the file, finish them failed with their counts and the reason.
func TestImportSpoolGone(t *testing.T) {
	t.Parallel()
	forEachDriver(t, func(t *testing.T, st store.Store, _ func(*testing.T) store.Store) {
		s := newSetup(t)
		im := s.importer(t, st, "n1", "n1/1/a", 2)
		imp := start(t, im, "email\na@example.com\nb@example.com\nc@example.com\n", imports.Options{})

		// Another node, with its own disk: nothing to claim while n1's lease runs.
		other := &setup{clock: s.clock, dir: filepath.Join(t.TempDir(), "other")}
		im2 := other.importer(t, st, "n2", "n2/1/c", 2)
		if ran, err := im2.RunOnce(t.Context()); ran || err != nil {
			t.Fatalf("RunOnce on n2 under n1's lease = %v, %v", ran, err)
		}
		s.clock.add(imports.DefaultLease)
		runOnce(t, im2)
		got := getImport(t, st, imp.ID)
		if got.Status != store.ImportFailed || !strings.Contains(got.Reason, "node n1") || got.FinishedAt.IsZero() {
			t.Fatalf("import = %+v; want failed naming node n1", got)
		}
	})
}

// usersCSV is a CSV of n contacts user0@example.com, user1@…
func usersCSV(n int) string {
	var b strings.Builder
	b.WriteString("email,name\n")
	for i := range n {
		fmt.Fprintf(&b, "user%d@example.com,User %d\n", i, i)
	}
	return b.String()
}

// batchSizes is the real store, recording the size of every ContactsUpsert.
type batchSizes struct {
	imports.Store
	mu    sync.Mutex
	sizes []int
}

func (b *batchSizes) ContactsUpsert(ctx context.Context, p store.ContactsUpsertParams) ([]store.ContactUpsertResult, error) {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(p.Items))
	b.mu.Unlock()
	return b.Store.ContactsUpsert(ctx, p)
}

// TestImportBatches: a chunk is written in batches of at most 500 rows, so that other writes
// wait for one batch at most; a worker killed between two batches of a chunk leaves the chunk
// unrecorded, and the next run applies it again whole without changing what is stored.
func TestImportBatches(t *testing.T) {
	t.Parallel()
	forEachDriver(t, func(t *testing.T, st store.Store, _ func(*testing.T) store.Store) {
		s := newSetup(t)
		newList(t, st, "lst_news")
		csv := usersCSV(1050)
		ctx, cancel := context.WithCancel(t.Context())
		dying := &killAfter{Store: st, n: 2, cancel: cancel}
		first := &batchSizes{Store: dying}
		im := s.importer(t, first, "n1", "n1/1/a", 2000)
		imp := start(t, im, csv, imports.Options{Lists: []string{"lst_news"}})
		if ran, err := im.RunOnce(ctx); !ran || !errors.Is(err, context.Canceled) {
			t.Fatalf("RunOnce = %v, %v; want the worker killed", ran, err)
		}
		if diff := cmp.Diff([]int{500, 500}, first.sizes); diff != "" {
			t.Errorf("batches before the kill (-want +got):\n%s", diff)
		}
		if mid := getImport(t, st, imp.ID); mid.Counts.Rows != 0 || mid.Offset != 0 {
			t.Fatalf("after the kill: %+v; want the chunk unrecorded", mid)
		}

		again := &batchSizes{Store: st}
		im2 := s.importer(t, again, "n1", "n1/1/a", 2000)
		runOnce(t, im2)
		if diff := cmp.Diff([]int{500, 500, 50}, again.sizes); diff != "" {
			t.Errorf("batches of the run again (-want +got):\n%s", diff)
		}
		got := getImport(t, st, imp.ID)
		if want := (store.ImportCounts{Rows: 1050, Created: 50, Skipped: 1000}); got.Status != store.ImportDone || got.Counts != want {
			t.Fatalf("import = %+v, want done with counts %+v", got, want)
		}
		contacts, _, err := st.ContactList(t.Context(), store.ContactListParams{ListID: "lst_news", Limit: 1000})
		if err != nil || len(contacts) != 1000 {
			t.Fatalf("contacts on the list (first page): %d, %v; want 1000", len(contacts), err)
		}
	})
}
