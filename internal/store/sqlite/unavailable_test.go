package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// openWithMessage opens a new store in a temporary directory and accepts one message into it.
func openWithMessage(t *testing.T) (*Store, string, store.NewMessage) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "postie.db")
	s := openAt(t, path, Options{Migrate: true})
	m := storetest.Message(t0)
	if _, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	return s, path, m
}

// TestReadFileGone moves the database file away under a running store whose read pool has not
// opened a connection yet: every read then fails with store.ErrUnavailable (the API's 503 with
// Retry-After), none reads a new empty database, and once the file is back the same store reads
// what it held.
func TestReadFileGone(t *testing.T) {
	t.Parallel()
	s, path, m := openWithMessage(t)
	ctx := t.Context()
	id := m.Message.ID

	// Open and the accept used only the writer connection, which keeps the file open: the next
	// read is the read pool's first, and opens a connection.
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		name string
		read func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"MessageGet", func() error { _, err := s.MessageGet(ctx, id); return err }},
		{"MessageRaw", func() error { _, err := s.MessageRaw(ctx, id); return err }},
		{"MessageEvents", func() error { _, err := s.MessageEvents(ctx, id); return err }},
		{"MessageList", func() error { _, err := s.MessageList(ctx, store.MessageListParams{}); return err }},
		{"MessageNextDue", func() error { _, _, err := s.MessageNextDue(ctx, store.StreamTransactional); return err }},
		{"MessageRetry", func() error {
			_, err := s.MessageRetry(ctx, store.MessageRetryParams{Filter: store.MessageListParams{ErrorCode: "550"}, Now: t0})
			return err
		}},
		{"SuppressionGet", func() error { _, err := s.SuppressionGet(ctx, "b@example.com", "", t0); return err }},
		{"SuppressionMatch", func() error { _, err := s.SuppressionMatch(ctx, []string{"b@example.com"}, nil, t0); return err }},
		{"SuppressionList", func() error { _, _, err := s.SuppressionList(ctx, store.SuppressionListParams{}); return err }},
		{"TemplateGet", func() error { _, err := s.TemplateGet(ctx, "welcome", 0); return err }},
		{"TemplateList", func() error { _, _, err := s.TemplateList(ctx, store.TemplateListParams{}); return err }},
		{"APIKeyByHash", func() error { _, err := s.APIKeyByHash(ctx, []byte("h")); return err }},
		{"APIKeyCount", func() error { _, err := s.APIKeyCount(ctx); return err }},
	}
	for _, r := range reads {
		if err := r.read(); !errors.Is(err, store.ErrUnavailable) || !strings.HasPrefix(err.Error(), "sqlite: ") {
			t.Errorf("%s with the database file gone: %v; want a sqlite: error wrapping store.ErrUnavailable", r.name, err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a read created a new database file: %v", err)
	}

	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	if got, err := s.MessageGet(ctx, id); err != nil || got.ID != id {
		t.Fatalf("MessageGet once the file is back: %+v, %v", got, err)
	}
}

// TestFileGoneUnderRunningStore: a running store (its read pool warm) whose database file is
// moved away, or replaced, refuses reads, Ping and writes with store.ErrUnavailable, commits
// nothing into the file that lost its name, and works again once its file is back (fileGuard).
func TestFileGoneUnderRunningStore(t *testing.T) {
	t.Parallel()
	s, path, m := openWithMessage(t)
	ctx := t.Context()
	if _, err := s.MessageGet(ctx, m.Message.ID); err != nil { // a read connection is open now
		t.Fatal(err)
	}
	later := storetest.Message(t0)
	refused := func(how string) {
		t.Helper()
		if _, err := s.MessageGet(ctx, m.Message.ID); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: MessageGet: %v, want store.ErrUnavailable", how, err)
		}
		if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: Ping: %v, want store.ErrUnavailable", how, err)
		}
		_, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{later}, Now: t0})
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: MessagesAccept: %v, want store.ErrUnavailable", how, err)
		}
	}

	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	refused("file moved away")
	if err := os.WriteFile(path, nil, 0o644); err != nil { // something else now has the name
		t.Fatal(err)
	}
	refused("file replaced")
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}

	if _, err := s.MessageGet(ctx, later.Message.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the accept refused while the file was away: MessageGet = %v, want ErrNotFound", err)
	}
	if _, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{later}, Now: t0}); err != nil {
		t.Fatalf("MessagesAccept once the file is back: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping once the file is back: %v", err)
	}
}

// TestUnavailable holds the classification shared by both doors (writer and read pool) to real
// errors of modernc.org/sqlite: a database that cannot be used for now is store.ErrUnavailable, an
// error of the statement, the data or the caller is not.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	open := func(t *testing.T, dsn string) *sql.DB {
		t.Helper()
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	// write creates a table in a database that is the device dev, through a symbolic link: no
	// journal file, so nothing is created beside the device.
	write := func(t *testing.T, dev string) error {
		t.Helper()
		path := filepath.Join(dir, filepath.Base(dev)+".db")
		if err := os.Symlink(dev, path); err != nil {
			t.Fatal(err)
		}
		_, err := open(t, "file:"+path+"?mode=rw&_pragma=journal_mode(MEMORY)&_pragma=synchronous(FULL)").
			ExecContext(ctx, "CREATE TABLE t (x)")
		return err
	}
	ioErr := write(t, "/dev/null")    // fsync(2) of /dev/null fails: SQLITE_IOERR_FSYNC
	diskFull := write(t, "/dev/full") // write(2) to /dev/full fails with ENOSPC: SQLITE_FULL

	// SQLITE_CANTOPEN: a database file that is not there (no connection creates it, see dsn), and
	// one whose directory is not.
	gone := open(t, dsn(filepath.Join(dir, "gone.db"), time.Second, true)).PingContext(ctx)
	noDir := open(t, dsn(filepath.Join(dir, "no", "dir.db"), time.Second, false)).PingContext(ctx)

	path := filepath.Join(dir, "ok.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ok := open(t, dsn(path, time.Second, false))
	if _, err := ok.ExecContext(ctx, "CREATE TABLE u (k TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	_, noTable := ok.ExecContext(ctx, "SELECT * FROM no_such_table")
	_, constraint := ok.ExecContext(ctx, "INSERT INTO u VALUES ('a'), ('a')")
	noRow := ok.QueryRowContext(ctx, "SELECT k FROM u").Scan(new(string))

	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"SQLITE_IOERR", ioErr, true},
		{"SQLITE_FULL", diskFull, true},
		{"SQLITE_CANTOPEN, file gone", gone, true},
		{"SQLITE_CANTOPEN, directory gone", noDir, true},
		{"no such table", noTable, false},
		{"constraint", constraint, false},
		{"no row", noRow, false},
		{"cancelled", context.Canceled, false},
		{"closed", errClosed, false},
	} {
		if tc.err == nil {
			t.Errorf("%s: the error did not happen", tc.name)
			continue
		}
		wrapped := fmt.Errorf("sqlite: reading: %w", tc.err)
		got := unavailable(wrapped)
		if errors.Is(got, store.ErrUnavailable) != tc.unavailable || !errors.Is(got, tc.err) {
			t.Errorf("%s: unavailable(%v) = %v; want ErrUnavailable %v, the error kept", tc.name, wrapped, got, tc.unavailable)
		}
		if again := unavailable(got); again != got {
			t.Errorf("%s: unavailable wrapped %v again: %v", tc.name, got, again)
		}
	}
}
