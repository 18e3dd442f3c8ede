package webhook

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// panicReports is an errtrack.Reporter keeping the panics it is told of.
type panicReports struct {
	mu  sync.Mutex
	got []string
}

func (r *panicReports) Panic(_ context.Context, where string, v any, _ []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%s: %v", where, v))
}
func (r *panicReports) Error(context.Context, string, error) {}

// TestPanickingSendIsAFailedAttempt: a panic while sending a delivery (here in the dial, which
// net/http runs on a goroutine of its own) is reported, and recorded as a failed attempt retried
// on the ladder, like any other failure.
func TestPanickingSendIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	rep := &panicReports{}
	var lookups atomic.Int64
	b := setup(t, sqlitetest.Open(t), func(c *Config) {
		c.Errors = rep
		c.Policy = Policy{AllowHTTP: true}
		c.Resolve = func(context.Context, string) ([]netip.Addr, error) {
			if lookups.Add(1) == 1 { // when the URL is saved
				return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
			}
			panic("resolver bug")
		}
	})
	e := b.endpoint(t, "http://hooks.example:8080/hook", store.WebhookMessageSent)
	b.sent(t, nil, "ann@example.com")
	if got := b.tick(t); got != 1 {
		t.Fatalf("Tick sent %d", got)
	}
	d := b.deliveries(t, e.ID)[0]
	if d.Status != store.DeliveryPending || d.Attempts != 1 || !strings.Contains(d.LastError, "internal error") ||
		!d.NextAttemptAt.After(start) {
		t.Errorf("delivery %+v", d)
	}
	if len(rep.got) != 1 || rep.got[0] != "webhook sender: resolver bug" {
		t.Errorf("reports = %q", rep.got)
	}
}
