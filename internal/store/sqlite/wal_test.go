package sqlite

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// TestWALStartsOverUnderSteadyReads: with read transactions overlapping all the time and writes
// back to back, the WAL never starts over by itself, and grows with every write; the writer
// makes it start over once it is Options.WALLimit long. The same writes and reads run twice: without a limit (the
// WAL grows past what was written), then with one (it stays under half as long).
func TestWALStartsOverUnderSteadyReads(t *testing.T) {
	t.Parallel()
	const written = 16 << 20 // in 64 KiB messages
	run := func(t *testing.T, limit int64) (largest int64) {
		path := filepath.Join(t.TempDir(), "postie.db")
		s := openAt(t, path, Options{Migrate: true, WALLimit: limit})
		ctx := t.Context()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 3 { // each reads for 10 ms at a time, 4 ms apart: never no reader
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 4 * time.Millisecond)
				for {
					select {
					case <-stop:
						return
					default:
					}
					tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
					if err != nil {
						t.Error(err)
						return
					}
					var n int
					if err := tx.QueryRow("SELECT count(*) FROM messages").Scan(&n); err != nil { // the snapshot starts
						t.Error(err)
					}
					time.Sleep(10 * time.Millisecond)
					_ = tx.Rollback()
				}
			})
		}
		defer func() { close(stop); wg.Wait() }()
		for range written / (64 << 10) {
			m := storetest.Message(t0)
			m.Raw = append(m.Raw, bytes.Repeat([]byte("0123456789abcdef"), 4<<10)...)
			m.Message.Size = len(m.Raw)
			if _, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(path + "-wal"); err == nil {
				largest = max(largest, fi.Size())
			}
		}
		return largest
	}
	grown := run(t, 1<<40)
	t.Logf("no limit: the WAL reached %d bytes", grown)
	if grown < written {
		t.Fatalf("with no limit the WAL reached %d bytes for %d written: the readers let it start over, so this test shows nothing", grown, written)
	}
	const limit = 1 << 20
	got := run(t, limit)
	t.Logf("a limit of %d: the WAL reached %d bytes", limit, got)
	if got > grown/2 {
		t.Errorf("the WAL reached %d bytes with a limit of %d, %d without", got, limit, grown)
	}
}
