package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// MessagesAccept implements store.Store. Every message needs an ID and the status queued or
// scheduled; a zero CreatedAt is taken as p.Now and a zero UpdatedAt as CreatedAt. The recipient
// filter of MessageList matches Message.Recipients.
//
// The rows are encoded into multi-row INSERT statements by the caller's goroutine, so that the
// writer only executes them.
func (s *Store) MessagesAccept(ctx context.Context, p store.MessagesAcceptParams) (store.MessagesAcceptResult, error) {
	msgs, raws, err := driverkit.PrepareAccepts(p)
	if err != nil {
		return store.MessagesAcceptResult{}, fmt.Errorf("sqlite: %w", err)
	}
	if len(p.Messages) == 0 && p.Idempotency == nil {
		return store.MessagesAcceptResult{}, nil
	}
	// Messages this node's delivery has room for are stored claimed and handed to it after the
	// commit (store.AcceptClaims); on any other outcome the room is given back.
	handed := s.recv.Claim(msgs, raws, p.Now, roundTrip, s.paused.has)
	defer func() { handed.Unreserve() }() // unless delivered
	// The streams of the messages left for a claim, to wake.
	streams := make(map[string]struct{}, 2)
	inserts, err := messageInserts(msgs, raws, streams)
	if err != nil {
		return store.MessagesAcceptResult{}, fmt.Errorf("sqlite: %w", err)
	}
	idem := p.Idempotency
	now := micros(p.Now)

	var res store.MessagesAcceptResult
	err = s.w.do(ctx, len(p.Messages), func(t *wtx) error {
		res = store.MessagesAcceptResult{}
		if idem != nil {
			var (
				hash, response []byte
				code, expires  int64
			)
			err := t.queryRow(qIdempotencyGet, []any{idem.APIKeyID, idem.Key},
				&hash, &code, &response, &expires)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return err
			case expires > now: // still valid: replay or refuse
				if !bytes.Equal(hash, idem.RequestHash) {
					return store.ErrIdempotencyMismatch
				}
				res = store.MessagesAcceptResult{Replayed: true, StatusCode: int(code), Response: response}
				return nil
			}
		}
		if err := execAll(t, inserts); err != nil {
			return err
		}
		if idem != nil {
			_, err := t.exec(qIdempotencyPut, idem.APIKeyID, idem.Key, nonNil(idem.RequestHash),
				int64(idem.StatusCode), idem.Response, micros(idem.CreatedAt), micros(idem.ExpiresAt))
			if err != nil {
				return fmt.Errorf("idempotency key: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrIdempotencyMismatch) {
			return store.MessagesAcceptResult{}, fmt.Errorf("idempotency key %q: %w", idem.Key, err)
		}
		return store.MessagesAcceptResult{}, fmt.Errorf("sqlite: accepting messages: %w", err)
	}
	if !res.Replayed {
		handed.Deliver()
		handed = nil
		s.signal(streams)
	}
	return res, nil
}

// messageInserts encodes msgs (prepared by driverkit.PrepareAccepts) and their MIME into the
// multi-row INSERTs of messages, message_raw and message_recipients, parents first, and adds to
// streams those of the messages left for a claim (not stored claimed).
func messageInserts(msgs []store.Message, raws [][]byte, streams map[string]struct{}) ([]insertStmt, error) {
	n := len(msgs)
	msgRows, rawRows := make([][]any, 0, n), make([][]any, 0, n)
	recipRows := make([][]any, 0, n)
	for i := range msgs {
		m := &msgs[i]
		args, err := messageArgs(m)
		if err != nil {
			return nil, err
		}
		msgRows = append(msgRows, args)
		rawRows = append(rawRows, []any{m.ID, nonNil(raws[i])}) // raw is NOT NULL
		for _, rc := range driverkit.LowerDistinct(m.Recipients) {
			recipRows = append(recipRows, []any{m.ID, rc})
		}
		if m.Status != store.StatusSending {
			streams[m.Stream] = struct{}{}
		}
	}
	// Parents first: the other tables reference messages.
	var inserts []insertStmt
	inserts = multiInsert(inserts, qMessageInsertInto, messageColumnCount, msgRows)
	inserts = multiInsert(inserts, qRawInsertInto, 2, rawRows)
	return multiInsert(inserts, qRecipientInsertInto, 2, recipRows), nil
}

// execAll runs stmts in order.
func execAll(t *wtx, stmts []insertStmt) error {
	for _, st := range stmts {
		if _, err := t.exec(st.query, st.args...); err != nil {
			return err
		}
	}
	return nil
}

// insertStmt is one statement with its arguments (an INSERT, or any other write).
type insertStmt struct {
	query string
	args  []any
}

// maxInsertRows and maxInsertParams bound one multi-row INSERT (SQLite allows 32766 parameters).
const (
	maxInsertRows   = 64
	maxInsertParams = 4096
)

// multiInsert appends to stmts the statements inserting rows (each of cols values) with into,
// "INSERT INTO t (…) VALUES ", as few multi-row statements as the limits allow. Full chunks share
// one query text, so the writer prepares them once.
func multiInsert(stmts []insertStmt, into string, cols int, rows [][]any) []insertStmt {
	per := max(1, min(maxInsertRows, maxInsertParams/cols))
	for len(rows) > 0 {
		n := min(per, len(rows))
		args := make([]any, 0, n*cols)
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		stmts = append(stmts, insertStmt{query: valuesQuery(into, cols, n), args: args})
		rows = rows[n:]
	}
	return stmts
}

// valuesQuery returns into followed by n rows of cols placeholders.
func valuesQuery(into string, cols, n int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	var b strings.Builder
	b.Grow(len(into) + n*(len(row)+2))
	b.WriteString(into)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// MessageGet implements store.Store.
func (s *Store) MessageGet(ctx context.Context, id string) (store.Message, error) {
	m, err := readOne(ctx, s, qMessageGet, []any{id}, scanMessage)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Message{}, fmt.Errorf("message %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Message{}, fmt.Errorf("sqlite: message %s: %w", id, err)
	}
	return m, nil
}

// MessageRaw implements store.Store.
func (s *Store) MessageRaw(ctx context.Context, id string) ([]byte, error) {
	raw, err := readOne(ctx, s, qRawGet, []any{id}, scanValue[[]byte])
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.bodyGone(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: raw of message %s: %w", id, err)
	}
	return nonNil(raw), nil
}

// MessageRawPart implements store.Store.
func (s *Store) MessageRawPart(ctx context.Context, id string, offset int64, n int) ([]byte, int64, error) {
	type part struct {
		data []byte
		size int64
	}
	p, err := readOne(ctx, s, qRawPart, []any{offset, n, id}, func(sc scanner) (part, error) {
		var p part
		err := sc.Scan(&p.size, &p.data)
		return p, err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, s.bodyGone(ctx, id)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: raw of message %s: %w", id, err)
	}
	return nonNil(p.data), p.size, nil
}

// MessageEvents implements store.Store. An unknown id has no events (and no error).
func (s *Store) MessageEvents(ctx context.Context, id string) ([]store.Event, error) {
	events, err := readAll(ctx, s, qEventsGet, []any{id}, func(sc scanner) (store.Event, error) {
		var (
			e      store.Event
			at     int64
			detail []byte
		)
		if err := sc.Scan(&e.ID, &e.MessageID, &e.Type, &at, &detail); err != nil {
			return store.Event{}, err
		}
		e.At = fromMicros(at)
		if len(detail) > 0 {
			e.Detail = json.RawMessage(detail)
		}
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: events of message %s: %w", id, err)
	}
	return events, nil
}

// MessageList implements store.Store. Limit defaults to 50 and is capped at 1000.
func (s *Store) MessageList(ctx context.Context, p store.MessageListParams) ([]store.Message, error) {
	q, args := listQuery(p, messageColumns)
	msgs, err := readAll(ctx, s, q, args, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing messages: %w", err)
	}
	return msgs, nil
}

// listQuery assembles the MessageList statement selecting cols from the pieces in queries.go.
func listQuery(p store.MessageListParams, cols string) (string, []any) {
	var (
		conds []string
		args  []any
	)
	if len(p.Statuses) > 0 {
		cond := "status IN (?" + strings.Repeat(", ?", len(p.Statuses)-1) + ")"
		for _, st := range p.Statuses {
			args = append(args, string(st))
		}
		if states := driverkit.RecipientStates(p.Statuses); p.Recipient != "" && len(states) > 0 {
			cond = "(" + cond + " OR " + qListRecipientState + "(?" + strings.Repeat(", ?", len(states)-1) + ")))"
			args = append(args, strings.ToLower(p.Recipient))
			for _, st := range states {
				args = append(args, string(st))
			}
		}
		conds = append(conds, cond)
	}
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if p.Stream != "" {
		add(qListStream, p.Stream)
	}
	if p.Tag != "" {
		add(qListTag, p.Tag)
	}
	if p.Recipient != "" {
		add(qListRecipient, strings.ToLower(p.Recipient))
	}
	if p.CampaignID != "" {
		add(qListCampaign, p.CampaignID)
	}
	if !p.CreatedAfter.IsZero() {
		add(qListAfter, p.CreatedAfter.UnixMicro())
	}
	if !p.CreatedBefore.IsZero() {
		add(qListBefore, p.CreatedBefore.UnixMicro())
	}
	switch code := driverkit.ParseErrorCode(p.ErrorCode); code.Form {
	case driverkit.ErrorCodeReply:
		add(qListErrorCode, int64(code.Reply))
	case driverkit.ErrorCodeEnhanced:
		add(qListErrorEnhanced, code.Enhanced)
	case driverkit.ErrorCodePrefix:
		add(qListErrorPrefix, code.Enhanced, code.Below)
	}
	if p.Cursor != "" {
		add(qListCursor, p.Cursor)
	}
	args = append(args, int64(driverkit.ListLimit(p.Limit)))

	q := "SELECT " + cols + " FROM messages"
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	return q + qListOrder, args
}

// scanMessages reads every row of messageColumns (the writer's RETURNING; reads use readAll).
func scanMessages(rows *sql.Rows) ([]store.Message, error) {
	var msgs []store.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

// MessageCancel implements store.Store.
func (s *Store) MessageCancel(ctx context.Context, id string, now time.Time) (store.Message, error) {
	var (
		m       store.Message
		written int
	)
	err := s.w.do(ctx, 1, func(t *wtx) error {
		written = 0
		rows, err := t.query(qMessageCancel, micros(now), id)
		if err != nil {
			return err
		}
		msgs, err := scanMessages(rows)
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			var (
				status string
				split  bool
			)
			err := t.queryRow(qCancelSplitCheck, []any{id}, &status, &split)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("message %s: %w", id, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if !split || !store.Status(status).Cancellable() {
				return fmt.Errorf("message %s is %s: %w", id, status, store.ErrConflict)
			}
			m, written, err = s.cancelSplit(t, id, store.Status(status), now, true)
			return err
		}
		m = msgs[0]
		if _, err = t.exec(qEventInsert, id, store.EventCancelled, micros(now), nil); err != nil {
			return err
		}
		written, err = s.outboxMessage(t, store.WebhookMessageCancelled, id, "", now, nil, now)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			return store.Message{}, err
		}
		return store.Message{}, fmt.Errorf("sqlite: cancelling message %s: %w", id, err)
	}
	s.webhooksWritten(written)
	return m, nil
}

// cancelSplit cancels the pending recipients of split message id (cancellable, in state status),
// gives it the status derived from all its recipients, records the event naming them and their
// webhook reports (unless !report), and returns the message and the number of reports.
func (s *Store) cancelSplit(t *wtx, id string, status store.Status, now time.Time, report bool) (store.Message, int, error) {
	rows, err := t.query(qCancelRecipients, micros(now), id)
	if err != nil {
		return store.Message{}, 0, err
	}
	var cancelled []string
	for rows.Next() {
		var email string
		if err := rows.Scan(&email); err != nil {
			rows.Close()
			return store.Message{}, 0, err
		}
		cancelled = append(cancelled, email)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return store.Message{}, 0, err
	}
	states, err := recipientStates(t, id)
	if err != nil {
		return store.Message{}, 0, err
	}
	p := store.MessageFinishParams{Status: status}
	driverkit.SettleSplit(&p, states)
	rows, err = t.query(qCancelSplit, string(p.Status), micros(now), id)
	if err != nil {
		return store.Message{}, 0, err
	}
	msgs, err := scanMessages(rows)
	if err := errors.Join(err, rows.Close()); err != nil {
		return store.Message{}, 0, err
	}
	if len(msgs) == 0 {
		return store.Message{}, 0, fmt.Errorf("message %s is no longer cancellable: %w", id, store.ErrConflict)
	}
	ev := store.NewEvent(store.EventCancelled, now, &store.EventDetail{Recipients: store.Recipients(cancelled)})
	if _, err = t.exec(qEventInsert, id, ev.Type, micros(now), string(ev.Detail)); err != nil {
		return store.Message{}, 0, err
	}
	if !report {
		return msgs[0], 0, nil
	}
	n, err := s.outboxWrite(t, now, driverkit.CancelReports(msgs[0], cancelled, ev))
	return msgs[0], n, err
}

// recipientStates reads every recipient row of message id in the writer's transaction.
func recipientStates(t *wtx, id string) ([]store.Recipient, error) {
	rows, err := t.query(qRecipientStates, id)
	if err != nil {
		return nil, err
	}
	var out []store.Recipient
	for rows.Next() {
		r, err := scanRecipient(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, r)
	}
	return out, errors.Join(rows.Err(), rows.Close())
}

// MessageRecipients implements store.Store.
func (s *Store) MessageRecipients(ctx context.Context, id string) ([]store.Recipient, error) {
	m, err := s.MessageGet(ctx, id)
	if err != nil {
		return nil, err
	}
	rows, err := readAll(ctx, s, qRecipientStates, []any{id}, scanRecipient)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recipients of message %s: %w", id, err)
	}
	return driverkit.RecipientsView(m, rows), nil
}

// MessageClaim implements store.Store. A Limit <= 0 claims nothing. Owner and LeaseUntil are
// required: a lease without an end could never be rescued.
func (s *Store) MessageClaim(ctx context.Context, p store.MessageClaimParams) ([]store.ClaimedMessage, error) {
	if p.Owner == "" || p.LeaseUntil.IsZero() {
		return nil, errors.New("sqlite: MessageClaim needs an Owner and a LeaseUntil")
	}
	if p.Limit <= 0 || s.paused.has(p.Stream) {
		return nil, nil
	}
	var ids []string
	err := s.w.doUrgent(ctx, p.Limit, func(t *wtx) error {
		ids = ids[:0]
		if s.paused.has(p.Stream) {
			return nil // paused since the call began (StreamPause changes the set in the writer)
		}
		rows, err := t.query(qMessageClaim, p.Owner, nullMicros(p.LeaseUntil), micros(p.Now),
			p.Stream, micros(p.Now), int64(p.Limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claiming messages: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}

	// The rows are read after the claim's commit, from the read pool, to keep the writer's
	// transaction short: nothing but this node's MessageFinish (and a release at shutdown) changes
	// a message while it is leased, and its MIME never changes after acceptance.
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	out, err := readAll(ctx, s, qMessageClaimed, []any{string(idsJSON)}, scanClaimed)
	if err != nil {
		// The messages are leased to p.Owner; without their rows the caller cannot send them and
		// they return to the queue when the lease expires (MessageRescue).
		return nil, fmt.Errorf("sqlite: reading claimed messages: %w", err)
	}
	driverkit.SortClaimed(out)
	return out, nil
}

// finishRow is one MessageFinishParams, checked (driverkit.PrepareFinish) and encoded by the caller's
// goroutine.
type finishRow struct {
	args      []any
	id        string
	claimable bool
	sent      bool // a message not split sent: its recipients count as delivered
	sentEvent bool // its sent event is kept on the row (keptSentEvent), under an id set in args
	events    [][]any
	suppress  [][]any // suppressionArgs
	split     *store.MessageFinishParams
	reports   []driverkit.FinishReport // to webhooks, when a type may have a route
}

// MessageFinish implements store.Store. An event with a zero At is recorded at now, as is a
// suppression with a zero CreatedAt; an outcome driverkit.PrepareFinish refuses fails the whole call.
// The webhook reports of an applied outcome (driverkit.FinishReports) are written with it, one
// statement per report, and only for types with a route.
//
// The statements are prepared by the caller's goroutine: one UPDATE per outcome, then every
// event of the batch in multi-row INSERTs, which is what the writer runs when every lease was
// still held (the usual case); otherwise it inserts the events of the applied outcomes one by one.
func (s *Store) MessageFinish(ctx context.Context, now time.Time, ps []store.MessageFinishParams) (int, error) {
	rows := make([]finishRow, len(ps))
	var allEvents [][]any
	sentEvents := 0
	for i, p := range ps {
		p, err := driverkit.PrepareFinish(p, now)
		if err != nil {
			return 0, fmt.Errorf("sqlite: %w", err)
		}
		lastError, err := jsonText(p.LastError, p.LastError == nil)
		if err != nil {
			return 0, fmt.Errorf("sqlite: message %s: encoding last error: %w", p.ID, err)
		}
		r := finishRow{
			id: p.ID,
			args: []any{string(p.Status), int64(p.Attempts), micros(p.NextAttemptAt), lastError,
				p.ProviderID, nullMicros(p.SentAt), nil, nil, micros(now), p.ID, p.Owner},
			claimable: p.Status == store.StatusQueued || p.Status == store.StatusDeferred,
			sent:      p.Status == store.StatusSent && !p.Split,
			sentEvent: keptSentEvent(p),
		}
		if r.sentEvent {
			r.args[finishSentDetailArg] = rawJSONText(p.Events[0].Detail)
			sentEvents++
		} else {
			for _, e := range p.Events {
				r.events = append(r.events, []any{p.ID, e.Type, micros(e.At), rawJSONText(e.Detail)})
			}
		}
		allEvents = append(allEvents, r.events...)
		for _, sup := range p.Suppress {
			r.suppress = append(r.suppress, suppressionArgs(sup))
		}
		if p.Split {
			r.split = &p
		}
		if s.routes.any() {
			r.reports = driverkit.FinishReports(p, now)
		}
		rows[i] = r
	}
	eventInserts := multiInsert(nil, qEventInsertInto, 4, allEvents)

	applied, written := 0, 0
	streams := map[string]struct{}{} // of the messages made claimable again, to wake their workers
	delivered := map[string]int{}    // recipients of split messages made sent, by stream
	sentIDs := make([]string, 0, len(rows))
	err := s.w.doUrgent(ctx, len(rows), func(t *wtx) error {
		applied, written = 0, 0
		clear(streams)
		clear(delivered)
		sent := sentIDs[:0]
		held := make([]bool, len(rows))
		if sentEvents > 0 {
			id, err := reserveEventIDs(t, sentEvents)
			if err != nil {
				return fmt.Errorf("event ids: %w", err)
			}
			for _, r := range rows {
				if r.sentEvent {
					r.args[finishSentEventArg] = id
					id++
				}
			}
		}
		for i, r := range rows {
			ok, err := finishOne(t, r, streams, delivered, now)
			if err != nil {
				return fmt.Errorf("message %s: %w", r.id, err)
			}
			if !ok {
				continue // no longer leased by this owner
			}
			held[i] = true
			applied++
			if r.sent {
				sent = append(sent, r.id)
			}
			for _, rep := range r.reports {
				n, err := s.outboxMessage(t, rep.Type, r.id, rep.Recipient, rep.At, rep.Detail, now)
				if err != nil {
					return fmt.Errorf("message %s: %w", r.id, err)
				}
				written += n
			}
			for _, sup := range r.suppress {
				if _, err := t.exec(qSuppressionUpsert, sup...); err != nil {
					return fmt.Errorf("message %s: suppression of %s: %w", r.id, sup[0], err)
				}
			}
		}
		if err := countDelivered(t, sent, delivered, now); err != nil {
			return err
		}
		if applied == len(rows) {
			for _, ins := range eventInserts {
				if _, err := t.exec(ins.query, ins.args...); err != nil {
					return fmt.Errorf("events: %w", err)
				}
			}
			return nil
		}
		for i, r := range rows {
			if !held[i] {
				continue
			}
			for _, ev := range r.events {
				if _, err := t.exec(qEventInsert, ev...); err != nil {
					return fmt.Errorf("message %s: event: %w", r.id, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: finishing messages: %w", err)
	}
	s.signal(streams)
	s.webhooksWritten(written)
	return applied, nil
}

// Where qMessageFinish takes the sent event kept on the row.
const (
	finishSentEventArg  = 6
	finishSentDetailArg = 7
)

// keptSentEvent reports whether p's timeline event is kept on the message row rather than
// stored as a message_events row: a whole message sent in one attempt, whose one event is the
// sent event at its SentAt (what MessageEvents derives from sent_at).
func keptSentEvent(p store.MessageFinishParams) bool {
	return p.Status == store.StatusSent && !p.Split && !p.SentAt.IsZero() && len(p.Events) == 1 &&
		p.Events[0].Type == store.EventSent && micros(p.Events[0].At) == micros(p.SentAt)
}

// reserveEventIDs takes n ids from message_events' sequence and returns the first.
func reserveEventIDs(t *wtx, n int) (int64, error) {
	var last int64
	err := t.queryRow(qEventIDsReserve, []any{int64(n)}, &last)
	if errors.Is(err, sql.ErrNoRows) {
		err = t.queryRow(qEventSeqCreate, []any{int64(n)}, &last)
	}
	return last - int64(n) + 1, err
}

// finishOne applies one outcome and reports whether the lease was still held. An outcome that
// makes the message claimable again adds its stream to streams; a split one that sends to
// recipients adds them to delivered (the messages sent whole are counted by qCountsSent).
func finishOne(t *wtx, r finishRow, streams map[string]struct{}, delivered map[string]int, now time.Time) (bool, error) {
	if r.split != nil {
		return finishSplit(t, *r.split, streams, delivered, now)
	}
	if r.claimable {
		var stream string
		err := t.queryRow(qMessageFinish+qReturningStream, r.args, &stream)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		streams[stream] = struct{}{}
		return true, nil
	}
	res, err := t.exec(qMessageFinish, r.args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// finishSplit applies a split outcome (store.MessageFinishParams) and reports whether the lease
// was still held: the recipients' rows first, then the message, whose status is derived from
// all its rows when nothing is pending.
func finishSplit(t *wtx, p store.MessageFinishParams, streams map[string]struct{}, delivered map[string]int, now time.Time) (bool, error) {
	var stream string
	err := t.queryRow(qFinishSplitLease, []any{p.ID, p.Owner}, &stream)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range p.Recipients {
		lastError, err := jsonText(r.LastError, r.LastError == nil)
		if err != nil {
			return false, err
		}
		if _, err := t.exec(qRecipientFinish, string(r.Status), int64(r.Attempts), lastError,
			nullMicros(r.SentAt), micros(now), p.ID, strings.ToLower(r.Email)); err != nil {
			return false, fmt.Errorf("recipient %s: %w", r.Email, err)
		}
	}
	if len(p.Pending) == 0 {
		rows, err := recipientStates(t, p.ID)
		if err != nil {
			return false, err
		}
		driverkit.SettleSplit(&p, rows)
	}
	lastError, err := jsonText(p.LastError, p.LastError == nil)
	if err != nil {
		return false, err
	}
	pending, err := json.Marshal(nonNilStrings(p.Pending))
	if err != nil {
		return false, err
	}
	if _, err := t.exec(qMessageFinishSplit, string(p.Status), int64(p.Attempts), micros(p.NextAttemptAt),
		lastError, p.ProviderID, nullMicros(p.SentAt), string(pending), micros(now), p.ID, p.Owner); err != nil {
		return false, err
	}
	if p.Status == store.StatusQueued || p.Status == store.StatusDeferred {
		streams[stream] = struct{}{}
	}
	for _, r := range p.Recipients {
		if r.Status == store.RecipientSent {
			delivered[stream]++
		}
	}
	return true, nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// MessageRescue implements store.Store.
func (s *Store) MessageRescue(ctx context.Context, now time.Time) ([]string, error) {
	ids, err := s.requeue(ctx, 1, insertStmt{qRescue, []any{micros(now)}},
		insertStmt{qRescueEvents, []any{micros(now)}})
	if err != nil {
		return nil, fmt.Errorf("sqlite: rescuing expired leases: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// MessageReleaseLeases implements store.Store.
func (s *Store) MessageReleaseLeases(ctx context.Context, p store.MessageReleaseParams) (int, error) {
	args := []any{micros(p.Now), p.Owner, p.OwnerPrefix}
	ids, err := s.requeue(ctx, 1, insertStmt{qRelease, args}, insertStmt{qReleaseEvents, args})
	if err != nil {
		return 0, fmt.Errorf("sqlite: releasing leases: %w", err)
	}
	return len(ids), nil
}

// requeue runs, in one write, the statements before (the INSERT of timeline events first) and
// then update (an UPDATE of the same rows returning id and stream), wakes the workers of the
// streams updated, and returns the ids updated. The events go first because they record what
// the UPDATE changes.
func (s *Store) requeue(ctx context.Context, weight int, update insertStmt, before ...insertStmt) ([]string, error) {
	var ids []string
	streams := map[string]struct{}{}
	err := s.w.do(ctx, weight, func(t *wtx) error {
		ids = ids[:0]
		clear(streams)
		for _, st := range before {
			if _, err := t.exec(st.query, st.args...); err != nil {
				return err
			}
		}
		rows, err := t.query(update.query, update.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, stream string
			if err := rows.Scan(&id, &stream); err != nil {
				return err
			}
			ids = append(ids, id)
			streams[stream] = struct{}{}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	s.signal(streams)
	return ids, nil
}

// MessageRenewLeases implements store.Store. Until is required.
func (s *Store) MessageRenewLeases(ctx context.Context, p store.MessageRenewParams) (int, error) {
	if p.Owner == "" || p.Until.IsZero() {
		return 0, errors.New("sqlite: MessageRenewLeases needs an Owner and an Until")
	}
	if len(p.IDs) == 0 {
		return 0, nil
	}
	ids, err := json.Marshal(p.IDs)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	var n int64
	err = s.w.doUrgent(ctx, len(p.IDs), func(t *wtx) error {
		res, err := t.exec(qMessageRenew, micros(p.Until), string(ids), p.Owner)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: renewing leases: %w", err)
	}
	return int(n), nil
}

// retryBatch is how many messages one write of MessageRetry requeues: a retry of every failed
// message after an outage may match hundreds of thousands, and the writer must keep serving the
// API meanwhile.
const retryBatch = 1000

// MessageRetry implements store.Store. With a filter, the matching failed messages are found on
// the read pool and requeued by batches of retryBatch (driverkit.RetryBatches), each batch its own
// transaction, newest first; the keyset (id) only moves down, so a message retried and failed
// again during the call is not retried twice. The call is therefore not atomic: on error, the
// batches before it stay retried (their ids come back with the error).
func (s *Store) MessageRetry(ctx context.Context, p store.MessageRetryParams) ([]string, error) {
	if p.ID != "" {
		ids, err := s.retry(ctx, []string{p.ID}, p)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			status, err := readOne(ctx, s, qMessageStatus, []any{p.ID}, scanValue[string])
			if errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("message %s: %w", p.ID, store.ErrNotFound)
			}
			if err != nil {
				return nil, fmt.Errorf("sqlite: message %s: %w", p.ID, err)
			}
			if status == string(store.StatusFailed) || status == string(store.StatusPartiallyFailed) {
				return nil, s.bodyGone(ctx, p.ID) // the retry queries skip purged bodies
			}
			return nil, fmt.Errorf("message %s is %s, only failed and partially_failed messages can be retried: %w", p.ID, status, store.ErrConflict)
		}
		return ids, nil
	}
	return driverkit.RetryBatches(p, retryBatch, func(f store.MessageListParams) ([]string, error) {
		q, args := listQuery(f, "id")
		ids, err := readAll(ctx, s, q, args, scanValue[string])
		if err != nil {
			return nil, fmt.Errorf("sqlite: finding failed messages: %w", err)
		}
		return ids, nil
	}, func(ids []string) ([]string, error) {
		return s.retry(ctx, ids, p)
	})
}

// retry requeues those of ids that are still failed or partially_failed (their failed
// recipients), records their "retried" events, wakes their
// streams' workers, and returns the ids it requeued.
func (s *Store) retry(ctx context.Context, ids []string, p store.MessageRetryParams) ([]string, error) {
	arr, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	done, err := s.requeue(ctx, len(ids),
		insertStmt{qRetry, []any{micros(p.Now), string(arr), nullMicros(p.ExpiresAt)}},
		insertStmt{qRetryEvents, []any{micros(p.Now), string(arr)}},
		insertStmt{qRetryRecipients, []any{micros(p.Now), string(arr)}})
	if err != nil {
		return nil, fmt.Errorf("sqlite: retrying messages: %w", err)
	}
	return done, nil
}

// MessageNextDue implements store.Store.
func (s *Store) MessageNextDue(ctx context.Context, stream string) (time.Time, bool, error) {
	if s.paused.has(stream) {
		return time.Time{}, false, nil
	}
	next, err := readOne(ctx, s, qMessageNextDue, []any{stream}, scanValue[sql.NullInt64])
	if err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: next due message: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(next.Int64), true, nil
}

// IdempotencyPurge implements store.Store. A record expires at its ExpiresAt: those with
// ExpiresAt <= now are deleted (and MessagesAccept treats them as absent).
func (s *Store) IdempotencyPurge(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qIdempotencyPurge, micros(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging idempotency keys: %w", err)
	}
	return int(n), nil
}
