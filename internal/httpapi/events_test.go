package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/postie/postie/internal/notify"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/drivertest"
)

// eventCount is how many events are stored.
func (b *bundle) eventCount() int {
	b.t.Helper()
	r := b.do("GET", "/v1/events?limit=1000", nil)
	if r.status != 200 {
		b.t.Fatalf("GET /v1/events: %d %s", r.status, r.body)
	}
	return len(r.json(b.t)["data"].([]any))
}

// Bad events are refused with a 4xx naming the field, and nothing is stored; good ones are
// stored once per id.
func TestEventsAPI(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		b := setupOn(t, st)
		big := `{"a": "` + strings.Repeat("x", notify.MaxEventData) + `"}`
		bad := []struct {
			name, body string
			status     int
			field      string
		}{
			{"not JSON", `{"name": `, 400, "body"},
			{"no name", `{"data": {}}`, 422, "body.name"},
			{"long name", `{"name": "` + strings.Repeat("a", 129) + `"}`, 422, "body.name"},
			{"bad characters", `{"name": "Order Paid"}`, 422, "body.name"},
			{"data not an object", `{"name": "a", "data": [1]}`, 422, "body.data"},
			{"data too large", `{"name": "a", "data": ` + big + `}`, 422, "body.data"},
			{"contact without a key", `{"name": "a", "contact": {"name": "Ann"}}`, 422, "body.contact"},
			{"contact email", `{"name": "a", "contact": {"email": "ann@"}}`, 422, "body.contact.email"},
			{"unknown external_id", `{"name": "a", "contact": {"external_id": "nobody"}}`, 422, "body.contact.external_id"},
			{"occurred_at", `{"name": "a", "occurred_at": "yesterday"}`, 422, "body.occurred_at"},
			{"occurred_at ahead", `{"name": "a", "occurred_at": "2099-01-01T00:00:00Z"}`, 422, "body.occurred_at"},
			{"long id", `{"name": "a", "id": "` + strings.Repeat("i", 256) + `"}`, 422, "body.id"},
			{"unknown field", `{"name": "a", "nmae": "b"}`, 422, "body.nmae"},
			{"duplicate member", `{"name": "a", "name": "b"}`, 422, "body.name"},
		}
		for _, c := range bad {
			b.wantProblem(c.name, b.do("POST", "/v1/events", c.body), c.status, c.field)
		}
		b.wantProblem("id unlike the header", b.do("POST", "/v1/events", `{"name": "a", "id": "x"}`, "Idempotency-Key", "y"), 422, "body.id")
		if n := b.eventCount(); n != 0 {
			t.Fatalf("%d events stored from bad input", n)
		}

		r := b.do("POST", "/v1/events", `{"name": "user.signed_in", "contact": {"email": "ann@example.com"}, "data": {"x": 1}}`,
			"Idempotency-Key", "k-1")
		if r.status != 202 {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
		first := r.json(t)
		if first["duplicate"] != false || !strings.HasPrefix(first["contact_id"].(string), "ctc_") {
			t.Fatalf("answer %v", first)
		}
		r = b.do("POST", "/v1/events", `{"name": "user.signed_in", "id": "k-1"}`)
		if r.status != 200 || r.json(t)["duplicate"] != true || r.json(t)["id"] != first["id"] {
			t.Fatalf("repeat: %d %s", r.status, r.body)
		}
		// Another API key: another event.
		r = b.do("POST", "/v1/events", `{"name": "user.signed_in", "id": "k-1"}`, "Authorization", "Bearer "+otherKey)
		if r.status != 202 {
			t.Fatalf("other key: %d %s", r.status, r.body)
		}

		// A batch: each event on its own.
		r = b.do("POST", "/v1/events/batch", `{"events": [{"name": "a.b", "id": "b-1"}, {"name": "Bad"}, {"name": "a.b", "id": "k-1"}]}`)
		if r.status != 200 {
			t.Fatalf("batch: %d %s", r.status, r.body)
		}
		res := r.json(t)["results"].([]any)
		if id, _ := res[0].(map[string]any)["id"].(string); !strings.HasPrefix(id, "evt_") {
			t.Fatalf("batch results %v", res)
		}
		if e, _ := res[1].(map[string]any)["error"].(map[string]any); !hasLocation(e, "body.events[1].name") {
			t.Fatalf("batch results %v", res)
		}
		if res[2].(map[string]any)["duplicate"] != true {
			t.Fatalf("batch results %v", res)
		}
		b.wantProblem("empty batch", b.do("POST", "/v1/events/batch", `{"events": []}`), 422, "body.events")
		many := make([]string, notify.MaxBatch+1)
		for i := range many {
			many[i] = fmt.Sprintf(`{"name": "n%d"}`, i)
		}
		b.wantProblem("too many", b.do("POST", "/v1/events/batch", `{"events": [`+strings.Join(many, ",")+`]}`), 413, "body.events")

		if n := b.eventCount(); n != 3 {
			t.Fatalf("%d events, want 3", n)
		}
		r = b.do("GET", "/v1/events/"+first["id"].(string), nil)
		if r.status != 200 || r.json(t)["name"] != "user.signed_in" || r.json(t)["client_id"] != "k-1" {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
		b.wantProblem("unknown event", b.do("GET", "/v1/events/evt_00000000000000000000000000", nil), 404, "")
		r = b.do("GET", "/v1/events?name=a.b", nil)
		if r.status != 200 || len(r.json(t)["data"].([]any)) != 1 {
			t.Fatalf("GET ?name: %d %s", r.status, r.body)
		}
	})
}

// Bad triggers are refused with a 422 naming the field, and nothing is stored; a good one is
// created, changed, read and deleted.
func TestTriggersAPI(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		b := setupOn(t, st)
		b.mustPut("cart", map[string]any{"subject": "Cart {{.data.cart_id}}", "text": "Hi"})
		base := `"name": "Cart", "event": "cart.abandoned", "template": "cart"`
		good := base + `, "to": {"contact": true}`
		bad := []struct{ name, body, field string }{
			{"no event", `{"name": "x", "template": "cart", "to": {"contact": true}}`, "body.event"},
			{"bad event", `{"name": "x", "event": "Cart!", "template": "cart", "to": {"contact": true}}`, "body.event"},
			{"unknown template", `{"name": "x", "event": "a", "template": "nope", "to": {"contact": true}}`, "body.template"},
			{"bad condition", `{` + good + `, "condition": {"or": [{"data": "a", "like": 1}]}}`, "body.condition.or[0].like"},
			{"condition not JSON object", `{` + good + `, "condition": 3}`, "body.condition"},
			{"two kinds of to", `{` + base + `, "to": {"contact": true, "list": "lst_x"}}`, "body.to"},
			{"unknown list", `{` + base + `, "to": {"list": "lst_00000000000000000000000000"}}`, "body.to.list"},
			{"bad address", `{` + base + `, "to": {"addresses": ["a@"]}}`, "body.to.addresses[0]"},
			{"bad delay", `{` + good + `, "delay": "soon"}`, "body.delay"},
			{"cancel without delay", `{` + good + `, "cancel_if": {"event": "order.paid", "match": ["cart_id"]}}`, "body.cancel_if"},
			{"cancel unknown member", `{` + good + `, "delay": "1h", "cancel_if": {"event": "order.paid", "on": ["cart_id"]}}`, "body.cancel_if.on"},
			{"digest window", `{` + good + `, "digest": {"key": "seller.id", "window": "0"}}`, "body.digest.window"},
			{"bad cap", `{` + good + `, "cap": "1 day"}`, "body.cap"},
			{"bad stream", `{` + good + `, "stream": "bulk"}`, "body.stream"},
		}
		for _, c := range bad {
			b.wantProblem(c.name, b.do("POST", "/v1/triggers", c.body), 422, c.field)
		}
		if r := b.do("GET", "/v1/triggers", nil); r.status != 200 || len(r.json(t)["data"].([]any)) != 0 {
			t.Fatalf("triggers stored from bad input: %s", r.body)
		}

		r := b.do("POST", "/v1/triggers", `{`+good+`, "delay": "90m", "cancel_if": {"event": "order.paid", "match": ["cart_id"]}, "cap": "1d"}`)
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		tr := r.json(t)
		trgID := tr["id"].(string)
		if tr["delay"] != "1h30m" || tr["cap"] != "1d" || tr["stream"] != "transactional" || tr["honour_unsubscribes"] != false ||
			tr["condition"] != nil || tr["digest"] != nil || tr["enabled"] != true {
			t.Fatalf("trigger %v", tr)
		}
		r = b.do("PATCH", "/v1/triggers/"+trgID, `{"cancel_if": null, "delay": "0", "condition": {"data": "total", "gt": 0}}`)
		if r.status != 200 {
			t.Fatalf("patch: %d %s", r.status, r.body)
		}
		if tr := r.json(t); tr["cancel_if"] != nil || tr["delay"] != "0s" || tr["condition"] == nil {
			t.Fatalf("patched %v", tr)
		}
		b.wantProblem("patch a bad field", b.do("PATCH", "/v1/triggers/"+trgID, `{"to": {}}`), 422, "body.to")
		if r := b.do("GET", "/v1/triggers/"+trgID, nil); r.status != 200 || r.json(t)["to"].(map[string]any)["contact"] != true {
			t.Fatalf("get: %d %s", r.status, r.body)
		}
		if r := b.do("GET", "/v1/triggers?event=cart.abandoned", nil); len(r.json(t)["data"].([]any)) != 1 {
			t.Fatalf("list: %s", r.body)
		}
		if r := b.do("DELETE", "/v1/triggers/"+trgID, nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		b.wantProblem("deleted", b.do("GET", "/v1/triggers/"+trgID, nil), 404, "")
		b.wantProblem("not an id", b.do("PATCH", "/v1/triggers/nope", `{}`), 404, "")
	})
}
