package store

import (
	"context"
	"time"
)

// QueueStats is what waits in the queues at one moment, for the metrics: per stream, the
// messages due and the oldest due time; and the webhook deliveries pending.
type QueueStats struct {
	Streams        []StreamQueueStats // one per stream of Streams, in that order
	WebhookBacklog int                // webhook deliveries pending (due now or waiting for a retry)
}

// StreamQueueStats is one stream's queue.
type StreamQueueStats struct {
	Stream string
	// Depth counts the messages due: scheduled, queued or deferred with next_attempt_at <= now
	// (those being sent are not counted).
	Depth int
	// OldestDue is the earliest next_attempt_at among them; zero when Depth is 0.
	OldestDue time.Time
}

// Stats reads figures for the metrics. Its queries read only the queues' partial indexes
// (messages_claim, webhook_deliveries_due), never the history, so their cost follows the
// backlog, not the number of messages stored.
type Stats interface {
	// QueueStats reads the queues as of now. A paused stream's queue is counted like any other.
	QueueStats(ctx context.Context, now time.Time) (QueueStats, error)
}
