package sqlite_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/store/storetest"
)

// TestPurgeBatchBounds: a purge batch holds the only writer, so SQLite cuts it by the octets
// and rows it deletes, not by its count alone: large bodies and messages with many recipients
// go a few per batch (at least one, however large), and batches repeated until one purges
// nothing delete everything due.
func TestPurgeBatchBounds(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t)
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	big := bytes.Repeat([]byte("x"), 3<<20) // above half the batch's octets: one per batch
	many := make([]string, 400)             // 401 rows with the message: two per batch
	for i := range many {
		many[i] = fmt.Sprintf("r%d@example.com", i)
	}
	var msgs []store.NewMessage
	for range 4 {
		m := storetest.Message(t0, func(m *store.Message) { m.Recipients = many })
		m.Raw = big
		m.Message.Size = len(big)
		msgs = append(msgs, m)
	}
	if _, err := st.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: msgs, Now: t0}); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := st.MessageCancel(ctx, m.Message.ID, t0); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(time.Hour)
	p := store.PurgeParams{Before: now, Limit: 500, Now: now}
	drain := func(name string, purge func() (int, error), wantBatches []int) {
		t.Helper()
		var got []int
		for {
			n, err := purge()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if n == 0 {
				break
			}
			got = append(got, n)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantBatches) {
			t.Errorf("%s batches = %v, want %v", name, got, wantBatches)
		}
	}
	drain("MessageBodyPurge", func() (int, error) { return st.MessageBodyPurge(ctx, p) }, []int{1, 1, 1, 1})
	drain("MessagePurge", func() (int, error) { return st.MessagePurge(ctx, p) }, []int{2, 2})
	if got, err := st.MessageList(ctx, store.MessageListParams{Limit: 10}); err != nil || len(got) != 0 {
		t.Errorf("MessageList after the purges = %d, %v; want none", len(got), err)
	}
}
