// Package inflight bounds the memory of what a node is receiving: a budget of bytes, a weighted
// semaphore, from which each large request (an HTTP body, an SMTP message) takes its size while
// it is handled. One that finds the budget spent waits a short while for room, then is refused
// (the caller answers "busy, retry").
package inflight

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrBusy is a request that waited in vain for room in the budget.
var ErrBusy = errors.New("the server is handling as many large requests as its memory budget allows")

// Budget is a number of bytes taken and given back. It is safe for concurrent use.
type Budget struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration
}

// New returns a budget of size bytes whose Acquire waits up to wait for room.
func New(size int64, wait time.Duration) *Budget {
	return &Budget{sem: semaphore.NewWeighted(size), size: size, wait: wait}
}

// Size is the whole budget in bytes.
func (b *Budget) Size() int64 { return b.size }

// Wait is how long Acquire waits for room.
func (b *Budget) Wait() time.Duration { return b.wait }

// Acquire takes n bytes (at most the whole budget, so that a request larger than the budget is
// handled alone rather than never) and returns what it took, to be released. It waits up to
// Wait for room; ErrBusy when there is none by then, or ctx's error.
func (b *Budget) Acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, b.size)
	if b.sem.TryAcquire(n) {
		return n, nil
	}
	wctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	if err := b.sem.Acquire(wctx, n); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, ErrBusy
	}
	return n, nil
}

// TryAcquire takes n bytes if they are free now.
func (b *Budget) TryAcquire(n int64) bool { return b.sem.TryAcquire(n) }

// Release gives back n bytes taken (nothing for n ≤ 0).
func (b *Budget) Release(n int64) {
	if n > 0 {
		b.sem.Release(n)
	}
}
