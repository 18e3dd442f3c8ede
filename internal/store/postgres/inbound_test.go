package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postie/postie/internal/store/driverkit"
	"github.com/postie/postie/internal/store/storetest"

	"github.com/postie/postie/internal/store"
)

// TestStreamPauseAcrossNodes: a pause on one node stops the other node's claims at once (SQL),
// is known to its cache of paused streams once refreshed, and a resume on one node wakes the
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

// TestFinishCountsInShards: a finish adds its delivery counts to a shard of its own, so it does
// not wait for another transaction holding the row of the same stream and hour in another shard;
// DeliveryCounts sums the shards.
func TestFinishCountsInShards(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	s.shardOf = func() int16 { return 1 }
	ids := acceptN(t, s, 1)
	if got, err := s.MessageClaim(ctx, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
		Now: t0, LeaseUntil: t0.Add(time.Minute)}); err != nil || len(got) != 1 {
		t.Fatalf("MessageClaim = %d, %v", len(got), err)
	}
	other, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(context.Background())
	if _, err := other.Exec(ctx, `INSERT INTO delivery_counts (stream, hour, shard, delivered) VALUES ($1, $2, 0, 5)`,
		store.StreamTransactional, t0.Truncate(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Waiting for the other transaction's lock would end at the deadline (a hang's guard, not a
	// measurement).
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if n, err := s.MessageFinish(fctx, t0, []store.MessageFinishParams{{ID: ids[0], Owner: "w", Status: store.StatusSent,
		Attempts: 1, SentAt: t0}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v (waiting for the other shard's row?)", n, err)
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DeliveryCounts(ctx, store.StreamTransactional, t0); err != nil || got.Delivered != 6 {
		t.Errorf("DeliveryCounts = %+v, %v; want 6 delivered (5 + 1, two shards)", got, err)
	}
}

// TestStreamPauseHandoffAcrossNodes: once a pause has committed on one node, the other node's
// accepts hand none of the stream's messages to its delivery, though its cache of paused
// streams, just refreshed, does not know of the pause yet: they are stored queued, the room is
// given back. With an idempotency key (the accept's own transaction) as without (grouped).
func TestStreamPauseHandoffAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b, _, _ := twoNodes(t)
	ctx := t.Context()
	r := &roomReceiver{room: 10}
	defer b.ClaimAtAccept(store.StreamBroadcast, r)()
	if err := b.refreshPaused(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.StreamPause(ctx, store.StreamPauseParams{Stream: store.StreamBroadcast, Reason: store.PauseManual, Now: t0}); err != nil || !ok {
		t.Fatalf("StreamPause = %v, %v", ok, err)
	}
	for _, key := range []string{"", "k1"} {
		m := storetest.Message(t0, func(m *store.Message) { m.Stream = store.StreamBroadcast })
		p := store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}
		if key != "" {
			p.Idempotency = &store.Idempotency{APIKeyID: "key_1", Key: key, RequestHash: []byte{1}, StatusCode: 202,
				Response: []byte(`{}`), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		}
		if _, err := b.MessagesAccept(ctx, p); err != nil {
			t.Fatalf("MessagesAccept(key %q): %v", key, err)
		}
		r.mu.Lock()
		got, room, reserved := len(r.got), r.room, r.reserved
		r.mu.Unlock()
		if got != 0 || room != 10 || reserved != 0 {
			t.Errorf("key %q: a paused stream's message handed over: %d received, room %d, %d reserved", key, got, room, reserved)
		}
		if st, err := b.MessageGet(ctx, m.Message.ID); err != nil || st.Status != store.StatusQueued || st.LeaseOwner != "" || !st.LeaseUntil.IsZero() {
			t.Errorf("key %q: stored %s leased to %q until %v (%v); want queued, no lease", key, st.Status, st.LeaseOwner, st.LeaseUntil, err)
		}
	}
	// Not paused: handed over as before.
	if err := a.StreamResume(ctx, store.StreamBroadcast, t0); err != nil {
		t.Fatal(err)
	}
	m := storetest.Message(t0, func(m *store.Message) { m.Stream = store.StreamBroadcast })
	if _, err := b.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != 1 || r.got[0].ID != m.Message.ID {
		t.Errorf("after the resume: handed over %d, want the new message", len(r.got))
	}
}

// TestInboundListPlans: a listing filtered by kind or by outcome reads that column's index, in
// the generic plan of its prepared statement too (the one a plan that knew the filter's value,
// and left out a condition true for it, would hide).
func TestInboundListPlans(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, q := range []string{"SET enable_seqscan = off", "SET plan_cache_mode = force_generic_plan"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer conn.Exec(context.Background(), "RESET ALL")
	for i, tc := range []struct {
		p     store.InboundListParams
		after int64
		index string
	}{
		{store.InboundListParams{Kind: "dsn"}, 0, "inbound_entries_kind"},
		{store.InboundListParams{Kind: "dsn"}, 7, "inbound_entries_kind"},
		{store.InboundListParams{Outcome: store.InboundIgnored}, 7, "inbound_entries_outcome"},
	} {
		q, args := driverkit.InboundListQuery(inboundColumns, tc.p, tc.after, int32(10), dialect{}.Placeholder)
		name := fmt.Sprintf("inbound_list_%d", i)
		if _, err := conn.Conn().Prepare(ctx, name, q); err != nil {
			t.Fatal(err)
		}
		lits := make([]string, len(args))
		for j, a := range args {
			if str, ok := a.(string); ok {
				a = "'" + str + "'"
			}
			lits[j] = fmt.Sprint(a)
		}
		rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+name+"("+strings.Join(lits, ", ")+")")
		if err != nil {
			t.Fatal(err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if text := strings.Join(plan, "\n"); !strings.Contains(text, tc.index) || strings.Contains(text, "Seq Scan") {
			t.Errorf("%+v after %d: want an index scan of %s, plan:\n%s", tc.p, tc.after, tc.index, text)
		}
	}
}
