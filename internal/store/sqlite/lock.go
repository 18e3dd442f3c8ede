package sqlite

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/postie/postie/internal/store"
)

// processLock is what makes a postie process the only one on a database file, whatever path
// reaches it. It holds two flock(2) locks until Close:
//
//   - on the database file itself (the inode), so a second process is refused however it names
//     the file: through a symlink, a hard link, a bind mount or a path with "..". A hard link
//     matters most: SQLite names the WAL and shared-memory files after the path it was given, so
//     two processes on two names of one file would each write their own WAL into the same
//     database and corrupt it.
//   - on REALPATH.lock, named after the path with its symlinks resolved, so a second process is
//     also refused while the first one still has the WAL and shared-memory files of that name in
//     use after its database file was removed or renamed away (see fileGuard): a new database
//     created at the path would otherwise be opened with the old one's WAL.
//
// Why flock and not fcntl: SQLite locks the database file with POSIX record locks (fcntl
// F_SETLK on the bytes at 1 GiB). On Linux, flock locks and record locks are separate kinds
// that never interact, so holding a flock on another descriptor of the same file leaves SQLite's
// own locking, in this process and in others (a sqlite3 shell, a backup tool), exactly as it
// was. An open-file-description (OFD) lock would share the record locks' space: it would
// conflict with SQLite's locks even within this process unless kept off the bytes SQLite uses,
// and a traditional record lock would be dropped by SQLite closing any of its descriptors of the
// file. (On NFS the kernel emulates flock with record locks over the whole file, which would
// conflict with SQLite's; WAL mode does not work over a network filesystem anyway.)
//
// The descriptor of the database file stays open until Close, after every SQLite connection is
// closed: closing a descriptor of a file drops every POSIX lock this process holds on it, so it
// must not be closed while SQLite holds its locks.
type processLock struct {
	db, name *os.File
}

// lockDatabase resolves path's symlinks, takes both locks and returns them with the resolved
// path, the one SQLite must be given. It creates the database file (empty, mode 0600) when it
// does not exist, so that the lock is on the file SQLite then opens. When another process (or
// another Open in this process: flock locks conflict between open file descriptions) holds
// either lock, it fails with an error wrapping store.ErrLocked that names path, and leaves the
// file untouched.
func lockDatabase(path string, log *slog.Logger) (*processLock, string, error) {
	real, err := resolve(path)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: %w", err)
	}
	name, err := os.OpenFile(real+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: opening lock file: %w", err)
	}
	if err := flock(name, path, real); err != nil {
		return nil, "", errors.Join(err, name.Close())
	}
	// O_RDONLY is enough for flock; 0600: the database holds every message and API key hash.
	// SQLite gives its -wal and -shm files the database file's mode.
	db, err := os.OpenFile(real, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, "", errors.Join(fmt.Errorf("sqlite: creating %s: %w", real, err), name.Close())
	}
	if err := flock(db, path, real); err != nil {
		return nil, "", errors.Join(err, db.Close(), name.Close())
	}
	if fi, err := db.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			log.Warn("sqlite: the database file has other hard links; a postie or SQLite opening it through another name would use another WAL file and corrupt it (hard links are not supported)",
				"path", real, "links", st.Nlink)
		}
	}
	return &processLock{db: db, name: name}, real, nil
}

// resolve returns path (absolute) with every symlink resolved, its last element included when
// it exists.
func resolve(path string) (string, error) {
	if _, err := os.Lstat(path); err == nil {
		return filepath.EvalSymlinks(path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(path)), nil
}

// flock takes a non-blocking exclusive flock on f. path is the path the caller gave, real its
// resolved form, both for the error.
func flock(f *os.File, path, real string) error {
	var err error
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err == nil {
		return nil
	}
	which := path
	if real != path {
		which = path + " (the file " + real + ")"
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("sqlite: %s: %w", which, store.ErrLocked)
	}
	return fmt.Errorf("sqlite: locking %s: %w", which, err)
}

// Close releases both locks. Call it only once every SQLite connection to the file is closed.
func (l *processLock) Close() error {
	return errors.Join(l.db.Close(), l.name.Close())
}
