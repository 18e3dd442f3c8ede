package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const sourceDSN = "reader:s3cret-pw@tcp(db.internal:3306)/app"

func sourceBody() map[string]any {
	return map[string]any{
		"name": "app users", "driver": "mysql", "dsn": sourceDSN,
		"query":   "SELECT id, email, plan, updated_at FROM users",
		"mapping": map[string]any{"email": "email", "external_id": "id", "updated_at": "updated_at"},
	}
}

// TestSourceCRUD: a source is created with its defaults, shown without its DSN, changed (the
// DSN kept unless given), made due, and deleted.
func TestSourceCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("POST", "/v1/sources", sourceBody())
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "s3cret") || strings.Contains(string(r.body), `"dsn"`) {
		t.Errorf("the response shows the DSN: %s", r.body)
	}
	got := r.json(t)
	srcID, _ := got["id"].(string)
	if !strings.HasPrefix(srcID, "src_") {
		t.Fatalf("id %q", srcID)
	}
	now := testNow.Format(time.RFC3339)
	want := map[string]any{
		"id": srcID, "name": "app users", "driver": "mysql", "query": "SELECT id, email, plan, updated_at FROM users",
		"mapping":  map[string]any{"email": "email", "external_id": "id", "updated_at": "updated_at", "key": "id"},
		"lists":    []any{},
		"interval": "5m0s", "overlap": "5m0s", "reconcile_every": "24h0m0s", "status": "ok", "failures": float64(0),
		"mark": nil, "last_run": nil, "last_run_at": nil, "next_run_at": now, "reconciled_at": nil,
		"created_at": now, "updated_at": now,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	if g := b.do("GET", "/v1/sources/"+srcID, nil); g.status != 200 || cmp.Diff(want, g.json(t)) != "" {
		t.Errorf("GET: %d %s", g.status, g.body)
	}
	if l := b.do("GET", "/v1/sources", nil); l.status != 200 || !strings.Contains(string(l.body), srcID) {
		t.Errorf("list: %d %s", l.status, l.body)
	}

	// PATCH: only the fields given change; the DSN is kept.
	p := b.do("PATCH", "/v1/sources/"+srcID, map[string]any{"name": "users", "overlap": "0s", "interval": "1m",
		"reconcile_every": "0s", "mapping": map[string]any{"email": "email", "updated_at": "changed_at", "key": "id", "opt_out": "opted_out"}})
	if p.status != 200 {
		t.Fatalf("patch: %d %s", p.status, p.body)
	}
	pg := p.json(t)
	if pg["name"] != "users" || pg["overlap"] != "0s" || pg["interval"] != "1m0s" || pg["reconcile_every"] != "0s" ||
		pg["query"] != want["query"] || pg["mapping"].(map[string]any)["opt_out"] != "opted_out" {
		t.Errorf("patched: %v", pg)
	}
	stored, err := b.store.SourceGet(context.Background(), srcID)
	if err != nil || stored.DSN != sourceDSN {
		t.Errorf("stored DSN after PATCH = %q, %v; want it kept", stored.DSN, err)
	}
	p = b.do("PATCH", "/v1/sources/"+srcID, map[string]any{"driver": "postgres", "dsn": "postgres://reader:pw@db/app"})
	if stored, _ := b.store.SourceGet(context.Background(), srcID); p.status != 200 || stored.DSN != "postgres://reader:pw@db/app" {
		t.Errorf("patch dsn: %d %s; stored %q", p.status, p.body, stored.DSN)
	}

	if r := b.do("POST", "/v1/sources/"+srcID+"/run", nil); r.status != http.StatusAccepted || r.json(t)["next_run_at"] != now {
		t.Errorf("run: %d %s", r.status, r.body)
	}
	if d := b.do("DELETE", "/v1/sources/"+srcID, nil); d.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", d.status, d.body)
	}
	for _, m := range []string{"GET", "DELETE", "PATCH"} {
		if r := b.do(m, "/v1/sources/"+srcID, map[string]any{}); r.status != 404 {
			t.Errorf("%s after delete: %d %s", m, r.status, r.body)
		}
	}
	if r := b.do("POST", "/v1/sources/"+srcID+"/run", nil); r.status != 404 {
		t.Errorf("run after delete: %d", r.status)
	}
}

// TestSourceBadInput: each bad field is a 422 naming it, nothing is stored, and a DSN is never
// quoted back.
func TestSourceBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name     string
		mod      func(map[string]any)
		location string
	}{
		{"no name", func(m map[string]any) { delete(m, "name") }, "body.name"},
		{"bad driver", func(m map[string]any) { m["driver"] = "oracle" }, "body.driver"},
		{"no dsn", func(m map[string]any) { delete(m, "dsn") }, "body.dsn"},
		{"bad mysql dsn", func(m map[string]any) { m["dsn"] = "reader:s3cret-pw@tcp(db" }, "body.dsn"},
		{"bad postgres dsn", func(m map[string]any) {
			m["driver"] = "postgres"
			m["dsn"] = "postgres://reader:s3cret-pw@db:99999999/x"
		}, "body.dsn"},
		{"no query", func(m map[string]any) { delete(m, "query") }, "body.query"},
		{"not a select", func(m map[string]any) { m["query"] = "DELETE FROM users" }, "body.query"},
		{"two statements", func(m map[string]any) { m["query"] = "SELECT 1; DROP TABLE users" }, "body.query"},
		{"no mapping", func(m map[string]any) { delete(m, "mapping") }, "body.mapping"},
		{"no email column", func(m map[string]any) { m["mapping"] = map[string]any{"updated_at": "u", "key": "id"} }, "body.mapping.email"},
		{"no updated_at column", func(m map[string]any) { m["mapping"] = map[string]any{"email": "e", "key": "id"} }, "body.mapping.updated_at"},
		{"no key", func(m map[string]any) { m["mapping"] = map[string]any{"email": "e", "updated_at": "u"} }, "body.mapping.key"},
		{"bad interval", func(m map[string]any) { m["interval"] = "soon" }, "body.interval"},
		{"short interval", func(m map[string]any) { m["interval"] = "1s" }, "body.interval"},
		{"negative overlap", func(m map[string]any) { m["overlap"] = "-5m" }, "body.overlap"},
		{"short reconcile", func(m map[string]any) { m["reconcile_every"] = "5s" }, "body.reconcile_every"},
		{"reset_mark on create", func(m map[string]any) { m["reset_mark"] = true }, "body.reset_mark"},
		{"unknown list", func(m map[string]any) { m["lists"] = []string{"lst_none"} }, "body.lists[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := sourceBody()
			tc.mod(body)
			r := b.do("POST", "/v1/sources", body)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), `"location":"`+tc.location+`"`) {
				t.Errorf("status %d, body %s; want 422 naming %s", r.status, r.body, tc.location)
			}
			if strings.Contains(string(r.body), "s3cret") {
				t.Errorf("the problem quotes the DSN: %s", r.body)
			}
		})
	}
	if l, err := b.store.SourceList(context.Background()); err != nil || len(l) != 0 {
		t.Errorf("stored sources = %d, %v; want none", len(l), err)
	}
}
