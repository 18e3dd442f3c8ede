package postgres

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/postie/postie/internal/store"
)

// Group commit for accepts. Every accept without an idempotency key is a few multi-row INSERTs
// whose cost is mostly per statement and per commit (a round trip, the planner, a WAL flush), not
// per row. So concurrent accepts are grouped: a request joins the pending group, and while fewer
// than maxGroupFlushers groups are being written, one flusher takes everything pending and writes
// it as one pipelined batch (one implicit transaction). Under load, each commit carries the
// requests that arrived while the previous one was running; an idle server writes a lone request
// at once. When a group fails (one request's row breaks a constraint, say), each of its requests
// is written again on its own, so one bad request never fails the others; a group that could not
// reach the database fails as a whole, without a retry per request. EventsAccept is grouped the
// same way (grouper, notify.go).

const (
	maxGroupFlushers = 3    // groups written at once (pool connections they may hold)
	maxGroupRows     = 4000 // messages per group; more wait for the next one
)

// acceptRows is one request's rows for the three accept INSERTs.
type acceptRows struct {
	msgs, raws, recips [][]any
	paused             []string   // of the streams handed off at accept, those found paused (sendAccept)
	done               chan error // receives the request's outcome once
}

func (r *acceptRows) rows() int        { return len(r.msgs) }
func (r *acceptRows) finish(err error) { r.done <- err }

// groupReq is one request waiting for its group: the rows it writes, and where its outcome goes.
type groupReq interface {
	rows() int
	finish(err error)
}

// grouper holds the requests waiting to be written in groups of at most maxRows rows by write.
type grouper[R groupReq] struct {
	maxRows int
	write   func([]R) error

	mu       sync.Mutex
	pending  []R
	flushers int
}

// add queues r, and starts a flusher when fewer than maxGroupFlushers are running.
func (g *grouper[R]) add(r R) {
	g.mu.Lock()
	g.pending = append(g.pending, r)
	start := g.flushers < maxGroupFlushers
	if start {
		g.flushers++
	}
	g.mu.Unlock()
	if start {
		go g.flush()
	}
}

// acceptGrouped writes r's rows, grouped with concurrent requests, and returns once they are
// committed (or failed). A cancelled ctx stops the wait, not the write: the rows may still be
// committed, as with a commit whose answer was lost.
func (s *Store) acceptGrouped(ctx context.Context, r *acceptRows) error {
	r.done = make(chan error, 1)
	s.group.add(r)
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush writes pending groups until none is left.
func (g *grouper[R]) flush() {
	for {
		g.mu.Lock()
		n, rows := 0, 0
		for n < len(g.pending) && (n == 0 || rows+g.pending[n].rows() <= g.maxRows) {
			rows += g.pending[n].rows()
			n++
		}
		if n == 0 {
			g.flushers--
			g.mu.Unlock()
			return
		}
		batch := append([]R(nil), g.pending[:n]...)
		clear(g.pending[:n])
		g.pending = append(g.pending[:0], g.pending[n:]...)
		g.mu.Unlock()

		err := g.write(batch)
		// A group that failed on one request's rows is written again request by request; one
		// that could not reach the database fails as a whole.
		if err != nil && len(batch) > 1 && !errors.Is(unavailable(err), store.ErrUnavailable) {
			for _, r := range batch {
				r.finish(g.write([]R{r}))
			}
			continue
		}
		for _, r := range batch {
			r.finish(err)
		}
	}
}

// writeAccept inserts the rows of reqs in one pipelined batch: one round trip, one transaction.
func (s *Store) writeAccept(reqs []*acceptRows) error {
	var msgs, raws, recips [][]any
	if len(reqs) == 1 {
		msgs, raws, recips = reqs[0].msgs, reqs[0].raws, reqs[0].recips
	} else {
		for _, r := range reqs {
			msgs = append(msgs, r.msgs...)
			raws = append(raws, r.raws...)
			recips = append(recips, r.recips...)
		}
	}
	b := &pgx.Batch{}
	queueAccept(b, msgs, raws, recips)
	// The write outlives the request that started it: its rows belong to other requests too.
	paused, err := sendAccept(context.Background(), s.pool, b)
	for _, r := range reqs {
		r.paused = paused
	}
	return err
}

// sendAccept sends b, whose first statement may be queueAccept's insert of messages, and returns
// the streams paused that this insert stored the handed-off messages of as queued (acceptInsert).
func sendAccept(ctx context.Context, q interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}, b *pgx.Batch) ([]string, error) {
	br := q.SendBatch(ctx, b)
	var paused []string
	if len(b.QueuedQueries) > 0 && b.QueuedQueries[0].SQL == qMessageInsert {
		rows, err := br.Query()
		if err == nil {
			paused, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return nil, errors.Join(err, br.Close())
		}
	}
	return paused, br.Close()
}

// queueAccept queues the accept INSERTs of the rows on b.
func queueAccept(b *pgx.Batch, msgs, raws, recips [][]any) {
	if len(msgs) == 0 {
		return
	}
	b.Queue(qMessageInsert, columns(msgs, messageParamTypes...)...)
	b.Queue(qRawInsert, columns(raws, rawParamTypes...)...)
	if len(recips) > 0 {
		b.Queue(qRecipientInsert, columns(recips, recipientParamTypes...)...)
	}
}
