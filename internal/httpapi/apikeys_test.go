package httpapi_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/store"
)

// addKey stores a key with secret and the settings of k, and returns the secret.
func (b *bundle) addKey(secret string, k store.APIKey) string {
	b.t.Helper()
	sum := sha256.Sum256([]byte(secret))
	k.Hash, k.CreatedAt = sum[:], testNow
	if k.ID == "" {
		k.ID = "key_" + strings.ReplaceAll(secret, "-", "_")
	}
	if err := b.store.APIKeyCreate(b.t.Context(), k); err != nil {
		b.t.Fatal(err)
	}
	return secret
}

// operations lists every operation of the OpenAPI document as a mux pattern.
func operations(s *httpapi.Server) []string {
	var out []string
	for p, item := range s.API().OpenAPI().Paths {
		for m, op := range map[string]any{http.MethodGet: item.Get, http.MethodPost: item.Post, http.MethodPut: item.Put,
			http.MethodPatch: item.Patch, http.MethodDelete: item.Delete} {
			if fmt.Sprint(op) != "<nil>" {
				out = append(out, m+" "+p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// publicRoutes need no key (authenticated otherwise, or not at all).
var publicRoutes = map[string]bool{"POST /v1/inbound/ses": true}

// rawRoutes are authenticated routes served outside the OpenAPI document.
var rawRoutes = map[string]bool{"GET /metrics": true}

// TestEveryRouteHasAScope: the scope table names every authenticated operation, and nothing
// else, so a route added without a scope fails here (it would need admin meanwhile).
func TestEveryRouteHasAScope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_ = b
	srv := httpapi.New(httpapi.Config{Store: b.store})
	table := httpapi.RouteScopes()
	ops := map[string]bool{}
	for _, op := range operations(srv) {
		ops[op] = true
		if publicRoutes[op] {
			continue
		}
		if _, ok := table[op]; !ok {
			t.Errorf("%s has no scope in internal/httpapi/scopes.go", op)
		}
	}
	for pattern, scope := range table {
		if !ops[pattern] && !rawRoutes[pattern] {
			t.Errorf("scopes.go names %s, which is no route", pattern)
		}
		if err := apikey.CheckScope(scope); err != nil {
			t.Errorf("%s: %v", pattern, err)
		}
	}
}

// TestScopes walks the route table: a key holding one scope reaches exactly the routes of that
// scope (admin: every route), and is answered 403 naming the scope elsewhere, before anything
// is read or done.
func TestScopes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	secrets := map[string]string{}
	for _, sc := range apikey.Scopes {
		secrets[sc] = b.addKey("scope-"+sc+"-key-0123456789", store.APIKey{Scopes: []string{sc}})
	}
	none := b.addKey("no-scope-key-0123456789", store.APIKey{})
	srv := httpapi.New(httpapi.Config{Store: b.store})
	messages := b.count()
	for _, op := range operations(srv) {
		if publicRoutes[op] {
			continue
		}
		method, path, _ := strings.Cut(op, " ")
		path = regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "x")
		want := httpapi.RouteScope(op)
		for _, sc := range apikey.Scopes {
			r := b.do(method, path, nil, "Authorization", "Bearer "+secrets[sc])
			refused := r.status == http.StatusForbidden && strings.Contains(string(r.body), "lacks the scope")
			if allowed := sc == want || sc == apikey.ScopeAdmin; allowed == refused {
				t.Errorf("%s with a %s key: %d %.200s; want allowed %v", op, sc, r.status, r.body, allowed)
			}
			if refused && !strings.Contains(string(r.body), fmt.Sprintf(`this API key lacks the scope \"%s\"`, want)) {
				t.Errorf("%s with a %s key: %s; want the scope %s named", op, sc, r.body, want)
			}
		}
		if r := b.do(method, path, nil, "Authorization", "Bearer "+none); r.status != http.StatusForbidden {
			t.Errorf("%s with a key without scopes: %d", op, r.status)
		}
	}
	if n := b.count(); n != messages {
		t.Errorf("messages after the walk: %d, want %d", n, messages)
	}
	// The OpenAPI document names each operation's scope.
	doc := b.do(http.MethodGet, "/v1/openapi.json", nil).json(t)
	op := doc["paths"].(map[string]any)["/v1/templates/{name}"].(map[string]any)["put"].(map[string]any)
	if sec := fmt.Sprint(op["security"]); sec != "[map[bearer:[templates]]]" {
		t.Errorf("PUT /v1/templates/{name} security = %s", sec)
	}
	if _, ok := op["responses"].(map[string]any)["403"]; !ok {
		t.Error("PUT /v1/templates/{name} documents no 403")
	}
}

// TestAPIKeysRoutes: an admin creates a key (its secret shown once, never its hash), the key
// works within its scopes, is listed and read without its secret, and once revoked is refused
// at once on this node while staying listed.
func TestAPIKeysRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do(http.MethodPost, "/v1/api-keys", map[string]any{"name": "shop", "scopes": []string{"read", "send"},
		"sender_domains": []string{"Shop.Example"}, "rate_limit": 5})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created httpapi.APIKeyResource
	if err := json.Unmarshal(r.body, &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Secret, "pk_") || created.Prefix != created.Secret[:8] ||
		fmt.Sprint(created.Scopes, created.SenderDomains, created.RateLimit, created.Burst) != "[send read] [shop.example] 5 5" {
		t.Errorf("created: %s", r.body)
	}
	if strings.Contains(string(r.body), "hash") {
		t.Errorf("the answer shows the hash: %s", r.body)
	}
	key := created.Secret
	if r := b.do(http.MethodGet, "/v1/messages", nil, "Authorization", "Bearer "+key); r.status != http.StatusOK {
		t.Errorf("the new key reading messages: %d %s", r.status, r.body)
	}
	b.wantProblem("the new key listing keys", b.do(http.MethodGet, "/v1/api-keys", nil, "Authorization", "Bearer "+key), http.StatusForbidden, "")

	r = b.do(http.MethodGet, "/v1/api-keys", nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), key) || strings.Contains(string(r.body), `"secret"`) {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	var list struct{ Data []httpapi.APIKeyResource }
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	var listed *httpapi.APIKeyResource
	for i := range list.Data {
		if list.Data[i].ID == created.ID {
			listed = &list.Data[i]
		}
	}
	if len(list.Data) != 3 || listed == nil || listed.LastUsedAt == nil || listed.Prefix != created.Prefix {
		t.Errorf("list: %s; want the two test keys and the new one, used", r.body)
	}
	r = b.do(http.MethodGet, "/v1/api-keys/"+created.ID, nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), `"secret"`) || !strings.Contains(string(r.body), created.ID) {
		t.Errorf("get: %d %s", r.status, r.body)
	}
	b.wantProblem("get unknown", b.do(http.MethodGet, "/v1/api-keys/key_unknown", nil), http.StatusNotFound, "")

	r = b.do(http.MethodDelete, "/v1/api-keys/"+created.ID, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"revoked_at":"`+testNow.Format(time.RFC3339)) {
		t.Errorf("revoke: %d %s", r.status, r.body)
	}
	if r := b.do(http.MethodGet, "/v1/messages", nil, "Authorization", "Bearer "+key); r.status != http.StatusUnauthorized {
		t.Errorf("the revoked key, at once on this node: %d", r.status)
	}
	if r := b.do(http.MethodGet, "/v1/api-keys/"+created.ID, nil); !strings.Contains(string(r.body), `"revoked_at"`) {
		t.Errorf("get the revoked key: %s", r.body)
	}
	b.wantProblem("revoke unknown", b.do(http.MethodDelete, "/v1/api-keys/key_unknown", nil), http.StatusNotFound, "")
}

// TestAPIKeyCreateBad: every bad setting is named at its JSON path, and nothing is stored.
func TestAPIKeyCreateBad(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name   string
		body   string
		fields []string
	}{
		{"no scopes", `{"name":"x"}`, []string{"body.scopes"}},
		{"empty scopes", `{"scopes":[]}`, []string{"body.scopes"}},
		{"unknown scope", `{"scopes":["send","sned"]}`, []string{"body.scopes[1]"}},
		{"bad domain", `{"scopes":["send"],"sender_domains":["ok.example","bob@x.example"]}`, []string{"body.sender_domains[1]"}},
		{"negative rate", `{"scopes":["send"],"rate_limit":-1}`, []string{"body.rate_limit"}},
		{"burst without rate", `{"scopes":["send"],"burst":5}`, []string{"body.burst"}},
		{"several", `{"scopes":["x"],"sender_domains":[""],"rate_limit":-2}`, []string{"body.scopes[0]", "body.sender_domains[0]", "body.rate_limit"}},
	} {
		r := b.do(http.MethodPost, "/v1/api-keys", tc.body)
		b.wantProblem(tc.name, r, http.StatusUnprocessableEntity, "")
		for _, f := range tc.fields {
			if r.status == http.StatusUnprocessableEntity && !hasLocation(r.json(t), f) {
				t.Errorf("%s: no error at %s: %s", tc.name, f, r.body)
			}
		}
	}
	b.wantProblem("unknown field", b.do(http.MethodPost, "/v1/api-keys", `{"scopes":["send"],"scope":"admin"}`), http.StatusUnprocessableEntity, "")
	if ks, err := b.store.APIKeyList(t.Context()); err != nil || len(ks) != 2 {
		t.Errorf("keys after refused creations: %d, %v; want the 2 of setup", len(ks), err)
	}
}

// TestSenderDomains: a key with sender domains sends from them only, on a single message and
// on each item of a batch (403 naming the from field; nothing stored for it).
func TestSenderDomains(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key := b.addKey("shop-key-0123456789", store.APIKey{Scopes: []string{"send"}, SenderDomains: []string{"shop.example"}})
	auth := []string{"Authorization", "Bearer " + key}
	msg := func(from string) map[string]any {
		m := map[string]any{"to": []string{"ann@example.com"}, "subject": "Hi", "text": "Hello"}
		if from != "" {
			m["from"] = from
		}
		return m
	}
	if r := b.do(http.MethodPost, "/v1/messages", msg("Shop <orders@SHOP.example>"), auth...); r.status != http.StatusAccepted {
		t.Errorf("from an allowed domain: %d %s", r.status, r.body)
	}
	for _, from := range []string{"orders@evil.example", "orders@mail.shop.example", ""} { // "": the default sender, postie.example
		r := b.do(http.MethodPost, "/v1/messages", msg(from), auth...)
		b.wantProblem("from "+from, r, http.StatusForbidden, "body.from")
	}
	r := b.do(http.MethodPost, "/v1/messages/batch", map[string]any{"messages": []any{msg("a@shop.example"), msg("b@evil.example")}}, auth...)
	if r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	var ans httpapi.BatchAnswer
	if err := json.Unmarshal(r.body, &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Results[0].ID == "" || ans.Results[1].Error == nil || ans.Results[1].Error.Status != http.StatusForbidden ||
		!strings.Contains(ans.Results[1].Error.Detail, "body.messages[1].from") {
		t.Errorf("batch: %s", r.body)
	}
	if n := b.count(); n != 2 {
		t.Errorf("messages stored: %d, want 2", n)
	}
}

// TestRateLimit: a key's rate limit counts messages (a batch of n costs n): over it, 429 with
// Retry-After and nothing stored; a batch larger than the burst is refused at body.messages;
// the bucket refills with time.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	now := testNow
	b := setup(t, func(c *httpapi.Config) { c.Now = func() time.Time { return now } })
	key := b.addKey("limited-key-0123456789", store.APIKey{Scopes: []string{"send"}, RateLimit: 1, Burst: 3})
	auth := []string{"Authorization", "Bearer " + key}
	msg := map[string]any{"to": []string{"ann@example.com"}, "subject": "Hi", "text": "Hello"}
	batch := func(n int) map[string]any {
		ms := make([]any, n)
		for i := range ms {
			ms[i] = msg
		}
		return map[string]any{"messages": ms}
	}
	if r := b.do(http.MethodPost, "/v1/messages/batch", batch(2), auth...); r.status != http.StatusOK {
		t.Fatalf("a batch of 2 of a burst of 3: %d %s", r.status, r.body)
	}
	r := b.do(http.MethodPost, "/v1/messages/batch", batch(2), auth...)
	b.wantProblem("a batch of 2 with 1 left", r, http.StatusTooManyRequests, "")
	if ra := r.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1", ra)
	}
	// A message refused for another reason gives its place back.
	b.wantProblem("a bad message", b.do(http.MethodPost, "/v1/messages", map[string]any{"to": []string{"x"}}, auth...), http.StatusUnprocessableEntity, "body.to[0]")
	if r := b.do(http.MethodPost, "/v1/messages", msg, auth...); r.status != http.StatusAccepted {
		t.Errorf("the last one: %d %s", r.status, r.body)
	}
	r = b.do(http.MethodPost, "/v1/messages", msg, auth...)
	b.wantProblem("over the limit", r, http.StatusTooManyRequests, "")
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	b.wantProblem("more than the burst", b.do(http.MethodPost, "/v1/messages/batch", batch(4), auth...), http.StatusUnprocessableEntity, "body.messages")
	if n := b.count(); n != 3 {
		t.Errorf("messages stored: %d, want 3", n)
	}
	now = now.Add(3 * time.Second)
	if r := b.do(http.MethodPost, "/v1/messages/batch", batch(3), auth...); r.status != http.StatusOK {
		t.Errorf("3 after 3 s: %d %s", r.status, r.body)
	}
	// Another key has its own bucket.
	if r := b.do(http.MethodPost, "/v1/messages", msg); r.status != http.StatusAccepted {
		t.Errorf("the admin key: %d %s", r.status, r.body)
	}
}

// TestSenderDomainsOfRetriesAndTriggers: a key with sender domains retries only the failed
// messages from them, one at a time, and makes or changes only triggers that send from them.
func TestSenderDomainsOfRetriesAndTriggers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key := b.addKey("shop-key-0123456789", store.APIKey{Scopes: []string{"send", "campaigns"}, SenderDomains: []string{"shop.example"}})
	auth := []string{"Authorization", "Bearer " + key}
	failed := func(from string) string {
		return b.fail(map[string]any{"from": from, "to": []string{"ann@example.com"}, "subject": "Hi", "text": "Hello"},
			&store.DeliveryError{Code: 550, Enhanced: "5.1.1", Text: "user unknown", Stage: "rcpt"})
	}
	theirs, ours := failed("a@evil.example"), failed("Shop <a@shop.example>")
	b.wantProblem("retry another domain's message", b.do("POST", "/v1/messages/"+theirs+"/retry", nil, auth...), 403, "message.from")
	if r := b.do("POST", "/v1/messages/"+ours+"/retry", nil, auth...); r.status != 200 || r.json(t)["status"] != "queued" {
		t.Errorf("retry of a message from the key's domain: %d %s", r.status, r.body)
	}
	b.wantProblem("retry in bulk", b.do("POST", "/v1/messages/retry", map[string]any{}, auth...), 403, "")
	if m, err := b.store.MessageGet(t.Context(), theirs); err != nil || m.Status != store.StatusFailed {
		t.Errorf("the refused retry changed the message: %v, %v", m.Status, err)
	}

	b.mustPut("cart", map[string]any{"subject": "Cart", "text": "Hi"})
	trigger := func(from string) map[string]any {
		t := map[string]any{"name": "Cart", "event": "cart.abandoned", "template": "cart", "to": map[string]any{"contact": true}}
		if from != "" {
			t["from"] = from
		}
		return t
	}
	for _, from := range []string{"x@evil.example", ""} { // "": the default sender, postie.example
		b.wantProblem("trigger from "+from, b.do("POST", "/v1/triggers", trigger(from), auth...), 403, "body.from")
	}
	r := b.do("POST", "/v1/triggers", trigger("Shop <cart@shop.example>"), auth...)
	r.want(t, "a trigger from the key's domain", 201)
	ok := r.json(t)["id"].(string)
	b.wantProblem("move it to another domain", b.do("PATCH", "/v1/triggers/"+ok, map[string]any{"from": "x@evil.example"}, auth...), 403, "body.from")
	r = b.do("POST", "/v1/triggers", trigger("x@evil.example")) // the admin key
	r.want(t, "the admin's trigger", 201)
	other := r.json(t)["id"].(string)
	b.wantProblem("enable another domain's trigger", b.do("PATCH", "/v1/triggers/"+other, map[string]any{"enabled": true}, auth...), 403, "trigger.from")
	b.do("PATCH", "/v1/triggers/"+other, map[string]any{"from": "cart@shop.example"}, auth...).want(t, "take it to the key's domain", 200)
	b.do("PATCH", "/v1/triggers/"+other, map[string]any{"enabled": false}, auth...).want(t, "then change it", 200)
}
