// Package sqlite is postie's embedded store driver: one SQLite file in WAL mode, used by one
// postie process at a time.
//
// # Connections
//
// SQLite allows one writer at a time per file. Rather than letting many connections queue on the
// database lock (SQLITE_BUSY, retries, one fsync per request), the driver keeps exactly one writer
// connection, owned by one goroutine, and a separate pool of read-only connections (query_only)
// that WAL lets read concurrently with the writer. Reads never wait for writes.
//
// # Group commit
//
// Every write (accept, claim, finish, cancel, …) is an operation submitted to the writer goroutine.
// When the writer is free it takes every operation pending (up to 256, without waiting for more: a
// lone request commits at once), runs them in one BEGIN IMMEDIATE transaction with one SAVEPOINT
// each, and COMMITs once. With synchronous=FULL each commit costs an fsync; sharing it is what lets
// concurrent API requests each get a durable answer in about one fsync's time without paying one
// fsync each. An operation's error rolls back only its savepoint and goes to its caller only; a
// failed COMMIT fails every operation of the group. Because all writes are serialised on one
// connection, the claim needs no row locks: two workers can never claim the same row.
//
// # Process lock
//
// Open takes exclusive flock(2) locks on the database file itself and on PATH.lock (PATH with its
// symlinks resolved), held until Close, so a second postie process on the same file, whatever
// path reaches it (symlink, hard link, bind mount), fails at once with store.ErrLocked instead of
// corrupting the database or the leases (MessageReleaseLeases with Owner "" at start relies on
// being alone). processLock says why flock and why both.
//
// # Errors
//
// Errors leave the driver through two doors: the writer (do, doUrgent) and the read pool (read).
// Both translate, with unavailable, the errors of a database that cannot be used for now (disk
// full or failing, file not to be opened) into store.ErrUnavailable; sql.ErrNoRows becomes
// store.ErrNotFound in each method. Both also refuse to work, with store.ErrUnavailable, while
// the file at the database's path is not the one the store opened (fileGuard).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pressly/goose/v3"
	sqlitedrv "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configures Open. The zero value is valid.
type Options struct {
	// Migrate applies pending migrations during Open.
	Migrate bool
	// Logger receives the driver's warnings and errors; nil discards them.
	Logger *slog.Logger
	// ReadConns is the size of the read-only connection pool; 0 means 4.
	ReadConns int
	// BusyTimeout is how long a statement waits for a lock held by another connection (the
	// writer's checkpoints, or a sqlite3 shell); 0 means 5s.
	BusyTimeout time.Duration
	// MinFreeBytes is the free space the database's file system must have for Ping to call the
	// store ready: with less, writes may fail for want of room (SQLITE_FULL); 0 means
	// DefaultMinFreeBytes, a negative value turns the check off.
	MinFreeBytes int64
	// WALLimit is how long the WAL may grow, in bytes, before the writer makes it start over
	// when overlapping reads keep it from starting over by itself (see checkpointer); 0 means
	// DefaultWALLimit.
	WALLimit int64
	// OnCommit, when set, is called by the writer after each committed group with the number
	// of writes it held and the time from BEGIN to the end of COMMIT (for the metrics). It
	// runs on the writer's goroutine: it must return at once.
	OnCommit func(writes int, d time.Duration)
}

// DefaultMinFreeBytes is Options.MinFreeBytes when zero: room for the largest message at the
// default size limit twice over (its WAL frames, then the checkpoint's copy into the file).
const DefaultMinFreeBytes = 64 << 20

// DefaultWALLimit is Options.WALLimit when zero.
const DefaultWALLimit = 256 << 20

// Store is the SQLite implementation of store.Store. It is safe for concurrent use.
type Store struct {
	path string
	lock *processLock
	w    *writer
	rdb  *sql.DB
	log  *slog.Logger

	guard *fileGuard

	minFree int64 // see Options.MinFreeBytes
	walMax  int64 // see Options.WALLimit

	rmu    sync.Mutex
	rstmts map[string]*sql.Stmt // prepared on the read pool, by query text

	wake driverkit.Wakers
	recv driverkit.Receivers // store.AcceptClaims

	routes routeHint // the event types webhook endpoints are routed for (outbox.go)

	paused pausedStreams // the streams paused (inbound.go)

	chunks chunkPacer // the size of RunMaterialise's chunks (campaigns.go)

	purging sync.Mutex // RetentionLock (retention.go)

	ckptStop chan struct{}
	ckptDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.AcceptClaims = (*Store)(nil)
)

// Open opens (creating it and its directory if needed) the database file at path. It fails with
// an error wrapping store.ErrLocked when another process (or another Open in this process) has the
// file open, through whatever path. With opts.Migrate it also brings the schema up to date.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	readConns := opts.ReadConns
	if readConns <= 0 {
		readConns = 4
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}

	// 0700, and the file 0600 (lockDatabase): the database holds every message.
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: creating the database directory: %w", err)
	}
	// The file is created there, by this process holding the lock on its name, and by no
	// connection (see dsn). From here on the path is the resolved one, which SQLite names the
	// WAL after.
	lock, abs, err := lockDatabase(abs, log)
	if err != nil {
		return nil, err
	}
	s := &Store{path: abs, lock: lock, log: log, rstmts: map[string]*sql.Stmt{}, minFree: opts.MinFreeBytes}
	if s.minFree == 0 {
		s.minFree = DefaultMinFreeBytes
	}
	if s.walMax = opts.WALLimit; s.walMax <= 0 {
		s.walMax = DefaultWALLimit
	}

	wdb, err := sql.Open("sqlite", dsn(abs, busy, false))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: %w", err), lock.Close())
	}
	// One connection, kept forever: see the package comment.
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	conn, err := wdb.Conn(ctx)
	if err == nil {
		err = checkWAL(ctx, conn)
		if err != nil {
			err = errors.Join(err, conn.Close())
		}
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: opening %s: %w", abs, err), wdb.Close(), lock.Close())
	}
	// The file the writer connection has open (see fileGuard).
	guard, err := newFileGuard(abs, log)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: opening %s: %w", abs, err), conn.Close(), wdb.Close(), lock.Close())
	}
	s.guard = guard
	s.w = newWriter(wdb, conn, busy, s.walMax, guard.check, opts.OnCommit, log)

	s.rdb, err = sql.Open("sqlite", dsn(abs, busy, true))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: %w", err), s.Close())
	}
	s.rdb.SetMaxOpenConns(readConns)
	s.rdb.SetMaxIdleConns(readConns)
	s.rdb.SetConnMaxLifetime(0)
	s.rdb.SetConnMaxIdleTime(0)

	if opts.Migrate {
		if err := s.Migrate(ctx); err != nil {
			return nil, errors.Join(err, s.Close())
		}
	} else {
		if err := s.loadRoutes(ctx); err != nil {
			// Not migrated yet (Migrate loads them): no endpoint, so no route.
			s.routes.types.Store(&map[string]bool{})
		}
		if err := s.loadPaused(ctx); err != nil {
			// Not migrated yet (Migrate loads them): no stream was ever paused.
			s.paused.set.Store(&map[string]bool{})
		}
	}
	s.ckptStop, s.ckptDone = make(chan struct{}), make(chan struct{})
	go s.checkpointer()
	return s, nil
}

// checkpointInterval is how often the checkpointer copies the WAL into the database file.
const checkpointInterval = 200 * time.Millisecond

// See checkpointer.
const (
	walCaughtUp  = 2 << 20 // bytes of the WAL not copied yet
	walHardLimit = 16      // times Options.WALLimit
)

// checkpointer runs PASSIVE checkpoints on a connection of its own: they never block the writer
// or readers, and they fsync the database file outside the writer's critical path. When the WAL
// was fully copied, the writer's next transaction starts the WAL file over, so it stays small.
//
// It cannot start over while a reader still reads an older snapshot from the WAL, nor while the
// writer adds frames faster than a passive checkpoint copies them; with reads overlapping all the
// time (a purge or a console reading beside a steady load) the WAL would only grow, and every
// page read with it (a read searches the WAL's index, which grows with it). So once the WAL is
// Options.WALLimit long and the passive checkpoints have caught up with it (within
// walCaughtUp: what is left is the readers' doing, and starting it over copies next to nothing), the
// checkpointer asks the writer to start it over between two groups (writer.restartWAL). A writer
// that keeps ahead of the checkpoints (a bulk load) is left to it until the WAL is walHardLimit
// times the limit: starting it over then holds writes back while the rest is copied, which a steady
// load would feel at every limit's worth of writes.
func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	db, err := sql.Open("sqlite", dsn(s.path, 5*time.Second, false))
	if err != nil {
		s.log.Error("sqlite: checkpointer disabled", "err", err)
		return
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var pageSize int64
	if err := db.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil || pageSize <= 0 {
		pageSize = 8192
	}
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ckptStop:
			return
		case <-t.C:
		}
		if s.guard.check() != nil {
			continue // the file is gone (fileGuard): nothing to copy into
		}
		var busy, logPages, done int64
		if err := db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &done); err != nil {
			s.log.Warn("sqlite: checkpoint failed", "err", err)
			continue
		}
		size := logPages * pageSize
		if size >= s.walMax && (logPages-done)*pageSize <= walCaughtUp || size >= walHardLimit*s.walMax {
			s.w.restart.Store(true)
		}
	}
}

// dsn builds the modernc.org/sqlite data source name. The pragmas run on every new connection.
func dsn(path string, busy time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	// mode=rw: no connection creates the database file (Open does). A connection opened after
	// the file was removed (the read pool opens them as needed) fails with SQLITE_CANTOPEN, i.e.
	// store.ErrUnavailable, instead of starting an empty database beside the old one's WAL.
	q.Set("mode", "rw")
	if readOnly {
		// The read pool can never write, whatever a bug might try.
		q.Add("_pragma", "query_only(1)")
	} else {
		// WAL: readers do not block the writer nor it them. synchronous=FULL: a commit is on disk
		// (WAL fsynced) before COMMIT returns; "durable before acknowledged" (DESIGN §1).
		//
		// 8 KiB pages, for a database this connection creates (an existing one keeps its page
		// size): a typical message's MIME (10 KB) then takes a leaf cell and one overflow page
		// instead of three or four pages, i.e. fewer WAL frames, each two pwrite(2)s, and fewer
		// pages to checkpoint. Larger pages are worse: every small row update writes a whole
		// page to the WAL. The page size must be set before WAL mode, which the driver applies
		// after the _pragma list when it is given as _journal_mode (it sorts the _pragma list).
		q.Add("_pragma", "page_size(8192)")
		q.Set("_journal_mode", "WAL")
		q.Add("_pragma", "synchronous(FULL)")
		// A bigger page cache than the default 2 MiB for the one connection that maintains the
		// indexes, but not much bigger: the driver's allocator gives each 8 KiB page (with
		// its header) a 16 KiB slot, so the cache costs twice its size in RSS, and a bulk
		// write (an import) fills all of it.
		q.Add("_pragma", "cache_size(-8192)")
		// Keeps the savepoint sub-journal of group commit in memory: by default SQLite spills it
		// to a temporary file past 64 KiB, i.e. a write(2) per page an operation first touches.
		q.Add("_pragma", "temp_store(MEMORY)")
		// The writer never checkpoints: the checkpointer goroutine does, on its own connection,
		// so copying WAL pages into the database (and its fsync) runs beside the writer instead
		// of stalling every group commit that crosses the 1000-page mark.
		q.Add("_pragma", "wal_autocheckpoint(0)")
		// goose's transactions (the writer's own ones issue BEGIN IMMEDIATE themselves).
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

func checkWAL(ctx context.Context, conn *sql.Conn) error {
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("journal_mode is %q, not wal", mode)
	}
	return nil
}

// Migrate applies the pending embedded migrations (goose, without its global state). It runs on
// the writer connection between write groups, so it is safe while the store is in use.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	err = s.w.exclusive(ctx, func(db *sql.DB) error {
		p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithDisableGlobalRegistry(true))
		if err != nil {
			return fmt.Errorf("sqlite: migrations: %w", err)
		}
		results, err := p.Up(ctx)
		if err != nil {
			return fmt.Errorf("sqlite: migrating %s: %w", s.path, err)
		}
		for _, r := range results {
			s.log.Info("sqlite: migration applied", "path", s.path, "version", r.Source.Version,
				"file", r.Source.Path, "duration", r.Duration)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.loadPaused(ctx); err != nil {
		return err
	}
	s.routes.mu.Lock()
	defer s.routes.mu.Unlock()
	return s.loadRoutes(ctx)
}

// Path returns the absolute path of the database file, its symlinks resolved.
func (s *Store) Path() string { return s.path }

// Ping checks that the database answers a query on the read pool and that its file system has
// Options.MinFreeBytes free: a full disk refuses writes (store.ErrUnavailable) while reads
// still work, and readiness is about taking messages. Looking at the free space costs one
// statfs(2) and writes nothing; it is back to ready as soon as there is room again.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := readOne(ctx, s, "SELECT 1", nil, scanValue[int]); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if s.minFree > 0 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(filepath.Dir(s.path), &st); err == nil {
			if free := int64(st.Bavail) * int64(st.Bsize); free < s.minFree {
				return fmt.Errorf("sqlite: ping: %d bytes free on the database's file system, under the %d it needs to take writes: %w",
					free, s.minFree, store.ErrUnavailable)
			}
		}
	}
	return nil
}

// Close waits for queued writes, closes the connections and releases the file locks. Later calls
// return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.ckptStop != nil {
			close(s.ckptStop)
			<-s.ckptDone
		}
		if s.w != nil {
			errs = append(errs, s.w.close())
		}
		if s.rdb != nil {
			s.rmu.Lock()
			for _, st := range s.rstmts {
				errs = append(errs, st.Close())
			}
			s.rstmts = nil
			s.rmu.Unlock()
			errs = append(errs, s.rdb.Close())
		}
		// The writer pool last: the last connection to close checkpoints the WAL.
		if s.w != nil {
			errs = append(errs, s.w.db.Close())
		}
		errs = append(errs, s.lock.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// rstmt returns q prepared on the read pool (database/sql prepares it on each connection as
// needed).
func (s *Store) rstmt(ctx context.Context, q string) (*sql.Stmt, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.rstmts == nil {
		return nil, errClosed
	}
	if st, ok := s.rstmts[q]; ok {
		return st, nil
	}
	st, err := s.rdb.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.rstmts[q] = st
	return st, nil
}

// read runs q on the read pool, hands its rows to each, and closes them. It is the read pool's one
// exit for errors, which it passes through unavailable.
func (s *Store) read(ctx context.Context, q string, args []any, each func(*sql.Rows) error) error {
	if err := s.guard.check(); err != nil {
		return err
	}
	st, err := s.rstmt(ctx, q)
	if err != nil {
		return unavailable(err)
	}
	return eachRow(each)(st.QueryContext(ctx, args...))
}

// eachRow returns the function that hands the rows of a query to each and closes them, passing
// every error through unavailable.
func eachRow(each func(*sql.Rows) error) func(*sql.Rows, error) error {
	return func(rows *sql.Rows, err error) error {
		if err != nil {
			return unavailable(err)
		}
		err = each(rows)
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		return unavailable(err)
	}
}

// readAll runs q on the read pool and reads every row with scan.
func readAll[T any](ctx context.Context, s *Store, q string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	var out []T
	err := s.read(ctx, q, args, func(rows *sql.Rows) error {
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}

// readOne runs q on the read pool and reads its first row with scan, or returns sql.ErrNoRows
// (as database/sql's QueryRow).
func readOne[T any](ctx context.Context, s *Store, q string, args []any, scan func(scanner) (T, error)) (T, error) {
	var v T
	err := s.read(ctx, q, args, func(rows *sql.Rows) error {
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return err
			}
			return sql.ErrNoRows
		}
		var err error
		v, err = scan(rows)
		return err
	})
	return v, err
}

// scanValue reads a row of one column.
func scanValue[T any](sc scanner) (T, error) {
	var v T
	err := sc.Scan(&v)
	return v, err
}

// unavailable marks with store.ErrUnavailable the errors of a database that cannot be used for
// now: the disk full (SQLITE_FULL) or failing (SQLITE_IOERR), or the file not to be opened by a
// new connection (SQLITE_CANTOPEN: it or its directory is gone, see dsn). Nothing was changed,
// and the caller may retry once the operator has made room or put the file back (the API answers
// 503 with Retry-After). Other errors, sql.ErrNoRows among them, are returned as they are.
func unavailable(err error) error {
	var se *sqlitedrv.Error
	if err == nil || errors.Is(err, store.ErrUnavailable) || !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff { // the primary result code of an extended one
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// Wakeups returns the stream's wake-up channel (capacity 1; signals coalesce).
func (s *Store) Wakeups(stream string) <-chan struct{} {
	return s.wake.Chan(stream)
}

// signal wakes the workers of each stream, without blocking.
func (s *Store) signal(streams map[string]struct{}) {
	for stream := range streams {
		s.wake.Signal(stream)
	}
}
