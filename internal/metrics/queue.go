package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postie/postie/internal/store"
)

// QueueRefresh is how often the queue statistics are read from the store.
const QueueRefresh = 5 * time.Second

var (
	descQueueDepth = prometheus.NewDesc("postie_queue_depth",
		"Messages due and waiting to be claimed (scheduled, queued or deferred whose time has come), by stream. "+
			"Read from the store every few seconds.", []string{"stream"}, nil)
	descQueueOldest = prometheus.NewDesc("postie_queue_oldest_due_seconds",
		"How long the oldest due message of a stream has been waiting since its due time (0 when none).",
		[]string{"stream"}, nil)
	descWebhookBacklog = prometheus.NewDesc("postie_webhook_backlog",
		"Webhook deliveries pending: due now or waiting for a retry.", nil, nil)
	descQueueAge = prometheus.NewDesc("postie_queue_stats_age_seconds",
		"Age of the queue statistics served (they are read in the background, so a scrape never waits "+
			"for the database); large when the store cannot be read.", nil, nil)
)

func describeQueue(ch chan<- *prometheus.Desc) {
	ch <- descQueueDepth
	ch <- descQueueOldest
	ch <- descWebhookBacklog
	ch <- descQueueAge
}

// queueCollector serves the last queue statistics read.
type queueCollector struct {
	now func() time.Time
	// kick asks the reader for a fresh read, when the last one is older than QueueRefresh.
	kick chan struct{}

	mu   sync.Mutex
	last store.QueueStats
	at   time.Time // when last was read; zero before the first read
}

// WatchQueues reads st's queue statistics every QueueRefresh (and when a scrape finds them
// older) until ctx ends, and serves them as postie_queue_depth, postie_queue_oldest_due_seconds
// and postie_webhook_backlog. A scrape reads only the last statistics read, so it never waits
// for the database. now is the clock (nil: time.Now).
func (m *Metrics) WatchQueues(ctx context.Context, st store.Stats, now func() time.Time, log *slog.Logger) {
	if m == nil {
		return
	}
	if now == nil {
		now = time.Now
	}
	q := &queueCollector{now: now, kick: make(chan struct{}, 1)}
	m.mu.Lock()
	m.queue = q
	m.mu.Unlock()
	failing := false
	for {
		readCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		t := now()
		stats, err := st.QueueStats(readCtx, t)
		cancel()
		switch {
		case err == nil:
			q.mu.Lock()
			q.last, q.at = stats, t
			q.mu.Unlock()
			if failing {
				log.Info("reading the queue statistics works again")
			}
			failing = false
		case ctx.Err() == nil && !failing:
			log.Warn("reading the queue statistics failed; /metrics serves the last ones read", "err", err)
			failing = true
		}
		timer := time.NewTimer(QueueRefresh)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-q.kick:
			timer.Stop()
		}
	}
}

func (q *queueCollector) collect(ch chan<- prometheus.Metric) {
	now := q.now()
	q.mu.Lock()
	last, at := q.last, q.at
	q.mu.Unlock()
	if at.IsZero() {
		return // nothing read yet: no figure rather than a false zero
	}
	if now.Sub(at) > QueueRefresh {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
	for _, s := range last.Streams {
		ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(s.Depth), s.Stream)
		oldest := 0.0
		if !s.OldestDue.IsZero() {
			oldest = max(now.Sub(s.OldestDue).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descQueueOldest, prometheus.GaugeValue, oldest, s.Stream)
	}
	ch <- prometheus.MustNewConstMetric(descWebhookBacklog, prometheus.GaugeValue, float64(last.WebhookBacklog))
	ch <- prometheus.MustNewConstMetric(descQueueAge, prometheus.GaugeValue, max(now.Sub(at).Seconds(), 0))
}
