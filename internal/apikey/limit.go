package apikey

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/postie/postie/internal/store"
)

// RateError is a send refused by a key's rate limit: nothing may be stored for it.
type RateError struct {
	Limit float64       // the key's messages per second
	Burst int           // the most messages it may send at once
	N     int           // the messages of the refused request
	Wait  time.Duration // how long until the request would fit; 0 when it never can (N > Burst)
}

func (e *RateError) Error() string {
	if e.Wait == 0 {
		return fmt.Sprintf("this API key may send at most %d messages at once (its burst), and the request has %d: send them in smaller batches", e.Burst, e.N)
	}
	return fmt.Sprintf("this API key's rate limit (%g messages per second, burst %d) is used up: retry in %s", e.Limit, e.Burst, e.Wait.Round(time.Millisecond))
}

// RetryAfter is Wait in whole seconds, rounded up, for a Retry-After field (at least 1).
func (e *RateError) RetryAfter() int {
	return max(1, int(math.Ceil(e.Wait.Seconds())))
}

// Burst is the burst of k's rate limit: its own, or by default one second's worth of messages
// (at least one).
func Burst(k store.APIKey) int {
	if k.Burst > 0 {
		return k.Burst
	}
	return max(1, int(math.Ceil(k.RateLimit)))
}

// limiter holds a token bucket per rate-limited key, on this node only.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket // by key id
}

type bucket struct {
	lim   *rate.Limiter
	limit float64
	burst int
}

// Reservation is messages taken from a key's bucket; Cancel gives them back when they were not
// stored after all. The zero Reservation (a key without limit) cancels nothing.
type Reservation struct {
	r   *rate.Reservation
	now time.Time
}

// Cancel gives back the messages reserved, as far as no later reservation used them.
func (r Reservation) Cancel() {
	if r.r != nil {
		r.r.CancelAt(r.now)
	}
}

// Reserve takes n messages from k's bucket at now, or returns a *RateError when they are not
// there (nothing taken). A key without a rate limit always has room.
func (l *limiter) Reserve(k store.APIKey, n int, now time.Time) (Reservation, error) {
	if k.RateLimit <= 0 || n <= 0 {
		return Reservation{}, nil
	}
	burst := Burst(k)
	l.mu.Lock()
	b := l.buckets[k.ID]
	if b == nil || b.limit != k.RateLimit || b.burst != burst {
		if l.buckets == nil {
			l.buckets = make(map[string]*bucket)
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(k.RateLimit), burst), limit: k.RateLimit, burst: burst}
		l.buckets[k.ID] = b
	}
	l.mu.Unlock()
	if n > burst {
		return Reservation{}, &RateError{Limit: k.RateLimit, Burst: burst, N: n}
	}
	r := b.lim.ReserveN(now, n)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return Reservation{}, &RateError{Limit: k.RateLimit, Burst: burst, N: n, Wait: d}
	}
	return Reservation{r: r, now: now}, nil
}
