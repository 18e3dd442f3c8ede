package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// The inbound area (store/inbound.go). Claims and MessageNextDue look at stream_states in SQL,
// and so does the accept's insert for the messages it hands off (acceptInsert). Before it, the
// handoff asks pausedCache, which this node's own pauses and resumes update at once and the
// table refreshes at most every second, so as not to reserve room for messages of a stream
// known to be paused; another node's pause it may not know of yet, which the insert catches.

var _ store.Inbound = (*Store)(nil)

// pausedRefresh is how old pausedCache's view may be before an accept refreshes it.
const pausedRefresh = time.Second

// pausedCache is the set of streams paused, as this node last read it.
type pausedCache struct {
	mu         sync.Mutex
	set        map[string]bool
	at         time.Time // when set was read; zero: never
	refreshing bool
}

// streamPaused reports whether stream is paused, as a hint for the handoff at accept (the insert
// decides, acceptInsert). A view older than
// pausedRefresh is refreshed in the background; meanwhile the old one answers.
func (s *Store) streamPaused(stream string) bool {
	c := &s.paused
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.refreshing && time.Since(c.at) > pausedRefresh {
		c.refreshing = true
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.refreshPaused(ctx); err != nil {
				s.log.Warn("postgres: reading paused streams", "err", err)
			}
		}()
	}
	return c.set[stream]
}

// refreshPaused reads the streams paused into pausedCache. After an error the old view stays
// for another pausedRefresh.
func (s *Store) refreshPaused(ctx context.Context) error {
	streams, err := readAll(ctx, s, qStreamsPaused, nil, scanValue[string])
	c := &s.paused
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshing, c.at = false, time.Now()
	if err != nil {
		return unavailable(err)
	}
	set := make(map[string]bool, len(streams))
	for _, st := range streams {
		set[st] = true
	}
	c.set = set
	return nil
}

// putPaused records this node's own pause or resume of stream in pausedCache.
func (s *Store) putPaused(stream string, paused bool) {
	c := &s.paused
	c.mu.Lock()
	defer c.mu.Unlock()
	set := make(map[string]bool, len(c.set)+1)
	for k, v := range c.set {
		set[k] = v
	}
	if paused {
		set[stream] = true
	} else {
		delete(set, stream)
	}
	c.set = set
}

// InboundApply implements store.Inbound.
func (s *Store) InboundApply(ctx context.Context, p store.InboundApplyParams) ([]store.ReportOutcome, error) {
	if err := driverkit.CheckInbound(p); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	var (
		out     []store.ReportOutcome
		written int
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		x := &inboundTx{ctx: ctx, tx: tx}
		var (
			counts driverkit.StreamCounts
			err    error
		)
		out, counts, err = driverkit.ApplyReports(x, p)
		written = x.written
		if err != nil {
			return err
		}
		if err := addCounts(ctx, tx, counts, p.Now, s.countShard()); err != nil {
			return err
		}
		e := driverkit.InboundEntry(p, out)
		ids, err := jsonValue(e.MessageIDs, len(e.MessageIDs) == 0)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, qInboundInsert, tsNotNull(e.At), e.Channel, e.MailFrom, e.RcptTo, e.Kind, e.Outcome,
			e.Detail, textOrNil(ids), int32(e.Size))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: applying inbound reports: %w", unavailable(err))
	}
	s.webhooksWritten(written)
	return out, nil
}

// countShards is how many rows delivery_counts has per stream and hour at most: each write adds
// to one of them (countShard), chosen at random, so that the finishes of every node, which all
// count into their streams' rows of the hour, seldom wait for one another's row locks until
// commit. DeliveryCounts sums them.
const countShards = 16

// countShard is the shard of delivery_counts a write adds to.
func (s *Store) countShard() int16 {
	if s.shardOf != nil {
		return s.shardOf()
	}
	return int16(rand.IntN(countShards))
}

// addCounts adds counts to their streams' rows of now's hour in shard, in stream order (the
// order every writer of delivery_counts locks its rows in).
func addCounts(ctx context.Context, tx pgx.Tx, counts driverkit.StreamCounts, now time.Time, shard int16) error {
	streams := make([]string, 0, len(counts))
	for st := range counts {
		streams = append(streams, st)
	}
	slices.Sort(streams)
	for _, st := range streams {
		c := counts[st]
		if _, err := tx.Exec(ctx, qCountsAdd, st, tsNotNull(driverkit.HourOf(now)), int64(c.Delivered), int64(c.Bounced),
			int64(c.Complained), shard); err != nil {
			return fmt.Errorf("delivery counts: %w", err)
		}
	}
	return nil
}

// inboundTx is driverkit.InboundTx on a transaction.
type inboundTx struct {
	ctx     context.Context
	tx      pgx.Tx
	written int // webhook deliveries inserted
}

func (x *inboundTx) Target(id string) (driverkit.ReportTarget, bool, error) {
	msgs, err := queryTx(x.ctx, x.tx, qMessageGet+` FOR UPDATE`, []any{id}, scanMessage)
	if err != nil || len(msgs) == 0 {
		return driverkit.ReportTarget{}, false, err
	}
	m := msgs[0]
	rcpts, err := recipientStates(x.ctx, x.tx, id)
	if err != nil {
		return driverkit.ReportTarget{}, false, err
	}
	split := len(rcpts) > 0 && rcpts[0].Status != ""
	return driverkit.ReportTarget{ID: id, Stream: m.Stream, Status: m.Status, Split: split,
		Recipients: driverkit.RecipientsView(m, rcpts)}, true, nil
}

func (x *inboundTx) RecordKey(key string, now time.Time) (bool, error) {
	tag, err := x.tx.Exec(x.ctx, qReportKeyInsert, key, tsNotNull(now))
	return tag.RowsAffected() > 0, err
}

func (x *inboundTx) RecipientState(id string, r store.Recipient, now time.Time) error {
	lastError, err := jsonValue(r.LastError, r.LastError == nil)
	if err != nil {
		return err
	}
	_, err = x.tx.Exec(x.ctx, qRecipientFinish, string(r.Status), int32(r.Attempts), textOrNil(lastError),
		ts(r.SentAt), tsNotNull(now), id, r.Email)
	return err
}

func (x *inboundTx) MessageState(id string, status store.Status, split bool, now time.Time) error {
	_, err := x.tx.Exec(x.ctx, qReportMessageState, string(status), split, tsNotNull(now), id)
	return err
}

func (x *inboundTx) AppendEvent(id string, e store.Event) error {
	_, err := x.tx.Exec(x.ctx, qEventInsertOne, id, e.Type, tsNotNull(e.At), textOrNil(rawJSON(e.Detail)))
	return err
}

func (x *inboundTx) Report(typ, id, email string, detail json.RawMessage, now time.Time) error {
	n, err := outboxMessage(x.ctx, x.tx, typ, id, email, now, detail, now)
	x.written += n
	return err
}

func (x *inboundTx) Suppress(sup store.Suppression, weaker bool) (bool, error) {
	sup, err := driverkit.CheckSuppression(sup)
	if err != nil {
		return false, err
	}
	tag, err := x.tx.Exec(x.ctx, qReportSuppress, append(suppressionArgs(sup), weaker)...)
	if err != nil {
		return false, fmt.Errorf("suppression of %s: %w", sup.Email, err)
	}
	return tag.RowsAffected() > 0, nil
}

func (x *inboundTx) SoftBounce(email, class, msgID string, now, since time.Time) (soft, undetermined, messages int, err error) {
	var a, b, c int64
	err = x.tx.QueryRow(x.ctx, qSoftBounce, email, class, msgID, tsNotNull(now), tsNotNull(since)).Scan(&a, &b, &c)
	return int(a), int(b), int(c), err
}

func (x *inboundTx) ForgetSoftBounces(email string) error {
	_, err := x.tx.Exec(x.ctx, qSoftBounceForget, email)
	return err
}

// InboundList implements store.Inbound.
func (s *Store) InboundList(ctx context.Context, p store.InboundListParams) ([]store.InboundEntry, string, error) {
	after, err := store.InboundCursorAfter(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := driverkit.ListLimit(p.Limit)
	q, args := driverkit.InboundListQuery(inboundColumns, p, after, int32(limit+1), dialect{}.Placeholder)
	page, err := readAll(ctx, s, q, args, scanInbound)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing inbound entries: %w", unavailable(err))
	}
	page, next := driverkit.InboundPage(page, limit)
	return page, next, nil
}

// scanInbound reads one row of inboundColumns.
func scanInbound(sc scanner) (store.InboundEntry, error) {
	var (
		e    store.InboundEntry
		at   pgtype.Timestamptz
		size int32
		ids  []byte
	)
	if err := sc.Scan(&e.ID, &at, &e.Channel, &e.MailFrom, &e.RcptTo, &e.Kind, &e.Outcome, &e.Detail, &ids, &size); err != nil {
		return e, err
	}
	e.At, e.Size = fromTS(at), int(size)
	return e, driverkit.DecodeInboundIDs(&e, ids)
}

// DeliveryCounts implements store.Inbound.
func (s *Store) DeliveryCounts(ctx context.Context, stream string, since time.Time) (store.DeliveryCounts, error) {
	var d, b, c int64
	err := s.pool.QueryRow(ctx, qCountsSum, stream, tsNotNull(driverkit.HourOf(since))).Scan(&d, &b, &c)
	if err != nil {
		return store.DeliveryCounts{}, fmt.Errorf("postgres: delivery counts of %s: %w", stream, unavailable(err))
	}
	return store.DeliveryCounts{Delivered: int(d), Bounced: int(b), Complained: int(c)}, nil
}

// StreamPause implements store.Inbound: the pause and its report in one statement.
func (s *Store) StreamPause(ctx context.Context, p store.StreamPauseParams) (bool, error) {
	if err := driverkit.CheckStreamPause(p); err != nil {
		return false, fmt.Errorf("postgres: %w", err)
	}
	var paused, written int64
	err := s.pool.QueryRow(ctx, qStreamPause, p.Stream, p.Reason, p.Detail, tsNotNull(p.Now),
		string(driverkit.StreamPausedDetail(p))).Scan(&paused, &written)
	if err != nil {
		return false, fmt.Errorf("postgres: pausing stream %s: %w", p.Stream, unavailable(err))
	}
	if paused > 0 {
		s.putPaused(p.Stream, true)
	}
	s.webhooksWritten(int(written))
	return paused > 0, nil
}

// StreamResume implements store.Inbound.
func (s *Store) StreamResume(ctx context.Context, stream string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, qStreamResume, stream, tsNotNull(now))
	if err != nil {
		return fmt.Errorf("postgres: resuming stream %s: %w", stream, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("stream %s is not paused: %w", stream, store.ErrConflict)
	}
	s.putPaused(stream, false)
	s.signal(map[string]struct{}{stream: {}})
	return nil
}

// StreamStates implements store.Inbound.
func (s *Store) StreamStates(ctx context.Context) ([]store.StreamState, error) {
	out, err := readAll(ctx, s, qStreamStates, nil, func(sc scanner) (store.StreamState, error) {
		var (
			st          store.StreamState
			at, resumed pgtype.Timestamptz
		)
		err := sc.Scan(&st.Stream, &st.Paused, &st.Reason, &st.Detail, &at, &resumed)
		st.PausedAt, st.ResumedAt = fromTS(at), fromTS(resumed)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: stream states: %w", unavailable(err))
	}
	return out, nil
}
