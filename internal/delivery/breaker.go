package delivery

import (
	"sync"
	"time"
)

// breaker is the transport's circuit breaker. While the relay cannot be reached it is open and no
// message is claimed; when its backoff has passed it lets one message through as a probe
// (half-open); any reply from the relay closes it. The backoff doubles from min to max with each
// failed probe, and never ends before a RetryAfter the transport reported (e.g. a daily quota).
type breaker struct {
	min, max time.Duration

	mu       sync.Mutex
	open     bool
	until    time.Time
	failures int
	probing  bool
}

// allow says how many messages may be claimed now: -1 for no limit, 1 for a probe (the caller
// must then report the probe's end with probeDone, or with success/failure), 0 to wait d.
func (b *breaker) allow(now time.Time) (limit int, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		return -1, 0
	case now.Before(b.until):
		return 0, b.until.Sub(now)
	case b.probing:
		return 0, b.min
	}
	b.probing = true
	return 1, 0
}

// probeDone ends a probe that sent nothing (nothing was due).
func (b *breaker) probeDone() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// openUntil reports whether the breaker is open, and until when.
func (b *breaker) openUntil() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.until, b.open
}

// success closes the breaker; it reports whether it was open.
func (b *breaker) success() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	was := b.open
	b.open, b.probing, b.failures, b.until = false, false, 0, time.Time{}
	return was
}

// failure opens the breaker (or extends it after a failed probe) and returns until when, and
// whether this failure changed anything (false for the other sends of a batch that failed while
// it was already open).
func (b *breaker) failure(now time.Time, retryAfter time.Duration) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open && now.Before(b.until) {
		if u := now.Add(retryAfter); u.After(b.until) {
			b.until = u
		}
		return b.until, false
	}
	b.failures++
	d := b.min
	for i := 1; i < b.failures && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	if retryAfter > d {
		d = retryAfter
	}
	b.open, b.probing, b.until = true, false, now.Add(d)
	return b.until, true
}
