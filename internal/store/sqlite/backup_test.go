package sqlite_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/store/storetest"
)

// TestBackupWhileWriting: a backup taken while messages are accepted and delivered holds every
// message accepted before it started, each with its MIME, and passes its integrity check; the
// store goes on meanwhile.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := sqlitetest.OpenPath(t, filepath.Join(dir, "postie.db"), sqlite.Options{Migrate: true})
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	var (
		mu       sync.Mutex
		accepted = map[string][]byte{}
		stop     = make(chan struct{})
		done     = make(chan error, 1)
	)
	acceptBatch := func() error {
		msgs := make([]store.NewMessage, 20)
		for i := range msgs {
			msgs[i] = storetest.Message(now)
		}
		if _, err := st.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: msgs, Now: now}); err != nil {
			return err
		}
		mu.Lock()
		for _, m := range msgs {
			accepted[m.Message.ID] = m.Raw
		}
		mu.Unlock()
		// Deliver some, so the writer updates rows as well as inserting them.
		claimed, err := st.MessageClaim(ctx, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional,
			Limit: 10, Now: now, LeaseUntil: now.Add(time.Minute)})
		if err != nil {
			return err
		}
		ps := make([]store.MessageFinishParams, len(claimed))
		for i, c := range claimed {
			ps[i] = store.MessageFinishParams{ID: c.ID, Owner: "w", Status: store.StatusSent, Attempts: 1, SentAt: now,
				Events: []store.Event{{Type: store.EventSent, At: now}}}
		}
		_, err = st.MessageFinish(ctx, now, ps)
		return err
	}
	for range 10 {
		if err := acceptBatch(); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := acceptBatch(); err != nil {
				done <- err
				return
			}
		}
	}()

	mu.Lock()
	before := make(map[string][]byte, len(accepted))
	for id, raw := range accepted {
		before[id] = raw
	}
	mu.Unlock()
	dest := filepath.Join(dir, "backup.db")
	res, err := sqlite.Backup(ctx, filepath.Join(dir, "postie.db"), dest)
	close(stop)
	if werr := <-done; werr != nil {
		t.Fatalf("writing during the backup: %v", werr)
	}
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Size() != res.Size || res.Path != dest {
		t.Errorf("Backup = %+v; the file: %v, %v", res, fi, err)
	}

	cp := sqlitetest.OpenPath(t, dest, sqlite.Options{})
	for id, raw := range before {
		if _, err := cp.MessageGet(ctx, id); err != nil {
			t.Fatalf("message %s accepted before the backup, in the copy: %v", id, err)
		}
		if got, err := cp.MessageRaw(ctx, id); err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("MIME of %s in the copy: %v", id, err)
		}
	}
	// Nothing but the database, its WAL files, its lock files and the copy in the directory.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestBackupRefuses: an existing destination, a missing database and a file that is not a
// postie database are refused, and nothing is written.
func TestBackupRefuses(t *testing.T) {
	t.Parallel()
	dir, db := migratedDB(t)
	exists := filepath.Join(dir, "exists.db")
	if err := os.WriteFile(exists, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDB := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(notDB, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, src, dest, want string }{
		{"destination exists", db, exists, "exists"},
		{"no database", filepath.Join(dir, "nope.db"), filepath.Join(dir, "b1.db"), "no such file"},
		{"not a database", notDB, filepath.Join(dir, "b2.db"), "not a postie database"},
	} {
		_, err := sqlite.Backup(context.Background(), tc.src, tc.dest)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Backup error = %v, want %q", tc.name, err, tc.want)
		}
	}
	if b, _ := os.ReadFile(exists); string(b) != "keep me" {
		t.Errorf("the existing file was changed: %q", b)
	}
	for _, name := range []string{"b1.db", "b2.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s written: %v", name, err)
		}
	}
}

// TestBackupMode: the copy holds every body, address and secret, so only its owner may read
// it, whatever the umask.
func TestBackupMode(t *testing.T) {
	t.Parallel()
	dir, db := migratedDB(t)
	dest := filepath.Join(dir, "backup.db")
	if _, err := sqlite.Backup(t.Context(), db, dest); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("the copy's mode = %v, want 0600", m)
	}
}

// migratedDB returns a temporary directory and, in it, the path of a migrated database.
func migratedDB(t *testing.T) (dir, db string) {
	t.Helper()
	dir = t.TempDir()
	db = filepath.Join(dir, "postie.db")
	sqlitetest.OpenPath(t, db, sqlite.Options{Migrate: true})
	return dir, db
}

// TestBackupRemovesStale: the temporary files of an earlier backup to the same file that was
// killed are removed; those of other destinations stay.
func TestBackupRemovesStale(t *testing.T) {
	t.Parallel()
	dir, db := migratedDB(t)
	stale := filepath.Join(dir, ".backup.db.tmp-0123456789ab")
	other := filepath.Join(dir, ".other.db.tmp-0123456789ab")
	for _, f := range []string{stale, other} {
		if err := os.WriteFile(f, []byte("half a copy"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sqlite.Backup(t.Context(), db, filepath.Join(dir, "backup.db")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale temporary file is still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another destination's temporary file: %v", err)
	}
}
