package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// sendOne accepts, claims and finishes one message as sent with its sent event, and returns it.
func sendOne(t *testing.T, s *Store, now time.Time) store.NewMessage {
	t.Helper()
	m := storetest.Message(now)
	if _, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: now}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.MessageClaim(t.Context(), store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional,
		Limit: 1, Now: now, LeaseUntil: now.Add(time.Minute)}); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v, %v", got, err)
	}
	ev := store.NewEvent(store.EventSent, now, &store.EventDetail{Transport: "smtp", Response: "250 ok"})
	if n, err := s.MessageFinish(t.Context(), now, []store.MessageFinishParams{{ID: m.Message.ID, Owner: "w",
		Status: store.StatusSent, Attempts: 1, SentAt: now, Events: []store.Event{ev}}}); err != nil || n != 1 {
		t.Fatalf("finish: %d, %v", n, err)
	}
	return m
}

func countEventRows(t *testing.T, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM message_events WHERE message_id = ?`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSentEventKeptOnRow: the sent event of a message sent whole is kept on its row (no
// message_events row), reads back as a stored one would, survives a sequence row gone missing,
// and is written out as a row by the migration's Down.
func TestSentEventKeptOnRow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "postie.db")
	s := openAt(t, path, Options{Migrate: true})
	first := sendOne(t, s, t0)
	if n := countEventRows(t, s.rdb, first.Message.ID); n != 0 {
		t.Errorf("%d message_events rows for a message sent whole, want 0", n)
	}
	evs, err := s.MessageEvents(t.Context(), first.Message.ID)
	if err != nil || len(evs) != 2 || evs[1].Type != store.EventSent || evs[1].ID <= 0 || !evs[1].At.Equal(t0) {
		t.Fatalf("events = %+v, %v; want queued, then sent at t0 with an id", evs, err)
	}

	// Without the sequence row (as if nothing ever created it), ids are still reserved above
	// every stored one.
	if err := s.w.do(t.Context(), 1, func(t *wtx) error {
		_, err := t.exec(`DELETE FROM sqlite_sequence WHERE name = 'message_events'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	second := sendOne(t, s, t0.Add(time.Second))
	evs2, err := s.MessageEvents(t.Context(), second.Message.ID)
	if err != nil || len(evs2) != 2 || evs2[1].ID <= evs[1].ID {
		t.Fatalf("events after the sequence went = %+v, %v; want a sent event with an id above %d", evs2, err, evs[1].ID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Down to 00005: the kept events become rows, with their ids, times and details.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(t.Context(), 5); err != nil {
		t.Fatal(err)
	}
	var (
		id, at int64
		typ    string
		detail string
	)
	if err := db.QueryRowContext(t.Context(), `SELECT id, type, at, detail FROM message_events WHERE message_id = ?`,
		first.Message.ID).Scan(&id, &typ, &at, &detail); err != nil {
		t.Fatal(err)
	}
	if id != evs[1].ID || typ != store.EventSent || at != t0.UnixMicro() || detail != string(evs[1].Detail) {
		t.Errorf("after Down: event %d %s at %d %s; want %d sent at %d %s", id, typ, at, detail,
			evs[1].ID, t0.UnixMicro(), evs[1].Detail)
	}
}
