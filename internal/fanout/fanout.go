// Package fanout runs the independent steps of one request on every core: decoding and
// composing the items of a batch.
package fanout

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Panic is a panic recovered in one call: its value and the stack of the goroutine it happened
// on (the caller's recovery would only see its own).
type Panic struct {
	Value any
	Stack []byte
}

func (p *Panic) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// Each calls f(0), …, f(n-1), spread over GOMAXPROCS goroutines (on the caller's for one), and
// returns when every call has returned. Calls for different i run concurrently.
//
// A panic in a call does not end the process from a goroutine nobody guards: the other calls
// still run, then Each panics on the caller's goroutine with the first one (a *Panic), where
// the caller's own recovery (the HTTP observer, a worker's errtrack.Guard) takes it. Use Try
// when a panic should fail its item alone.
func Each(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	for _, err := range Try(n, func(i int) error { f(i); return nil }) {
		if err != nil {
			panic(err)
		}
	}
}

// Try calls f(0), …, f(n-1) as Each does and returns their errors, errs[i] from f(i). A panic
// in f(i) is recovered into errs[i], a *Panic, and the other calls go on.
func Try(n int, f func(i int) error) []error {
	errs := make([]error, n)
	call := func(i int) {
		defer func() {
			if v := recover(); v != nil {
				errs[i] = &Panic{Value: v, Stack: debug.Stack()}
			}
		}()
		errs[i] = f(i)
	}
	if n == 1 {
		call(0)
		return errs
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				call(i)
			}
		})
	}
	wg.Wait()
	return errs
}
