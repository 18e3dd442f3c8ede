package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

// TestStreams: the streams with their rates, a pause shown with its reason, a resume, and the
// refusals (409 not paused, 404 unknown stream).
func TestStreams(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("GET", "/v1/streams", nil)
	if r.status != 200 {
		t.Fatalf("GET /v1/streams: %d %s", r.status, r.body)
	}
	data, _ := r.json(t)["data"].([]any)
	if len(data) != 2 {
		t.Fatalf("GET /v1/streams: %s", r.body)
	}
	tx := data[0].(map[string]any)
	windows, _ := tx["windows"].([]any)
	wantWindow := map[string]any{"window": "24h", "since": testNow.Add(-24 * time.Hour).Format(time.RFC3339),
		"delivered": 0.0, "bounced": 0.0, "complained": 0.0, "bounce_rate": 0.0, "complaint_rate": 0.0, "enough_volume": false}
	if tx["stream"] != "transactional" || tx["paused"] != false || tx["pause_reason"] != nil || len(windows) != 2 {
		t.Errorf("transactional: %v", tx)
	} else if diff := cmp.Diff(wantWindow, windows[0]); diff != "" {
		t.Errorf("24h window (-want +got):\n%s", diff)
	}

	if ok, err := b.store.StreamPause(t.Context(), store.StreamPauseParams{Stream: store.StreamBroadcast,
		Reason: store.PauseComplaintRate, Detail: "complaint rate 0.3%", Now: testNow}); err != nil || !ok {
		t.Fatalf("StreamPause = %v, %v", ok, err)
	}
	r = b.do("GET", "/v1/streams/broadcast", nil)
	if got := r.json(t); r.status != 200 || got["paused"] != true || got["pause_reason"] != "complaint_rate" ||
		got["pause_detail"] != "complaint rate 0.3%" || got["paused_at"] != testNow.Format(time.RFC3339) || got["resumed_at"] != nil {
		t.Errorf("GET /v1/streams/broadcast: %d %s", r.status, r.body)
	}
	r = b.do("POST", "/v1/streams/broadcast/resume", nil)
	if got := r.json(t); r.status != 200 || got["paused"] != false || got["resumed_at"] != testNow.Format(time.RFC3339) ||
		got["pause_reason"] != "complaint_rate" {
		t.Errorf("resume: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/v1/streams/broadcast/resume", http.StatusConflict},
		{"POST", "/v1/streams/transactional/resume", http.StatusConflict},
		{"GET", "/v1/streams/bulk", http.StatusNotFound},
		{"POST", "/v1/streams/bulk/resume", http.StatusNotFound},
	} {
		r := b.do(tc.method, tc.path, nil)
		if r.status != tc.status || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.status)
		}
	}
}
