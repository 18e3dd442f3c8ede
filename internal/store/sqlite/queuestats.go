package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/postie/postie/internal/store"
)

// The queue statistics of the metrics. Both read a partial index only (the claimable condition
// repeated verbatim, see messages_claim), so they count the backlog, not the history.
const (
	qQueueStats = `SELECT count(*), min(next_attempt_at) FROM messages
		WHERE stream = ? AND ` + claimable + ` AND next_attempt_at <= ?`
	qWebhookBacklog = `SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`
)

// QueueStats implements store.Stats.
func (s *Store) QueueStats(ctx context.Context, now time.Time) (store.QueueStats, error) {
	out := store.QueueStats{Streams: make([]store.StreamQueueStats, 0, len(store.Streams))}
	for _, stream := range store.Streams {
		type row struct {
			n      int
			oldest sql.NullInt64
		}
		r, err := readOne(ctx, s, qQueueStats, []any{stream, micros(now)}, func(sc scanner) (row, error) {
			var r row
			err := sc.Scan(&r.n, &r.oldest)
			return r, err
		})
		if err != nil {
			return store.QueueStats{}, fmt.Errorf("sqlite: queue statistics: %w", err)
		}
		st := store.StreamQueueStats{Stream: stream, Depth: r.n}
		if r.oldest.Valid {
			st.OldestDue = fromMicros(r.oldest.Int64)
		}
		out.Streams = append(out.Streams, st)
	}
	n, err := readOne(ctx, s, qWebhookBacklog, nil, scanValue[int])
	if err != nil {
		return store.QueueStats{}, fmt.Errorf("sqlite: webhook backlog: %w", err)
	}
	out.WebhookBacklog = n
	return out, nil
}
