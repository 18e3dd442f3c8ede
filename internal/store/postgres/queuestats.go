package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/postie/postie/internal/store"
)

// The queue statistics of the metrics. Both read a partial index only (messages_claim,
// webhook_deliveries_due), so they count the backlog, not the history.
const (
	qQueueStats = `SELECT count(*), min(next_attempt_at) FROM messages
		WHERE stream = $1 AND ` + claimable + ` AND next_attempt_at <= $2`
	qWebhookBacklog = `SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`
)

// QueueStats implements store.Stats.
func (s *Store) QueueStats(ctx context.Context, now time.Time) (store.QueueStats, error) {
	out := store.QueueStats{Streams: make([]store.StreamQueueStats, 0, len(store.Streams))}
	for _, stream := range store.Streams {
		var n int
		var oldest pgtype.Timestamptz
		if err := s.pool.QueryRow(ctx, qQueueStats, stream, tsNotNull(now)).Scan(&n, &oldest); err != nil {
			return store.QueueStats{}, fmt.Errorf("postgres: queue statistics: %w", unavailable(err))
		}
		st := store.StreamQueueStats{Stream: stream, Depth: n}
		if oldest.Valid {
			st.OldestDue = fromTS(oldest)
		}
		out.Streams = append(out.Streams, st)
	}
	if err := s.pool.QueryRow(ctx, qWebhookBacklog).Scan(&out.WebhookBacklog); err != nil {
		return store.QueueStats{}, fmt.Errorf("postgres: webhook backlog: %w", unavailable(err))
	}
	return out, nil
}
