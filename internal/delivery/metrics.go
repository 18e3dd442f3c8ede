package delivery

import (
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/metrics"
	"github.com/postie/postie/internal/store"
)

// observe counts the outcome of one delivery attempt of m in Config.Metrics: the message's
// outcome, or for a split message each recipient's; and, when something was sent, the time
// from the message's acceptance (or its scheduled time, for a first attempt) to now.
func (e *Engine) observe(m store.ClaimedMessage, fin store.MessageFinishParams) {
	mt := e.cfg.Metrics
	if mt == nil {
		return
	}
	tr := e.cfg.Transport.Name()
	sent := false
	if fin.Split {
		for _, r := range fin.Recipients {
			if o := recipientOutcome(r.Status); o != "" {
				mt.Messages(m.Stream, tr, o, 1)
				sent = sent || o == metrics.Sent
			}
		}
	} else if o := recipientOutcome(fin.Status.RecipientState()); o != "" {
		mt.Messages(m.Stream, tr, o, 1)
		sent = o == metrics.Sent
	}
	if !sent {
		return
	}
	start, ok := id.Time(m.ID)
	if !ok {
		return
	}
	now := e.cfg.Now()
	if m.Attempts == 0 && m.NextAttemptAt.After(start) && !m.NextAttemptAt.After(now) {
		start = m.NextAttemptAt // scheduled: the wait until send_at is not the engine's
	}
	mt.Delivered(m.Stream, now.Sub(start))
}

// recipientOutcome is the metrics outcome of a recipient left in state s, or of a message
// finished with a status of that state ("" for none). queued is an attempt that did not count
// (the relay was unreachable, or the message went back to the queue): deferred too.
func recipientOutcome(s store.RecipientStatus) string {
	switch s {
	case store.RecipientSent:
		return metrics.Sent
	case store.RecipientDeferred, store.RecipientQueued:
		return metrics.Deferred
	case store.RecipientFailed:
		return metrics.Failed
	case store.RecipientSuppressed:
		return metrics.Suppressed
	}
	return ""
}

// state is the breaker's state for postie_transport_breaker_state.
func (b *breaker) state() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		return metrics.BreakerClosed
	case b.probing:
		return metrics.BreakerHalfOpen
	}
	return metrics.BreakerOpen
}
