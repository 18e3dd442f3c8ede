package transport

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits caps how fast a transport sends, like a provider's send rate and 24-hour quota (SES
// calls them "maximum send rate" and "sending quota").
type Limits struct {
	Rate  float64          // messages per second; 0: unlimited
	Daily int              // messages in any 24 hours; 0: unlimited
	Now   func() time.Time // default time.Now
}

// Limit wraps t so that it sends at most l.Rate messages per second (a send waits for its turn)
// and at most l.Daily messages in any rolling 24 hours. A send over the daily quota is not
// attempted: it fails as Unreachable with RetryAfter set to when the oldest counted send leaves
// the window, so the engine pauses the transport without spending the messages' attempts.
// With neither limit set, t is returned unchanged.
func Limit(t Transport, l Limits) Transport {
	if l.Rate <= 0 && l.Daily <= 0 {
		return t
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	lt := &limited{Transport: t, now: l.Now, daily: l.Daily}
	if l.Rate > 0 {
		lt.rate = rate.NewLimiter(rate.Limit(l.Rate), max(1, int(l.Rate/10)))
	}
	return lt
}

type limited struct {
	Transport
	now   func() time.Time
	rate  *rate.Limiter
	daily int

	mu      sync.Mutex
	minutes []minuteCount // sends counted per minute over the last 24 h, oldest first
	total   int           // sum of minutes
}

// minuteCount is the number of sends started in one minute (Unix minutes); counting by minute
// keeps the memory of a large quota small, at the price of freeing quota up to a minute late.
type minuteCount struct {
	minute int64
	n      int
}

const dayMinutes = 24 * 60

func (l *limited) Send(ctx context.Context, env Envelope, raw []byte) (Result, error) {
	if err := l.take(); err != nil {
		return Result{}, err
	}
	if l.rate != nil {
		r := l.rate.ReserveN(l.now(), 1)
		if d := r.DelayFrom(l.now()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				r.Cancel()
				l.giveBack()
				return Result{}, &Error{Class: Unreachable, Stage: "rate", Text: "waiting for the send rate: " + ctx.Err().Error(), Err: ctx.Err()}
			case <-t.C:
			}
		}
	}
	res, err := l.Transport.Send(ctx, env, raw)
	if err != nil && Classify(err).Class == Unreachable {
		l.giveBack() // nothing reached the relay
	}
	return res, err
}

// take counts one send against the daily quota, or says when the quota frees up.
func (l *limited) take() error {
	if l.daily <= 0 {
		return nil
	}
	now := l.now()
	minute := now.Unix() / 60
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.minutes) && l.minutes[i].minute <= minute-dayMinutes {
		l.total -= l.minutes[i].n
		i++
	}
	l.minutes = l.minutes[i:]
	if l.total >= l.daily {
		wait := time.Unix((l.minutes[0].minute+dayMinutes)*60, 0).Sub(now)
		return &Error{Class: Unreachable, Stage: "quota", RetryAfter: wait,
			Text: fmt.Sprintf("daily quota of %d messages reached; the next one may go in %s", l.daily, wait.Round(time.Second))}
	}
	if n := len(l.minutes); n > 0 && l.minutes[n-1].minute == minute {
		l.minutes[n-1].n++
	} else {
		l.minutes = append(l.minutes, minuteCount{minute: minute, n: 1})
	}
	l.total++
	return nil
}

// giveBack uncounts the latest send, which never reached the relay.
func (l *limited) giveBack() {
	if l.daily <= 0 {
		return
	}
	l.mu.Lock()
	if n := len(l.minutes); n > 0 && l.minutes[n-1].n > 0 {
		l.minutes[n-1].n--
		l.total--
	}
	l.mu.Unlock()
}
