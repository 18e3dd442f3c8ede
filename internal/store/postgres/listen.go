package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// listenerConfig configures the wake-up listener.
type listenerConfig struct {
	conn     *pgx.ConnConfig
	log      *slog.Logger
	min, max time.Duration               // reconnection backoff
	notify   func(stream, sender string) // a notification arrived
	resumed  func()                      // the connection was re-established: something may have been missed
}

// listener holds the dedicated LISTEN connection (a pooled connection cannot wait for
// notifications) and reconnects it when it drops.
type listener struct {
	cfg    listenerConfig
	cancel context.CancelFunc
	done   chan struct{}
	pid    atomic.Uint32 // backend pid of the current connection, 0 while disconnected (for tests)
}

// startListener connects and LISTENs before returning, so that a Store that Open returned misses
// no notification sent after it; it fails when that first connection fails.
func startListener(ctx context.Context, cfg listenerConfig) (*listener, error) {
	conn, err := listenConn(ctx, cfg.conn)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	l := &listener{cfg: cfg, cancel: cancel, done: make(chan struct{})}
	l.pid.Store(conn.PgConn().PID())
	go l.run(runCtx, conn)
	return l, nil
}

func listenConn(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: wake-up listener: %w", unavailable(err))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+wakeupChannel); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("postgres: wake-up listener: %w", unavailable(err))
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	backoff := l.cfg.min
	for {
		if conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			var err error
			conn, err = listenConn(ctx, l.cfg.conn)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				backoff = min(2*backoff, l.cfg.max)
				l.cfg.log.Warn("postgres: reconnecting the wake-up listener failed", "err", err, "retry_in", backoff)
				continue
			}
			l.pid.Store(conn.PgConn().PID())
			backoff = l.cfg.min
			l.cfg.log.Info("postgres: wake-up listener reconnected")
			l.cfg.resumed()
		}
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			l.pid.Store(0)
			closeConn(conn)
			conn = nil
			if ctx.Err() != nil {
				return
			}
			l.cfg.log.Warn("postgres: wake-up listener lost its connection", "err", err)
			continue
		}
		stream, sender, _ := strings.Cut(n.Payload, " ")
		l.cfg.notify(stream, sender)
	}
}

// stop closes the connection and waits for the listener to end.
func (l *listener) stop() {
	l.cancel()
	<-l.done
}

// notifyGap is the least time between two NOTIFY statements of one Store. Each is a transaction
// of its own; without the gap a busy node would send one per round trip (thousands a second) for
// the same two streams. The other nodes hear of new work at most this much later.
const notifyGap = 5 * time.Millisecond

// notifier sends the NOTIFYs of one Store, after the commits that call for them, coalesced: at
// most one statement is in flight, at most one per notifyGap, and the wake-ups asked for meanwhile
// go out together in the next one.
type notifier struct {
	pool   *pgxpool.Pool
	sender string
	log    *slog.Logger

	mu      sync.Mutex
	pending map[string]struct{}
	kick    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

func startNotifier(pool *pgxpool.Pool, sender string, log *slog.Logger) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{pool: pool, sender: sender, log: log, pending: map[string]struct{}{},
		kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go n.run(ctx)
	return n
}

// send asks for a wake-up of streams on the other nodes; it never blocks.
func (n *notifier) send(streams map[string]struct{}) {
	n.mu.Lock()
	for s := range streams {
		n.pending[s] = struct{}{}
	}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) run(ctx context.Context) {
	defer close(n.done)
	gap := time.NewTimer(notifyGap)
	defer gap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		}
		n.mu.Lock()
		payloads := make([]string, 0, len(n.pending))
		for s := range n.pending {
			payloads = append(payloads, s+" "+n.sender)
		}
		clear(n.pending)
		n.mu.Unlock()
		if len(payloads) == 0 {
			continue
		}
		if _, err := n.pool.Exec(ctx, qNotify, payloads); err != nil && ctx.Err() == nil {
			// The other nodes find the work by polling instead.
			n.log.Warn("postgres: sending a wake-up failed", "err", err)
		}
		gap.Reset(notifyGap)
		select {
		case <-ctx.Done():
			return
		case <-gap.C:
		}
	}
}

func (n *notifier) stop() {
	n.cancel()
	<-n.done
}
