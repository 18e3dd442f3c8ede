package inbound

import (
	"net"
	"sync"
	"time"
)

// authThrottle delays the answer to a failed AUTH by a time that doubles with each failure of
// the same client address (an IPv6 client by its /64, which one host commonly holds whole), up
// to a ceiling. Failures are forgiven one per forgive period without a new one, so a client that
// stops failing is soon answered at once again; a success forgets its address. The map is
// bounded: when full, addresses with nothing left to forgive go first, then arbitrary ones.
// Safe for concurrent use.
type authThrottle struct {
	base, max time.Duration // the first delay, and the ceiling
	forgive   time.Duration // one failure is forgotten per this time without failure
	entries   int           // addresses remembered at most

	mu        sync.Mutex
	m         map[string]failures
	lastSweep time.Time
}

type failures struct {
	n  float64   // failures not yet forgiven at `at`
	at time.Time // the latest failure
}

// Default throttle settings.
const (
	defaultThrottleBase    = 250 * time.Millisecond
	defaultThrottleMax     = 30 * time.Second
	defaultThrottleForgive = time.Minute
	defaultThrottleEntries = 10000
)

func newAuthThrottle(base, ceiling, forgive time.Duration, entries int) *authThrottle {
	return &authThrottle{base: base, max: ceiling, forgive: forgive, entries: entries, m: map[string]failures{}}
}

// left is the failures of f not yet forgiven at now.
func (t *authThrottle) left(f failures, now time.Time) float64 {
	return max(0, f.n-float64(now.Sub(f.at))/float64(t.forgive))
}

// fail records a failure of addr at now and returns how long to wait before answering it.
func (t *authThrottle) fail(addr string, now time.Time) time.Duration {
	k := throttleKey(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.m[k]
	if !ok && len(t.m) >= t.entries {
		t.makeRoom(now)
	}
	n := t.left(f, now) + 1
	t.m[k] = failures{n: n, at: now}
	d := t.base
	for i := 1; float64(i) < n && d < t.max; i++ {
		d *= 2
	}
	return min(d, t.max)
}

// succeed forgets addr's failures.
func (t *authThrottle) succeed(addr string) {
	k := throttleKey(addr)
	t.mu.Lock()
	delete(t.m, k)
	t.mu.Unlock()
}

// makeRoom frees at least one entry: first every address with nothing left to forgive (at most
// once a second: a full map under a spread-out attack costs no more than that), then any.
func (t *authThrottle) makeRoom(now time.Time) {
	if now.Sub(t.lastSweep) >= time.Second || now.Before(t.lastSweep) {
		t.lastSweep = now
		for k, f := range t.m {
			if t.left(f, now) == 0 {
				delete(t.m, k)
			}
		}
	}
	for k := range t.m {
		if len(t.m) < t.entries {
			break
		}
		delete(t.m, k)
	}
}

// throttleKey is the client a remote address counts for: its IP, an IPv6 one by its /64.
func throttleKey(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}
