package sqlite

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// TestOpenLockedEveryPath: while one store has a database open, an Open of the same file through
// any other path is refused with store.ErrLocked naming the path given, before SQLite opens
// anything: no WAL or shared-memory file appears beside the other name.
func TestOpenLockedEveryPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	path := filepath.Join(data, "postie.db")
	first := openAt(t, path, Options{Migrate: true})
	m := storetest.Message(t0)
	if _, err := first.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(path, filepath.Join(dir, "file-link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, filepath.Join(dir, "dir-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, filepath.Join(dir, "hard-link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "other"), 0o700); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, path string }{
		{"same path", path},
		{"relative with ..", filepath.Join(dir, "other", "..", "data", "postie.db")},
		{"symlink to the file", filepath.Join(dir, "file-link.db")},
		{"symlink to the directory", filepath.Join(dir, "dir-link", "postie.db")},
		{"hard link", filepath.Join(dir, "hard-link.db")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.path, Options{Migrate: true})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) of a database in use succeeded", tc.path)
			}
			if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), filepath.Clean(tc.path)) {
				t.Fatalf("Open(%s): %v; want an error wrapping store.ErrLocked that names the path", tc.path, err)
			}
			for _, suffix := range []string{"-wal", "-shm"} {
				fi, err := os.Stat(tc.path + suffix)
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				ours, oerr := os.Stat(path + suffix)
				if err != nil || oerr != nil || !os.SameFile(fi, ours) {
					t.Errorf("a %s file other than the first store's is beside %s: %v %v", suffix, tc.path, err, oerr)
				}
			}
		})
	}
	if _, err := first.MessageGet(t.Context(), m.Message.ID); err != nil {
		t.Errorf("the first store after the refused Opens: %v", err)
	}
}

// TestOpenLockedFileMovedAway: a database file renamed away under a running store (which then
// refuses work, see fileGuard) still keeps a second store off its path, where the first one's WAL
// is still in use.
func TestOpenLockedFileMovedAway(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "postie.db")
	openAt(t, path, Options{Migrate: true})
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(path+".moved", path) // so the first store closes cleanly
	s, err := Open(t.Context(), path, Options{Migrate: true})
	if err == nil {
		s.Close()
		t.Fatal("Open beside a moved-away database in use succeeded")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Open: %v; want store.ErrLocked", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused Open created a database file: %v", err)
	}
}

// TestFileModes: the database directory is created 0700 and the database, its WAL and
// shared-memory files 0600: they hold every message.
func TestFileModes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "postie-data")
	path := filepath.Join(dir, "postie.db")
	s := openAt(t, path, Options{Migrate: true})
	if _, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{storetest.Message(t0)}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700 | os.ModeDir},
		{path, 0o600},
		{path + "-wal", 0o600},
		{path + "-shm", 0o600},
		{path + ".lock", 0o600},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if got := fi.Mode() &^ (os.ModeType &^ os.ModeDir); got != tc.want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(tc.path), got, tc.want)
		}
	}
}

// TestLockLeavesSQLiteLockingAlone: the process lock (flock) does not get in the way of SQLite's
// own locks (fcntl record locks), in another process: the sqlite3 shell reads and backs up the
// database while the store holds it and writes.
func TestLockLeavesSQLiteLockingAlone(t *testing.T) {
	t.Parallel()
	shell, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 shell")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "postie.db")
	s := openAt(t, path, Options{Migrate: true})
	for i := range 2 {
		if _, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{storetest.Message(t0)}, Now: t0}); err != nil {
			t.Fatal(err)
		}
		backup := filepath.Join(dir, fmt.Sprintf("backup%d.db", i))
		out, err := exec.CommandContext(t.Context(), shell, path, "SELECT count(*) FROM messages;", ".backup "+backup).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(i+1) {
			t.Fatalf("sqlite3 beside the store: %v %q, want %d messages", err, out, i+1)
		}
		out, err = exec.CommandContext(t.Context(), shell, backup, "SELECT count(*) FROM messages;").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(i+1) {
			t.Fatalf("the backup: %v %q, want %d messages", err, out, i+1)
		}
	}
}
