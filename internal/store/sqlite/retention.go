package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/postie/postie/internal/store"
)

// A purge batch holds the only writer, so it is bounded by what it deletes, not by its count of
// items alone: at most purgeMaxRows rows (the items, and the rows a message's delete cascades
// to) and purgeMaxBytes of MIME, which keeps it to a few milliseconds of the writer. A batch
// takes at least one item, however large, so that a purge always moves on. The batch's weight
// in the group commit is the rows it deletes.
const (
	purgeMaxRows  = 1000
	purgeMaxBytes = 4 << 20
)

// purgeItem is one item due for a purge: its MIME's size and the rows deleted with it.
type purgeItem struct {
	id    string
	bytes int64
	rows  int // the item's own rows included
}

// purgeDue reads up to limit items due before before with q and scan, outside the writer, and
// cuts them to one batch (purgeBatch); rows 0: nothing is due.
func (s *Store) purgeDue(ctx context.Context, q string, before time.Time, limit int, scan func(scanner) (purgeItem, error)) (ids string, rows int, err error) {
	due, err := readAll(ctx, s, q, []any{micros(before), int64(limit)}, scan)
	if err != nil || len(due) == 0 {
		return "", 0, err
	}
	return purgeBatch(due)
}

// wrapErr prefixes err with what failed; nil stays nil.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// purgeBatch cuts items (oldest first) to the longest prefix within purgeMaxRows and
// purgeMaxBytes, at least one item, and returns their ids as a JSON array and the rows they
// delete.
func purgeBatch(items []purgeItem) (ids string, rows int, err error) {
	var (
		take  []string
		bytes int64
	)
	for _, it := range items {
		if len(take) > 0 && (rows+it.rows > purgeMaxRows || bytes+it.bytes > purgeMaxBytes) {
			break
		}
		take = append(take, it.id)
		rows += it.rows
		bytes += it.bytes
	}
	arr, err := json.Marshal(take)
	return string(arr), rows, err
}

// scanBodyDue and scanMessageDue scan a row of qBodyPurgeDue (the message row is updated and
// its MIME deleted: two rows) and of qMessagePurgeDue (the message and the rows it cascades to).
func scanBodyDue(sc scanner) (purgeItem, error) {
	it := purgeItem{rows: 2}
	err := sc.Scan(&it.id, &it.bytes)
	return it, err
}

func scanMessageDue(sc scanner) (purgeItem, error) {
	var it purgeItem
	err := sc.Scan(&it.id, &it.bytes, &it.rows)
	it.rows++
	return it, err
}

// MessageBodyPurge implements store.Retention. It purges fewer than p.Limit bodies when they
// would exceed the batch's bounds (purgeMaxRows, purgeMaxBytes).
func (s *Store) MessageBodyPurge(ctx context.Context, p store.PurgeParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	ids, rows, err := s.purgeDue(ctx, qBodyPurgeDue, p.Before, min(p.Limit, purgeMaxRows/2), scanBodyDue)
	if err != nil || rows == 0 {
		return 0, wrapErr("sqlite: purging message bodies", err)
	}
	var n int
	err = s.w.do(ctx, rows, func(t *wtx) error {
		n = 0
		marked, err := queryAll(t, qBodyPurgeMark, []any{micros(p.Now), micros(p.Before), ids}, scanValue[string])
		if err != nil || len(marked) == 0 {
			return err
		}
		arr, err := json.Marshal(marked)
		if err != nil {
			return err
		}
		if _, err := t.exec(qBodyPurgeRaw, string(arr)); err != nil {
			return err
		}
		n = len(marked)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging message bodies: %w", err)
	}
	return n, nil
}

// MessagePurge implements store.Retention. It purges fewer than p.Limit messages when they and
// the rows their delete cascades to would exceed the batch's bounds (purgeMaxRows,
// purgeMaxBytes).
func (s *Store) MessagePurge(ctx context.Context, p store.PurgeParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	ids, rows, err := s.purgeDue(ctx, qMessagePurgeDue, p.Before, min(p.Limit, purgeMaxRows), scanMessageDue)
	if err != nil || rows == 0 {
		return 0, wrapErr("sqlite: purging messages", err)
	}
	n, err := s.execWeighted(ctx, rows, qMessagePurge, micros(p.Before), ids)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging messages: %w", err)
	}
	return n, nil
}

// InboundPurge implements store.Retention. Its four deletes share one budget of
// min(p.Limit, purgeMaxRows) rows, which is the batch's weight.
func (s *Store) InboundPurge(ctx context.Context, p store.PurgeParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	budget := int64(min(p.Limit, purgeMaxRows))
	var total int64
	err := s.w.do(ctx, int(budget), func(t *wtx) error {
		total = 0
		before := micros(p.Before)
		hours := micros(p.Before.Add(-time.Hour))
		for _, st := range []insertStmt{{qInboundEntriesPurge, []any{before}},
			{qReportKeysPurge, []any{before}}, {qSoftBouncesPurge, []any{before}},
			{qDeliveryCountsPurge, []any{hours}}} {
			if total >= budget {
				break
			}
			res, err := t.exec(st.query, append(st.args, budget-total)...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging inbound reports: %w", err)
	}
	return int(total), nil
}

// RetentionLock implements store.Retention. One process uses the file, so the lock is the
// store's own.
func (s *Store) RetentionLock(ctx context.Context) (func(), bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if !s.purging.TryLock() {
		return nil, false, nil
	}
	return s.purging.Unlock, true, nil
}

// bodyGone is the error for a message without a body: a *store.BodyPurgedError when retention
// purged it, store.ErrNotFound when there is no such message.
func (s *Store) bodyGone(ctx context.Context, id string) error {
	at, err := readOne(ctx, s, qBodyPurgedAt, []any{id}, scanValue[sql.NullInt64])
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("message %s: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlite: message %s: %w", id, err)
	case at.Valid:
		return &store.BodyPurgedError{ID: id, At: fromMicros(at.Int64)}
	}
	return fmt.Errorf("message %s: %w", id, store.ErrNotFound)
}
