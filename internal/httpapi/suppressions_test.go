package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

func TestSuppressionCreateGetDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expires := testNow.Add(48 * time.Hour)
	r := b.do("POST", "/v1/suppressions", map[string]any{"email": "Ann+News@Example.COM", "reason": "hard_bounce",
		"detail": "550 5.1.1 user unknown", "expires_at": expires})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	want := map[string]any{"email": "ann+news@example.com", "scope": "global", "reason": "hard_bounce", "detail": "550 5.1.1 user unknown",
		"message_id": nil, "created_at": testNow.Format(time.RFC3339), "expires_at": expires.Format(time.RFC3339)}
	if diff := cmp.Diff(want, r.json(t)); diff != "" {
		t.Errorf("created suppression (-want +got):\n%s", diff)
	}

	// The default reason is manual; a display name is ignored; no expiry is null.
	r = b.do("POST", "/v1/suppressions", map[string]any{"email": "Bob <Bob@Bücher.de>"})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if got := r.json(t); got["email"] != "bob@xn--bcher-kva.de" || got["reason"] != "manual" || got["expires_at"] != nil {
		t.Errorf("created %v, want bob@xn--bcher-kva.de, manual, no expiry", got)
	}

	// Path-escaped, any case, raw or IDN: the same suppression.
	for _, path := range []string{"ann%2Bnews%40example.com", "ANN+news@example.com", url.PathEscape("Ann+News@Example.COM")} {
		g := b.do("GET", "/v1/suppressions/"+path, nil)
		if g.status != 200 {
			t.Errorf("GET %s: %d %s", path, g.status, g.body)
			continue
		}
		if diff := cmp.Diff(want, g.json(t)); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", path, diff)
		}
	}
	if g := b.do("GET", "/v1/suppressions/"+url.PathEscape("bob@bücher.de"), nil); g.status != 200 {
		t.Errorf("GET by the U-label domain: %d %s", g.status, g.body)
	}

	// POST again replaces: the latest cause is kept.
	r = b.do("POST", "/v1/suppressions", map[string]any{"email": "ann+news@example.com", "reason": "complaint"})
	if got := r.json(t); r.status != http.StatusCreated || got["reason"] != "complaint" || got["expires_at"] != nil {
		t.Errorf("re-create: %d %v", r.status, got)
	}

	d := b.do("DELETE", "/v1/suppressions/ann%2Bnews%40example.com", nil)
	if d.status != http.StatusNoContent || len(d.body) != 0 {
		t.Fatalf("delete: %d %s", d.status, d.body)
	}
	for _, method := range []string{"GET", "DELETE"} {
		r := b.do(method, "/v1/suppressions/ann%2Bnews%40example.com", nil)
		if r.status != 404 || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s after delete: %d %s %s", method, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
	if m, err := b.store.SuppressionMatch(context.Background(), []string{"ann+news@example.com", "bob@xn--bcher-kva.de"}, nil, testNow); err != nil || len(m) != 1 {
		t.Errorf("stored suppressions = %v, %v; want bob only", m, err)
	}
}

func TestSuppressionList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var sups []store.Suppression
	for i := range 7 {
		reason := store.ReasonHardBounce
		if i%2 == 1 {
			reason = store.ReasonUnsubscribe
		}
		sups = append(sups, store.Suppression{Email: fmt.Sprintf("user%d@example.com", i), Reason: reason,
			MessageID: fmt.Sprintf("msg_%d", i), CreatedAt: testNow.Add(time.Duration(i-10) * time.Minute)})
	}
	sups = append(sups, store.Suppression{Email: "expired@example.com", Reason: store.ReasonManual,
		CreatedAt: testNow.Add(-time.Hour), ExpiresAt: testNow.Add(-time.Minute)})
	if err := b.store.SuppressionUpsert(context.Background(), sups); err != nil {
		t.Fatal(err)
	}
	list := func(query string) []string {
		t.Helper()
		var emails []string
		cursor := ""
		for pages := 0; ; pages++ {
			r := b.do("GET", "/v1/suppressions?"+query+"&cursor="+url.QueryEscape(cursor), nil)
			if r.status != 200 {
				t.Fatalf("list %s: %d %s", query, r.status, r.body)
			}
			body := r.json(t)
			for _, item := range body["data"].([]any) {
				emails = append(emails, item.(map[string]any)["email"].(string))
			}
			next, _ := body["next_cursor"].(string)
			if next == "" || pages > 10 {
				return emails
			}
			cursor = next
		}
	}
	all := []string{"user6@example.com", "user5@example.com", "user4@example.com", "user3@example.com",
		"user2@example.com", "user1@example.com", "user0@example.com"}
	if got := list("limit=3"); !slices.Equal(got, all) {
		t.Errorf("all, by pages of 3 = %v, want %v (newest first, expired left out)", got, all)
	}
	if got := list("reason=unsubscribe&limit=2"); !slices.Equal(got, []string{"user5@example.com", "user3@example.com", "user1@example.com"}) {
		t.Errorf("reason unsubscribe = %v", got)
	}
	if got := list("email=USER4@example.com"); !slices.Equal(got, []string{"user4@example.com"}) {
		t.Errorf("email = %v", got)
	}
	r := b.do("GET", "/v1/suppressions?limit=1", nil).json(t)
	item := r["data"].([]any)[0].(map[string]any)
	for _, f := range []string{"email", "reason", "detail", "message_id", "created_at", "expires_at"} {
		if _, ok := item[f]; !ok {
			t.Errorf("list item lacks %s: %v", f, item)
		}
	}
	if item["message_id"] != "msg_6" {
		t.Errorf("message_id = %v, want msg_6", item["message_id"])
	}
}

// TestSuppressionBadInput: a 4xx naming the field, and nothing stored.
func TestSuppressionBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"bad email", "POST", "/v1/suppressions", map[string]any{"email": "a@"}, 422, "body.email"},
		{"email with space", "POST", "/v1/suppressions", map[string]any{"email": "a b@example.com"}, 422, "body.email"},
		{"no email", "POST", "/v1/suppressions", map[string]any{"reason": "manual"}, 422, "body"}, // huma: "expected required property email"
		{"unknown reason", "POST", "/v1/suppressions", map[string]any{"email": "a@example.com", "reason": "spam"}, 422, "body.reason"},
		{"expires_at in the past", "POST", "/v1/suppressions", map[string]any{"email": "a@example.com", "expires_at": testNow.Add(-time.Second)}, 422, "body.expires_at"},
		{"expires_at now", "POST", "/v1/suppressions", map[string]any{"email": "a@example.com", "expires_at": testNow}, 422, "body.expires_at"},
		{"expires_at not a time", "POST", "/v1/suppressions", map[string]any{"email": "a@example.com", "expires_at": "soon"}, 422, "body.expires_at"},
		{"detail too long", "POST", "/v1/suppressions", map[string]any{"email": "a@example.com", "detail": strings.Repeat("x", 1001)}, 422, "body.detail"},
		{"NUL in detail", "POST", "/v1/suppressions", map[string]any{"email": "a@example.com", "detail": "a\x00b"}, 422, "body.detail"},
		{"unknown field", "POST", "/v1/suppressions", map[string]any{"email": "a@example.com", "bogus": 1}, 422, "body.bogus"},
		{"malformed JSON", "POST", "/v1/suppressions", `{"email": `, 400, ""},
		{"bad cursor", "GET", "/v1/suppressions?cursor=%25%25%25", nil, 422, "query.cursor"},
		{"unknown reason filter", "GET", "/v1/suppressions?reason=spam", nil, 422, "query.reason"},
		{"bad email filter", "GET", "/v1/suppressions?email=nope", nil, 422, "query.email"},
		{"limit too big", "GET", "/v1/suppressions?limit=5000", nil, 422, "query.limit"},
		{"get a non-address", "GET", "/v1/suppressions/not-an-address", nil, 422, "path.email"},
		{"delete a non-address", "DELETE", "/v1/suppressions/a%40", nil, 422, "path.email"},
		{"get unknown", "GET", "/v1/suppressions/nobody%40example.com", nil, 404, ""},
		{"delete unknown", "DELETE", "/v1/suppressions/nobody%40example.com", nil, 404, ""},
	} {
		b.wantProblem(tc.name, b.do(tc.method, tc.path, tc.body), tc.status, tc.field)
	}
	page, _, err := b.store.SuppressionList(context.Background(), store.SuppressionListParams{})
	if err != nil || len(page) != 0 {
		t.Fatalf("bad input stored %d suppressions (%v)", len(page), err)
	}
}

// TestSuppressionReasonsDocumented keeps the OpenAPI enums of reason in step with the store's list.
func TestSuppressionReasonsDocumented(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b.do("GET", "/v1/openapi.json", nil).body, &doc); err != nil {
		t.Fatal(err)
	}
	// What the API takes, and what it shows: those and the suppressions erasure leaves.
	for name, want := range map[string][]string{
		"SuppressionBody":     store.SuppressionReasons,
		"SuppressionResource": append(slices.Clip(store.SuppressionReasons), store.ReasonErased),
	} {
		if got := doc.Components.Schemas[name].Properties["reason"].Enum; !slices.Equal(got, want) {
			t.Errorf("%s.reason enum = %v, want %v", name, got, want)
		}
	}
}

// Suppressions have a scope: global by default, broadcast, or a list; GET, DELETE and the
// listing name it; a hard bounce is always global; a bad scope is a 422 naming it.
func TestSuppressionScopes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, body := range []map[string]any{
		{"email": "ann@example.com"},
		{"email": "ann@example.com", "scope": "broadcast", "reason": "unsubscribe"},
		{"email": "ann@example.com", "scope": "lst_news", "reason": "unsubscribe"},
	} {
		if r := b.do("POST", "/v1/suppressions", body); r.status != http.StatusCreated || r.json(t)["scope"] != cmpOr(body["scope"], "global") {
			t.Fatalf("create %v: %d %s", body, r.status, r.body)
		}
	}
	for _, tc := range []struct{ query, reason string }{{"", "manual"}, {"?scope=global", "manual"},
		{"?scope=broadcast", "unsubscribe"}, {"?scope=lst_news", "unsubscribe"}} {
		r := b.do("GET", "/v1/suppressions/ann@example.com"+tc.query, nil)
		if got := r.json(t); r.status != 200 || got["reason"] != tc.reason {
			t.Errorf("GET%s: %d %v", tc.query, r.status, got)
		}
	}
	if r := b.do("GET", "/v1/suppressions?scope=lst_news", nil); r.status != 200 || len(r.json(t)["data"].([]any)) != 1 {
		t.Errorf("list by scope: %d %s", r.status, r.body)
	}
	if r := b.do("DELETE", "/v1/suppressions/ann@example.com?scope=lst_news", nil); r.status != http.StatusNoContent {
		t.Errorf("delete lst_news: %d %s", r.status, r.body)
	}
	if r := b.do("GET", "/v1/suppressions/ann@example.com?scope=broadcast", nil); r.status != 200 {
		t.Errorf("broadcast after deleting lst_news: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		method, path string
		body         map[string]any
		location     string
	}{
		{"POST", "/v1/suppressions", map[string]any{"email": "b@example.com", "scope": "everything"}, "body.scope"},
		{"POST", "/v1/suppressions", map[string]any{"email": "b@example.com", "scope": "broadcast", "reason": "hard_bounce"}, "body.scope"},
		{"GET", "/v1/suppressions/ann@example.com?scope=nope", nil, "query.scope"},
		{"DELETE", "/v1/suppressions/ann@example.com?scope=nope", nil, "query.scope"},
		{"GET", "/v1/suppressions?scope=nope", nil, "query.scope"},
	} {
		r := b.do(tc.method, tc.path, tc.body)
		if r.status != 422 || !strings.Contains(string(r.body), tc.location) {
			t.Errorf("%s %s %v: %d %s; want 422 naming %s", tc.method, tc.path, tc.body, r.status, r.body, tc.location)
		}
	}
	if page, _, err := b.store.SuppressionList(context.Background(), store.SuppressionListParams{Email: "b@example.com"}); err != nil || len(page) != 0 {
		t.Errorf("refused requests stored %v, %v", page, err)
	}
}

func cmpOr(v any, def string) any {
	if v == nil {
		return def
	}
	return v
}
