package main_test

// Many postie processes on one PostgreSQL database: the work spreads across them, each
// message goes out once in normal operation, and a node's death or a database outage loses nothing.

import (
	"context"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
)

// TestClusterExactlyOnce: three nodes on one PostgreSQL, 10,000 messages accepted through all
// three, each delivered exactly once, and every node did part of the work.
func TestClusterExactlyOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const total = 10000
	sink := startRelay(t, 0)
	nodes := startNodes(t, 3, url, sink)
	acceptAcross(t, nodes, total)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	sink.waitCount(ctx, t, total)
	settled(t, nodes[0], time.Minute)
	for _, n := range nodes {
		n.stop()
	}
	sink.check(t, total, nil)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	t.Logf("deliveries per node: %v", sink.nodes)
	if len(sink.nodes) != len(nodes) {
		t.Errorf("deliveries per node: %v; want every node to take part", sink.nodes)
	}
}

// TestClusterNodeKilled: one of three nodes is SIGKILLed mid-flow. Nothing is lost, only what
// that node had in flight goes out twice, and the survivors take its leases over once they
// expire.
func TestClusterNodeKilled(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const total = 10000
	const lease = 5 * time.Second
	sink := startRelay(t, time.Millisecond)
	nodes := startNodes(t, 3, url, sink, "POSTIE_LEASE="+lease.String())
	acceptAcross(t, nodes, total)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	victim := nodes[1]
	killed := killMidDelivery(ctx, t, victim, sink, total)

	// What the dead node had in flight: messages still leased to it.
	st, err := postgres.Open(ctx, postgres.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	orphans := leasedBy(ctx, t, st, victim)
	t.Logf("the dead node held %d leases", len(orphans))

	sink.waitCount(ctx, t, total)
	settled(t, nodes[0], time.Minute)
	nodes[0].stop()
	nodes[2].stop()
	t.Logf("%d duplicates", sink.check(t, total, orphans))

	// The orphans were taken over after their lease ended, not before and not much later: the
	// rescue loop runs every lease/4 (at least every second) on each survivor.
	for _, m := range orphans {
		events, err := st.MessageEvents(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		var expired, finished time.Time
		for _, e := range events {
			switch e.Type {
			case store.EventLeaseExpired:
				expired = e.At
			case store.EventSent, store.EventDeferred, store.EventFailed:
				if finished.IsZero() {
					finished = e.At
				}
			}
		}
		if expired.IsZero() && !finished.IsZero() && finished.Before(killed) {
			// The dead node's last commit was still running in the server when the snapshot
			// was read: its outcome landed after all, timed by the node before it died.
			continue
		}
		if expired.IsZero() {
			t.Errorf("message %s: no lease_expired event in %v", m.ID, events)
			continue
		}
		if expired.Before(m.LeaseUntil) || expired.After(m.LeaseUntil.Add(lease)) {
			t.Errorf("message %s: lease until %v, taken over at %v", m.ID, m.LeaseUntil, expired)
		}
	}
	t.Logf("orphans delivered by the survivors %v after the kill", time.Since(killed).Round(time.Millisecond))
}

// TestDatabaseOutage cuts a node off its database for a few seconds mid-delivery: nothing is
// lost, nothing is marked failed because of it, and the node carries on when the database is
// back.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const total = 2000
	px := startProxy(t, url)
	sink := startRelay(t, time.Millisecond)
	nodes := startNodes(t, 1, px.url, sink)
	acceptAcross(t, nodes, total)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	sink.waitCount(ctx, t, total/5)
	px.cut()
	time.Sleep(5 * time.Second)
	if code, _ := nodes[0].request("GET", "/readyz", "", nil); code != 503 {
		t.Errorf("/readyz answers %d while the database is unreachable, want 503", code)
	}
	msg := map[string]any{"to": []string{"late@example.com"}, "subject": "during the outage", "text": "hi"}
	if code, body := nodes[0].request("POST", "/v1/messages", nodeKey, msg); code != 503 {
		t.Errorf("accepting during the outage: %d %s, want 503", code, body)
	}
	px.restore()

	sink.waitCount(ctx, t, total)
	settled(t, nodes[0], 2*time.Minute)
	nodes[0].stop()
	// Outcomes refused during the outage are retried for a lease time (60 s here, longer than the
	// outage) and recorded when the database is back; a claim whose answer was lost leaves its
	// messages leased, unsent, until the lease ends. So nothing goes out twice.
	t.Logf("%d duplicates after a 5 s outage", sink.check(t, total, nil))
}
