package main_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite"
)

// TestCrashLosesNothing starts the real binary against a loopback relay, accepts 2,000 messages,
// SIGKILLs the process while it is delivering them, restarts it, and checks that every message
// reached the relay at least once, and that only messages in flight (leased, outcome not yet
// recorded) when the process died reached it twice.
func TestCrashLosesNothing(t *testing.T) {
	t.Parallel()
	const total = 2000
	// A little latency per message keeps the delivery going for a few seconds.
	sink := startRelay(t, 2*time.Millisecond)
	dir := t.TempDir()
	p := startNode(t, dir, sink, "node0.postie.test")
	acceptAcross(t, []*proc{p}, total)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	killMidDelivery(ctx, t, p, sink, total)

	inflight := inflightAtKill(ctx, t, dir, p)
	t.Logf("%d messages in flight at the kill", len(inflight))

	p2 := startNode(t, dir, sink, "node0.postie.test")
	sink.waitCount(ctx, t, total)
	// Let the restarted node finish recording, then check the API agrees.
	settled(t, p2, 30*time.Second)
	p2.stop()
	t.Logf("%d duplicates", sink.check(t, total, inflight))
}

// inflightAtKill returns the messages the dead process p held leased in the SQLite database of
// dir, read while nothing runs on it: what was in flight when it died.
func inflightAtKill(ctx context.Context, t *testing.T, dir string, p *proc) []store.Message {
	t.Helper()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "postie-data", "postie.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return leasedBy(ctx, t, st, p)
}
