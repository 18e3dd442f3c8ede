package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// seedAudience writes a list "news" and contacts through the store, and returns the list's id
// and the contacts' ids by local part. ann, bob and cat are subscribed to news; ann, cat and
// dan were last active 40 days ago, bob 5 days ago; ann, bob and dan are on plan pro.
func seedAudience(t *testing.T, b *bundle) (string, map[string]string) {
	t.Helper()
	ctx := t.Context()
	news := id.New(id.List)
	if _, err := b.store.ListCreate(ctx, store.List{ID: news, Name: "news", CreatedAt: testNow, UpdatedAt: testNow}); err != nil {
		t.Fatal(err)
	}
	var items []store.ContactUpsert
	names := []string{"ann", "bob", "cat", "dan"}
	for _, c := range []struct {
		name, plan string
		active     time.Duration
		sub        bool
	}{{"ann", "pro", 40, true}, {"bob", "pro", 5, true}, {"cat", "free", 40, true}, {"dan", "pro", 40, false}} {
		it := store.ContactUpsert{Email: c.name + "@example.com", EmailKey: c.name + "@example.com",
			Attributes: json.RawMessage(fmt.Sprintf(`{"plan":%q}`, c.plan)), LastActiveAt: testNow.Add(-c.active * 24 * time.Hour)}
		if c.sub {
			it.Lists = []string{news}
		}
		items = append(items, it)
	}
	res, err := b.store.ContactsUpsert(ctx, store.ContactsUpsertParams{Items: items, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for i, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		ids[names[i]] = r.ID
	}
	return news, ids
}

// wantProblem checks a 422 (or status) whose first error is at location.
func wantProblem(t *testing.T, r response, status int, location string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d: %s", r.status, status, r.body)
		return
	}
	if location == "" {
		return
	}
	errs, _ := r.json(t)["errors"].([]any)
	if len(errs) == 0 || errs[0].(map[string]any)["location"] != location {
		t.Errorf("errors %v, want one at %s", errs, location)
	}
}

func contactEmails(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	for _, c := range v.([]any) {
		out = append(out, c.(map[string]any)["email"].(string))
	}
	return out
}

func TestAttributes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for range 2 {
		r := b.do("PUT", "/v1/attributes/plan", map[string]any{"type": "string"})
		if got := r.json(t); r.status != 200 || got["name"] != "plan" || got["type"] != "string" {
			t.Fatalf("declare: %d %s", r.status, r.body)
		}
	}
	wantProblem(t, b.do("PUT", "/v1/attributes/plan", map[string]any{"type": "number"}), 409, "")
	wantProblem(t, b.do("PUT", "/v1/attributes/first-name", map[string]any{"type": "string"}), 422, "path.name")
	wantProblem(t, b.do("PUT", "/v1/attributes/score", map[string]any{"type": "integer"}), 422, "body.type")
	wantProblem(t, b.do("PUT", "/v1/attributes/score", `{"type":"number","type":"string"}`), 422, "body.type")
	b.do("PUT", "/v1/attributes/score", map[string]any{"type": "number"})
	r := b.do("GET", "/v1/attributes", nil)
	var names []string
	for _, a := range r.json(t)["data"].([]any) {
		names = append(names, a.(map[string]any)["name"].(string)+":"+a.(map[string]any)["type"].(string))
	}
	if !slices.Equal(names, []string{"plan:string", "score:number"}) {
		t.Errorf("GET /v1/attributes: %v", names)
	}
	if r := b.do("DELETE", "/v1/attributes/score", nil); r.status != 204 {
		t.Errorf("DELETE: %d %s", r.status, r.body)
	}
	wantProblem(t, b.do("DELETE", "/v1/attributes/score", nil), 404, "")
}

func TestSegmentPreview(t *testing.T) {
	t.Parallel()
	b := setup(t)
	news, _ := seedAudience(t, b)
	b.do("PUT", "/v1/attributes/plan", map[string]any{"type": "string"})

	// Plan is pro and last active more than 30 days ago and subscribed to news.
	example := map[string]any{"and": []any{
		map[string]any{"attr": "plan", "eq": "pro"},
		map[string]any{"field": "last_active_at", "before": map[string]any{"ago": "30d"}},
		map[string]any{"list": news},
	}}
	r := b.do("POST", "/v1/segments/preview", map[string]any{"filter": example})
	if r.status != 200 {
		t.Fatalf("preview: %d %s", r.status, r.body)
	}
	got := r.json(t)
	if got["count"] != 1.0 || !slices.Equal(contactEmails(t, got["contacts"]), []string{"ann@example.com"}) {
		t.Errorf("preview = %s, want ann alone", r.body)
	}
	for limit, want := range map[int]int{2: 2, 0: 0} {
		r = b.do("POST", "/v1/segments/preview", map[string]any{"filter": map[string]any{"list": news}, "limit": limit})
		if got := r.json(t); got["count"] != 3.0 || len(got["contacts"].([]any)) != want {
			t.Errorf("preview with limit %d = %s, want count 3 and %d contacts", limit, r.body, want)
		}
	}

	for _, tc := range []struct {
		body     string
		location string
	}{
		{`{"filter":{"and":[{"attr":"plan","eq":"pro"},{"field":"last_active_at","before":{"ago":"30 days"}}]}}`, "body.filter.and[1].before.ago"},
		{`{"filter":{"attr":"tier","eq":"gold"}}`, "body.filter.attr"},
		{`{"filter":{"attr":"plan","eq":1}}`, "body.filter.eq"},
		{`{"filter":{"attr":"plan","like":"p%"}}`, "body.filter.like"},
		{`{"filter":{"field":"password","eq":"x"}}`, "body.filter.field"},
		{`{"filter":{"list":"lst_nope"}}`, "body.filter.list"},
		{`{"filter":"plan = 'pro'"}`, "body.filter"},
		{`{"filter":null}`, "body.filter"},
		{`{}`, "body"}, // huma's location for a required member
		{`{"filter":{"and":[]},"limit":1000}`, "body.limit"},
		{`{"filter":{"attr":"plan","eq":"a","eq":"b"}}`, "body.filter.eq"},
	} {
		r := b.do("POST", "/v1/segments/preview", tc.body)
		t.Run(tc.body, func(t *testing.T) { wantProblem(t, r, 422, tc.location) })
	}

	// A list that does not exist.
	r = b.do("POST", "/v1/segments/preview", `{"filter":{"or":[{"list":"`+id.New("lst")+`"}]}}`)
	wantProblem(t, r, 422, "body.filter.or[0].list")
}

func TestSegmentCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	news, _ := seedAudience(t, b)
	b.do("PUT", "/v1/attributes/plan", map[string]any{"type": "string"})

	r := b.do("POST", "/v1/segments", map[string]any{"name": "News", "filter": map[string]any{"list": news}})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	seg := r.json(t)
	segID, _ := seg["id"].(string)
	if !id.Valid(id.Segment, segID) || seg["name"] != "News" || seg["created_at"] != testNow.Format(time.RFC3339) {
		t.Errorf("created %s", r.body)
	}
	wantProblem(t, b.do("POST", "/v1/segments", map[string]any{"name": "News", "filter": map[string]any{"and": []any{}}}), 409, "")
	wantProblem(t, b.do("POST", "/v1/segments", map[string]any{"name": "Bad", "filter": map[string]any{"attr": "nope", "exists": true}}), 422, "body.filter.attr")
	wantProblem(t, b.do("POST", "/v1/segments", map[string]any{"name": "", "filter": map[string]any{"and": []any{}}}), 422, "body.name")
	wantProblem(t, b.do("POST", "/v1/segments", map[string]any{"name": "No filter"}), 422, "body")

	r = b.do("GET", "/v1/segments/"+segID, nil)
	if got := r.json(t); r.status != 200 || got["count"] != 3.0 {
		t.Errorf("GET: %d %s, want count 3", r.status, r.body)
	}

	// Pages of the segment's contacts, by id.
	var emails []string
	cursor := ""
	for range 5 {
		r := b.do("GET", "/v1/segments/"+segID+"/contacts?limit=2&cursor="+cursor, nil)
		if r.status != 200 {
			t.Fatalf("contacts: %d %s", r.status, r.body)
		}
		got := r.json(t)
		emails = append(emails, contactEmails(t, got["data"])...)
		cursor, _ = got["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	if !slices.Equal(emails, []string{"ann@example.com", "bob@example.com", "cat@example.com"}) {
		t.Errorf("contacts %v", emails)
	}
	wantProblem(t, b.do("GET", "/v1/segments/"+segID+"/contacts?cursor=nope", nil), 422, "query.cursor")

	r = b.do("PATCH", "/v1/segments/"+segID, map[string]any{"filter": map[string]any{"and": []any{
		map[string]any{"list": news}, map[string]any{"attr": "plan", "ne": "pro"}}}})
	if got := r.json(t); r.status != 200 || got["name"] != "News" {
		t.Errorf("PATCH filter: %d %s", r.status, r.body)
	}
	if got := b.do("GET", "/v1/segments/"+segID, nil).json(t); got["count"] != 1.0 {
		t.Errorf("count after PATCH = %v, want 1", got["count"])
	}
	wantProblem(t, b.do("PATCH", "/v1/segments/"+segID, map[string]any{"filter": map[string]any{"attr": "plan", "gt": 1}}), 422, "body.filter.gt")
	r = b.do("PATCH", "/v1/segments/"+segID, map[string]any{"name": "Free news"})
	if got := r.json(t); r.status != 200 || got["name"] != "Free news" {
		t.Errorf("PATCH name: %d %s", r.status, r.body)
	}
	if got := b.do("GET", "/v1/segments", nil).json(t); len(got["data"].([]any)) != 1 {
		t.Errorf("GET /v1/segments: %v", got)
	}

	// A segment whose attribute is no longer declared fails when used, naming the attribute.
	b.do("DELETE", "/v1/attributes/plan", nil)
	wantProblem(t, b.do("GET", "/v1/segments/"+segID, nil), 422, "segment.filter.and[1].attr")

	if r := b.do("DELETE", "/v1/segments/"+segID, nil); r.status != 204 {
		t.Errorf("DELETE: %d %s", r.status, r.body)
	}
	wantProblem(t, b.do("GET", "/v1/segments/"+segID, nil), 404, "")
	wantProblem(t, b.do("GET", "/v1/segments/seg_nope", nil), 404, "")
	wantProblem(t, b.do("PATCH", "/v1/segments/"+id.New(id.Segment), map[string]any{"name": "x"}), 404, "")
}

// TestContactsBySegment lists contacts by a segment, a filter and a list together.
func TestContactsBySegment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	news, _ := seedAudience(t, b)
	b.do("PUT", "/v1/attributes/plan", map[string]any{"type": "string"})
	r := b.do("POST", "/v1/segments", map[string]any{"name": "Pro", "filter": map[string]any{"attr": "plan", "eq": "pro"}})
	segID, _ := r.json(t)["id"].(string)
	inactive := url.QueryEscape(`{"field":"last_active_at","before":{"ago":"30d"}}`)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"segment=" + segID, []string{"ann@example.com", "bob@example.com", "dan@example.com"}},
		{"segment=" + segID + "&list=" + news, []string{"ann@example.com", "bob@example.com"}},
		{"segment=" + segID + "&filter=" + inactive, []string{"ann@example.com", "dan@example.com"}},
		{"filter=" + inactive + "&list=" + news + "&status=subscribed", []string{"ann@example.com", "cat@example.com"}},
		{"filter=" + inactive + "&list=" + news + "&status=pending", nil},
	} {
		r := b.do("GET", "/v1/contacts?"+tc.query, nil)
		if r.status != 200 {
			t.Errorf("GET /v1/contacts?%s: %d %s", tc.query, r.status, r.body)
			continue
		}
		if got := contactEmails(t, r.json(t)["data"]); !slices.Equal(got, tc.want) {
			t.Errorf("GET /v1/contacts?%s = %v, want %v", tc.query, got, tc.want)
		}
	}
	wantProblem(t, b.do("GET", "/v1/contacts?segment="+id.New(id.Segment), nil), 422, "query.segment")
	wantProblem(t, b.do("GET", "/v1/contacts?filter="+url.QueryEscape(`{"attr":"tier","eq":"x"}`), nil), 422, "query.filter.attr")
	b.do("DELETE", "/v1/attributes/plan", nil)
	wantProblem(t, b.do("GET", "/v1/contacts?segment="+segID, nil), 422, "query.segment.filter.attr")
}
