package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/metrics"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/store/storetest"
)

// TestNilCountsNothing: POSTIE_METRICS=false gives every part a nil *Metrics, whose methods
// do nothing and whose handler answers 404.
func TestNilCountsNothing(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.Request("GET /healthz", "GET", 200, time.Millisecond)
	m.Messages("transactional", "smtp", metrics.Sent, 1)
	m.Delivered("transactional", time.Second)
	m.SQLiteCommit(3, time.Millisecond)
	m.Breaker("smtp", func() int { return 0 })
	m.Pool(func() (int, int) { return 0, 0 })
	m.WatchQueues(t.Context(), nil, nil, nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("a nil Metrics' handler: %d, want 404", rec.Code)
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestQueueFigures: the queue figures come from the store, read in the background; a scrape
// serves the last read, the oldest due age counted to the scrape's now.
func TestQueueFigures(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t)
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	c := &clock{t: t0}
	due := storetest.Message(t0.Add(-time.Minute))
	if _, err := st.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{due}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); m.WatchQueues(ctx, st, c.now, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-done }()

	scrapeFor := func(want string) string {
		t.Helper()
		srv := httptest.NewServer(m.Handler())
		defer srv.Close()
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) || time.Now().After(deadline) {
				return string(b)
			}
			time.Sleep(20 * time.Millisecond) // the first read runs on WatchQueues' goroutine
		}
	}
	for _, want := range []string{
		`postie_queue_depth{stream="transactional"} 1`,
		`postie_queue_depth{stream="broadcast"} 0`,
		`postie_queue_oldest_due_seconds{stream="transactional"} 60`,
		`postie_webhook_backlog 0`,
	} {
		if body := scrapeFor(want); !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s:\n%s", want, body)
		}
	}
	c.add(30 * time.Second) // no read since: the age still grows with the clock
	if want := `postie_queue_oldest_due_seconds{stream="transactional"} 90`; !strings.Contains(scrapeFor(want), want) {
		t.Errorf("the oldest due age did not follow the clock to %s", want)
	}
}
