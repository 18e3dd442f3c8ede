package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// importCases are the imports area's cases, run by Run.
var importCases = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"ImportCreateGetList", testImportCreateGetList},
	{"ImportLease", testImportLease},
	{"ImportReleaseLeases", testImportReleaseLeases},
	{"ImportClaimConcurrent", testImportClaimConcurrent},
}

// newImport is an import created at now, leased to owner for a minute.
func newImport(t *testing.T, s store.Store, owner string, now time.Time) store.Import {
	t.Helper()
	imp, err := s.ImportCreate(t.Context(), store.Import{ID: id.New(id.Import), Mode: store.ImportUpsert,
		Lists: []string{"lst_a"}, Mapping: map[string]string{"E-mail": "email", "Plan": "attributes.plan"},
		Filename: "people.csv", Node: "n1", TotalRows: 3, LeaseOwner: owner, LeaseUntil: now.Add(time.Minute),
		CreatedAt: now})
	if err != nil {
		t.Fatalf("ImportCreate: %v", err)
	}
	return imp
}

func testImportCreateGetList(t *testing.T, s store.Store) {
	ctx := t.Context()
	imp := newImport(t, s, "n1/1/a", t0)
	want := store.Import{ID: imp.ID, Status: store.ImportQueued, Mode: store.ImportUpsert, Lists: []string{"lst_a"},
		Mapping: map[string]string{"E-mail": "email", "Plan": "attributes.plan"}, Filename: "people.csv",
		Node: "n1", TotalRows: 3, LeaseOwner: "n1/1/a", LeaseUntil: t0.Add(time.Minute), CreatedAt: t0, UpdatedAt: t0}
	if diff := cmp.Diff(want, imp, cmpOpts); diff != "" {
		t.Errorf("ImportCreate (-want +got):\n%s", diff)
	}
	got, err := s.ImportGet(ctx, imp.ID)
	if err != nil {
		t.Fatalf("ImportGet: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("ImportGet (-want +got):\n%s", diff)
	}
	_, err = s.ImportGet(ctx, id.New(id.Import))
	wantErr(t, "ImportGet(unknown)", err, store.ErrNotFound)
	_, err = s.ImportCreate(ctx, store.Import{ID: id.New(id.Import), Mode: "merge", CreatedAt: t0})
	if err == nil {
		t.Error("ImportCreate with mode merge: no error")
	}

	// Newest first, a page at a time; by status.
	ids := []string{imp.ID}
	for i := range 4 {
		ids = append(ids, newImport(t, s, "", t0.Add(time.Duration(i+1)*time.Second)).ID)
	}
	var listed []string
	for cursor := ""; ; {
		page, next, err := s.ImportList(ctx, store.ImportListParams{Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatalf("ImportList: %v", err)
		}
		for _, p := range page {
			listed = append(listed, p.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	wantIDs := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if diff := cmp.Diff(wantIDs, listed); diff != "" {
		t.Errorf("ImportList pages (-want +got):\n%s", diff)
	}
	if _, ok, err := s.ImportClaim(ctx, store.ImportClaimParams{Owner: "n1/1/a", Now: t0, LeaseUntil: t0.Add(time.Minute)}); !ok || err != nil {
		t.Fatalf("ImportClaim: %v, %v", ok, err)
	}
	running, _, err := s.ImportList(ctx, store.ImportListParams{Status: store.ImportRunning})
	if err != nil || len(running) != 1 || running[0].ID != imp.ID {
		t.Errorf("ImportList(running) = %v, %v; want %s alone", running, err, imp.ID)
	}
	_, _, err = s.ImportList(ctx, store.ImportListParams{Cursor: "msg_nope"})
	wantErr(t, "ImportList(bad cursor)", err, store.ErrBadCursor)
}

func testImportLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	imp := newImport(t, s, "a", t0)
	claim := func(owner string, now time.Time) (store.Import, bool) {
		t.Helper()
		got, ok, err := s.ImportClaim(ctx, store.ImportClaimParams{Owner: owner, Now: now, LeaseUntil: now.Add(time.Minute)})
		if err != nil {
			t.Fatalf("ImportClaim(%s): %v", owner, err)
		}
		return got, ok
	}
	// Leased to its creator: another worker cannot take it before the lease ends.
	if got, ok := claim("b", t0.Add(time.Second)); ok {
		t.Fatalf("ImportClaim by b under a's lease = %s", got.ID)
	}
	got, ok := claim("a", t0.Add(time.Second))
	if !ok || got.ID != imp.ID || got.Status != store.ImportRunning || !got.StartedAt.Equal(t0.Add(time.Second)) ||
		got.LeaseOwner != "a" || !got.LeaseUntil.Equal(t0.Add(time.Second+time.Minute)) {
		t.Fatalf("ImportClaim by a = %+v, %v; want it running, started and leased at t0+1s", got, ok)
	}

	// Progress replaces the totals while the lease is held; errors keep the first ones.
	var errs []store.ImportRowError
	for i := range store.ImportMaxErrors + 5 {
		errs = append(errs, store.ImportRowError{Row: i + 2, Field: "email", Reason: fmt.Sprintf("bad %d", i)})
	}
	counts := store.ImportCounts{Rows: 200, Created: 50, Updated: 20, Merged: 3, Skipped: 22, Failed: 105, Kept: 1}
	prog := store.ImportProgressParams{ID: imp.ID, Owner: "a", Offset: 4096, Row: 201, Counts: counts, Errors: errs,
		Now: t0.Add(2 * time.Second), LeaseUntil: t0.Add(2 * time.Minute)}
	if err := s.ImportProgress(ctx, prog); err != nil {
		t.Fatalf("ImportProgress: %v", err)
	}
	got, err := s.ImportGet(ctx, imp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Offset != 4096 || got.Row != 201 || got.Counts != counts || !got.LeaseUntil.Equal(prog.LeaseUntil) ||
		!got.UpdatedAt.Equal(prog.Now) || len(got.Errors) != store.ImportMaxErrors {
		t.Errorf("after ImportProgress: %+v", got)
	}
	if diff := cmp.Diff(errs[:store.ImportMaxErrors], got.Errors); diff != "" {
		t.Errorf("errors kept (-want +got):\n%s", diff)
	}

	// Another worker's progress is refused; an unknown import is not found.
	other := prog
	other.Owner = "b"
	wantErr(t, "ImportProgress by b", s.ImportProgress(ctx, other), store.ErrConflict)
	other.ID = id.New(id.Import)
	wantErr(t, "ImportProgress(unknown)", s.ImportProgress(ctx, other), store.ErrNotFound)

	// a's worker dies: after the lease ends b takes it over, with the progress saved.
	if _, ok := claim("b", t0.Add(2*time.Minute-time.Microsecond)); ok {
		t.Fatal("ImportClaim by b before the lease ended succeeded")
	}
	got, ok = claim("b", t0.Add(2*time.Minute))
	if !ok || got.LeaseOwner != "b" || got.Offset != 4096 || got.Row != 201 || !got.StartedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("ImportClaim by b after the lease = %+v, %v", got, ok)
	}
	wantErr(t, "ImportProgress by a after b took over", s.ImportProgress(ctx, prog), store.ErrConflict)

	fin := store.ImportProgressParams{ID: imp.ID, Owner: "b", Offset: 5000, Row: 4, Counts: counts,
		Status: store.ImportFailed, Reason: "spool gone", Now: t0.Add(3 * time.Minute)}
	bad := fin
	bad.Status = store.ImportRunning
	if err := s.ImportFinish(ctx, bad); err == nil {
		t.Error("ImportFinish with status running: no error")
	}
	if err := s.ImportFinish(ctx, fin); err != nil {
		t.Fatalf("ImportFinish: %v", err)
	}
	got, err = s.ImportGet(ctx, imp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.ImportFailed || got.Reason != "spool gone" || got.LeaseOwner != "" || !got.LeaseUntil.IsZero() ||
		!got.FinishedAt.Equal(fin.Now) || got.Offset != 5000 || got.Errors != nil {
		t.Errorf("after ImportFinish: %+v", got)
	}
	wantErr(t, "ImportFinish twice", s.ImportFinish(ctx, fin), store.ErrConflict)
	if got, ok := claim("b", t0.Add(time.Hour)); ok {
		t.Errorf("ImportClaim took the finished import %s", got.ID)
	}
}

func testImportReleaseLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newImport(t, s, "n1/1/x", t0)
	b := newImport(t, s, "n2/1/y", t0.Add(time.Millisecond))
	now := t0.Add(time.Second)
	n, err := s.ImportReleaseLeases(ctx, store.ImportReleaseParams{OwnerPrefix: "n1/", Now: now})
	if err != nil || n != 1 {
		t.Fatalf("ImportReleaseLeases(n1/) = %d, %v; want 1", n, err)
	}
	p := store.ImportClaimParams{Owner: "n1/2/z", Now: now, LeaseUntil: now.Add(time.Minute)}
	got, ok, err := s.ImportClaim(ctx, p)
	if err != nil || !ok || got.ID != a.ID {
		t.Fatalf("ImportClaim after release = %s, %v, %v; want %s", got.ID, ok, err, a.ID)
	}
	// Another owner finds none: a is leased again, b still under n2's lease.
	if got, ok, _ := s.ImportClaim(ctx, store.ImportClaimParams{Owner: "n1/3/v", Now: now, LeaseUntil: now.Add(time.Minute)}); ok {
		t.Fatalf("ImportClaim took %s (b is %s)", got.ID, b.ID)
	}
	// Renewing keeps a lease past its end: only the owner's unfinished imports.
	if n, err := s.ImportRenewLeases(ctx, store.ImportRenewParams{Owner: "n2/1/y", Now: now, Until: t0.Add(time.Hour)}); err != nil || n != 1 {
		t.Fatalf("ImportRenewLeases(n2/1/y) = %d, %v; want 1", n, err)
	}
	if got, err := s.ImportGet(ctx, b.ID); err != nil || !got.LeaseUntil.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after ImportRenewLeases: %+v, %v", got, err)
	}
	later := t0.Add(30 * time.Minute)
	for range 2 { // a, whose lease ended, then nothing: b's lease was renewed
		got, ok, err := s.ImportClaim(ctx, store.ImportClaimParams{Owner: "n9", Now: later, LeaseUntil: later.Add(time.Minute)})
		if err != nil || ok && got.ID != a.ID {
			t.Fatalf("ImportClaim at t0+30m = %s, %v, %v; want only %s", got.ID, ok, err, a.ID)
		}
		p.Owner = "n9"
	}
	// Both empty: every lease (a SQLite node at start).
	if n, err := s.ImportReleaseLeases(ctx, store.ImportReleaseParams{Now: now}); err != nil || n != 2 {
		t.Fatalf("ImportReleaseLeases(all) = %d, %v; want 2", n, err)
	}
	p.Owner = "n3/1/w"
	if got, ok, err := s.ImportClaim(ctx, p); err != nil || !ok || got.ID != a.ID {
		t.Fatalf("ImportClaim after releasing all = %s, %v, %v; want the oldest, %s", got.ID, ok, err, a.ID)
	}
}

func testImportClaimConcurrent(t *testing.T, s store.Store) {
	const imports, workers = 4, 8
	for i := range imports {
		newImport(t, s, "", t0.Add(time.Duration(i)*time.Millisecond))
	}
	var (
		mu    sync.Mutex
		taken = map[string]string{}
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("w%d", w)
			for {
				got, ok, err := s.ImportClaim(t.Context(), store.ImportClaimParams{Owner: owner, Now: t0.Add(time.Hour),
					LeaseUntil: t0.Add(2 * time.Hour)})
				if err != nil {
					t.Errorf("ImportClaim: %v", err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				if prev, dup := taken[got.ID]; dup {
					t.Errorf("%s claimed by %s and %s", got.ID, prev, owner)
				}
				taken[got.ID] = owner
				mu.Unlock()
				// Finished at once, so the owner's own claim does not find it again.
				if err := s.ImportFinish(t.Context(), store.ImportProgressParams{ID: got.ID, Owner: owner,
					Status: store.ImportDone, Now: t0.Add(time.Hour)}); err != nil {
					t.Errorf("ImportFinish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(taken) != imports {
		t.Errorf("claimed %d imports, want %d", len(taken), imports)
	}
}
