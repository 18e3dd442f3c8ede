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

// MessageBodyPurge implements store.Retention.
func (s *Store) MessageBodyPurge(ctx context.Context, p store.PurgeParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	var n int
	err := s.w.do(ctx, p.Limit, func(t *wtx) error {
		rows, err := t.query(qBodyPurgeMark, micros(p.Now), micros(p.Before), int64(p.Limit))
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil || len(ids) == 0 {
			return err
		}
		arr, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		if _, err := t.exec(qBodyPurgeRaw, string(arr)); err != nil {
			return err
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging message bodies: %w", err)
	}
	return n, nil
}

// MessagePurge implements store.Retention. Its weight is the rows it may delete, so that a
// group commit holding it stays within maxGroupWeight.
func (s *Store) MessagePurge(ctx context.Context, p store.PurgeParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	n, err := s.execWeighted(ctx, p.Limit, qMessagePurge, micros(p.Before), int64(p.Limit))
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging messages: %w", err)
	}
	return n, nil
}

// InboundPurge implements store.Retention.
func (s *Store) InboundPurge(ctx context.Context, p store.PurgeParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	var total int64
	err := s.w.do(ctx, p.Limit, func(t *wtx) error {
		total = 0
		before, limit := micros(p.Before), int64(p.Limit)
		hours := micros(p.Before.Add(-time.Hour))
		for _, st := range []insertStmt{{qInboundEntriesPurge, []any{before, limit}},
			{qReportKeysPurge, []any{before, limit}}, {qSoftBouncesPurge, []any{before, limit}},
			{qDeliveryCountsPurge, []any{hours, limit}}} {
			res, err := t.exec(st.query, st.args...)
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
