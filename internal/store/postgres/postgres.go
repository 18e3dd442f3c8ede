// Package postgres is postie's PostgreSQL store driver, for many postie nodes sharing one
// database. It implements store.Store with the same semantics as the SQLite driver, and passes the
// same conformance suite (storetest).
//
// # Claiming across nodes
//
// Workers on every node claim due messages with one UPDATE whose subquery picks the rows with
// FOR UPDATE SKIP LOCKED: concurrent claimers never wait for each other and never take the same
// row. A claimed row carries its lease (lease_owner, lease_until); MessageFinish applies an outcome
// only while its owner still holds the lease. A node that dies leaves its leases behind; any node's
// MessageRescue returns them to the queue once they expire. Unlike a SQLite node, a PostgreSQL node
// must not release every lease when it starts (the others hold theirs): each node releases its own
// (MessageReleaseLeases with its Owner) when it shuts down.
//
// # Wake-ups across nodes
//
// Accepting, retrying, rescuing or releasing messages wakes the local workers at once (Wakeups) and
// the other nodes' through NOTIFY on the channel postie_wakeup, payload "STREAM SENDER". The NOTIFY
// is sent after the commit by one goroutine per Store, coalesced: while one is in flight, further
// wake-ups of the stream wait and go out as one. (A NOTIFY inside every accepting transaction would
// do as well for correctness, but PostgreSQL serialises the commits of notifying transactions on
// one lock, which would cap the accept rate at one commit at a time.) A dedicated connection
// LISTENs and feeds the Wakeups channels; when it drops, it reconnects with backoff and then wakes
// every stream, since a notification may have been missed. Notifications are an optimisation: the
// delivery engine polls MessageNextDue as the fallback.
//
// # Errors
//
// Only "no row" becomes store.ErrNotFound, and only state checks become store.ErrConflict: a
// connection that fails, a statement timeout or a server shutting down comes back as that error,
// never as a state. Errors saying the database could not be reached (refused, lost or closed
// connections, a server shutting down or out of connections) wrap store.ErrUnavailable. Every
// method is safe for concurrent use.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults of Options.
const (
	DefaultMaxConns         = 10
	DefaultStatementTimeout = 30 * time.Second
)

// wakeupChannel is the NOTIFY channel of wake-ups.
const wakeupChannel = "postie_wakeup"

// Options configures Open. Only URL is required.
type Options struct {
	// URL is the connection string: postgres://user:pass@host:5432/db?sslmode=… (or postgresql://,
	// or a key=value DSN); every libpq parameter pgx understands may be given.
	URL string
	// MaxConns is the size of the connection pool; 0 means DefaultMaxConns. The wake-up listener
	// uses one more connection of its own.
	MaxConns int
	// StatementTimeout aborts any statement running longer (statement_timeout); 0 means
	// DefaultStatementTimeout, a negative value none.
	StatementTimeout time.Duration
	// Migrate applies pending migrations during Open (under an advisory lock, so that nodes
	// starting together migrate once).
	Migrate bool
	// Logger receives the driver's warnings and errors; nil discards them.
	Logger *slog.Logger
	// ReconnectMin and ReconnectMax bound the backoff of the listener's reconnections; 0 means
	// 100ms and 10s.
	ReconnectMin, ReconnectMax time.Duration
}

// Store is the PostgreSQL implementation of store.Store. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	conn   *pgx.ConnConfig // the pool's connection settings
	log    *slog.Logger
	sender string // this Store's name in NOTIFY payloads, to skip its own notifications

	wake driverkit.Wakers

	notifier *notifier
	listener *listener
	group    grouper[*acceptRows] // accepts written together (group.go)
	events   grouper[*eventsReq]  // events accepted together (notify.go)
	recv     driverkit.Receivers  // store.AcceptClaims (handoff.go)
	paused   pausedCache          // the streams paused, for the handoff (inbound.go)
	shardOf  func() int16         // the delivery_counts shard of each write; nil: at random (countShard)

	closeOnce sync.Once
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.AcceptClaims = (*Store)(nil)
)

// Open connects to the database, checks that it answers, optionally migrates it, and starts the
// wake-up listener. It fails when the database cannot be reached.
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// pgx's parse errors never include the password.
		return nil, fmt.Errorf("postgres: %w", unavailable(err))
	}
	cfg.MaxConns = int32(DefaultMaxConns)
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(opts.MaxConns)
	}
	timeout := opts.StatementTimeout
	if timeout == 0 {
		timeout = DefaultStatementTimeout
	}
	if timeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	}
	// TCP keepalives that notice a connection silently gone (a dead host, a dropped route) within
	// about 30s, instead of the system's default of hours; the listener waits on its connection for
	// as long as no notification comes.
	dialer := &net.Dialer{Timeout: cfg.ConnConfig.ConnectTimeout, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}}
	cfg.ConnConfig.DialFunc = dialer.DialContext
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "postie"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", unavailable(err))
	}
	s := &Store{pool: pool, conn: cfg.ConnConfig, log: log, sender: id.New("node")[5:]}
	s.group.maxRows, s.group.write = maxGroupRows, s.writeAccept
	s.events.maxRows, s.events.write = eventsGroupMax, s.acceptEvents
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if opts.Migrate {
		if err := s.Migrate(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	// Not migrated yet: no stream was ever paused, and accepts try again in a second.
	_ = s.refreshPaused(ctx)
	s.listener, err = startListener(ctx, listenerConfig{
		conn:    cfg.ConnConfig.Copy(),
		log:     log,
		min:     cmp.Or(opts.ReconnectMin, 100*time.Millisecond),
		max:     cmp.Or(opts.ReconnectMax, 10*time.Second),
		notify:  s.received,
		resumed: s.wake.SignalAll, // after the listener reconnected
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.notifier = startNotifier(pool, s.sender, log)
	return s, nil
}

// Migrate applies the pending embedded migrations (goose, without its global state), holding a
// PostgreSQL advisory lock meanwhile so that nodes starting together do not race. Migrations run
// on connections of their own without the statement timeout: rewriting a large table may take
// longer.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", unavailable(err))
	}
	// A node that finds the lock taken retries every second (for up to 5 minutes) while another
	// node migrates.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", unavailable(err))
	}
	conn := s.conn.Copy()
	conn.RuntimeParams["statement_timeout"] = "0"
	db := stdlib.OpenDB(*conn)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", unavailable(err))
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrating: %w", unavailable(err))
	}
	for _, r := range results {
		s.log.Info("postgres: migration applied", "version", r.Source.Version, "file", r.Source.Path,
			"duration", r.Duration)
	}
	return nil
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("postgres: ping: %w", unavailable(err))
	}
	return nil
}

// Close stops the listener and the notifier and closes the pool (waiting for connections in use
// to be returned). It always returns nil; later calls do nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.notifier.stop()
		s.listener.stop()
		s.pool.Close()
	})
	return nil
}

// Wakeups returns the stream's wake-up channel (capacity 1; signals coalesce).
func (s *Store) Wakeups(stream string) <-chan struct{} {
	return s.wake.Chan(stream)
}

// signal wakes the workers of each stream: this node's at once, the other nodes' through the
// notifier.
func (s *Store) signal(streams map[string]struct{}) {
	if len(streams) == 0 {
		return
	}
	for stream := range streams {
		s.wake.Signal(stream)
	}
	s.notifier.send(streams)
}

// received handles a notification's payload from the listener.
func (s *Store) received(stream, sender string) {
	if sender != s.sender {
		s.wake.Signal(stream)
	}
}

// noRows tells whether err is pgx's "no rows in result set".
func noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// unavailable wraps err with store.ErrUnavailable when it says the database could not be reached:
// the connection was refused, lost or closed, or the server is shutting down, starting up or out
// of connections. Other errors (a constraint, a timeout of the caller's context, a statement
// timeout, bad credentials) are returned as they are.
func unavailable(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "22P05" || pgErr.Code == "22021" && strings.Contains(pgErr.Message, "0x00")) &&
		!errors.Is(err, store.ErrBadText) {
		// untranslatable_character (U+0000 in jsonb), character_not_in_repertoire with 0x00 (NUL
		// in text)
		return fmt.Errorf("%w: %w", store.ErrBadText, err)
	}
	if err == nil || errors.Is(err, store.ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

func isUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var (
		pgErr      *pgconn.PgError
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	isPg := errors.As(err, &pgErr)
	switch {
	case errors.As(err, &connectErr):
		// Connecting failed: the server is down, refusing, starting or stopping, or will not let
		// anyone into the database now; but not for bad credentials or an unknown database,
		// which are configuration errors.
		return !isPg || !(strings.HasPrefix(pgErr.Code, "28") || pgErr.Code == "3D000")
	case isPg:
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
			"53300", // too_many_connections
			"53100": // disk_full: nothing was written; retry once there is room
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	return errors.As(err, &netErr) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
