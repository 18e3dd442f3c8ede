package postgres

import (
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

// TestStreamPauseAcrossNodes: a pause on one node stops the other node's claims at once (SQL),
// its handoff at accept once its cache is refreshed, and a resume on one node wakes the
// other's workers.
func TestStreamPauseAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b, _, bc := twoNodes(t)
	ctx := t.Context()
	if err := b.refreshPaused(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.StreamPause(ctx, store.StreamPauseParams{Stream: store.StreamBroadcast, Reason: store.PauseManual, Now: t0}); err != nil || !ok {
		t.Fatalf("StreamPause = %v, %v", ok, err)
	}
	ids := acceptN(t, b, 1)
	if _, err := b.pool.Exec(ctx, `UPDATE messages SET stream = 'broadcast' WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	got, err := b.MessageClaim(ctx, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 10,
		Now: t0.Add(time.Hour), LeaseUntil: t0.Add(2 * time.Hour)})
	if err != nil || len(got) != 0 {
		t.Errorf("the other node claimed %d, %v; want none of a paused stream", len(got), err)
	}
	if _, ok, err := b.MessageNextDue(ctx, store.StreamBroadcast); err != nil || ok {
		t.Errorf("the other node's MessageNextDue = %v, %v; want none", ok, err)
	}
	if b.streamPaused(store.StreamBroadcast) {
		t.Fatal("the cache knew of the pause before it was refreshed")
	}
	if err := b.refreshPaused(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.streamPaused(store.StreamBroadcast) {
		t.Error("the refreshed cache does not know of the other node's pause")
	}
	drain(bc)
	if err := a.StreamResume(ctx, store.StreamBroadcast, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitWake(t, bc, "a resume on the other node")
	if got, err := b.MessageClaim(ctx, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 10,
		Now: t0.Add(time.Hour), LeaseUntil: t0.Add(2 * time.Hour)}); err != nil || len(got) != 1 {
		t.Errorf("claimed %d, %v after the resume; want 1", len(got), err)
	}
}
