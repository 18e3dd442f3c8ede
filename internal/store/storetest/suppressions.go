package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

func upsert(t *testing.T, s store.Store, sups ...store.Suppression) {
	t.Helper()
	if err := s.SuppressionUpsert(t.Context(), sups); err != nil {
		t.Fatalf("SuppressionUpsert: %v", err)
	}
}

func testSuppressions(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann := store.Suppression{Email: "Ann@Example.com", Reason: store.ReasonHardBounce,
		Detail: "550 5.1.1 user unknown", MessageID: id.New(id.Message), CreatedAt: t0}
	bob := store.Suppression{Email: "bob@example.com", Reason: store.ReasonManual, Detail: "asked by phone",
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	upsert(t, s, ann, bob)

	// Stored lowercased, found whatever the case.
	wantAnn := ann
	wantAnn.Email, wantAnn.Scope = "ann@example.com", store.ScopeGlobal
	for _, email := range []string{"ann@example.com", "ANN@example.COM", "Ann@Example.com"} {
		got, err := s.SuppressionGet(ctx, email, "", t0)
		if err != nil {
			t.Fatalf("SuppressionGet(%s): %v", email, err)
		}
		if diff := cmp.Diff(wantAnn, got, cmpOpts); diff != "" {
			t.Errorf("SuppressionGet(%s) (-want +got):\n%s", email, diff)
		}
	}
	_, err := s.SuppressionGet(ctx, "nobody@example.com", "", t0)
	wantErr(t, "SuppressionGet(unknown)", err, store.ErrNotFound)

	// An expired suppression is absent at now, and present when now is zero.
	if _, err := s.SuppressionGet(ctx, "bob@example.com", "", t0.Add(59*time.Minute)); err != nil {
		t.Errorf("SuppressionGet before expiry: %v", err)
	}
	_, err = s.SuppressionGet(ctx, "bob@example.com", "", t0.Add(time.Hour))
	wantErr(t, "SuppressionGet at expiry", err, store.ErrNotFound)
	if got, err := s.SuppressionGet(ctx, "bob@example.com", "", time.Time{}); err != nil || !got.ExpiresAt.Equal(bob.ExpiresAt) {
		t.Errorf("SuppressionGet(zero now) = %+v, %v; want the expired suppression", got, err)
	}

	// Match: keyed by lowercased address, only the suppressed and unexpired ones.
	match := func(now time.Time, emails ...string) []string {
		t.Helper()
		m, err := s.SuppressionMatch(ctx, emails, nil, now)
		if err != nil {
			t.Fatalf("SuppressionMatch: %v", err)
		}
		var keys []string
		for k, vs := range m {
			if len(vs) != 1 || k != vs[0].Email {
				t.Errorf("SuppressionMatch key %q holds %v", k, vs)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	if got := match(t0, "ANN@example.com", "nobody@example.com", "Bob@Example.com", "ann@example.com"); !slices.Equal(got, []string{"ann@example.com", "bob@example.com"}) {
		t.Errorf("SuppressionMatch = %v, want ann and bob", got)
	}
	if got := match(t0.Add(2*time.Hour), "ann@example.com", "bob@example.com"); !slices.Equal(got, []string{"ann@example.com"}) {
		t.Errorf("SuppressionMatch after bob's expiry = %v, want ann only", got)
	}
	if got := match(t0); len(got) != 0 {
		t.Errorf("SuppressionMatch of no address = %v", got)
	}
	if got, err := s.SuppressionGet(ctx, "ann@example.com", "", t0); err != nil || got.Detail != ann.Detail {
		t.Fatalf("SuppressionGet = %+v, %v", got, err)
	}

	// Upsert replaces: the latest cause is the one shown.
	again := store.Suppression{Email: "ANN@EXAMPLE.COM", Reason: store.ReasonComplaint, Detail: "abuse report",
		CreatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(48 * time.Hour)}
	upsert(t, s, again)
	wantAgain := again
	wantAgain.Email, wantAgain.Scope = "ann@example.com", store.ScopeGlobal
	if got, err := s.SuppressionGet(ctx, "ann@example.com", "", t0); err != nil {
		t.Fatalf("SuppressionGet after upsert: %v", err)
	} else if diff := cmp.Diff(wantAgain, got, cmpOpts); diff != "" {
		t.Errorf("after a second upsert (-want +got):\n%s", diff)
	}
	if page, _, err := s.SuppressionList(ctx, store.SuppressionListParams{}); err != nil || len(page) != 2 {
		t.Errorf("SuppressionList after re-upsert = %+v, %v; want 2 rows (one per address)", page, err)
	}

	// Delete, whatever the case; a second delete finds nothing.
	if err := s.SuppressionDelete(ctx, "Ann@example.COM", ""); err != nil {
		t.Fatalf("SuppressionDelete: %v", err)
	}
	_, err = s.SuppressionGet(ctx, "ann@example.com", "", time.Time{})
	wantErr(t, "SuppressionGet after delete", err, store.ErrNotFound)
	wantErr(t, "second SuppressionDelete", s.SuppressionDelete(ctx, "ann@example.com", ""), store.ErrNotFound)
	if got := match(t0, "ann@example.com"); len(got) != 0 {
		t.Errorf("SuppressionMatch after delete = %v", got)
	}
	// An expired suppression can still be deleted.
	if err := s.SuppressionDelete(ctx, "bob@example.com", ""); err != nil {
		t.Errorf("SuppressionDelete of an expired suppression: %v", err)
	}
}

// storedScope is a suppression's scope as stored: "" is global.
func storedScope(scope string) string {
	if scope == "" {
		return store.ScopeGlobal
	}
	return scope
}

func testSuppressionList(t *testing.T, s store.Store) {
	ctx := t.Context()
	var all []store.Suppression
	for i := range 9 {
		reason := store.ReasonHardBounce
		if i%3 == 0 {
			reason = store.ReasonManual
		}
		all = append(all, store.Suppression{Email: fmt.Sprintf("user%d@example.com", i), Reason: reason,
			CreatedAt: t0.Add(time.Duration(i) * time.Minute)})
	}
	// Two at the same instant: the keyset must not lose or repeat either across a page boundary.
	all = append(all, store.Suppression{Email: "tie-a@example.com", Reason: store.ReasonHardBounce, CreatedAt: t0.Add(4 * time.Minute)},
		store.Suppression{Email: "tie-b@example.com", Reason: store.ReasonHardBounce, CreatedAt: t0.Add(4 * time.Minute)})
	// One expired before t0+1h.
	all = append(all, store.Suppression{Email: "gone@example.com", Scope: store.ScopeGlobal, Reason: store.ReasonUnsubscribe,
		CreatedAt: t0.Add(30 * time.Second), ExpiresAt: t0.Add(time.Hour)})
	// One address in a second scope, at the instant of its global one and of the ties.
	all = append(all, store.Suppression{Email: "user4@example.com", Scope: "lst_news", Reason: store.ReasonUnsubscribe,
		CreatedAt: t0.Add(4 * time.Minute)})
	upsert(t, s, all...)

	// newest is every suppression matching keep, newest first (CreatedAt, then Email, descending).
	newest := func(keep func(store.Suppression) bool) []string {
		var out []store.Suppression
		for _, x := range all {
			if keep(x) {
				out = append(out, x)
			}
		}
		slices.SortFunc(out, func(a, b store.Suppression) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			if c := strings.Compare(b.Email, a.Email); c != 0 {
				return c
			}
			return strings.Compare(storedScope(b.Scope), storedScope(a.Scope))
		})
		emails := make([]string, len(out))
		for i := range out {
			emails[i] = out[i].Email
		}
		return emails
	}
	pages := func(p store.SuppressionListParams) []string {
		t.Helper()
		var got []string
		for n := 0; ; n++ {
			page, next, err := s.SuppressionList(ctx, p)
			if err != nil {
				t.Fatalf("SuppressionList(%+v): %v", p, err)
			}
			if len(page) > p.Limit {
				t.Fatalf("page of %d rows, limit %d", len(page), p.Limit)
			}
			for _, x := range page {
				got = append(got, x.Email)
			}
			if next == "" {
				return got
			}
			if len(page) == 0 || n > len(all) {
				t.Fatalf("SuppressionList returned a cursor with page %v", page)
			}
			p.Cursor = next
		}
	}
	for _, tc := range []struct {
		name string
		p    store.SuppressionListParams
		keep func(store.Suppression) bool
	}{
		{"all", store.SuppressionListParams{Limit: 3}, func(store.Suppression) bool { return true }},
		{"one page", store.SuppressionListParams{Limit: 50}, func(store.Suppression) bool { return true }},
		{"reason", store.SuppressionListParams{Reason: store.ReasonHardBounce, Limit: 2},
			func(x store.Suppression) bool { return x.Reason == store.ReasonHardBounce }},
		{"active", store.SuppressionListParams{Now: t0.Add(time.Hour), Limit: 4},
			func(x store.Suppression) bool { return x.Email != "gone@example.com" }},
		{"email", store.SuppressionListParams{Email: "USER4@example.com", Limit: 1},
			func(x store.Suppression) bool { return x.Email == "user4@example.com" }},
		{"reason none", store.SuppressionListParams{Reason: store.ReasonComplaint, Limit: 5},
			func(store.Suppression) bool { return false }},
		{"scope", store.SuppressionListParams{Scope: store.ScopeGlobal, Limit: 2},
			func(x store.Suppression) bool { return storedScope(x.Scope) == store.ScopeGlobal }},
		{"list scope", store.SuppressionListParams{Scope: "lst_news", Limit: 2},
			func(x store.Suppression) bool { return x.Scope == "lst_news" }},
	} {
		if diff := cmp.Diff(newest(tc.keep), pages(tc.p), cmpOpts); diff != "" {
			t.Errorf("%s: pages together (-want +got):\n%s", tc.name, diff)
		}
	}

	// Listed rows are complete rows.
	page, next, err := s.SuppressionList(ctx, store.SuppressionListParams{Email: "gone@example.com"})
	if err != nil || next != "" || len(page) != 1 {
		t.Fatalf("SuppressionList(gone) = %+v, %q, %v", page, next, err)
	}
	if diff := cmp.Diff(all[len(all)-2], page[0], cmpOpts); diff != "" {
		t.Errorf("listed row (-want +got):\n%s", diff)
	}

	for _, bad := range []string{"%%%", "not a cursor", "bXNnXzAx"} {
		_, _, err = s.SuppressionList(ctx, store.SuppressionListParams{Cursor: bad})
		if !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("SuppressionList(Cursor: %q): error %v, want ErrBadCursor", bad, err)
		}
	}
}

func testFinishSuppress(t *testing.T, s store.Store) {
	ctx := t.Context()
	bounced, lost, unsent := Message(t0), Message(t0), Message(t0, func(m *store.Message) {
		m.Recipients = []string{"blocked@example.com"}
	})
	accept(t, s, t0, bounced, lost, unsent)
	claim(t, s, store.MessageClaimParams{Owner: "w1", Stream: store.StreamTransactional, Limit: 3,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})

	now := t0.Add(time.Second)
	hard := &store.DeliveryError{Code: 550, Enhanced: "5.1.1", Text: "user unknown", Stage: "rcpt", Attempt: 1, At: now}
	n, err := s.MessageFinish(ctx, now, []store.MessageFinishParams{
		{ID: bounced.Message.ID, Owner: "w1", Status: store.StatusFailed, Attempts: 1, LastError: hard,
			Events:   []store.Event{{Type: store.EventFailed}},
			Suppress: []store.Suppression{{Email: "Ann@Example.com", Reason: store.ReasonHardBounce, Detail: "550 5.1.1 user unknown", MessageID: bounced.Message.ID}}},
		// The lease was lost (another worker owns it): neither the outcome nor its suppression.
		{ID: lost.Message.ID, Owner: "w2", Status: store.StatusFailed, Attempts: 1, LastError: hard,
			Suppress: []store.Suppression{{Email: "lost@example.com", Reason: store.ReasonHardBounce, CreatedAt: now}}},
		// Every recipient suppressed: the message ends as suppressed, without an attempt.
		{ID: unsent.Message.ID, Owner: "w1", Status: store.StatusSuppressed,
			Events: []store.Event{{Type: store.EventSuppressed}}},
	})
	if err != nil || n != 2 {
		t.Fatalf("MessageFinish = %d, %v; want 2 applied", n, err)
	}
	got, err := s.SuppressionGet(ctx, "ann@example.com", "", now)
	if err != nil {
		t.Fatalf("suppression added with the outcome: %v", err)
	}
	want := store.Suppression{Email: "ann@example.com", Scope: store.ScopeGlobal, Reason: store.ReasonHardBounce, Detail: "550 5.1.1 user unknown",
		MessageID: bounced.Message.ID, CreatedAt: now}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("suppression from MessageFinish (a zero CreatedAt is now) (-want +got):\n%s", diff)
	}
	_, err = s.SuppressionGet(ctx, "lost@example.com", "", time.Time{})
	wantErr(t, "suppression of a finish whose lease was lost", err, store.ErrNotFound)
	if m := get(t, s, lost.Message.ID); m.Status != store.StatusSending || m.LeaseOwner != "w1" {
		t.Errorf("lost finish applied: %s leased by %q", m.Status, m.LeaseOwner)
	}

	m := get(t, s, unsent.Message.ID)
	if m.Status != store.StatusSuppressed || m.LeaseOwner != "" || !m.LeaseUntil.IsZero() || m.Attempts != 0 {
		t.Errorf("suppressed message: %s leased by %q until %v, %d attempts", m.Status, m.LeaseOwner, m.LeaseUntil, m.Attempts)
	}
	if got := eventTypes(t, s, unsent.Message.ID); !slices.Equal(got, []string{store.EventQueued, store.EventSuppressed}) {
		t.Errorf("events of the suppressed message = %v", got)
	}
	if got := claim(t, s, store.MessageClaimParams{Owner: "w3", Stream: store.StreamTransactional, Limit: 5,
		Now: t0.Add(time.Hour), LeaseUntil: t0.Add(2 * time.Hour)}); len(got) != 0 {
		t.Errorf("claim took finished messages: %v", claimedIDs(got))
	}
}
