package app

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/store"
)

// getKey fetches url with key as its bearer token ("" for none) and returns the status and body.
func getKey(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminListener: /metrics, /healthz and /readyz on POSTIE_ADMIN_LISTEN with no key; the
// API then serves no /metrics. Without an admin listener, /metrics is an API route behind the
// API key; with POSTIE_METRICS=false there is no /metrics anywhere. /u/ never serves it.
func TestAdminListener(t *testing.T) {
	t.Parallel()
	sink := sinktest.Start(t, smtpsink.Options{})
	for _, tc := range []struct {
		name        string
		admin       string
		metrics     bool
		adminStatus int // of GET /metrics on the admin listener (0: no admin listener)
		apiNoKey    int // of GET /metrics on the API without a key
		apiKey      int // and with one
	}{
		{"admin listener", "127.0.0.1:0", true, 200, 401, 404},
		{"admin listener, metrics off", "127.0.0.1:0", false, 404, 401, 404},
		{"no admin listener", "", true, 0, 401, 200},
		{"no admin listener, metrics off", "", false, 0, 401, 404},
		{"admin listener off", "OFF", true, 0, 401, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, srv, cfg := runApp(t, sink, func(c *config.Config) { c.AdminListen, c.Metrics = tc.admin, tc.metrics })
			if tc.adminStatus == 0 {
				if a.AdminAddr() != "" {
					t.Fatalf("AdminAddr = %q with POSTIE_ADMIN_LISTEN empty", a.AdminAddr())
				}
			} else {
				base := "http://" + a.AdminAddr()
				status, body := getKey(t, base+"/metrics", "")
				if status != tc.adminStatus {
					t.Errorf("admin /metrics: %d, want %d", status, tc.adminStatus)
				}
				if status == 200 && (!strings.Contains(body, "go_goroutines") || !strings.Contains(body, "postie_sqlite_commit_seconds")) {
					t.Errorf("admin /metrics lacks the runtime or postie metrics:\n%.2000s", body)
				}
				if status, body := getKey(t, base+"/healthz", ""); status != 200 || body != "ok\n" {
					t.Errorf("admin /healthz: %d %q", status, body)
				}
				if status, body := getKey(t, base+"/readyz", ""); status != 200 || body != "ready\n" {
					t.Errorf("admin /readyz: %d %q", status, body)
				}
			}
			if status, _ := getKey(t, srv.URL+"/metrics", ""); status != tc.apiNoKey {
				t.Errorf("API /metrics without a key: %d, want %d", status, tc.apiNoKey)
			}
			status, body := getKey(t, srv.URL+"/metrics", cfg.APIKey)
			if status != tc.apiKey {
				t.Errorf("API /metrics with a key: %d, want %d", status, tc.apiKey)
			}
			if status == 200 && !strings.Contains(body, "postie_http_requests_total") {
				t.Errorf("API /metrics lacks postie_http_requests_total:\n%.2000s", body)
			}
			if status, body := getKey(t, srv.URL+"/u/metrics", ""); status == 200 || strings.Contains(body, "go_goroutines") {
				t.Errorf("/u/metrics: %d %.200q", status, body)
			}
		})
	}
}

// TestMetricsOfADelivery: a message sent through the relay is counted accepted, then sent on
// the smtp transport with its delivery latency; the request, the pool, the breaker, the queue
// statistics and the SQLite commits are in the scrape; and every metric the Grafana dashboard
// (deploy/grafana/postie.json) queries is one of them.
func TestMetricsOfADelivery(t *testing.T) {
	t.Parallel()
	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	a, srv, cfg := runApp(t, sink, nil)
	id := postID(t, srv.URL+"/v1/messages", cfg.APIKey, map[string]any{
		"from": "shop@shop.example", "to": []string{"ann@example.com"}, "subject": "Hi", "text": "Hi"}, 202)
	a.waitStatus(t, id, store.StatusSent)

	var body string
	for _, want := range []string{
		`postie_messages_total{outcome="accepted",stream="transactional",transport=""} 1`,
		`postie_messages_total{outcome="sent",stream="transactional",transport="smtp"} 1`,
		`postie_delivery_latency_seconds_count{stream="transactional"} 1`,
		`postie_http_requests_total{method="POST",route="POST /v1/messages",status="202"} 1`,
		`postie_transport_breaker_state{transport="smtp"} 0`,
		`postie_smtp_connections_open `,
		`postie_queue_depth{stream="broadcast"} 0`,
		`postie_webhook_backlog 0`,
		`postie_sqlite_commit_group_size_count `,
		`process_resident_memory_bytes `,
	} {
		// The sent count follows the outcome's commit by a moment (it is counted as the
		// outcome is handed over): scrape until it is there.
		deadline := time.Now().Add(10 * time.Second)
		for {
			var status int
			status, body = getKey(t, "http://"+a.AdminAddr()+"/metrics", "")
			if status != 200 {
				t.Fatalf("/metrics: %d", status)
			}
			if strings.Contains(body, want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // polling the scrape for a counter set by another goroutine
		}
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	if strings.Contains(body, "ann@example.com") || strings.Contains(body, id) {
		t.Error("the scrape holds an address or a message id")
	}

	raw, err := os.ReadFile("../../deploy/grafana/postie.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/postie.json: %v", err)
	}
	names := regexp.MustCompile(`\b(?:postie|go|process)_[a-z_]+`)
	queried := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range names.FindAllString(tg.Expr, -1) {
				queried++
				if !strings.Contains(body, "\n"+name+" ") && !strings.Contains(body, "\n"+name+"{") {
					t.Errorf("panel %q queries %s, which the scrape does not have", p.Title, name)
				}
			}
		}
	}
	if queried < 15 {
		t.Errorf("the dashboard queries %d metrics; its panels were not read", queried)
	}
}
