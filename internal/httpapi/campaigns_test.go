package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/campaign"
	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/drivertest"
	"github.com/postie/postie/internal/templates"
)

// campaignBundle is an API whose campaign service the test drives with Tick.
type campaignBundle struct {
	*bundle
	svc  *campaign.Service
	news string            // the list news: ann, bob and cat subscribed
	ids  map[string]string // contact ids by local part
}

// onCampaignDrivers runs fn with a campaign API over each store driver, with a template news
// (schema: title required) and the audience of seedAudience.
func onCampaignDrivers(t *testing.T, fn func(t *testing.T, b *campaignBundle)) {
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		now := func() time.Time { return testNow }
		cat := templates.New(templates.Config{Store: st, Now: now})
		msgs := message.New(message.Config{Store: st, Templates: cat, DefaultFrom: "Postie Test <sender@postie.example>",
			MaxRecipients: 50, MaxMessageSize: 25 << 20, MaxScheduleAhead: 30 * 24 * time.Hour,
			MessageTTL: 24 * time.Hour, MaxAttempts: 4})
		aud := audience.New(audience.Config{Store: st, Now: now})
		svc := campaign.New(campaign.Config{Store: st, Messages: msgs, Templates: cat, Owner: "node-a/1",
			Lease: time.Minute, Now: now, MessageTTL: 24 * time.Hour, Window: 2000, MissedGrace: time.Hour})
		b := &campaignBundle{bundle: setupOn(t, st, func(c *httpapi.Config) {
			c.Templates, c.Messages, c.Audience, c.Campaigns = cat, msgs, aud, svc
		}), svc: svc}
		b.news, b.ids = seedAudience(t, b.bundle)
		b.do("PUT", "/v1/templates/news", map[string]any{
			"subject": "{{.data.title}}", "html": "<p>Hello {{.contact.email}}: {{.data.title}}</p>",
			"schema": map[string]any{"type": "object", "required": []string{"title"},
				"properties": map[string]any{"title": map[string]any{"type": "string"}}},
		}).want(t, "PUT /v1/templates/news", http.StatusCreated)
		fn(t, b)
	})
}

// newCampaign is a valid body of POST /v1/campaigns with the fields of kv (name, value, …) set,
// or removed when the value is nil.
func (b *campaignBundle) newCampaign(kv ...any) map[string]any {
	return modify(map[string]any{
		"name": "November news", "template": "news", "audience": map[string]any{"lists": []string{b.news}},
		"data": map[string]any{"title": "What is new"}, "tags": []string{"news"},
		"schedule": map[string]any{"kind": "now"},
	}, kv...)
}

// create posts body and returns the campaign created.
func (b *campaignBundle) create(body map[string]any) map[string]any {
	b.t.Helper()
	r := b.do("POST", "/v1/campaigns", body)
	r.want(b.t, "POST /v1/campaigns", http.StatusCreated)
	return r.json(b.t)
}

// tick works the campaigns once at testNow.
func (b *campaignBundle) tick() {
	b.t.Helper()
	if err := b.svc.Tick(b.t.Context(), testNow); err != nil {
		b.t.Fatal(err)
	}
}

// campaignCount is how many campaigns are stored.
func (b *campaignBundle) campaignCount() int {
	b.t.Helper()
	page, _, err := b.store.CampaignList(b.t.Context(), store.CampaignListParams{Limit: 1000})
	if err != nil {
		b.t.Fatal(err)
	}
	return len(page)
}

// wantConflict checks a 409 whose detail names the campaign's state.
func wantConflict(t *testing.T, r response, state string) {
	t.Helper()
	wantProblem(t, r, http.StatusConflict, "")
	if detail, _ := r.json(t)["detail"].(string); !strings.Contains(detail, state) {
		t.Errorf("409 detail %q does not name the state %s", detail, state)
	}
}

// TestCampaignLifecycle: create, read, list, change, schedule, pause, resume, cancel and delete a
// campaign, each answer the campaign resource of docs/api.md; a step in the wrong state is a 409
// naming the state.
func TestCampaignLifecycle(t *testing.T) {
	t.Parallel()
	onCampaignDrivers(t, func(t *testing.T, b *campaignBundle) {
		at := testNow.Add(24 * time.Hour)
		c := b.create(b.newCampaign("schedule", map[string]any{"kind": "at", "at": at.Format(time.RFC3339)},
			"rate", 50.0, "frequency_cap", map[string]any{"kind": "days", "days": 30}, "from", "Shop <news@shop.example>"))
		cmpID, _ := c["id"].(string)
		if !id.Valid(id.Campaign, cmpID) {
			t.Fatalf("created %v", c)
		}
		for k, want := range map[string]any{"name": "November news", "template": "news", "template_version": 0.0,
			"state": "draft", "rate": 50.0, "from": "Shop <news@shop.example>", "reply_to": "", "subject": "",
			"resume_next_day": false, "next_run_at": nil, "last_run_at": nil, "created_at": testNow.Format(time.RFC3339)} {
			if c[k] != want {
				t.Errorf("%s = %#v, want %#v", k, c[k], want)
			}
		}
		js := func(v any) string { j, _ := json.Marshal(v); return string(j) }
		for k, want := range map[string]string{
			"audience":      `{"lists":["` + b.news + `"],"segment":""}`,
			"schedule":      `{"at":"` + at.Format(time.RFC3339) + `","kind":"at"}`,
			"frequency_cap": `{"days":30,"kind":"days"}`,
			"data":          `{"title":"What is new"}`,
			"tags":          `["news"]`,
			"pause_reasons": `[]`,
		} {
			if got := js(c[k]); got != want {
				t.Errorf("%s = %s, want %s", k, got, want)
			}
		}

		r := b.do("GET", "/v1/campaigns/"+cmpID, nil)
		r.want(t, "GET", http.StatusOK, `"id":"`+cmpID+`"`)
		r = b.do("PATCH", "/v1/campaigns/"+cmpID, map[string]any{"name": "Late November news", "frequency_cap": map[string]any{"kind": "none"}})
		r.want(t, "PATCH", http.StatusOK, `"name":"Late November news"`, `"template":"news"`)
		if got := r.json(t); got["frequency_cap"] != nil || got["rate"] != 50.0 {
			t.Errorf("PATCH kept %v and %v, want no cap and rate 50", got["frequency_cap"], got["rate"])
		}

		other := b.create(b.newCampaign("name", "Other"))
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"", []string{other["id"].(string), cmpID}},
			{"?state=draft&limit=1", []string{other["id"].(string)}},
			{"?state=scheduled", nil},
		} {
			r := b.do("GET", "/v1/campaigns"+tc.query, nil)
			r.want(t, "GET /v1/campaigns"+tc.query, http.StatusOK)
			var got []string
			for _, c := range r.json(t)["data"].([]any) {
				got = append(got, c.(map[string]any)["id"].(string))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("GET /v1/campaigns%s = %v, want %v", tc.query, got, tc.want)
			}
		}
		r = b.do("GET", "/v1/campaigns?limit=1", nil)
		next, _ := r.json(t)["next_cursor"].(string)
		r = b.do("GET", "/v1/campaigns?limit=1&cursor="+next, nil)
		r.want(t, "second page", http.StatusOK, `"id":"`+cmpID+`"`)
		wantProblem(t, b.do("GET", "/v1/campaigns?cursor=nope", nil), 422, "query.cursor")
		wantProblem(t, b.do("GET", "/v1/campaigns?state=sending", nil), 422, "query.state")

		// Resume on a draft, pause on a draft: the state is named.
		wantConflict(t, b.do("POST", "/v1/campaigns/"+cmpID+"/resume", nil), "draft")

		r = b.do("POST", "/v1/campaigns/"+cmpID+"/start", nil)
		r.want(t, "start", http.StatusOK, `"state":"scheduled"`, `"next_run_at":"`+at.Format(time.RFC3339)+`"`)
		wantConflict(t, b.do("POST", "/v1/campaigns/"+cmpID+"/start", nil), "scheduled")
		// A scheduled campaign can be changed: its next occurrence follows a new schedule.
		later := at.Add(time.Hour)
		b.do("PATCH", "/v1/campaigns/"+cmpID, map[string]any{"schedule": map[string]any{"kind": "at", "at": later.Format(time.RFC3339)}}).
			want(t, "PATCH scheduled", http.StatusOK, `"state":"scheduled"`, `"next_run_at":"`+later.Format(time.RFC3339)+`"`)

		b.do("POST", "/v1/campaigns/"+cmpID+"/pause", nil).want(t, "pause", http.StatusOK, `"state":"paused"`, `"pause_reasons":["manual"]`)
		wantConflict(t, b.do("POST", "/v1/campaigns/"+cmpID+"/pause", nil), "paused")
		b.do("POST", "/v1/campaigns/"+cmpID+"/resume", map[string]any{"reasons": []string{"manual"}}).
			want(t, "resume", http.StatusOK, `"state":"scheduled"`, `"pause_reasons":[]`)
		wantProblem(t, b.do("POST", "/v1/campaigns/"+cmpID+"/resume", map[string]any{"reasons": []string{"boredom"}}), 422, "body.reasons[0]")
		b.do("POST", "/v1/campaigns/"+cmpID+"/cancel", nil).want(t, "cancel", http.StatusOK, `"state":"cancelled"`)
		wantConflict(t, b.do("POST", "/v1/campaigns/"+cmpID+"/resume", nil), "cancelled")
		wantConflict(t, b.do("POST", "/v1/campaigns/"+cmpID+"/cancel", nil), "cancelled")

		if r := b.do("DELETE", "/v1/campaigns/"+cmpID, nil); r.status != http.StatusNoContent {
			t.Errorf("DELETE: %d %s", r.status, r.body)
		}
		for _, path := range []string{"/v1/campaigns/" + cmpID, "/v1/campaigns/cmp_nope", "/v1/campaigns/" + id.New(id.Campaign) + "/runs"} {
			wantProblem(t, b.do("GET", path, nil), 404, "")
		}
		wantProblem(t, b.do("POST", "/v1/campaigns/"+id.New(id.Campaign)+"/start", nil), 404, "")
		wantProblem(t, b.do("DELETE", "/v1/campaigns/"+cmpID, nil), 404, "")
	})
}

// TestCampaignRun: a campaign started now runs once its service ticks; the run's progress,
// recipients, pause, resume and cancel are read and driven through the API.
func TestCampaignRun(t *testing.T) {
	t.Parallel()
	onCampaignDrivers(t, func(t *testing.T, b *campaignBundle) {
		cmpID := b.create(b.newCampaign())["id"].(string)
		b.do("POST", "/v1/campaigns/"+cmpID+"/start", nil).want(t, "start", http.StatusOK, `"state":"running"`)
		wantConflict(t, b.do("POST", "/v1/campaigns/"+cmpID+"/start", nil), "running")
		wantConflict(t, b.do("DELETE", "/v1/campaigns/"+cmpID, nil), "running")
		wantConflict(t, b.do("PATCH", "/v1/campaigns/"+cmpID, map[string]any{"name": "Renamed"}), "running")
		for range 5 {
			b.tick()
		}

		r := b.do("GET", "/v1/campaigns/"+cmpID+"/runs", nil)
		r.want(t, "runs", http.StatusOK)
		runs := r.json(t)["data"].([]any)
		if len(runs) != 1 {
			t.Fatalf("runs: %s", r.body)
		}
		run := runs[0].(map[string]any)
		runID, _ := run["id"].(string)
		if !id.Valid(id.Run, runID) || run["campaign_id"] != cmpID || run["materialised"] != true || run["recipients"] != 3.0 ||
			run["template_version"] != 1.0 || run["scheduled_at"] != testNow.Format(time.RFC3339) {
			t.Errorf("run %v", run)
		}
		progress := run["progress"].(map[string]any)
		if len(progress) != 10 || progress["queued"] != 3.0 || run["in_flight"] != 3.0 {
			t.Errorf("progress %v, in_flight %v: want 3 queued of 10 states", progress, run["in_flight"])
		}
		if run["bounce_rate"] != 0.0 || run["complaint_rate"] != 0.0 {
			t.Errorf("rates of a run nothing was delivered for: %v, %v; want 0", run["bounce_rate"], run["complaint_rate"])
		}
		if ex := run["excluded"].(map[string]any); len(ex) != 4 {
			t.Errorf("excluded %v", ex)
		}

		r = b.do("GET", "/v1/campaigns/"+cmpID+"/runs/"+runID, nil)
		r.want(t, "run", http.StatusOK, `"id":"`+runID+`"`, `"state":"running"`)

		// The recipients by contact id, two to a page; each has its message.
		var emails []string
		cursor := ""
		for range 3 {
			r := b.do("GET", "/v1/campaigns/"+cmpID+"/runs/"+runID+"/recipients?limit=2&status=queued&cursor="+cursor, nil)
			r.want(t, "recipients", http.StatusOK)
			got := r.json(t)
			for _, rc := range got["data"].([]any) {
				rc := rc.(map[string]any)
				emails = append(emails, rc["email"].(string))
				if rc["list_id"] != b.news || !id.Valid(id.Message, rc["message_id"].(string)) {
					t.Errorf("recipient %v", rc)
				}
			}
			if cursor, _ = got["next_cursor"].(string); cursor == "" {
				break
			}
		}
		if !slices.Equal(emails, []string{"ann@example.com", "bob@example.com", "cat@example.com"}) {
			t.Errorf("recipients %v", emails)
		}
		b.do("GET", "/v1/campaigns/"+cmpID+"/runs/"+runID+"/recipients?status=pending", nil).want(t, "pending", http.StatusOK, `"data":[]`)
		wantProblem(t, b.do("GET", "/v1/campaigns/"+cmpID+"/runs/"+runID+"/recipients?status=sent", nil), 422, "query.status")
		wantProblem(t, b.do("GET", "/v1/campaigns/"+cmpID+"/runs/"+runID+"/recipients?cursor=nope", nil), 422, "query.cursor")

		// A run is found only under its own campaign.
		other := b.create(b.newCampaign())["id"].(string)
		for _, path := range []string{"/runs/" + runID, "/runs/" + runID + "/recipients", "/runs/run_nope"} {
			wantProblem(t, b.do("GET", "/v1/campaigns/"+other+path, nil), 404, "")
		}

		b.do("POST", "/v1/campaigns/"+cmpID+"/pause", nil).want(t, "pause", http.StatusOK, `"state":"paused"`, `"pause_reasons":["manual"]`)
		b.do("GET", "/v1/campaigns/"+cmpID+"/runs/"+runID, nil).want(t, "paused run", http.StatusOK, `"state":"paused"`, `"pause_reasons":["manual"]`, `"eta":null`)
		b.do("POST", "/v1/campaigns/"+cmpID+"/resume", nil).want(t, "resume", http.StatusOK, `"state":"running"`)
		b.do("POST", "/v1/campaigns/"+cmpID+"/cancel", nil).want(t, "cancel", http.StatusOK, `"state":"cancelled"`)
		r = b.do("GET", "/v1/campaigns/"+cmpID+"/runs/"+runID, nil)
		r.want(t, "cancelled run", http.StatusOK, `"state":"cancelled"`)
		if got := r.json(t); got["progress"].(map[string]any)["cancelled"] != 3.0 || got["finished_at"] == nil {
			t.Errorf("cancelled run %s", r.body)
		}
		wantConflict(t, b.do("POST", "/v1/campaigns/"+cmpID+"/pause", nil), "cancelled")
	})
}

// TestCampaignTestSend: a test send answers one message per address, tagged test; more than 50
// addresses is a 422 at body.to, and nothing is sent.
func TestCampaignTestSend(t *testing.T) {
	t.Parallel()
	onCampaignDrivers(t, func(t *testing.T, b *campaignBundle) {
		cmpID := b.create(b.newCampaign())["id"].(string)
		r := b.do("POST", "/v1/campaigns/"+cmpID+"/test", map[string]any{"to": []string{"qa@example.com", "boss@example.com"},
			"contact": map[string]any{"email": "ann@example.com", "name": "Ann", "attributes": map[string]any{"plan": "pro"}}})
		r.want(t, "test", http.StatusAccepted)
		msgs := r.json(t)["messages"].([]any)
		if len(msgs) != 2 {
			t.Fatalf("test: %s", r.body)
		}
		// Without a contact, .contact is the address alone, as a run would render it.
		r = b.do("POST", "/v1/campaigns/"+cmpID+"/test", map[string]any{"to": []string{"qa@example.com"}})
		r.want(t, "test without a contact", http.StatusAccepted)
		msgs = append(msgs, r.json(t)["messages"].([]any)...)
		raw := b.do("GET", "/v1/messages/"+msgs[2].(map[string]any)["id"].(string)+"/raw", nil)
		raw.want(t, "raw test message", http.StatusOK, "Hello qa@example.com: What is new")
		for _, m := range msgs {
			mid := m.(map[string]any)["id"].(string)
			b.do("GET", "/v1/messages/"+mid, nil).want(t, "test message", http.StatusOK, `"stream":"broadcast"`, `"test"`, `"subject":"What is new"`)
		}
		before := b.count()
		many := make([]string, campaign.MaxTestRecipients+1)
		for i := range many {
			many[i] = fmt.Sprintf("qa%d@example.com", i)
		}
		for _, tc := range []struct {
			body     any
			location string
		}{
			{map[string]any{"to": many}, "body.to"},
			{map[string]any{"to": []string{}}, "body.to"},
			{map[string]any{"to": []string{"not an address"}}, "body.to[0]"},
			{map[string]any{"to": []string{"qa@example.com"}, "cc": []string{"x@example.com"}}, "body.cc"},
		} {
			wantProblem(t, b.do("POST", "/v1/campaigns/"+cmpID+"/test", tc.body), 422, tc.location)
		}
		if after := b.count(); after != before {
			t.Errorf("refused test sends stored %d messages", after-before)
		}
		wantProblem(t, b.do("POST", "/v1/campaigns/"+id.New(id.Campaign)+"/test", map[string]any{"to": []string{"qa@example.com"}}), 404, "")
	})
}

// TestCampaignBadInput: every bad campaign body is a 4xx naming the field, and nothing is stored.
func TestCampaignBadInput(t *testing.T) {
	t.Parallel()
	onCampaignDrivers(t, func(t *testing.T, b *campaignBundle) {
		seg := b.do("POST", "/v1/segments", map[string]any{"name": "News", "filter": map[string]any{"list": b.news}})
		seg.want(t, "POST /v1/segments", http.StatusCreated)
		segID := seg.json(t)["id"].(string)
		past := testNow.Add(-time.Hour).Format(time.RFC3339)
		tests := []struct {
			name     string
			body     any
			status   int
			location string
		}{
			{"not JSON", `{"name":`, 400, ""},
			{"unknown field", b.newCampaign("stream", "transactional"), 422, "body.stream"},
			{"duplicate key", `{"name":"a","name":"b"}`, 422, "body.name"},
			{"no name", b.newCampaign("name", nil), 422, "body.name"},
			{"no template", b.newCampaign("template", nil), 422, "body.template"},
			{"unknown template", b.newCampaign("template", "nope"), 422, "body.template"},
			{"unknown template version", b.newCampaign("template_version", 7), 422, "body.template_version"},
			{"no audience", b.newCampaign("audience", nil), 422, "body.audience"},
			{"empty audience", b.newCampaign("audience", map[string]any{}), 422, "body.audience"},
			{"unknown list", b.newCampaign("audience", map[string]any{"lists": []string{b.news, id.New(id.List)}}), 422, "body.audience.lists[1]"},
			{"not a list id", b.newCampaign("audience", map[string]any{"lists": []string{"news"}}), 422, "body.audience.lists[0]"},
			{"unknown segment", b.newCampaign("audience", map[string]any{"segment": id.New(id.Segment)}), 422, "body.audience.segment"},
			{"data against the schema", b.newCampaign("data", map[string]any{"title": 7}), 422, "body.data/title"},
			{"data missing", b.newCampaign("data", nil), 422, "body.data/title"},
			{"data not an object", b.newCampaign("data", []int{1}), 422, "body.data"},
			{"unknown schedule kind", b.newCampaign("schedule", map[string]any{"kind": "weekly"}), 422, "body.schedule.kind"},
			{"at without a time", b.newCampaign("schedule", map[string]any{"kind": "at"}), 422, "body.schedule.at"},
			{"at in the past", b.newCampaign("schedule", map[string]any{"kind": "at", "at": past}), 422, "body.schedule.at"},
			{"at not a time", b.newCampaign("schedule", map[string]any{"kind": "at", "at": "tomorrow"}), 422, "body.schedule.at"},
			{"bad cron", b.newCampaign("schedule", map[string]any{"kind": "cron", "cron": "61 9 * * *"}), 422, "body.schedule.cron"},
			{"cron without an expression", b.newCampaign("schedule", map[string]any{"kind": "cron"}), 422, "body.schedule.cron"},
			{"bad time zone", b.newCampaign("schedule", map[string]any{"kind": "cron", "cron": "0 9 * * 1", "timezone": "Asia/Gotham"}), 422, "body.schedule.timezone"},
			{"negative rate", b.newCampaign("rate", -1), 422, "body.rate"},
			{"cap of no days", b.newCampaign("frequency_cap", map[string]any{"kind": "days"}), 422, "body.frequency_cap.days"},
			{"cap of negative days", b.newCampaign("frequency_cap", map[string]any{"kind": "days", "days": -3}), 422, "body.frequency_cap.days"},
			{"unknown cap", b.newCampaign("frequency_cap", map[string]any{"kind": "weekly"}), 422, "body.frequency_cap.kind"},
			{"bad from", b.newCampaign("from", "Shop <news@>"), 422, "body.from"},
			{"bad reply_to", b.newCampaign("reply_to", "nobody"), 422, "body.reply_to"},
			{"subject with a line break", b.newCampaign("subject", "Hi\r\nBcc: victim@example.com"), 422, "body.subject"},
			{"empty tag", b.newCampaign("tags", []string{"news", ""}), 422, "body.tags[1]"},
			{"negative template version", b.newCampaign("template_version", -1), 422, "body.template_version"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				wantProblem(t, b.do("POST", "/v1/campaigns", tc.body), tc.status, tc.location)
			})
		}
		if n := b.campaignCount(); n != 0 {
			t.Fatalf("refused campaigns stored %d", n)
		}

		// The same checks on PATCH, which changes nothing when it refuses.
		c := b.create(b.newCampaign("audience", map[string]any{"segment": segID}))
		cmpID := c["id"].(string)
		for _, tc := range []struct {
			body     map[string]any
			location string
		}{
			{map[string]any{"template": "nope"}, "body.template"},
			{map[string]any{"audience": map[string]any{"lists": []string{id.New(id.List)}}}, "body.audience.lists[0]"},
			{map[string]any{"schedule": map[string]any{"kind": "at", "at": past}}, "body.schedule.at"},
			{map[string]any{"data": map[string]any{}}, "body.data/title"},
			{map[string]any{"name": ""}, "body.name"},
		} {
			wantProblem(t, b.do("PATCH", "/v1/campaigns/"+cmpID, tc.body), 422, tc.location)
		}
		after := b.do("GET", "/v1/campaigns/"+cmpID, nil).json(t)
		delete(c, "updated_at")
		delete(after, "updated_at")
		if j1, j2 := must(json.Marshal(c)), must(json.Marshal(after)); string(j1) != string(j2) {
			t.Errorf("refused PATCHes changed the campaign:\n%s\n%s", j1, j2)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestOpenAPICampaigns: the campaign routes are in the document, and a run's progress and
// exclusions are described key by key (every recipient state of docs/api.md), for typed clients.
func TestOpenAPICampaigns(t *testing.T) {
	t.Parallel()
	doc := openAPIDoc(t, setup(t), "/v1/openapi.json")
	paths := doc["paths"].(map[string]any)
	for path, methods := range map[string][]string{
		"/v1/campaigns": {"get", "post"}, "/v1/campaigns/{id}": {"get", "patch", "delete"},
		"/v1/campaigns/{id}/start": {"post"}, "/v1/campaigns/{id}/pause": {"post"}, "/v1/campaigns/{id}/resume": {"post"},
		"/v1/campaigns/{id}/cancel": {"post"}, "/v1/campaigns/{id}/test": {"post"}, "/v1/campaigns/{id}/runs": {"get"},
		"/v1/campaigns/{id}/runs/{run}": {"get"}, "/v1/campaigns/{id}/runs/{run}/recipients": {"get"},
	} {
		for _, m := range methods {
			if item, _ := paths[path].(map[string]any); item[m] == nil {
				t.Errorf("%s %s is not in the document", strings.ToUpper(m), path)
			}
		}
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, keys := range map[string][]string{
		"RunProgressResource": {"pending", "queued", "sent", "deferred", "failed", "suppressed", "unsubscribed", "bounced", "complained", "cancelled"},
		"RunExcludedResource": {"unsubscribed", "pending", "suppressed", "capped"},
	} {
		props, _ := schemas[name].(map[string]any)["properties"].(map[string]any)
		for _, k := range keys {
			if p, _ := props[k].(map[string]any); p == nil || p["description"] == nil {
				t.Errorf("%s.%s is not described: %v", name, k, props[k])
			}
		}
		if len(props) != len(keys) {
			t.Errorf("%s has %d properties, want %d", name, len(props), len(keys))
		}
	}
}

// TestCampaignSenderDomains: a key with sender domains creates, changes, starts, resumes and
// tests only campaigns that send from them (403 at the from it got, or the campaign's), and
// may still pause or cancel the others.
func TestCampaignSenderDomains(t *testing.T) {
	onCampaignDrivers(t, func(t *testing.T, b *campaignBundle) {
		key := b.addKey("shop-key-0123456789", store.APIKey{Scopes: []string{"campaigns"}, SenderDomains: []string{"shop.example"}})
		auth := []string{"Authorization", "Bearer " + key}
		for _, from := range []any{"News <news@evil.example>", nil} { // nil: the default sender, postie.example
			wantProblem(t, b.do("POST", "/v1/campaigns", b.newCampaign("from", from), auth...), http.StatusForbidden, "body.from")
		}
		ours := b.do("POST", "/v1/campaigns", b.newCampaign("from", "News <news@shop.example>", "name", "ours"), auth...)
		ours.want(t, "a campaign from the key's domain", http.StatusCreated)
		oursID := ours.json(t)["id"].(string)
		wantProblem(t, b.do("PATCH", "/v1/campaigns/"+oursID, map[string]any{"from": "news@evil.example"}, auth...),
			http.StatusForbidden, "body.from")

		theirs := b.create(b.newCampaign("from", "news@evil.example", "name", "theirs"))["id"].(string) // the admin key
		wantProblem(t, b.do("PATCH", "/v1/campaigns/"+theirs, map[string]any{"name": "mine now"}, auth...),
			http.StatusForbidden, "campaign.from")
		wantProblem(t, b.do("POST", "/v1/campaigns/"+theirs+"/start", nil, auth...), http.StatusForbidden, "campaign.from")
		wantProblem(t, b.do("POST", "/v1/campaigns/"+theirs+"/test", map[string]any{"to": []string{"qa@example.com"}}, auth...),
			http.StatusForbidden, "campaign.from")
		b.do("POST", "/v1/campaigns/"+theirs+"/start", nil).want(t, "the admin starts theirs", http.StatusOK)
		b.do("POST", "/v1/campaigns/"+theirs+"/pause", nil, auth...).want(t, "pause theirs", http.StatusOK, `"state":"paused"`)
		wantProblem(t, b.do("POST", "/v1/campaigns/"+theirs+"/resume", nil, auth...), http.StatusForbidden, "campaign.from")
		b.do("POST", "/v1/campaigns/"+theirs+"/cancel", nil, auth...).want(t, "cancel theirs", http.StatusOK, `"state":"cancelled"`)

		b.do("POST", "/v1/campaigns/"+oursID+"/test", map[string]any{"to": []string{"qa@example.com"}}, auth...).
			want(t, "test ours", http.StatusAccepted)
		b.do("POST", "/v1/campaigns/"+oursID+"/start", nil, auth...).want(t, "start ours", http.StatusOK, `"state":"running"`)
	})
}
