package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
)

// MessageBodyPurge implements store.Retention.
func (s *Store) MessageBodyPurge(ctx context.Context, p store.PurgeParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	var n int64
	if err := s.pool.QueryRow(ctx, qBodyPurge, tsNotNull(p.Now), tsNotNull(p.Before), int32(min(p.Limit, 1<<30))).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: purging message bodies: %w", unavailable(err))
	}
	return int(n), nil
}

// MessagePurge implements store.Retention.
func (s *Store) MessagePurge(ctx context.Context, p store.PurgeParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	var n int64
	if err := s.pool.QueryRow(ctx, qMessagePurge, tsNotNull(p.Before), int32(min(p.Limit, 1<<30))).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: purging messages: %w", unavailable(err))
	}
	return int(n), nil
}

// InboundPurge implements store.Retention.
func (s *Store) InboundPurge(ctx context.Context, p store.PurgeParams) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	var n int64
	if err := s.pool.QueryRow(ctx, qInboundPurge, tsNotNull(p.Before), int32(min(p.Limit, 1<<30)),
		tsNotNull(p.Before.Add(-time.Hour))).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: purging inbound reports: %w", unavailable(err))
	}
	return int(n), nil
}

// RetentionLock implements store.Retention with a session advisory lock, held on a connection
// taken from the pool until release (or until that session ends, e.g. the node died).
func (s *Store) RetentionLock(ctx context.Context) (func(), bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: retention lock: %w", unavailable(err))
	}
	var ok bool
	if err := conn.QueryRow(ctx, qRetentionLock).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("postgres: retention lock: %w", unavailable(err))
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		// A failed unlock leaves the lock with the session: close it rather than hand it back.
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, qRetentionUnlock); err != nil {
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
	}, true, nil
}

// bodyGone is the error for a message without a body: a *store.BodyPurgedError when retention
// purged it, store.ErrNotFound when there is no such message.
func (s *Store) bodyGone(ctx context.Context, id string) error {
	var at pgtype.Timestamptz
	err := s.pool.QueryRow(ctx, qBodyPurgedAt, id).Scan(&at)
	switch {
	case noRows(err):
		return fmt.Errorf("message %s: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: message %s: %w", id, unavailable(err))
	case at.Valid:
		return &store.BodyPurgedError{ID: id, At: fromTS(at)}
	}
	return fmt.Errorf("message %s: %w", id, store.ErrNotFound)
}
