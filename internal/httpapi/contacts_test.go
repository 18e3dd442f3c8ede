package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/drivertest"
)

// onDrivers runs fn with an API over each store driver, the audience service holding an
// erasure key.
func onDrivers(t *testing.T, fn func(t *testing.T, b *bundle)) {
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		fn(t, setupOn(t, st, func(c *httpapi.Config) {
			c.Audience = audience.New(audience.Config{Store: st, Now: c.Now, ErasureKey: []byte("test erasure key")})
		}))
	})
}

// want checks a response's status, and that its body holds each of subs.
func (r response) want(t *testing.T, what string, status int, subs ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
	for _, s := range subs {
		if !strings.Contains(string(r.body), s) {
			t.Errorf("%s: body does not contain %q: %s", what, s, r.body)
		}
	}
}

func (b *bundle) contacts() int {
	b.t.Helper()
	page, _, err := b.store.ContactList(context.Background(), store.ContactListParams{Limit: 1000})
	if err != nil {
		b.t.Fatal(err)
	}
	return len(page)
}

func (b *bundle) newList(name string, doubleOptIn bool) string {
	b.t.Helper()
	r := b.do("POST", "/v1/lists", map[string]any{"name": name, "double_opt_in": doubleOptIn, "wording": "Send me " + name})
	r.want(b.t, "POST /v1/lists", http.StatusCreated)
	return r.json(b.t)["id"].(string)
}

func TestContactsAPI(t *testing.T) {
	t.Parallel()
	onDrivers(t, func(t *testing.T, b *bundle) {
		news := b.newList("news", false)
		promo := b.newList("promo", true)

		r := b.do("POST", "/v1/contacts", map[string]any{"email": "Ann@Example.com", "external_id": "u-1", "name": "Ann",
			"locale": "en_gb", "timezone": "Europe/London", "attributes": map[string]any{"plan": "pro"},
			"last_active_at": "2026-11-01T10:00:00Z", "lists": []string{news, promo},
			"consent": map[string]any{"source": "form", "ip": "192.0.2.7"}})
		r.want(t, "create", http.StatusCreated, `"outcome":"created"`, `"pending":["`+promo+`"]`)
		id := r.json(t)["id"].(string)
		b.do("POST", "/v1/contacts", map[string]any{"email": "ann@example.com"}).want(t, "merge", http.StatusOK, `"outcome":"merged"`)
		b.do("POST", "/v1/contacts", map[string]any{"email": "ann@example.com"}).want(t, "again", http.StatusOK, `"outcome":"unchanged"`)

		for _, ref := range []string{id, "ANN@example.com", "ext:u-1", url.PathEscape("ann+x@example.com")} {
			r := b.do("GET", "/v1/contacts/"+ref, nil)
			if ref == url.PathEscape("ann+x@example.com") {
				r.want(t, "GET unknown", http.StatusNotFound)
				continue
			}
			r.want(t, "GET "+ref, http.StatusOK, `"id":"`+id+`"`, `"email":"ann@example.com"`, `"locale":"en-GB"`,
				`"attributes":{"plan":"pro"}`, `"last_active_at":"2026-11-01T10:00:00Z"`, `"external_id":"u-1"`)
		}
		b.do("PATCH", "/v1/contacts/ext:u-1", map[string]any{"email": "ann@new.example", "attributes": map[string]any{"plan": nil, "seats": 2}}).
			want(t, "PATCH", http.StatusOK, `"email":"ann@new.example"`, `"attributes":{"seats":2}`, `"name":"Ann"`)

		b.do("POST", "/v1/contacts", map[string]any{"email": "bob@example.com", "lists": []string{news}}).want(t, "bob", http.StatusCreated)
		b.do("GET", "/v1/contacts?list="+promo, nil).want(t, "list members", http.StatusOK, id)
		r = b.do("GET", "/v1/contacts?list="+news+"&status=subscribed&limit=1", nil)
		r.want(t, "page 1", http.StatusOK, id, `"next_cursor"`)
		b.do("GET", "/v1/contacts?list="+news+"&status=subscribed&limit=1&cursor="+r.json(t)["next_cursor"].(string), nil).
			want(t, "page 2", http.StatusOK, "bob@example.com")

		b.do("GET", "/v1/contacts/"+id+"/subscriptions", nil).want(t, "subscriptions", http.StatusOK,
			`"list_id":"`+promo+`","contact_id":"`+id+`","status":"pending"`, `"status":"subscribed"`)
		// Unsubscribe, then an upsert does not bring her back; PUT with resubscribe does.
		b.do("DELETE", "/v1/lists/"+news+"/contacts/"+id+"?source=unsubscribe_link", nil).want(t, "unsubscribe", http.StatusOK, `"status":"unsubscribed"`)
		b.do("POST", "/v1/contacts", map[string]any{"email": "ann@new.example", "lists": []string{news}}).want(t, "kept", http.StatusOK, `"kept":["`+news+`"]`)
		b.do("PUT", "/v1/lists/"+news+"/contacts/ann@new.example", nil).want(t, "PUT kept", http.StatusOK, `"kept":true`, `"status":"unsubscribed"`)
		b.do("PUT", "/v1/lists/"+news+"/contacts/ann@new.example", map[string]any{"resubscribe": true, "consent": map[string]any{"source": "preferences"}}).
			want(t, "PUT resubscribe", http.StatusOK, `"status":"subscribed"`)
		b.do("GET", "/v1/contacts/"+id+"/consent", nil).want(t, "consent", http.StatusOK,
			`"action":"subscribe","source":"form","ip":"192.0.2.7"`, `"wording":"Send me promo"`, `"action":"unsubscribe","source":"unsubscribe_link"`,
			`"action":"resubscribe","source":"preferences"`)
		// PUT with an address that is no contact creates it.
		b.do("PUT", "/v1/lists/"+promo+"/contacts/new@example.com", map[string]any{"confirmed": true}).want(t, "PUT new", http.StatusOK, `"status":"subscribed"`)
		b.do("GET", "/v1/lists/"+promo, nil).want(t, "list counts", http.StatusOK, `"subscribed":1,"pending":1,"unsubscribed":0`)
		b.do("PATCH", "/v1/lists/"+promo, map[string]any{"public": true}).want(t, "PATCH list", http.StatusOK, `"public":true`, `"name":"promo"`)
		b.do("GET", "/v1/lists", nil).want(t, "lists", http.StatusOK, news, promo)

		// Erasure, then delete; both gone.
		b.do("DELETE", "/v1/contacts/"+id+"?erase=true", nil).want(t, "erase", http.StatusNoContent)
		b.do("GET", "/v1/contacts/"+id, nil).want(t, "GET erased", http.StatusNotFound)
		if _, err := b.store.SuppressionGet(context.Background(), audience.ErasedKey([]byte("test erasure key"), "ann@new.example"), "", testNow); err != nil {
			t.Errorf("erased suppression: %v", err)
		}
		b.do("DELETE", "/v1/contacts/bob@example.com", nil).want(t, "delete", http.StatusNoContent)
		b.do("DELETE", "/v1/contacts/bob@example.com", nil).want(t, "delete again", http.StatusNotFound)
		b.do("DELETE", "/v1/lists/"+news, nil).want(t, "delete list", http.StatusNoContent)
		b.do("GET", "/v1/lists/"+news, nil).want(t, "GET deleted list", http.StatusNotFound)
	})
}

func TestContactsBadInput(t *testing.T) {
	t.Parallel()
	onDrivers(t, func(t *testing.T, b *bundle) {
		news := b.newList("news", false)
		big := strings.Repeat("x", 65<<10)
		tests := []struct {
			name, method, path string
			body               any
			status             int
			location           string
		}{
			{"no email", "POST", "/v1/contacts", `{}`, 422, "body.email"},
			{"bad email", "POST", "/v1/contacts", `{"email":"ann@"}`, 422, "body.email"},
			{"email with a name", "POST", "/v1/contacts", `{"email":"Ann <ann@example.com>"}`, 422, "body.email"},
			{"email not a string", "POST", "/v1/contacts", `{"email":42}`, 422, "body.email"},
			{"unknown field", "POST", "/v1/contacts", `{"email":"a@example.com","plan":"pro"}`, 422, "body.plan"},
			{"duplicate member", "POST", "/v1/contacts", `{"email":"a@example.com","email":"b@example.com"}`, 422, "body.email"},
			{"attributes array", "POST", "/v1/contacts", `{"email":"a@example.com","attributes":[1]}`, 422, "body.attributes"},
			{"attributes too large", "POST", "/v1/contacts", `{"email":"a@example.com","attributes":{"x":"` + big + `"}}`, 422, "body.attributes"},
			{"attributes NUL", "POST", "/v1/contacts", `{"email":"a@example.com","attributes":{"x":"\u0000"}}`, 422, "body.attributes"},
			{"timezone", "POST", "/v1/contacts", `{"email":"a@example.com","timezone":"Moon/Base"}`, 422, "body.timezone"},
			{"locale", "POST", "/v1/contacts", `{"email":"a@example.com","locale":"english please"}`, 422, "body.locale"},
			{"last_active_at", "POST", "/v1/contacts", `{"email":"a@example.com","last_active_at":"yesterday"}`, 422, "body.last_active_at"},
			{"unknown list", "POST", "/v1/contacts", `{"email":"a@example.com","lists":["` + news + `","lst_nope"]}`, 422, "body.lists[1]"},
			{"consent ip", "POST", "/v1/contacts", `{"email":"a@example.com","consent":{"ip":"nope"}}`, 422, "body.consent.ip"},
			{"malformed", "POST", "/v1/contacts", `{"email":`, 400, "body"},
			{"bad ref", "GET", "/v1/contacts/nobody", nil, 422, "path.ref"},
			{"bad id ref", "GET", "/v1/contacts/ctc_123", nil, 422, "path.ref"},
			{"bad status", "GET", "/v1/contacts?list=" + news + "&status=gone", nil, 422, "query.status"},
			{"status without list", "GET", "/v1/contacts?status=pending", nil, 422, "query.status"},
			{"bad cursor", "GET", "/v1/contacts?cursor=abc", nil, 422, "query.cursor"},
			{"patch bad email", "PATCH", "/v1/contacts/a@example.com", `{"email":"x"}`, 404, ""},
			{"list without name", "POST", "/v1/lists", `{"description":"d"}`, 422, "body.name"},
			{"list empty name", "POST", "/v1/lists", `{"name":" "}`, 422, "body.name"},
			{"list unknown field", "POST", "/v1/lists", `{"name":"x","color":"red"}`, 422, "body.color"},
			{"list name control", "POST", "/v1/lists", `{"name":"a\u0007"}`, 422, "body.name"},
			{"subscribe bad contact", "PUT", "/v1/lists/" + news + "/contacts/nobody", nil, 422, "path.contact"},
			{"subscribe unknown list", "PUT", "/v1/lists/lst_nope/contacts/a@example.com", nil, 404, ""},
			{"subscribe bad ip", "PUT", "/v1/lists/" + news + "/contacts/a@example.com", `{"consent":{"ip":"x"}}`, 422, "body.consent.ip"},
			{"unsubscribe unknown contact", "DELETE", "/v1/lists/" + news + "/contacts/a@example.com", nil, 404, ""},
			{"batch empty", "POST", "/v1/contacts/batch", `{"contacts":[]}`, 422, "body.contacts"},
			{"batch missing", "POST", "/v1/contacts/batch", `{}`, 422, "body.contacts"},
			{"batch not an array", "POST", "/v1/contacts/batch", `{"contacts":{}}`, 422, "body.contacts"},
			{"batch unknown field", "POST", "/v1/contacts/batch", `{"contacts":[],"x":1}`, 422, "body"},
			{"batch malformed", "POST", "/v1/contacts/batch", `{"contacts":[{"email":"a@example.com"}`, 400, "body"},
			{"batch too large", "POST", "/v1/contacts/batch", `{"contacts":[` + strings.TrimSuffix(strings.Repeat(`{"email":"a@example.com"},`, 1001), ",") + `]}`, 413, "body.contacts"},
		}
		for _, tc := range tests {
			r := b.do(tc.method, tc.path, tc.body)
			r.want(t, tc.name, tc.status)
			if tc.location != "" && !strings.Contains(string(r.body), `"location":"`+tc.location+`"`) {
				t.Errorf("%s: no error at %s: %s", tc.name, tc.location, r.body)
			}
		}
		if n := b.contacts(); n != 0 {
			t.Errorf("%d contacts stored by bad requests", n)
		}
		if ls, _ := b.store.ListList(context.Background()); len(ls) != 1 {
			t.Errorf("%d lists, want 1", len(ls))
		}
	})
}

func TestContactBatch(t *testing.T) {
	t.Parallel()
	onDrivers(t, func(t *testing.T, b *bundle) {
		news := b.newList("news", false)
		b.do("POST", "/v1/contacts", map[string]any{"email": "old@example.com", "external_id": "u-9"}).want(t, "old", http.StatusCreated)
		items := []string{
			`{"email":"a@example.com","lists":["` + news + `"],"attributes":{"n":1}}`,
			`{"email":"A@example.com"}`,                     // the same address again
			`{"email":"b@example.com","external_id":"u-9"}`, // u-9 is old@: its email changes
			`{"email":"old@example.com","name":"x"}`,        // now free: created
			`{"email":"bad"}`,
			`{"email":"c@example.com","plan":1}`,
			`{"email":"d@example.com","lists":["lst_nope"]}`,
			`null`,
		}
		r := b.do("POST", "/v1/contacts/batch", `{"contacts":[`+strings.Join(items, ",")+`]}`)
		r.want(t, "batch", http.StatusOK, `"counts":{"created":2,"updated":1,"merged":0,"unchanged":0,"failed":5}`)
		results := r.json(t)["results"].([]any)
		wantLoc := map[int]string{1: "body.contacts[1].email", 4: "body.contacts[4].email", 5: "body.contacts[5].plan",
			6: "body.contacts[6].lists[0]", 7: "body.contacts[7]"}
		for i, res := range results {
			m := res.(map[string]any)
			loc, bad := wantLoc[i]
			if (m["error"] != nil) != bad {
				t.Errorf("item %d: %v", i, m)
				continue
			}
			if bad && !strings.Contains(fmt.Sprint(m["error"]), loc) {
				t.Errorf("item %d: error %v, want one at %s", i, m["error"], loc)
			}
		}
		if n := b.contacts(); n != 3 {
			t.Errorf("%d contacts, want 3", n)
		}
		b.do("GET", "/v1/contacts/ext:u-9", nil).want(t, "u-9", http.StatusOK, `"email":"b@example.com"`)
	})
}
