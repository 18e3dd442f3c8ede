package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit limits. A group is whatever is pending when the writer becomes free, cut at these
// sizes; the writer never waits for more.
const (
	maxGroupOps    = 256  // operations per transaction
	maxGroupWeight = 4096 // rows (messages) per transaction, so one group's latency stays bounded
)

// errClosed is returned by every method once Close has begun.
var errClosed = errors.New("sqlite: store is closed")

// op is one write handed to the writer goroutine.
type op struct {
	ctx    context.Context
	fn     func(*wtx) error    // runs inside the group transaction; may run twice (see runGroup)
	excl   func(*sql.DB) error // or: runs alone, outside any transaction (migrations)
	weight int                 // rows it writes, for maxGroupWeight
	done   chan error          // buffered; receives exactly one result
}

// writer owns the only connection that writes to the database and runs every write through group
// commit: it takes all operations pending (up to maxGroupOps; the delivery engine's first, see
// doUrgent), runs them in one BEGIN IMMEDIATE
// transaction, each under its own SAVEPOINT, and commits once, so one fsync serves every caller in
// the group. An operation's error rolls back that operation's savepoint only and is returned to
// its caller only; a failed COMMIT is returned to every caller of the group.
//
// Statements inside a group run with a context that is never cancelled: with SQLite, interrupting a
// statement inside a transaction may roll back the whole transaction, i.e. other callers' work. A
// caller's context is therefore only checked before its operation starts (cancelled → skipped), and
// a caller whose operation was submitted always waits for its answer: the answer says truthfully
// whether the work was committed.
type writer struct {
	db    *sql.DB   // MaxOpenConns(1): the writer connection's pool, used bare only by excl ops
	conn  *sql.Conn // held by the writer goroutine between exclusive operations
	stmts map[string]*sql.Stmt
	log   *slog.Logger
	// guard is checked before every COMMIT: an error rolls the group back (fileGuard).
	guard func() error
	// onCommit, when set, is told of every committed group (Options.OnCommit).
	onCommit func(writes int, d time.Duration)

	ops    chan *op
	urgent chan *op     // delivery's operations, taken before ops (see doUrgent)
	mu     sync.RWMutex // held for reading while submitting; for writing by close
	closed bool
	exited chan struct{}

	commits atomic.Int64 // committed groups, for tests and diagnostics

	// restart is set by the checkpointer when the WAL has grown past Options.WALLimit: the
	// writer starts it over between two groups (restartWAL), unless a try gave up less than
	// backoff ago (until nextTry).
	restart atomic.Bool
	busy    time.Duration // the writer connection's busy timeout, which restartWAL shortens
	walMax  int64         // Options.WALLimit
	backoff time.Duration
	nextTry time.Time
}

// walRestartWait bounds how long restartWAL waits for the readers of older snapshots, during
// which writes wait behind it. When it gives up (a long read is going on: a backup, an export),
// the next try waits a checkpoint interval, then twice as long each time it gives up again, up
// to walRestartBackoffMax, so that a long read does not hold writes back over and over.
const (
	walRestartWait       = 100 * time.Millisecond
	walRestartBackoffMax = time.Minute
)

func newWriter(db *sql.DB, conn *sql.Conn, busy time.Duration, walMax int64, guard func() error, onCommit func(int, time.Duration), log *slog.Logger) *writer {
	w := &writer{
		db:       db,
		conn:     conn,
		busy:     busy,
		walMax:   walMax,
		guard:    guard,
		onCommit: onCommit,
		stmts:    make(map[string]*sql.Stmt),
		log:      log,
		ops:      make(chan *op, 4*maxGroupOps),
		urgent:   make(chan *op, maxGroupOps),
		exited:   make(chan struct{}),
	}
	go w.run()
	return w
}

// do runs fn inside a group transaction and returns its error, or the group's COMMIT error, or
// ctx's error when ctx ended before fn started (fn then did not run). Errors of a database that
// cannot be written for now wrap store.ErrUnavailable (unavailable). weight is the number of rows
// fn writes. fn runs on the writer goroutine: it must not block on anything but its statements.
func (w *writer) do(ctx context.Context, weight int, fn func(*wtx) error) error {
	return unavailable(w.submit(w.ops, &op{ctx: ctx, fn: fn, weight: max(weight, 1)}))
}

// doUrgent is do for the delivery engine's claims and outcomes: the writer takes them before any
// other pending operation, so a group it starts holds them first and a burst of accepted
// batches (thousands of messages a group) delays them by one group at most, not by the whole
// queue. Delivery then keeps going while a large send is being accepted.
func (w *writer) doUrgent(ctx context.Context, weight int, fn func(*wtx) error) error {
	return unavailable(w.submit(w.urgent, &op{ctx: ctx, fn: fn, weight: max(weight, 1)}))
}

// exclusive runs fn alone on the writer pool with the writer connection released, between groups.
// It is for goose, which needs a *sql.DB.
func (w *writer) exclusive(ctx context.Context, fn func(*sql.DB) error) error {
	return w.submit(w.ops, &op{ctx: ctx, excl: fn, weight: maxGroupWeight})
}

func (w *writer) submit(queue chan *op, o *op) error {
	if err := o.ctx.Err(); err != nil {
		return err
	}
	o.done = make(chan error, 1)
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errClosed
	}
	select {
	case queue <- o:
	case <-o.ctx.Done():
		w.mu.RUnlock()
		return o.ctx.Err()
	}
	w.mu.RUnlock()
	// Once queued, the writer always answers (it drains the queue before exiting).
	return <-o.done
}

// close stops accepting operations, lets the writer finish those already queued, and releases the
// writer connection.
func (w *writer) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.exited
		return nil
	}
	w.closed = true
	close(w.ops)
	close(w.urgent)
	w.mu.Unlock()
	<-w.exited
	w.closeStmts()
	if w.conn != nil {
		return w.conn.Close()
	}
	return nil
}

func (w *writer) run() {
	defer close(w.exited)
	q := queues{ops: w.ops, urgent: w.urgent}
	group := make([]*op, 0, maxGroupOps)
	var next *op // an op taken from the queue that did not fit in the previous group
	for {
		if next == nil {
			if next = q.take(true); next == nil {
				return
			}
		}
		if next.excl != nil {
			w.runExclusive(next)
			next = nil
			continue
		}
		group = append(group[:0], next)
		weight := next.weight
		next = nil
		for len(group) < maxGroupOps && weight < maxGroupWeight {
			o := q.take(false)
			if o == nil {
				break
			}
			if o.excl != nil || weight+o.weight > maxGroupWeight {
				next = o
				break
			}
			group = append(group, o)
			weight += o.weight
		}
		w.runGroup(group)
		clear(group) // drop references to finished ops
		if w.restart.Load() {
			w.restartWAL()
		}
	}
}

// restartWAL runs a RESTART checkpoint on the writer connection, between two groups, where
// nothing contends with it for the write lock: it waits (walRestartWait at most) for the readers
// of older snapshots to finish and copies what the passive checkpoints could not into the
// database file, so that the next group writes the WAL from its start, cutting the file to
// Options.WALLimit (journal_size_limit). Not TRUNCATE: a WAL file cut to nothing grows again
// with every commit, and a commit that grows the file costs its fsync more than one that
// overwrites (docs/BENCHMARKS.md, "Retention").
func (w *writer) restartWAL() {
	w.restart.Store(false)
	if w.conn == nil || time.Now().Before(w.nextTry) {
		return
	}
	ctx := context.Background()
	busy := int64(1)
	_, err := w.conn.ExecContext(ctx, "PRAGMA busy_timeout = "+strconv.FormatInt(walRestartWait.Milliseconds(), 10)+
		"; PRAGMA journal_size_limit = "+strconv.FormatInt(w.walMax, 10))
	if err == nil {
		var logPages, done int64
		err = w.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &logPages, &done)
		_, rerr := w.conn.ExecContext(ctx, "PRAGMA busy_timeout = "+strconv.FormatInt(w.busy.Milliseconds(), 10))
		err = errors.Join(err, rerr)
	}
	if err != nil {
		w.log.Warn("sqlite: starting the WAL over", "err", err)
		busy = 1
	}
	if busy == 0 {
		w.backoff = 0
		return
	}
	w.backoff = min(max(2*w.backoff, checkpointInterval), walRestartBackoffMax)
	w.nextTry = time.Now().Add(w.backoff)
}

// queues are the writer goroutine's view of its two queues; a closed queue becomes nil.
type queues struct {
	ops, urgent chan *op
}

// take returns the next operation, urgent ones first. Without block it returns nil when none is
// pending; with block it waits, and returns nil once both queues are closed and empty.
func (q *queues) take(block bool) *op {
	for q.ops != nil || q.urgent != nil {
		var o *op
		ok := true
		from := &q.urgent
		select {
		case o, ok = <-q.urgent:
		default:
			from = &q.ops
			if block {
				select {
				case o, ok = <-q.urgent:
					from = &q.urgent
				case o, ok = <-q.ops:
				}
			} else {
				select {
				case o, ok = <-q.ops:
				default:
					return nil
				}
			}
		}
		if ok {
			return o
		}
		*from = nil // closed and drained
	}
	return nil
}

func (w *writer) runExclusive(o *op) {
	if err := o.ctx.Err(); err != nil {
		o.done <- err
		return
	}
	w.closeStmts()
	if w.conn != nil {
		if err := w.conn.Close(); err != nil {
			w.log.Warn("sqlite: releasing the writer connection", "err", err)
		}
		w.conn = nil
	}
	o.done <- o.excl(w.db)
}

// runGroup commits one group and answers each of its callers.
func (w *writer) runGroup(group []*op) {
	ctx := context.Background() // never cancelled; see the type's comment
	live := 0
	for _, o := range group {
		if o.ctx.Err() == nil {
			live++
		}
	}
	if live == 0 {
		for _, o := range group {
			o.done <- o.ctx.Err()
		}
		return
	}

	if w.conn == nil {
		c, err := w.db.Conn(ctx)
		if err != nil {
			for _, o := range group {
				o.done <- fmt.Errorf("sqlite: writer connection: %w", err)
			}
			return
		}
		w.conn = c
	}
	// Optimistic first: run every op without savepoints. A savepoint copies each page an op
	// first touches into the sub-journal, which costs the writer dearly on the accept path,
	// and ops rarely fail. When one does, the whole attempt is rolled back and
	// the group runs again with a savepoint per op, so the failure stays that op's own. Ops are
	// written to be re-run: they reset whatever they capture at their start.
	if live > 1 {
		results, retry := w.attempt(group, false)
		if !retry {
			if results != nil {
				w.finish(group, results)
			}
			return
		}
	}
	if results, _ := w.attempt(group, live > 1); results != nil {
		w.finish(group, results)
	}
}

// attempt runs the group in one transaction and commits it. Without savepoints, the first op
// error rolls everything back and returns retry=true. It returns nil results when the group was
// aborted (every caller already answered).
func (w *writer) attempt(group []*op, savepoints bool) (results []error, retry bool) {
	t := &wtx{w: w}
	began := time.Now()
	if _, err := t.exec(qBegin); err != nil {
		for _, o := range group {
			o.done <- fmt.Errorf("sqlite: begin: %w", err)
		}
		return nil, false
	}
	results = make([]error, len(group))
	ok := 0
	for i, o := range group {
		if err := o.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if savepoints {
			if _, err := t.exec(qSavepoint); err != nil {
				w.abort(group, fmt.Errorf("sqlite: savepoint: %w", err))
				return nil, false
			}
		}
		err := o.fn(t)
		results[i] = err
		if err == nil {
			ok++
		}
		if !savepoints {
			if err != nil && len(group) > 1 {
				if _, rbErr := t.exec(qRollback); rbErr != nil {
					w.abort(group, fmt.Errorf("sqlite: rollback after %v: %w", err, rbErr))
					return nil, false
				}
				return nil, true
			}
			continue
		}
		if err != nil {
			if _, rbErr := t.exec(qRollbackSavepoint); rbErr != nil {
				// SQLite rolls back the whole transaction on some errors (disk full, I/O).
				w.abort(group, fmt.Errorf("sqlite: rollback to savepoint after %v: %w", err, rbErr))
				return nil, false
			}
		}
		if _, err := t.exec(qReleaseSavepoint); err != nil {
			w.abort(group, fmt.Errorf("sqlite: release savepoint: %w", err))
			return nil, false
		}
	}

	if ok == 0 {
		// Nothing to keep: roll back instead of paying for a commit.
		if _, err := t.exec(qRollback); err != nil {
			w.log.Warn("sqlite: rollback", "err", err)
		}
	} else if err := w.guard(); err != nil {
		w.rollBack(group, err) // the guard logs when the file goes and comes back, not per group
		return nil, false
	} else if _, err := t.exec(qCommit); err != nil {
		w.abort(group, fmt.Errorf("sqlite: commit: %w", err))
		return nil, false
	} else {
		w.commits.Add(1)
		if w.onCommit != nil {
			w.onCommit(ok, time.Since(began))
		}
	}
	return results, false
}

// finish answers every caller of a committed (or rolled back) group.
func (w *writer) finish(group []*op, results []error) {
	for i, o := range group {
		o.done <- results[i]
	}
}

// abort rolls back a group that cannot be committed and gives every caller err.
func (w *writer) abort(group []*op, err error) {
	w.log.Error("sqlite: write group failed", "ops", len(group), "err", err)
	w.rollBack(group, err)
}

// rollBack rolls back a group's transaction and gives every caller err.
func (w *writer) rollBack(group []*op, err error) {
	if _, rbErr := (&wtx{w: w}).exec(qRollback); rbErr != nil {
		w.log.Debug("sqlite: rollback after failed group", "err", rbErr)
	}
	for _, o := range group {
		o.done <- err
	}
}

func (w *writer) stmt(q string) (*sql.Stmt, error) {
	if st, ok := w.stmts[q]; ok {
		return st, nil
	}
	st, err := w.conn.PrepareContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = st
	return st, nil
}

func (w *writer) closeStmts() {
	for q, st := range w.stmts {
		if err := st.Close(); err != nil {
			w.log.Warn("sqlite: closing statement", "err", err)
		}
		delete(w.stmts, q)
	}
}

// wtx is an operation's handle on the group transaction. Statements are prepared once per writer
// connection and reused by every group.
type wtx struct {
	w *writer
}

func (t *wtx) exec(q string, args ...any) (sql.Result, error) {
	st, err := t.w.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(context.Background(), args...)
}

// query runs q; the caller must close the rows before running q again.
func (t *wtx) query(q string, args ...any) (*sql.Rows, error) {
	st, err := t.w.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(context.Background(), args...)
}

// queryRow scans the first row of q into dest, or returns sql.ErrNoRows.
func (t *wtx) queryRow(q string, args []any, dest ...any) error {
	st, err := t.w.stmt(q)
	if err != nil {
		return err
	}
	return st.QueryRowContext(context.Background(), args...).Scan(dest...)
}
