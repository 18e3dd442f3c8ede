package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// The inbound area (store/inbound.go). One process owns the file, so the streams paused are
// kept in memory too (pausedStreams): a claim, a next-due query and an accept's handoff look
// there, not at the table. The writer goroutine changes the set inside the write that pauses
// or resumes, so the claims it runs afterwards see it; a write that fails reloads it.

var _ store.Inbound = (*Store)(nil)

// pausedStreams is the set of streams paused.
type pausedStreams struct {
	set atomic.Pointer[map[string]bool]
}

// has reports whether stream is paused.
func (p *pausedStreams) has(stream string) bool {
	m := p.set.Load()
	return m != nil && (*m)[stream]
}

// put marks stream paused or not.
func (p *pausedStreams) put(stream string, paused bool) {
	m := map[string]bool{}
	if old := p.set.Load(); old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	if paused {
		m[stream] = true
	} else {
		delete(m, stream)
	}
	p.set.Store(&m)
}

// loadPaused sets the paused streams to what stream_states holds.
func (s *Store) loadPaused(ctx context.Context) error {
	m, err := readSet(ctx, s, qStreamsPaused)
	if err != nil {
		return fmt.Errorf("sqlite: paused streams: %w", err)
	}
	s.paused.set.Store(&m)
	return nil
}

// readSet runs q, whose rows are one string each, on the read pool and returns them as a set.
func readSet(ctx context.Context, s *Store, q string) (map[string]bool, error) {
	list, err := readAll(ctx, s, q, nil, scanValue[string])
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(list))
	for _, v := range list {
		m[v] = true
	}
	return m, nil
}

// InboundApply implements store.Inbound.
func (s *Store) InboundApply(ctx context.Context, p store.InboundApplyParams) ([]store.ReportOutcome, error) {
	if err := driverkit.CheckInbound(p); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	var (
		out     []store.ReportOutcome
		written int
	)
	err := s.w.do(ctx, 1+len(p.Reports), func(t *wtx) error {
		tx := &inboundTx{s: s, t: t}
		var (
			counts driverkit.StreamCounts
			err    error
		)
		out, counts, err = driverkit.ApplyReports(tx, p)
		written = tx.written
		if err != nil {
			return err
		}
		if err := addCounts(t, counts, p.Now); err != nil {
			return err
		}
		e := driverkit.InboundEntry(p, out)
		ids, err := jsonText(e.MessageIDs, len(e.MessageIDs) == 0)
		if err != nil {
			return err
		}
		_, err = t.exec(qInboundInsert, micros(e.At), e.Channel, e.MailFrom, e.RcptTo, e.Kind, e.Outcome,
			e.Detail, ids, int64(e.Size))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: applying inbound reports: %w", err)
	}
	s.webhooksWritten(written)
	return out, nil
}

// addCounts adds bounces and complaints to their streams' counts of now's hour.
func addCounts(t *wtx, counts driverkit.StreamCounts, now time.Time) error {
	hour := micros(driverkit.HourOf(now))
	for stream, c := range counts {
		if _, err := t.exec(qCountsAdd, stream, hour, int64(c.Delivered), int64(c.Bounced), int64(c.Complained)); err != nil {
			return fmt.Errorf("delivery counts: %w", err)
		}
	}
	return nil
}

// countDelivered adds to the delivery counts of now's hour (store.Inbound.DeliveryCounts) the
// recipients of the messages sent whole (ids), read from their rows in one statement, and
// those of split messages made sent (delivered, by stream).
func countDelivered(t *wtx, ids []string, delivered map[string]int, now time.Time) error {
	if len(ids) > 0 {
		arr, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		if _, err := t.exec(qCountsSent, micros(driverkit.HourOf(now)), string(arr)); err != nil {
			return fmt.Errorf("delivery counts: %w", err)
		}
	}
	return addCounts(t, driverkit.DeliveredCounts(delivered), now)
}

// inboundTx is driverkit.InboundTx on the writer's transaction.
type inboundTx struct {
	s       *Store
	t       *wtx
	written int // webhook deliveries inserted
}

func (x *inboundTx) Target(id string) (driverkit.ReportTarget, bool, error) {
	rows, err := x.t.query(qMessageGet, id)
	if err != nil {
		return driverkit.ReportTarget{}, false, err
	}
	msgs, err := scanMessages(rows)
	if err := errors.Join(err, rows.Close()); err != nil {
		return driverkit.ReportTarget{}, false, err
	}
	if len(msgs) == 0 {
		return driverkit.ReportTarget{}, false, nil
	}
	m := msgs[0]
	rcpts, err := recipientStates(x.t, id)
	if err != nil {
		return driverkit.ReportTarget{}, false, err
	}
	split := len(rcpts) > 0 && rcpts[0].Status != ""
	return driverkit.ReportTarget{ID: id, Stream: m.Stream, Status: m.Status, Split: split,
		Recipients: driverkit.RecipientsView(m, rcpts)}, true, nil
}

func (x *inboundTx) RecordKey(key string, now time.Time) (bool, error) {
	res, err := x.t.exec(qReportKeyInsert, key, micros(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (x *inboundTx) RecipientState(id string, r store.Recipient, now time.Time) error {
	lastError, err := jsonText(r.LastError, r.LastError == nil)
	if err != nil {
		return err
	}
	_, err = x.t.exec(qRecipientFinish, string(r.Status), int64(r.Attempts), lastError, nullMicros(r.SentAt),
		micros(now), id, r.Email)
	return err
}

func (x *inboundTx) MessageState(id string, status store.Status, split bool, now time.Time) error {
	_, err := x.t.exec(qReportMessageState, string(status), split, micros(now), id)
	return err
}

func (x *inboundTx) AppendEvent(id string, e store.Event) error {
	_, err := x.t.exec(qEventInsert, id, e.Type, micros(e.At), rawJSONText(e.Detail))
	return err
}

func (x *inboundTx) Report(typ, id, email string, detail json.RawMessage, now time.Time) error {
	n, err := x.s.outboxMessage(x.t, typ, id, email, now, detail, now)
	x.written += n
	return err
}

func (x *inboundTx) Suppress(sup store.Suppression, weaker bool) (bool, error) {
	sup, err := driverkit.CheckSuppression(sup)
	if err != nil {
		return false, err
	}
	res, err := x.t.exec(qReportSuppress, append(suppressionArgs(sup), weaker)...)
	if err != nil {
		return false, fmt.Errorf("suppression of %s: %w", sup.Email, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (x *inboundTx) SoftBounce(email, class, msgID string, now, since time.Time) (soft, undetermined, messages int, err error) {
	if _, err := x.t.exec(qSoftBounceInsert, email, class, msgID, micros(now)); err != nil {
		return 0, 0, 0, err
	}
	if !since.IsZero() {
		if _, err := x.t.exec(qSoftBounceTrim, email, micros(since)); err != nil {
			return 0, 0, 0, err
		}
	}
	var a, b, c int64
	err = x.t.queryRow(qSoftBounceCount, []any{email, micros(since)}, &a, &b, &c)
	return int(a), int(b), int(c), err
}

func (x *inboundTx) ForgetSoftBounces(email string) error {
	_, err := x.t.exec(qSoftBounceForget, email)
	return err
}

// InboundList implements store.Inbound.
func (s *Store) InboundList(ctx context.Context, p store.InboundListParams) ([]store.InboundEntry, string, error) {
	after, err := store.InboundCursorAfter(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := driverkit.ListLimit(p.Limit)
	q, args := driverkit.InboundListQuery(inboundColumns, p, after, int64(limit+1), dialect{}.Placeholder)
	page, err := readAll(ctx, s, q, args, scanInbound)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: listing inbound entries: %w", err)
	}
	page, next := driverkit.InboundPage(page, limit)
	return page, next, nil
}

// scanInbound reads one row of inboundColumns.
func scanInbound(sc scanner) (store.InboundEntry, error) {
	var (
		e        store.InboundEntry
		at, size int64
		ids      []byte
	)
	if err := sc.Scan(&e.ID, &at, &e.Channel, &e.MailFrom, &e.RcptTo, &e.Kind, &e.Outcome, &e.Detail, &ids, &size); err != nil {
		return e, err
	}
	e.At, e.Size = fromMicros(at), int(size)
	return e, driverkit.DecodeInboundIDs(&e, ids)
}

// DeliveryCounts implements store.Inbound.
func (s *Store) DeliveryCounts(ctx context.Context, stream string, since time.Time) (store.DeliveryCounts, error) {
	c, err := readOne(ctx, s, qCountsSum, []any{stream, micros(driverkit.HourOf(since))}, func(sc scanner) (store.DeliveryCounts, error) {
		var c store.DeliveryCounts
		err := sc.Scan(&c.Delivered, &c.Bounced, &c.Complained)
		return c, err
	})
	if err != nil {
		return store.DeliveryCounts{}, fmt.Errorf("sqlite: delivery counts of %s: %w", stream, err)
	}
	return c, nil
}

// StreamPause implements store.Inbound.
func (s *Store) StreamPause(ctx context.Context, p store.StreamPauseParams) (bool, error) {
	if err := driverkit.CheckStreamPause(p); err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	var (
		paused  bool
		written int
	)
	err := s.w.do(ctx, 1, func(t *wtx) error {
		paused, written = false, 0
		var stream string
		err := t.queryRow(qStreamPause, []any{p.Stream, p.Reason, p.Detail, micros(p.Now)}, &stream)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // paused already
		}
		if err != nil {
			return err
		}
		paused = true
		written, err = s.outboxWrite(t, p.Now, []outboxEvent{{Type: store.WebhookStreamPaused, Subject: p.Stream,
			At: p.Now, Detail: driverkit.StreamPausedDetail(p)}})
		if err == nil {
			s.paused.put(p.Stream, true) // before the commit: claims in this group already see it
		}
		return err
	})
	if err != nil {
		s.reloadPaused(ctx)
		return false, fmt.Errorf("sqlite: pausing stream %s: %w", p.Stream, err)
	}
	s.webhooksWritten(written)
	return paused, nil
}

// StreamResume implements store.Inbound.
func (s *Store) StreamResume(ctx context.Context, stream string, now time.Time) error {
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qStreamResume, stream, micros(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("stream %s is not paused: %w", stream, store.ErrConflict))
		}
		s.paused.put(stream, false)
		return nil
	})
	if err != nil {
		s.reloadPaused(ctx)
		if errors.Is(err, store.ErrConflict) {
			return err
		}
		return fmt.Errorf("sqlite: resuming stream %s: %w", stream, err)
	}
	s.wake.Signal(stream)
	return nil
}

// reloadPaused sets the paused streams from the table after a pause or resume failed (its
// change to the set may not have committed).
func (s *Store) reloadPaused(ctx context.Context) {
	if err := s.loadPaused(context.WithoutCancel(ctx)); err != nil {
		s.log.Warn("sqlite: reloading paused streams", "err", err)
	}
}

// StreamStates implements store.Inbound.
func (s *Store) StreamStates(ctx context.Context) ([]store.StreamState, error) {
	out, err := readAll(ctx, s, qStreamStates, nil, func(sc scanner) (store.StreamState, error) {
		var (
			st      store.StreamState
			at      int64
			resumed sql.NullInt64
		)
		err := sc.Scan(&st.Stream, &st.Paused, &st.Reason, &st.Detail, &at, &resumed)
		st.PausedAt, st.ResumedAt = fromMicros(at), fromMicros(resumed.Int64)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: stream states: %w", err)
	}
	return out, nil
}
