package app

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
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
