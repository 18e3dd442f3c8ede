package httpapi_test

import (
	"testing"

	"github.com/postie/postie/internal/httpapi"
)

// TestReadyzStopping: the API's /readyz answers 200 until the app says its shutdown started,
// then 503, while /healthz and the API routes still answer (the node drains).
func TestReadyzStopping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if r := b.do("GET", "/readyz", nil); r.status != 200 || string(r.body) != "ready\n" {
		t.Fatalf("/readyz before the shutdown: %d %q", r.status, r.body)
	}
	b.srv.Config.Handler.(*httpapi.Server).Stopping()
	if r := b.do("GET", "/readyz", nil); r.status != 503 || string(r.body) != "shutting down\n" {
		t.Errorf("/readyz once stopping: %d %q, want 503", r.status, r.body)
	}
	if r := b.do("GET", "/healthz", nil); r.status != 200 {
		t.Errorf("/healthz once stopping: %d, want 200", r.status)
	}
	if r := b.do("GET", "/v1/messages", nil); r.status != 200 {
		t.Errorf("GET /v1/messages once stopping: %d, want 200 (in-flight work is served)", r.status)
	}
}
