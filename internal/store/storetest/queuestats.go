package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

var queueStatsCases = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"QueueStats", testQueueStats},
}

// testQueueStats: per stream, the due messages (scheduled, queued, deferred whose time has
// come; not those being sent nor those due later) and the oldest due time; the pending webhook
// deliveries, leased or not.
func testQueueStats(t *testing.T, s store.Store) {
	ctx := t.Context()
	empty := store.QueueStats{Streams: []store.StreamQueueStats{{Stream: store.StreamTransactional}, {Stream: store.StreamBroadcast}}}
	got, err := s.QueueStats(ctx, t0)
	if err != nil {
		t.Fatalf("QueueStats: %v", err)
	}
	if diff := cmp.Diff(empty, got); diff != "" {
		t.Errorf("QueueStats of an empty store (-want +got):\n%s", diff)
	}

	e := endpoint(t, s, store.WebhookMessageSent)
	sendMessages(t, s, 2, t0.Add(-time.Minute)) // two messages sent: two pending deliveries
	webhookClaim(t, s, "hooks", 1, t0, t0.Add(time.Minute))
	if n := len(deliveries(t, s, e.ID)); n != 2 {
		t.Fatalf("deliveries = %d, want 2", n)
	}

	due := func(at time.Time, mods ...func(*store.Message)) store.NewMessage {
		return Message(t0.Add(-time.Hour), append([]func(*store.Message){func(m *store.Message) { m.NextAttemptAt = at }}, mods...)...)
	}
	broadcast := func(m *store.Message) { m.Stream = store.StreamBroadcast }
	scheduled := func(m *store.Message) { m.Status, m.SendAt = store.StatusScheduled, m.NextAttemptAt }
	accept(t, s, t0.Add(-time.Hour),
		due(t0.Add(-3*time.Minute)), // claimed below: being sent
		due(t0.Add(-2*time.Minute)),
		due(t0),
		due(t0.Add(time.Hour), scheduled), // not due yet
		due(t0.Add(-5*time.Minute), broadcast),
	)
	claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
		Now: t0.Add(-3 * time.Minute), LeaseUntil: t0.Add(time.Hour)})

	got, err = s.QueueStats(ctx, t0)
	if err != nil {
		t.Fatalf("QueueStats: %v", err)
	}
	want := store.QueueStats{
		Streams: []store.StreamQueueStats{
			{Stream: store.StreamTransactional, Depth: 2, OldestDue: t0.Add(-2 * time.Minute)},
			{Stream: store.StreamBroadcast, Depth: 1, OldestDue: t0.Add(-5 * time.Minute)},
		},
		WebhookBacklog: 2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("QueueStats (-want +got):\n%s", diff)
	}
	// An hour on, the scheduled one is due too.
	got, err = s.QueueStats(ctx, t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("QueueStats: %v", err)
	}
	if got.Streams[0].Depth != 3 {
		t.Errorf("transactional depth an hour on = %d, want 3", got.Streams[0].Depth)
	}
}
