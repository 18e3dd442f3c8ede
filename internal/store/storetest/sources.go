package storetest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// testSource is a source as the API would create it at now.
func testSource(now time.Time) store.Source {
	return store.Source{
		ID: id.New(id.Source), Name: "app users", Driver: store.SourceMySQL,
		DSN:   "reader:secret@tcp(db.internal:3306)/app",
		Query: "SELECT id, email, updated_at FROM users",
		Mapping: store.SourceMapping{Email: "email", UpdatedAt: "updated_at", Key: "id", OptOut: "opted_out",
			Attributes: []string{"plan"}},
		Lists:    []string{"lst_news"},
		Interval: time.Minute, Overlap: 5 * time.Minute, ReconcileEvery: 24 * time.Hour,
		NextRunAt: now, CreatedAt: now,
	}
}

func createSource(t *testing.T, s store.Store, src store.Source) store.Source {
	t.Helper()
	got, err := s.SourceCreate(t.Context(), src)
	if err != nil {
		t.Fatalf("SourceCreate: %v", err)
	}
	return got
}

func testSourceCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	src := testSource(t0)
	got := createSource(t, s, src)
	want := src
	want.Status, want.UpdatedAt = store.SourceOK, t0
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("SourceCreate (-want +got):\n%s", diff)
	}
	if g, err := s.SourceGet(ctx, src.ID); err != nil {
		t.Fatalf("SourceGet: %v", err)
	} else if diff := cmp.Diff(want, g, cmpOpts); diff != "" {
		t.Errorf("SourceGet (-want +got):\n%s", diff)
	}
	_, err := s.SourceGet(ctx, "src_none")
	wantErr(t, "SourceGet(unknown)", err, store.ErrNotFound)

	other := createSource(t, s, testSource(t0))
	list, err := s.SourceList(ctx)
	if err != nil || len(list) != 2 || list[0].ID != src.ID || list[1].ID != other.ID {
		t.Fatalf("SourceList = %v, %v; want both by id", list, err)
	}

	// Give it a mark, then update: an empty DSN keeps the stored one; ResetMark forgets the mark.
	claimSources(t, s, store.SourceClaimParams{ID: src.ID, Owner: "n1", Now: t0, Until: t0.Add(time.Minute)}, 1)
	advance(t, s, store.SourceAdvanceParams{ID: src.ID, Owner: "n1", MarkTime: t0.Add(-time.Hour),
		MarkKey: json.RawMessage(`42`), Until: t0.Add(time.Minute), Now: t0})
	if err := s.SourceFinish(ctx, store.SourceFinishParams{ID: src.ID, Owner: "n1", Status: store.SourceOK,
		NextRunAt: t0, SettledAt: t0.Add(-time.Hour), Now: t0}); err != nil {
		t.Fatal(err)
	}
	upd := src
	upd.Name, upd.DSN, upd.Query, upd.Overlap, upd.Lists = "renamed", "", "SELECT 1", 0, nil
	upd.Mapping.OptOut = ""
	t1 := t0.Add(time.Second)
	g, err := s.SourceUpdate(ctx, store.SourceUpdateParams{Source: upd, Now: t1})
	if err != nil {
		t.Fatalf("SourceUpdate: %v", err)
	}
	if g.Name != "renamed" || g.DSN != src.DSN || g.Query != "SELECT 1" || g.Overlap != 0 || g.Lists != nil ||
		g.Mapping.OptOut != "" || !g.UpdatedAt.Equal(t1) || !g.MarkTime.Equal(t0.Add(-time.Hour)) || string(g.MarkKey) != "42" {
		t.Errorf("SourceUpdate = %+v; want the new configuration, the DSN and the mark kept", g)
	}
	upd.DSN = "postgres://reader@db/app"
	g, err = s.SourceUpdate(ctx, store.SourceUpdateParams{Source: upd, ResetMark: true, NextRunAt: t1, Now: t1})
	if err != nil || g.DSN != upd.DSN || !g.MarkTime.IsZero() || g.MarkKey != nil || !g.SettledAt.IsZero() || !g.NextRunAt.Equal(t1) {
		t.Errorf("SourceUpdate(ResetMark) = %+v, %v; want the new DSN, no mark, rescheduled", g, err)
	}
	upd.ID = "src_none"
	_, err = s.SourceUpdate(ctx, store.SourceUpdateParams{Source: upd, Now: t1})
	wantErr(t, "SourceUpdate(unknown)", err, store.ErrNotFound)

	if err := s.SourceDelete(ctx, src.ID); err != nil {
		t.Fatalf("SourceDelete: %v", err)
	}
	_, err = s.SourceGet(ctx, src.ID)
	wantErr(t, "SourceGet after delete", err, store.ErrNotFound)
	wantErr(t, "SourceDelete again", s.SourceDelete(ctx, src.ID), store.ErrNotFound)
}

func claimSources(t *testing.T, s store.Store, p store.SourceClaimParams, want int) []store.Source {
	t.Helper()
	got, err := s.SourceClaim(t.Context(), p)
	if err != nil {
		t.Fatalf("SourceClaim: %v", err)
	}
	if len(got) != want {
		t.Fatalf("SourceClaim(%+v) claimed %d, want %d", p, len(got), want)
	}
	return got
}

func advance(t *testing.T, s store.Store, p store.SourceAdvanceParams) {
	t.Helper()
	if err := s.SourceAdvance(t.Context(), p); err != nil {
		t.Fatalf("SourceAdvance: %v", err)
	}
}

func testSourceClaim(t *testing.T, s store.Store) {
	ctx := t.Context()
	due := createSource(t, s, testSource(t0))
	later := testSource(t0)
	later.NextRunAt = t0.Add(time.Hour)
	later = createSource(t, s, later)

	// Only the due source; it is running and leased.
	got := claimSources(t, s, store.SourceClaimParams{Owner: "n1", Now: t0, Until: t0.Add(time.Minute)}, 1)
	if got[0].ID != due.ID || got[0].Status != store.SourceRunning || got[0].LeaseOwner != "n1" ||
		!got[0].LeaseUntil.Equal(t0.Add(time.Minute)) {
		t.Errorf("claimed %+v; want %s running, leased by n1", got[0], due.ID)
	}
	// Leased: nobody else claims it, by schedule or by id, until the lease ends.
	claimSources(t, s, store.SourceClaimParams{Owner: "n2", Now: t0.Add(30 * time.Second), Until: t0.Add(time.Hour)}, 0)
	claimSources(t, s, store.SourceClaimParams{ID: due.ID, Owner: "n2", Now: t0.Add(30 * time.Second), Until: t0.Add(time.Hour)}, 0)
	// A named source is claimed whatever its schedule.
	claimSources(t, s, store.SourceClaimParams{ID: later.ID, Owner: "n2", Now: t0, Until: t0.Add(time.Minute)}, 1)

	// n1's lease ended (its node died): n2 takes the source over; n1 can no longer advance or finish it.
	t1 := t0.Add(time.Minute)
	claimSources(t, s, store.SourceClaimParams{Owner: "n2", Now: t1, Until: t1.Add(time.Minute)}, 1)
	err := s.SourceAdvance(ctx, store.SourceAdvanceParams{ID: due.ID, Owner: "n1", MarkTime: t0, MarkKey: json.RawMessage(`1`),
		Until: t1.Add(time.Minute), Now: t1})
	wantErr(t, "SourceAdvance by the old owner", err, store.ErrConflict)
	err = s.SourceFinish(ctx, store.SourceFinishParams{ID: due.ID, Owner: "n1", Status: store.SourceOK, NextRunAt: t1, Now: t1})
	wantErr(t, "SourceFinish by the old owner", err, store.ErrConflict)

	// n2 advances (the mark is kept, in UTC) and finishes: the lease is released, the schedule set.
	mark := time.Date(2026, 2, 28, 23, 59, 59, 123456000, time.FixedZone("+03", 3*3600))
	advance(t, s, store.SourceAdvanceParams{ID: due.ID, Owner: "n2", MarkTime: mark, MarkKey: json.RawMessage(`"k-9"`),
		Until: t1.Add(2 * time.Minute), Now: t1})
	stats := store.SourceStats{Rows: 3, Upserted: 2, Skipped: 1, SkipErrors: []string{"row 7: invalid email"}, Reconciled: true}
	t2 := t1.Add(time.Second)
	err = s.SourceFinish(ctx, store.SourceFinishParams{ID: due.ID, Owner: "n2", Status: store.SourceError, LastError: "boom",
		Failures: 2, Stats: stats, NextRunAt: t2.Add(time.Minute), ReconciledAt: t2, SettledAt: t0.Add(-5 * time.Minute), Now: t2})
	if err != nil {
		t.Fatalf("SourceFinish: %v", err)
	}
	g, err := s.SourceGet(ctx, due.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.Status != store.SourceError || g.LastError != "boom" || g.Failures != 2 || g.LeaseOwner != "" ||
		!g.LeaseUntil.IsZero() || !g.NextRunAt.Equal(t2.Add(time.Minute)) || !g.LastRunAt.Equal(t2) ||
		!g.ReconciledAt.Equal(t2) || !g.MarkTime.Equal(mark) || g.MarkTime.Location() != time.UTC ||
		string(g.MarkKey) != `"k-9"` || !g.SettledAt.Equal(t0.Add(-5*time.Minute)) {
		t.Errorf("after finish: %+v", g)
	}
	if diff := cmp.Diff(stats, g.LastStats); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	// Finished: not due until NextRunAt, then claimable again; a finish without a reconciliation
	// (or a settled time) keeps the last one's time.
	claimSources(t, s, store.SourceClaimParams{Owner: "n3", Now: t2, Until: t2.Add(time.Minute)}, 0)
	t3 := t2.Add(time.Minute)
	claimSources(t, s, store.SourceClaimParams{Owner: "n3", Now: t3, Until: t3.Add(time.Minute)}, 1)
	if err := s.SourceFinish(ctx, store.SourceFinishParams{ID: due.ID, Owner: "n3", Status: store.SourceOK,
		NextRunAt: t3.Add(time.Minute), Now: t3}); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.SourceGet(ctx, due.ID); g.Status != store.SourceOK || g.LastError != "" || !g.ReconciledAt.Equal(t2) ||
		!g.SettledAt.Equal(t0.Add(-5*time.Minute)) {
		t.Errorf("after an ok finish: %+v", g)
	}
}

// testSourceClaimConcurrent: nodes claiming at once never share a source.
func testSourceClaimConcurrent(t *testing.T, s store.Store) {
	const sources, nodes = 6, 4
	for range sources {
		createSource(t, s, testSource(t0))
	}
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		wg      sync.WaitGroup
	)
	for n := range nodes {
		owner := "n" + string(rune('a'+n))
		wg.Go(func() {
			got, err := s.SourceClaim(t.Context(), store.SourceClaimParams{Owner: owner, Now: t0, Until: t0.Add(time.Minute), Limit: 2})
			if err != nil {
				t.Errorf("SourceClaim: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, src := range got {
				if prev, ok := claimed[src.ID]; ok {
					t.Errorf("source %s claimed by %s and %s", src.ID, prev, owner)
				}
				claimed[src.ID] = owner
			}
		})
	}
	wg.Wait()
	if len(claimed) != sources {
		t.Errorf("%d sources claimed, want %d", len(claimed), sources)
	}
}
