package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

// testSuppressionScopes: an address has one suppression per scope; Get and Delete name one
// scope, Match looks in the scopes given (global alone when none), and a finish's suppression
// without a scope is global.
func testSuppressionScopes(t *testing.T, s store.Store) {
	ctx := t.Context()
	upsert(t, s,
		store.Suppression{Email: "ann@example.com", Reason: store.ReasonHardBounce, CreatedAt: t0},
		store.Suppression{Email: "Ann@example.com", Scope: store.ScopeBroadcast, Reason: store.ReasonComplaint, CreatedAt: t0},
		store.Suppression{Email: "ann@example.com", Scope: "lst_news", Reason: store.ReasonUnsubscribe, CreatedAt: t0},
		store.Suppression{Email: "bob@example.com", Scope: "lst_news", Reason: store.ReasonUnsubscribe, CreatedAt: t0},
		store.Suppression{Email: "cy@example.com", Scope: store.ScopeBroadcast, Reason: store.ReasonUnsubscribe, CreatedAt: t0},
		store.Suppression{Email: "erased:00ff", Reason: store.ReasonManual, CreatedAt: t0},
	)
	for _, tc := range []struct{ email, scope, reason string }{
		{"ann@example.com", "", store.ReasonHardBounce},
		{"ann@example.com", store.ScopeGlobal, store.ReasonHardBounce},
		{"ann@example.com", store.ScopeBroadcast, store.ReasonComplaint},
		{"ANN@example.com", "lst_news", store.ReasonUnsubscribe},
	} {
		got, err := s.SuppressionGet(ctx, tc.email, tc.scope, t0)
		if err != nil || got.Reason != tc.reason || got.Scope != storedScope(tc.scope) {
			t.Errorf("SuppressionGet(%s, %q) = %+v, %v; want %s", tc.email, tc.scope, got, err, tc.reason)
		}
	}
	_, err := s.SuppressionGet(ctx, "bob@example.com", store.ScopeGlobal, t0)
	wantErr(t, "SuppressionGet of a scope bob is not suppressed in", err, store.ErrNotFound)

	match := func(scopes ...string) map[string][]string {
		t.Helper()
		m, err := s.SuppressionMatch(ctx, []string{"ann@example.com", "BOB@example.com", "cy@example.com", "dee@example.com", "erased:00ff"}, scopes, t0)
		if err != nil {
			t.Fatalf("SuppressionMatch(%v): %v", scopes, err)
		}
		out := map[string][]string{}
		for email, sups := range m {
			for _, sup := range sups {
				if sup.Email != email {
					t.Errorf("SuppressionMatch key %s holds %s", email, sup.Email)
				}
				out[email] = append(out[email], sup.Scope)
			}
			slices.Sort(out[email])
		}
		return out
	}
	for _, tc := range []struct {
		scopes []string
		want   map[string][]string
	}{
		{nil, map[string][]string{"ann@example.com": {"global"}, "erased:00ff": {"global"}}},
		{[]string{store.ScopeGlobal}, map[string][]string{"ann@example.com": {"global"}, "erased:00ff": {"global"}}},
		{[]string{store.ScopeGlobal, store.ScopeBroadcast, "lst_news"}, map[string][]string{
			"ann@example.com": {"broadcast", "global", "lst_news"}, "bob@example.com": {"lst_news"},
			"cy@example.com": {"broadcast"}, "erased:00ff": {"global"}}},
		{[]string{"lst_other"}, map[string][]string{}},
	} {
		if got := match(tc.scopes...); !mapsEqual(got, tc.want) {
			t.Errorf("SuppressionMatch(scopes %v) = %v, want %v", tc.scopes, got, tc.want)
		}
	}

	// Deleting one scope leaves the others.
	if err := s.SuppressionDelete(ctx, "ann@example.com", "lst_news"); err != nil {
		t.Fatalf("SuppressionDelete(lst_news): %v", err)
	}
	wantErr(t, "second delete", s.SuppressionDelete(ctx, "ann@example.com", "lst_news"), store.ErrNotFound)
	if _, err := s.SuppressionGet(ctx, "ann@example.com", store.ScopeBroadcast, t0); err != nil {
		t.Errorf("broadcast suppression after deleting the list one: %v", err)
	}
	if err := s.SuppressionDelete(ctx, "ann@example.com", ""); err != nil {
		t.Fatalf("SuppressionDelete(global): %v", err)
	}
	if got := match(store.ScopeGlobal, store.ScopeBroadcast)["ann@example.com"]; !slices.Equal(got, []string{"broadcast"}) {
		t.Errorf("ann after deleting global and lst_news: %v, want broadcast", got)
	}
}

// testMessageListID: a message's list is stored, read back and claimed with it.
func testMessageListID(t *testing.T, s store.Store) {
	withList := Message(t0, func(m *store.Message) { m.Stream, m.ListID = store.StreamBroadcast, "lst_news" })
	without := Message(t0, func(m *store.Message) { m.Stream = store.StreamBroadcast })
	accept(t, s, t0, withList, without)
	if got := get(t, s, withList.Message.ID).ListID; got != "lst_news" {
		t.Errorf("ListID = %q, want lst_news", got)
	}
	if got := get(t, s, without.Message.ID).ListID; got != "" {
		t.Errorf("ListID of a message without a list = %q", got)
	}
	got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 5, Now: t0,
		LeaseUntil: t0.Add(time.Minute)})
	lists := map[string]string{}
	for _, c := range got {
		lists[c.ID] = c.ListID
	}
	if lists[withList.Message.ID] != "lst_news" || lists[without.Message.ID] != "" || len(lists) != 2 {
		t.Errorf("claimed lists = %v", lists)
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
