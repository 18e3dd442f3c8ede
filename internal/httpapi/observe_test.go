package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/metrics"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// panickyStore panics on MessageGet and fails MessageList with an error of no known class.
type panickyStore struct{ store.Store }

func (panickyStore) MessageGet(context.Context, string) (store.Message, error) {
	panic("store exploded")
}

func (panickyStore) MessageList(context.Context, store.MessageListParams) ([]store.Message, error) {
	return nil, errors.New("disk on fire")
}

// reports records what an errtrack.Reporter is given.
type reports struct {
	mu     sync.Mutex
	panics []string // where: value
	errs   []string // where: error
}

func (r *reports) Panic(_ context.Context, where string, v any, stack []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(stack) == 0 {
		where += " (no stack)"
	}
	r.panics = append(r.panics, fmt.Sprintf("%s: %v", where, v))
}

func (r *reports) Error(_ context.Context, where string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, where+": "+err.Error())
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func slogJSON(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

// counterValue is the value of the counter family name with labels, 0 when absent.
func counterValue(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return metricValue(mt)
		}
	}
	return 0
}

func metricValue(mt *dto.Metric) float64 {
	switch {
	case mt.Counter != nil:
		return mt.Counter.GetValue()
	case mt.Gauge != nil:
		return mt.Gauge.GetValue()
	case mt.Histogram != nil:
		return float64(mt.Histogram.GetSampleCount())
	}
	return 0
}

// TestObserve: every request is counted by route pattern (never the raw path), logged on one
// line without the query string, the path's id or the body, and carries a request id; a panic
// becomes a 500 problem reported with its stack, the server going on; a store failure is
// reported once, with its cause.
func TestObserve(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	var logs syncBuffer
	rep := &reports{}
	b := setupOn(t, panickyStore{sqlitetest.Open(t)}, func(c *httpapi.Config) {
		c.Metrics, c.Errors = m, rep
		c.Logger = slogJSON(&logs)
	})

	r := b.do("GET", "/v1/messages/msg_01jd8x0000000000000000000a?secret=hunter2", nil, "X-Request-Id", "req-42")
	if r.status != 500 || !strings.Contains(string(r.body), "internal error") {
		t.Fatalf("a panicking handler: %d %s", r.status, r.body)
	}
	if got := r.header.Get("X-Request-Id"); got != "req-42" {
		t.Errorf("X-Request-Id = %q, want the client's echoed", got)
	}
	if r := b.do("GET", "/v1/messages", nil); r.status != 500 {
		t.Fatalf("a failing store: %d %s", r.status, r.body)
	}
	r = b.do("GET", "/healthz", nil, "X-Request-Id", "bad id forged=1")
	if id := r.header.Get("X-Request-Id"); r.status != 200 || len(id) != 32 || strings.Contains(id, "forged") {
		t.Errorf("healthz with a bad X-Request-Id: %d, id %q (want a new one)", r.status, id)
	}
	if r := b.do("GET", "/no/such/place/ann@example.com", nil); r.status != 404 {
		t.Errorf("unknown path: %d", r.status)
	}
	if r := b.do("GET", "/v1/messages", nil, "Authorization", "Bearer wrong"); r.status != 401 {
		t.Errorf("bad key: %d", r.status)
	}

	rep.mu.Lock()
	if want := []string{"http GET /v1/messages/{id}: store exploded"}; fmt.Sprint(rep.panics) != fmt.Sprint(want) {
		t.Errorf("panics reported: %q, want %q", rep.panics, want)
	}
	if want := []string{"httpapi store: messages: disk on fire"}; fmt.Sprint(rep.errs) != fmt.Sprint(want) {
		t.Errorf("errors reported: %q, want %q", rep.errs, want)
	}
	rep.mu.Unlock()

	for _, tc := range []struct {
		route, status string
		want          float64
	}{
		{"GET /v1/messages/{id}", "500", 1},
		{"GET /v1/messages", "500", 1},
		{"GET /v1/messages", "401", 1},
		{"GET /healthz", "200", 1},
		{"unmatched", "404", 1},
	} {
		labels := map[string]string{"route": tc.route, "method": "GET", "status": tc.status}
		if got := counterValue(t, m, "postie_http_requests_total", labels); got != tc.want {
			t.Errorf("postie_http_requests_total%v = %v, want %v", labels, got, tc.want)
		}
	}
	if got := counterValue(t, m, "postie_http_request_duration_seconds", map[string]string{"route": "GET /healthz", "method": "GET"}); got != 1 {
		t.Errorf("duration observations of GET /healthz = %v, want 1", got)
	}

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if e["msg"] == "request" {
			lines = append(lines, e)
		}
	}
	if len(lines) != 5 {
		t.Fatalf("request log lines = %d, want 5 (one per request):\n%s", len(lines), logs.String())
	}
	first := lines[0]
	for k, want := range map[string]any{"method": "GET", "route": "GET /v1/messages/{id}", "status": float64(500),
		"request_id": "req-42", "api_key_id": "key_0"} {
		if first[k] != want {
			t.Errorf("log line %s = %v, want %v", k, first[k], want)
		}
	}
	if _, ok := first["duration"]; !ok {
		t.Error("log line has no duration")
	}
	for _, leak := range []string{"hunter2", "ann@example.com"} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("the log holds %q:\n%s", leak, logs.String())
		}
	}
	if strings.Contains(fmt.Sprint(lines), "msg_01jd8x") {
		t.Errorf("a request line holds the raw path: %v", lines)
	}
}

// TestObserveMethodLabel: the method label takes a bounded set of values whatever method the
// client sends: the matched pattern's method, or a standard method, or "other" (a made-up
// method on a known or unknown path makes no series of its own).
func TestObserveMethodLabel(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	b := setupOn(t, sqlitetest.Open(t), func(c *httpapi.Config) { c.Metrics = m })
	for _, tc := range []struct{ method, path, route, label string }{
		{"M123", "/v1/messages", "unmatched", "other"},
		{"X-ANN-EXAMPLE-COM", "/nowhere", "unmatched", "other"},
		{"DELETE", "/healthz", "unmatched", "DELETE"},
		{"HEAD", "/healthz", "GET /healthz", "GET"},
		{"GET", "/healthz", "GET /healthz", "GET"},
	} {
		b.do(tc.method, tc.path, nil)
		labels := map[string]string{"route": tc.route, "method": tc.label}
		if got := counterValue(t, m, "postie_http_request_duration_seconds", labels); got < 1 {
			t.Errorf("%s %s: no observation with labels %v", tc.method, tc.path, labels)
		}
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "postie_http_requests_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "method" && strings.ContainsAny(l.GetValue(), "0123456789-") {
					t.Errorf("a series has the client's method as its label: %v", mt.GetLabel())
				}
			}
		}
	}
}
