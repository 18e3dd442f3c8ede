package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// BackupResult describes a copy Backup made.
type BackupResult struct {
	Path     string        // the copy
	Size     int64         // its size in octets
	Duration time.Duration // how long the copy and its check took
}

// Backup writes a consistent copy of the database at path (a snapshot as of one moment) to dest,
// while a postie process may be using the database: the copy is one read transaction (VACUUM
// INTO), which in WAL mode neither waits for the writer nor holds it. It does not take postie's
// process lock (processLock): those are flock(2) locks, which SQLite's own locking ignores.
//
// dest must not exist (Backup never overwrites). The copy is written to a temporary file beside
// dest, checked (PRAGMA integrity_check), synced, and only then linked to dest (or renamed, where
// there are no hard links: publish); on any failure nothing is left at dest. Temporary files an
// earlier, killed backup to dest left behind are removed first.
func Backup(ctx context.Context, path, dest string) (BackupResult, error) {
	start := time.Now()
	if _, err := os.Lstat(dest); err == nil {
		return BackupResult{}, fmt.Errorf("backup: %s exists; choose a new file name", dest)
	} else if !errors.Is(err, os.ErrNotExist) {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}
	// The path the server opened (symlinks resolved): SQLite finds the WAL by the name it is given.
	real, err := resolve(path)
	if err == nil {
		// Absolute, as the server opens it: a relative path in a file: URI would be read as
		// its authority (file://postie-data/…).
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}
	if fi, err := os.Stat(real); err != nil {
		return BackupResult{}, fmt.Errorf("backup: the database: %w", err)
	} else if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return BackupResult{}, fmt.Errorf("backup: %s is not a postie database", path)
	}
	removeStale(dest)
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	dir, err := filepath.Abs(filepath.Dir(dest))
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}
	tmp := filepath.Join(dir, tmpPrefix(dest)+hex.EncodeToString(suffix[:]))
	defer os.Remove(tmp) // after the link (or a failure): dest is the copy's only name

	// The copy holds every body, address and secret: it is created empty and owner-only before
	// VACUUM INTO fills it (VACUUM INTO accepts an empty file and keeps its mode; a file it
	// creates itself would be world-readable under the usual umask).
	if err := createPrivate(tmp); err != nil {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}
	if err := vacuumInto(ctx, real, tmp); err != nil {
		return BackupResult{}, err
	}
	if err := checkCopy(ctx, tmp); err != nil {
		return BackupResult{}, err
	}
	f, err := os.Open(tmp)
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}
	err = f.Sync()
	fi, statErr := f.Stat()
	if err = errors.Join(err, statErr, f.Close()); err != nil {
		return BackupResult{}, fmt.Errorf("backup: syncing the copy: %w", err)
	}
	if err := publish(tmp, dest, os.Link); err != nil {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dest)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return BackupResult{Path: dest, Size: fi.Size(), Duration: time.Since(start)}, nil
}

// tmpPrefix is the name of dest's temporary files, before their random suffix.
func tmpPrefix(dest string) string { return "." + filepath.Base(dest) + ".tmp-" }

// removeStale removes the temporary files an earlier backup to dest left when it was killed
// (SIGKILL, power loss: its deferred remove never ran). A backup to the same dest running
// meanwhile would lose its temporary file and fail, leaving nothing at dest; two backups to one
// file are a mistake anyway (one of them would fail on the existing dest).
func removeStale(dest string) {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), globEscape(tmpPrefix(dest))+"*"))
	for _, f := range stale {
		_ = os.Remove(f)
	}
}

// globEscape escapes the characters filepath.Match treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// publish gives the finished copy tmp its name dest, never replacing a file there: a hard link
// (link, os.Link but in tests; it fails if dest exists), then tmp's removal by the caller. Where the filesystem has no
// hard links (some network and FUSE filesystems, exFAT), a rename after checking that dest is
// still absent; a dest created between that check and the rename would be replaced, a race
// only another writer of the same name can lose.
func publish(tmp, dest string, link func(oldname, newname string) error) error {
	err := link(tmp, dest)
	if err == nil || !linkUnsupported(err) {
		return err
	}
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("%s exists; choose a new file name", dest)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, dest)
}

// linkUnsupported reports whether err says the filesystem cannot make hard links.
func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS)
}

// createPrivate creates name empty with mode 0600 (the umask cannot widen it; Chmod undoes a
// narrower one), failing if it exists.
func createPrivate(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return errors.Join(f.Chmod(0o600), f.Close())
}

// vacuumInto copies the database at real to tmp with VACUUM INTO. The connection runs only
// reads and the VACUUM INTO (query_only would refuse even that: it writes a file); mode=rw
// never creates a database at real.
func vacuumInto(ctx context.Context, real, tmp string) error {
	u := url.URL{Scheme: "file", Path: real, RawQuery: url.Values{"mode": {"rw"}, "_pragma": {"busy_timeout(30000)"}}.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'messages'").Scan(&n); err != nil {
		return fmt.Errorf("backup: reading the database: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("backup: %s holds no postie schema", real)
	}
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return fmt.Errorf("backup: copying: %w", err)
	}
	return nil
}

// checkCopy runs PRAGMA integrity_check on the copy, read only.
func checkCopy(ctx context.Context, tmp string) error {
	u := url.URL{Scheme: "file", Path: tmp, RawQuery: "mode=ro"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return fmt.Errorf("backup: checking the copy: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("backup: checking the copy: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("backup: checking the copy: %w", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("backup: checking the copy: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("backup: the copy failed its integrity check: %v", problems)
	}
	return nil
}
