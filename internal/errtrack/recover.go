package errtrack

import (
	"context"
	"runtime/debug"
	"time"
)

// Recover reports a panic to r and stops it, so that one goroutine's panic does not end the
// process. Use it deferred, directly (recover only works there):
//
//	defer errtrack.Recover(ctx, r, "webhook sender")
func Recover(ctx context.Context, r Reporter, where string) {
	if v := recover(); v != nil {
		r.Panic(ctx, where, v, debug.Stack())
	}
}

// Guard runs fn and reports whether it panicked; a panic is reported to r and stopped. It is
// for one unit of work in a loop (one message, one delivery) that must not end the loop.
func Guard(ctx context.Context, r Reporter, where string, fn func()) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			r.Panic(ctx, where, v, debug.Stack())
		}
	}()
	fn()
	return false
}

// Supervise runs the long-lived loop fn until it returns; a panic in fn is reported to r and fn
// runs again after a pause (1 s, doubling to 1 min while it keeps panicking within a minute of
// starting), unless ctx has ended meanwhile. It returns fn's error, or nil when ctx ends
// while it waits to run fn again (the loop ends as fn would have).
func Supervise(ctx context.Context, r Reporter, where string, fn func(context.Context) error) error {
	return SuperviseEvery(ctx, r, where, time.Second, fn)
}

// SuperviseEvery is Supervise with first as the first pause after a panic.
func SuperviseEvery(ctx context.Context, r Reporter, where string, first time.Duration, fn func(context.Context) error) error {
	pause := first
	for {
		started := time.Now()
		var err error
		if !Guard(ctx, r, where, func() { err = fn(ctx) }) {
			return err
		}
		if time.Since(started) > time.Minute {
			pause = first
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		pause = min(2*pause, time.Minute)
	}
}
