package httpapi_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/drivertest"
	"github.com/postie/postie/internal/webhook"
)

// onWebhookDrivers runs fn on each driver with a webhook service whose names resolve to a
// public address (no DNS needed) and which refuses loopback and private addresses.
func onWebhookDrivers(t *testing.T, fn func(t *testing.T, b *bundle)) {
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		fn(t, setupOn(t, st, func(c *httpapi.Config) {
			c.Webhooks = webhook.New(webhook.Config{Store: st, Now: c.Now,
				Resolve: func(context.Context, string) ([]netip.Addr, error) {
					return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
				}})
		}))
	})
}

func TestWebhookRoutes(t *testing.T) {
	t.Parallel()
	onWebhookDrivers(t, func(t *testing.T, b *bundle) {
		r := b.do("POST", "/v1/webhooks", map[string]any{"url": "https://hooks.example.com/postie", "description": "orders",
			"types": []string{"message.sent", "message.failed", "message.sent"}})
		r.want(t, "create", http.StatusCreated, `"types":["message.sent","message.failed"]`, `"enabled":true`,
			`"failing_since":null`, `"secret":"whsec_`)
		created := r.json(t)
		id, secret := created["id"].(string), created["secret"].(string)
		if len(secret) != len("whsec_")+32 {
			t.Errorf("secret %q", secret)
		}
		get := b.do("GET", "/v1/webhooks/"+id, nil)
		get.want(t, "get", http.StatusOK, `"url":"https://hooks.example.com/postie"`, `"description":"orders"`)
		if strings.Contains(string(get.body), "whsec_") {
			t.Errorf("GET shows the secret: %s", get.body)
		}
		b.do("GET", "/v1/webhooks", nil).want(t, "list", http.StatusOK, `"data":[{"id":"`+id+`"`)
		b.do("PATCH", "/v1/webhooks/"+id, map[string]any{"enabled": false, "types": []string{"contact.unsubscribed"}}).
			want(t, "patch", http.StatusOK, `"enabled":false`, `"types":["contact.unsubscribed"]`, `"description":"orders"`)
		rot := b.do("POST", "/v1/webhooks/"+id+"/rotate-secret", nil)
		rot.want(t, "rotate", http.StatusOK, `"secret":"whsec_`, `"previous_valid_until":"2026-11-23T10:00:00Z"`)
		if rot.json(t)["secret"] == secret {
			t.Error("rotation kept the secret")
		}
		e, err := b.store.WebhookGet(context.Background(), id)
		if err != nil || e.PreviousSecret != secret || e.Secret != rot.json(t)["secret"] {
			t.Errorf("after rotation: %+v %v", e, err)
		}
		b.do("GET", "/v1/webhooks/"+id+"/deliveries?status=failed&type=message.sent", nil).want(t, "deliveries", http.StatusOK, `"data":[]`)
		b.do("GET", "/v1/webhooks/"+id+"/deliveries/whd_1", nil).want(t, "no delivery", http.StatusNotFound)
		b.do("POST", "/v1/webhooks/"+id+"/deliveries/whd_1/retry", nil).want(t, "retry none", http.StatusNotFound)
		b.do("POST", "/v1/webhooks/"+id+"/replay", map[string]any{"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}).
			want(t, "replay", http.StatusOK, `"replayed":0`)
		b.do("DELETE", "/v1/webhooks/"+id, nil).want(t, "delete", http.StatusNoContent)
		b.do("GET", "/v1/webhooks/"+id, nil).want(t, "deleted", http.StatusNotFound)
	})
}

// TestWebhookBadInput: each bad request is a 4xx naming the field, and stores or changes nothing.
func TestWebhookBadInput(t *testing.T) {
	t.Parallel()
	onWebhookDrivers(t, func(t *testing.T, b *bundle) {
		r := b.do("POST", "/v1/webhooks", map[string]any{"url": "https://hooks.example.com/a", "types": []string{"message.sent"}})
		r.want(t, "create", http.StatusCreated)
		id := r.json(t)["id"].(string)
		before := b.do("GET", "/v1/webhooks/"+id, nil).body
		valid := `"types":["message.sent"]`
		for _, tc := range []struct {
			name, method, path string
			body               any
			status             int
			location           string
		}{
			{"no url", "POST", "/v1/webhooks", `{` + valid + `}`, 422, "body.url"},
			{"relative url", "POST", "/v1/webhooks", `{"url":"/hook",` + valid + `}`, 422, "body.url"},
			{"other scheme", "POST", "/v1/webhooks", `{"url":"ftp://hooks.example.com/",` + valid + `}`, 422, "body.url"},
			{"http", "POST", "/v1/webhooks", `{"url":"http://hooks.example.com/",` + valid + `}`, 422, "body.url"},
			{"credentials", "POST", "/v1/webhooks", `{"url":"https://u:p@hooks.example.com/",` + valid + `}`, 422, "body.url"},
			{"loopback", "POST", "/v1/webhooks", `{"url":"https://127.0.0.1:8080/",` + valid + `}`, 422, "body.url"},
			{"localhost", "POST", "/v1/webhooks", `{"url":"https://localhost/",` + valid + `}`, 422, "body.url"},
			{"private", "POST", "/v1/webhooks", `{"url":"https://192.168.1.10/",` + valid + `}`, 422, "body.url"},
			{"metadata", "POST", "/v1/webhooks", `{"url":"https://169.254.169.254/latest",` + valid + `}`, 422, "body.url"},
			{"cgnat", "POST", "/v1/webhooks", `{"url":"https://100.64.0.1/",` + valid + `}`, 422, "body.url"},
			{"ipv6 link-local", "POST", "/v1/webhooks", `{"url":"https://[fe80::1]/",` + valid + `}`, 422, "body.url"},
			{"not a string", "POST", "/v1/webhooks", `{"url":1,` + valid + `}`, 422, "body.url"},
			{"no types", "POST", "/v1/webhooks", `{"url":"https://hooks.example.com/b"}`, 422, "body.types"},
			{"empty types", "POST", "/v1/webhooks", `{"url":"https://hooks.example.com/b","types":[]}`, 422, "body.types"},
			{"unknown type", "POST", "/v1/webhooks", `{"url":"https://hooks.example.com/b","types":["message.sent","message.opened"]}`, 422, "body.types[1]"},
			{"long description", "POST", "/v1/webhooks", `{"url":"https://hooks.example.com/b",` + valid + `,"description":"` + strings.Repeat("x", 501) + `"}`, 422, "body.description"},
			{"unknown field", "POST", "/v1/webhooks", `{"url":"https://hooks.example.com/b",` + valid + `,"secret":"whsec_x"}`, 422, "body.secret"},
			{"malformed", "POST", "/v1/webhooks", `{"url":`, 400, ""},
			{"patch bad url", "PATCH", "/v1/webhooks/" + id, `{"url":"https://10.0.0.1/"}`, 422, "body.url"},
			{"patch bad type", "PATCH", "/v1/webhooks/" + id, `{"types":["nope"]}`, 422, "body.types[0]"},
			{"patch no types", "PATCH", "/v1/webhooks/" + id, `{"types":[]}`, 422, "body.types"},
			{"patch unknown", "PATCH", "/v1/webhooks/whk_nope", `{"description":"x"}`, 404, ""},
			{"get unknown", "GET", "/v1/webhooks/whk_01jd8x3k2m4n5p6q7r8s9t0v1w", nil, 404, ""},
			{"rotate unknown", "POST", "/v1/webhooks/whk_nope/rotate-secret", nil, 404, ""},
			{"delete unknown", "DELETE", "/v1/webhooks/whk_nope", nil, 404, ""},
			{"deliveries bad status", "GET", "/v1/webhooks/" + id + "/deliveries?status=lost", nil, 422, "query.status"},
			{"deliveries bad type", "GET", "/v1/webhooks/" + id + "/deliveries?type=message.opened", nil, 422, "query.type"},
			{"deliveries bad limit", "GET", "/v1/webhooks/" + id + "/deliveries?limit=0", nil, 422, "query.limit"},
			{"deliveries unknown", "GET", "/v1/webhooks/whk_nope/deliveries", nil, 404, ""},
			{"delivery bad id", "GET", "/v1/webhooks/" + id + "/deliveries/42", nil, 404, ""},
			{"retry bad id", "POST", "/v1/webhooks/" + id + "/deliveries/whd_x/retry", nil, 404, ""},
			{"replay no from", "POST", "/v1/webhooks/" + id + "/replay", `{"to":"2026-12-01T00:00:00Z"}`, 422, "body.from"},
			{"replay backwards", "POST", "/v1/webhooks/" + id + "/replay", `{"from":"2026-12-01T00:00:00Z","to":"2026-11-01T00:00:00Z"}`, 422, "body.to"},
			{"replay bad status", "POST", "/v1/webhooks/" + id + "/replay", `{"from":"2026-11-01T00:00:00Z","to":"2026-12-01T00:00:00Z","statuses":["lost"]}`, 422, "body.statuses[0]"},
			{"replay bad time", "POST", "/v1/webhooks/" + id + "/replay", `{"from":"yesterday","to":"2026-12-01T00:00:00Z"}`, 422, "body.from"},
			{"replay unknown", "POST", "/v1/webhooks/whk_nope/replay", `{"from":"2026-11-01T00:00:00Z","to":"2026-12-01T00:00:00Z"}`, 404, ""},
		} {
			r := b.do(tc.method, tc.path, tc.body)
			r.want(t, tc.name, tc.status)
			if tc.location != "" && !strings.Contains(string(r.body), `"location":"`+tc.location+`"`) {
				t.Errorf("%s: no error at %s: %s", tc.name, tc.location, r.body)
			}
		}
		es, err := b.store.WebhookList(context.Background())
		if err != nil || len(es) != 1 {
			t.Errorf("%d endpoints stored, want 1 (%v)", len(es), err)
		}
		if after := b.do("GET", "/v1/webhooks/"+id, nil).body; string(after) != string(before) {
			t.Errorf("bad requests changed the endpoint:\n%s\n%s", before, after)
		}
	})
}
