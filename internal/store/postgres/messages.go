package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// MessagesAccept implements store.Store. Every message needs an ID and the status queued or
// scheduled; a zero CreatedAt is taken as p.Now and a zero UpdatedAt as CreatedAt. The recipient
// filter of MessageList matches Message.Recipients.
//
// Without an idempotency key the three inserts (messages, MIME, recipients) go as one pipelined
// batch, one round trip and one implicit transaction, shared with concurrent accepts (group.go).
// With a key, the key is claimed first in the
// same transaction (qIdempotencyClaim), which makes concurrent requests with one key wait for the
// first and then replay its response.
func (s *Store) MessagesAccept(ctx context.Context, p store.MessagesAcceptParams) (store.MessagesAcceptResult, error) {
	n := len(p.Messages)
	msgs, raws, err := driverkit.PrepareAccepts(p)
	if err != nil {
		return store.MessagesAcceptResult{}, fmt.Errorf("postgres: %w", err)
	}
	if n == 0 && p.Idempotency == nil {
		return store.MessagesAcceptResult{}, nil
	}
	// Messages this node's delivery has room for are stored claimed and handed to it after the
	// commit (store.AcceptClaims); on any other outcome the room is given back, as it is for
	// those of a stream the insert finds paused (acceptInsert).
	handed := s.recv.Claim(msgs, raws, p.Now, roundTrip, s.streamPaused)
	defer func() { handed.Unreserve() }() // unless delivered
	rows, streams, err := acceptRowsOf(msgs, raws)
	if err != nil {
		return store.MessagesAcceptResult{}, fmt.Errorf("postgres: %w", unavailable(err))
	}
	var res store.MessagesAcceptResult
	if p.Idempotency == nil {
		err = s.acceptGrouped(ctx, rows)
	} else {
		inserts := &pgx.Batch{}
		queueAccept(inserts, rows.msgs, rows.raws, rows.recips)
		res, err = s.acceptIdempotent(ctx, p, inserts, &rows.paused)
	}
	if err != nil {
		if errors.Is(err, store.ErrIdempotencyMismatch) {
			return store.MessagesAcceptResult{}, fmt.Errorf("idempotency key %q: %w", p.Idempotency.Key, err)
		}
		return store.MessagesAcceptResult{}, fmt.Errorf("postgres: accepting messages: %w", unavailable(err))
	}
	if !res.Replayed {
		handed = handed.Without(rows.paused)
		handed.Deliver()
		handed = nil
		s.signal(streams)
	}
	return res, nil
}

// acceptRowsOf returns the rows of the accept INSERTs (queueAccept) of msgs, prepared by
// driverkit.PrepareAccepts (and maybe claimed at accept), raws[i] being msgs[i]'s MIME, and the
// streams of the messages left for a claim, whose workers the accept wakes.
func acceptRowsOf(msgs []store.Message, raws [][]byte) (*acceptRows, map[string]struct{}, error) {
	n := len(msgs)
	rows := &acceptRows{msgs: make([][]any, 0, n), raws: make([][]any, 0, n), recips: make([][]any, 0, n)}
	streams := make(map[string]struct{}, 2)
	for i := range msgs {
		m := &msgs[i]
		args, err := messageArgs(m)
		if err != nil {
			return nil, nil, err
		}
		rows.msgs = append(rows.msgs, args)
		rows.raws = append(rows.raws, []any{m.ID, nonNil(raws[i])})
		for _, rc := range driverkit.LowerDistinct(m.Recipients) {
			rows.recips = append(rows.recips, []any{m.ID, rc})
		}
		if m.Status != store.StatusSending {
			streams[m.Stream] = struct{}{}
		}
	}
	return rows, streams, nil
}

// acceptIdempotent runs inserts in a transaction that first claims p.Idempotency's key, or
// returns the stored response (or ErrIdempotencyMismatch) without inserting when the key is held.
// The streams the inserts found paused (sendAccept) go to paused.
func (s *Store) acceptIdempotent(ctx context.Context, p store.MessagesAcceptParams, inserts *pgx.Batch,
	paused *[]string) (store.MessagesAcceptResult, error) {
	k := p.Idempotency
	var res store.MessagesAcceptResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var claimed bool
		err := tx.QueryRow(ctx, qIdempotencyClaim, k.APIKeyID, k.Key, nonNil(k.RequestHash),
			int32(k.StatusCode), k.Response, tsNotNull(k.CreatedAt), tsNotNull(k.ExpiresAt),
			tsNotNull(p.Now)).Scan(&claimed)
		if noRows(err) {
			var (
				hash, response []byte
				code           int32
			)
			if err := tx.QueryRow(ctx, qIdempotencyGet, k.APIKeyID, k.Key).Scan(&hash, &code, &response); err != nil {
				return err
			}
			if !bytes.Equal(hash, k.RequestHash) {
				return store.ErrIdempotencyMismatch
			}
			res = store.MessagesAcceptResult{Replayed: true, StatusCode: int(code), Response: response}
			return nil
		}
		if err != nil {
			return fmt.Errorf("idempotency key: %w", err)
		}
		if inserts.Len() == 0 {
			return nil
		}
		*paused, err = sendAccept(ctx, tx, inserts)
		return err
	})
	return res, err
}

// MessageGet implements store.Store.
func (s *Store) MessageGet(ctx context.Context, id string) (store.Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, qMessageGet, id))
	if noRows(err) {
		return store.Message{}, fmt.Errorf("message %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Message{}, fmt.Errorf("postgres: message %s: %w", id, unavailable(err))
	}
	return m, nil
}

// MessageRaw implements store.Store.
func (s *Store) MessageRaw(ctx context.Context, id string) ([]byte, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, qRawGet, id).Scan(&raw)
	if noRows(err) {
		return nil, s.bodyGone(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: raw of message %s: %w", id, unavailable(err))
	}
	return nonNil(raw), nil
}

// MessageRawPart implements store.Store.
func (s *Store) MessageRawPart(ctx context.Context, id string, offset int64, n int) ([]byte, int64, error) {
	var (
		data []byte
		size int64
	)
	err := s.pool.QueryRow(ctx, qRawPart, id, offset, n).Scan(&size, &data)
	if noRows(err) {
		return nil, 0, s.bodyGone(ctx, id)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: raw of message %s: %w", id, unavailable(err))
	}
	return nonNil(data), size, nil
}

// MessageEvents implements store.Store. An unknown id has no events (and no error).
func (s *Store) MessageEvents(ctx context.Context, id string) ([]store.Event, error) {
	events, err := readAll(ctx, s, qEventsGet, []any{id}, func(sc scanner) (store.Event, error) {
		var (
			e      store.Event
			at     pgtype.Timestamptz
			detail []byte
		)
		if err := sc.Scan(&e.ID, &e.MessageID, &e.Type, &at, &detail); err != nil {
			return store.Event{}, err
		}
		e.At = fromTS(at)
		if len(detail) > 0 {
			e.Detail = json.RawMessage(detail)
		}
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: events of message %s: %w", id, unavailable(err))
	}
	return events, nil
}

// MessageList implements store.Store. Limit defaults to 50 and is capped at 1000.
func (s *Store) MessageList(ctx context.Context, p store.MessageListParams) ([]store.Message, error) {
	q, args, err := listQuery(p, messageColumns)
	if err != nil {
		return nil, err
	}
	msgs, err := readAll(ctx, s, q, args, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing messages: %w", unavailable(err))
	}
	return msgs, nil
}

// where assembles a WHERE clause from conditions written with "?" placeholders, numbering them
// $1, $2, … in order.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, w.number(cond, args))
}

// number replaces the "?" placeholders of s by the numbers of args, appended to w.args.
func (w *where) number(s string, args []any) string {
	parts := strings.Split(s, "?")
	var b strings.Builder
	b.WriteString(parts[0])
	for i, part := range parts[1:] {
		w.args = append(w.args, args[i])
		b.WriteString("$" + strconv.Itoa(len(w.args)) + part)
	}
	return b.String()
}

// query returns selectFrom with the WHERE clause, then tail (whose "?" placeholders take args).
func (w *where) query(selectFrom, tail string, args ...any) (string, []any) {
	q := selectFrom
	if len(w.conds) > 0 {
		q += " WHERE " + strings.Join(w.conds, " AND ")
	}
	return q + w.number(tail, args), w.args
}

// listQuery assembles the MessageList statement selecting cols from the pieces in queries.go.
func listQuery(p store.MessageListParams, cols string) (string, []any, error) {
	var w where
	if len(p.Statuses) > 0 {
		st := make([]string, len(p.Statuses))
		for i, s := range p.Statuses {
			st[i] = string(s)
		}
		if states := driverkit.RecipientStates(p.Statuses); p.Recipient != "" && len(states) > 0 {
			rs := make([]string, len(states))
			for i, s := range states {
				rs[i] = string(s)
			}
			w.add(qListStatusesOrRecipient, st, strings.ToLower(p.Recipient), rs)
		} else {
			w.add(qListStatuses, st)
		}
	}
	if p.Stream != "" {
		w.add(qListStream, p.Stream)
	}
	if p.Tag != "" {
		tag, err := json.Marshal([]string{p.Tag})
		if err != nil {
			return "", nil, fmt.Errorf("postgres: %w", unavailable(err))
		}
		w.add(qListTag, string(tag))
	}
	if p.Recipient != "" {
		w.add(qListRecipient, strings.ToLower(p.Recipient))
	}
	if p.CampaignID != "" {
		w.add(qListCampaign, p.CampaignID)
	}
	if !p.CreatedAfter.IsZero() {
		w.add(qListAfter, ts(p.CreatedAfter))
	}
	if !p.CreatedBefore.IsZero() {
		w.add(qListBefore, ts(p.CreatedBefore))
	}
	switch code := driverkit.ParseErrorCode(p.ErrorCode); code.Form {
	case driverkit.ErrorCodeReply:
		n := code.Reply
		if n != int(int32(n)) {
			n = -1 // matches nothing, like any code no reply has
		}
		w.add(qListErrorCode, int32(n))
	case driverkit.ErrorCodeEnhanced:
		w.add(qListErrorEnhanced, code.Enhanced)
	case driverkit.ErrorCodePrefix:
		w.add(qListErrorPrefix, code.Enhanced, code.Below)
	}
	if p.Cursor != "" {
		w.add(qListCursor, p.Cursor)
	}
	q, args := w.query("SELECT "+cols+" FROM messages", qListOrder, int32(driverkit.ListLimit(p.Limit)))
	return q, args, nil
}

// readAll runs q on the pool and reads every row with scan.
func readAll[T any](ctx context.Context, s *Store, q string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	return queryTx(ctx, s.pool, q, args, scan)
}

// MessageCancel implements store.Store.
func (s *Store) MessageCancel(ctx context.Context, id string, now time.Time) (store.Message, error) {
	var written int64
	m, err := scanMessage(scanAlso{s.pool.QueryRow(ctx, qMessageCancelReported, tsNotNull(now), id), []any{&written}})
	if noRows(err) {
		// Absent, not cancellable, or split.
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var (
				status string
				split  bool
			)
			err := tx.QueryRow(ctx, qCancelSplitCheck, id).Scan(&status, &split)
			if noRows(err) {
				return fmt.Errorf("message %s: %w", id, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if !split || !store.Status(status).Cancellable() {
				return fmt.Errorf("message %s is %s: %w", id, status, store.ErrConflict)
			}
			var n int
			m, n, err = cancelSplit(ctx, tx, id, store.Status(status), now, true)
			written = int64(n)
			return err
		})
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			return store.Message{}, err
		}
	}
	if err != nil {
		return store.Message{}, fmt.Errorf("postgres: cancelling message %s: %w", id, unavailable(err))
	}
	s.webhooksWritten(int(written))
	return m, nil
}

// scanAlso scans a row into the destinations its reader gives, then into also (the columns
// that follow).
type scanAlso struct {
	sc   scanner
	also []any
}

func (s scanAlso) Scan(dest ...any) error { return s.sc.Scan(append(dest, s.also...)...) }

// cancelSplit cancels the pending recipients of split message id (locked, cancellable, in state
// status), gives it the status derived from all its recipients, records the event naming them
// and their webhook reports (unless !report), and returns the message and the number of reports.
func cancelSplit(ctx context.Context, tx pgx.Tx, id string, status store.Status, now time.Time, report bool) (store.Message, int, error) {
	rows, err := tx.Query(ctx, qCancelRecipients, tsNotNull(now), id)
	if err != nil {
		return store.Message{}, 0, err
	}
	cancelled, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return store.Message{}, 0, err
	}
	states, err := recipientStates(ctx, tx, id)
	if err != nil {
		return store.Message{}, 0, err
	}
	p := store.MessageFinishParams{Status: status}
	driverkit.SettleSplit(&p, states)
	m, err := scanMessage(tx.QueryRow(ctx, qCancelSplit, string(p.Status), tsNotNull(now), id))
	if err != nil {
		return store.Message{}, 0, err
	}
	ev := store.NewEvent(store.EventCancelled, now, &store.EventDetail{Recipients: store.Recipients(cancelled)})
	if _, err = tx.Exec(ctx, qEventInsertOne, id, ev.Type, tsNotNull(now), string(ev.Detail)); err != nil || !report {
		return m, 0, err
	}
	n, err := outboxWrite(ctx, tx, now, driverkit.CancelReports(m, cancelled, ev))
	return m, n, err
}

// recipientStates reads every recipient row of message id.
func recipientStates(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, id string) ([]store.Recipient, error) {
	rows, err := q.Query(ctx, qRecipientStates, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Recipient, error) { return scanRecipient(r) })
}

// MessageRecipients implements store.Store.
func (s *Store) MessageRecipients(ctx context.Context, id string) ([]store.Recipient, error) {
	m, err := s.MessageGet(ctx, id)
	if err != nil {
		return nil, err
	}
	rows, err := recipientStates(ctx, s.pool, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: recipients of message %s: %w", id, unavailable(err))
	}
	return driverkit.RecipientsView(m, rows), nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// MessageClaim implements store.Store. A Limit <= 0 claims nothing. Owner and LeaseUntil are
// required: a lease without an end could never be rescued.
func (s *Store) MessageClaim(ctx context.Context, p store.MessageClaimParams) ([]store.ClaimedMessage, error) {
	if p.Owner == "" || p.LeaseUntil.IsZero() {
		return nil, errors.New("postgres: MessageClaim needs an Owner and a LeaseUntil")
	}
	if p.Limit <= 0 {
		return nil, nil
	}
	out, err := readAll(ctx, s, qMessageClaim,
		[]any{p.Owner, ts(p.LeaseUntil), tsNotNull(p.Now), p.Stream, int32(min(p.Limit, 1<<30))},
		scanClaimed)
	if err != nil {
		return nil, fmt.Errorf("postgres: claiming messages: %w", unavailable(err))
	}
	driverkit.SortClaimed(out)
	return out, nil
}

// MessageFinish implements store.Store: every outcome in one statement (qMessageFinish). An event
// with a zero At is recorded at now, as is a suppression with a zero CreatedAt; an outcome
// driverkit.PrepareFinish refuses fails the whole call.
//
// Split outcomes (store.MessageFinishParams.Split, rare) are applied one by one after it, in the
// same transaction (finishSplit).
func (s *Store) MessageFinish(ctx context.Context, now time.Time, ps []store.MessageFinishParams) (int, error) {
	if len(ps) == 0 {
		return 0, nil
	}
	var finishRows, eventRows, supRows [][]any
	var split []store.MessageFinishParams
	for i, p := range ps {
		p, err := driverkit.PrepareFinish(p, now)
		if err != nil {
			return 0, fmt.Errorf("postgres: %w", err)
		}
		if p.Split {
			split = append(split, p)
			continue
		}
		lastError, err := jsonValue(p.LastError, p.LastError == nil)
		if err != nil {
			return 0, fmt.Errorf("postgres: message %s: encoding last error: %w", p.ID, unavailable(err))
		}
		ord := int32(i)
		finishRows = append(finishRows, []any{ord, p.ID, p.Owner, string(p.Status), int32(p.Attempts),
			tsNotNull(p.NextAttemptAt), lastError, p.ProviderID, ts(p.SentAt)})
		for _, e := range p.Events {
			eventRows = append(eventRows, []any{ord, e.Type, tsNotNull(e.At), rawJSON(e.Detail)})
		}
		for _, sup := range p.Suppress {
			supRows = append(supRows, append([]any{ord}, suppressionArgs(sup)...))
		}
	}
	// The parameters of qMessageFinish: the outcomes, now, the events, the suppressions.
	args := columns(finishRows, "integer", "text", "text", "text", "integer", "timestamptz", "text", "text", "timestamptz")
	args = append(args, tsNotNull(now))
	args = append(args, columns(eventRows, "integer", "text", "timestamptz", "text")...)
	args = append(args, columns(supRows, finishSuppressionParamTypes...)...)
	// The delivery counts: in the statement, or with the split outcomes' at the end of their
	// transaction, so that a batch locks each stream's row once, in stream order.
	shard := s.countShard()
	args = append(args, tsNotNull(driverkit.HourOf(now)), len(split) == 0, shard)

	applied, written := 0, 0
	streams := map[string]struct{}{}
	delivered := map[string]int{} // with split outcomes: the recipients made sent, by stream
	finish := func(q interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}) error {
		if len(finishRows) == 0 {
			return nil
		}
		rows, err := q.Query(ctx, qMessageFinish, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				stream, status string
				reported       int64
				sent           int32
			)
			if err := rows.Scan(&stream, &status, &reported, &sent); err != nil {
				return err
			}
			written = int(reported)
			delivered[stream] += int(sent)
			applied++
			if st := store.Status(status); st == store.StatusQueued || st == store.StatusDeferred {
				streams[stream] = struct{}{}
			}
		}
		return rows.Err()
	}
	var err error
	if len(split) == 0 {
		err = finish(s.pool)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			applied, written = 0, 0
			clear(streams)
			clear(delivered)
			if err := finish(tx); err != nil {
				return err
			}
			for _, p := range split {
				ok, n, err := finishSplit(ctx, tx, p, streams, delivered, now)
				if err != nil {
					return fmt.Errorf("message %s: %w", p.ID, err)
				}
				if ok {
					applied++
					written += n
				}
			}
			return addCounts(ctx, tx, driverkit.DeliveredCounts(delivered), now, shard)
		})
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: finishing messages: %w", unavailable(err))
	}
	s.signal(streams)
	s.webhooksWritten(written)
	return applied, nil
}

// finishSplit applies a split outcome (store.MessageFinishParams) in tx and reports whether the
// lease was still held: the recipients' rows first, then the message, whose status is derived
// from all its rows when nothing is pending, then its events, suppressions and webhook reports
// (driverkit.FinishReports), whose number it returns. The recipients it makes sent are added to
// delivered, by stream.
func finishSplit(ctx context.Context, tx pgx.Tx, p store.MessageFinishParams, streams map[string]struct{},
	delivered map[string]int, now time.Time) (bool, int, error) {
	var stream string
	err := tx.QueryRow(ctx, qFinishSplitLease, p.ID, p.Owner).Scan(&stream)
	if noRows(err) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	for _, r := range p.Recipients {
		if r.Status == store.RecipientSent {
			delivered[stream]++
		}
	}
	for _, r := range p.Recipients {
		lastError, err := jsonValue(r.LastError, r.LastError == nil)
		if err != nil {
			return false, 0, err
		}
		if _, err := tx.Exec(ctx, qRecipientFinish, string(r.Status), int32(r.Attempts), textOrNil(lastError),
			ts(r.SentAt), tsNotNull(now), p.ID, strings.ToLower(r.Email)); err != nil {
			return false, 0, fmt.Errorf("recipient %s: %w", r.Email, err)
		}
	}
	if len(p.Pending) == 0 {
		rows, err := recipientStates(ctx, tx, p.ID)
		if err != nil {
			return false, 0, err
		}
		driverkit.SettleSplit(&p, rows)
	}
	lastError, err := jsonValue(p.LastError, p.LastError == nil)
	if err != nil {
		return false, 0, err
	}
	pending, err := json.Marshal(nonNilStrings(p.Pending))
	if err != nil {
		return false, 0, err
	}
	if _, err := tx.Exec(ctx, qMessageFinishSplit, string(p.Status), int32(p.Attempts), tsNotNull(p.NextAttemptAt),
		textOrNil(lastError), p.ProviderID, ts(p.SentAt), string(pending), tsNotNull(now), p.ID); err != nil {
		return false, 0, err
	}
	for _, e := range p.Events {
		if _, err := tx.Exec(ctx, qEventInsertOne, p.ID, e.Type, tsNotNull(e.At), textOrNil(rawJSON(e.Detail))); err != nil {
			return false, 0, fmt.Errorf("event: %w", err)
		}
	}
	if len(p.Suppress) > 0 {
		supRows := make([][]any, len(p.Suppress))
		for i, sup := range p.Suppress {
			supRows[i] = suppressionArgs(sup)
		}
		if _, err := tx.Exec(ctx, qSuppressionUpsert, columns(supRows, suppressionParamTypes...)...); err != nil {
			return false, 0, fmt.Errorf("suppressions: %w", err)
		}
	}
	written := 0
	for _, r := range driverkit.FinishReports(p, now) {
		n, err := outboxMessage(ctx, tx, r.Type, p.ID, r.Recipient, r.At, r.Detail, now)
		if err != nil {
			return false, 0, err
		}
		written += n
	}
	if p.Status == store.StatusQueued || p.Status == store.StatusDeferred {
		streams[stream] = struct{}{}
	}
	return true, written, nil
}

// textOrNil passes JSON as text (cast in the statement), or NULL when there is none.
func textOrNil(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// MessageRescue implements store.Store.
func (s *Store) MessageRescue(ctx context.Context, now time.Time) ([]string, error) {
	ids, err := s.requeue(ctx, qRescue, tsNotNull(now))
	if err != nil {
		return nil, fmt.Errorf("postgres: rescuing expired leases: %w", unavailable(err))
	}
	slices.Sort(ids)
	return ids, nil
}

// MessageReleaseLeases implements store.Store. Owner "" releases every lease, which only a single
// process may do; a PostgreSQL node releases its own at shutdown, and those of its node id's
// previous run (OwnerPrefix) at start.
func (s *Store) MessageReleaseLeases(ctx context.Context, p store.MessageReleaseParams) (int, error) {
	ids, err := s.requeue(ctx, qRelease, tsNotNull(p.Now), p.Owner, p.OwnerPrefix)
	if err != nil {
		return 0, fmt.Errorf("postgres: releasing leases: %w", unavailable(err))
	}
	return len(ids), nil
}

// requeue runs q, a statement returning (id, stream) of the messages it put back in the queue,
// wakes the workers of those streams, and returns the ids.
func (s *Store) requeue(ctx context.Context, q string, args ...any) ([]string, error) {
	var ids []string
	streams := map[string]struct{}{}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, stream string
		if err := rows.Scan(&id, &stream); err != nil {
			return nil, err
		}
		ids = append(ids, id)
		streams[stream] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.signal(streams)
	return ids, nil
}

// MessageRenewLeases implements store.Store. Until is required.
func (s *Store) MessageRenewLeases(ctx context.Context, p store.MessageRenewParams) (int, error) {
	if p.Owner == "" || p.Until.IsZero() {
		return 0, errors.New("postgres: MessageRenewLeases needs an Owner and an Until")
	}
	if len(p.IDs) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, qMessageRenew, ts(p.Until), p.IDs, p.Owner)
	if err != nil {
		return 0, fmt.Errorf("postgres: renewing leases: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}

// retryBatch is how many messages one transaction of MessageRetry requeues: a retry of every
// failed message after an outage may match hundreds of thousands, and holding all their row locks
// in one transaction would stall the other nodes' work on them.
const retryBatch = 1000

// MessageRetry implements store.Store. With a filter, the matching failed messages are found and
// requeued by batches of retryBatch (driverkit.RetryBatches), each batch its own transaction, newest
// first; the keyset (id) only moves down, so a message retried and failed again during the call
// is not retried twice. The call is therefore not atomic: on error, the batches before it stay
// retried (their ids come back with the error).
func (s *Store) MessageRetry(ctx context.Context, p store.MessageRetryParams) ([]string, error) {
	if p.ID != "" {
		ids, err := s.retry(ctx, []string{p.ID}, p)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			var status string
			err := s.pool.QueryRow(ctx, qMessageStatus, p.ID).Scan(&status)
			if noRows(err) {
				return nil, fmt.Errorf("message %s: %w", p.ID, store.ErrNotFound)
			}
			if err != nil {
				return nil, fmt.Errorf("postgres: message %s: %w", p.ID, unavailable(err))
			}
			if status == string(store.StatusFailed) || status == string(store.StatusPartiallyFailed) {
				return nil, s.bodyGone(ctx, p.ID) // qRetry skips purged bodies
			}
			return nil, fmt.Errorf("message %s is %s, only failed and partially_failed messages can be retried: %w", p.ID, status, store.ErrConflict)
		}
		return ids, nil
	}

	return driverkit.RetryBatches(p, retryBatch, func(f store.MessageListParams) ([]string, error) {
		q, args, err := listQuery(f, "id")
		if err != nil {
			return nil, err
		}
		ids, err := readAll(ctx, s, q, args, func(sc scanner) (string, error) {
			var id string
			err := sc.Scan(&id)
			return id, err
		})
		if err != nil {
			return nil, fmt.Errorf("postgres: finding failed messages: %w", unavailable(err))
		}
		return ids, nil
	}, func(ids []string) ([]string, error) {
		return s.retry(ctx, ids, p)
	})
}

// retry requeues those of ids that are still failed, records their "retried" events, wakes their
// streams' workers, and returns the ids it requeued.
func (s *Store) retry(ctx context.Context, ids []string, p store.MessageRetryParams) ([]string, error) {
	done, err := s.requeue(ctx, qRetry, tsNotNull(p.Now), ids, ts(p.ExpiresAt))
	if err != nil {
		return nil, fmt.Errorf("postgres: retrying messages: %w", unavailable(err))
	}
	return done, nil
}

// MessageNextDue implements store.Store.
func (s *Store) MessageNextDue(ctx context.Context, stream string) (time.Time, bool, error) {
	var next pgtype.Timestamptz
	if err := s.pool.QueryRow(ctx, qMessageNextDue, stream).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("postgres: next due message: %w", unavailable(err))
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromTS(next), true, nil
}

// IdempotencyPurge implements store.Store. A record expires at its ExpiresAt: those with
// ExpiresAt <= now are deleted (and MessagesAccept treats them as absent).
func (s *Store) IdempotencyPurge(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, qIdempotencyPurge, tsNotNull(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: purging idempotency keys: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}
