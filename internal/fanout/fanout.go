// Package fanout runs the independent steps of one request on every core: decoding and
// composing the items of a batch.
package fanout

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Each calls f(0), …, f(n-1), spread over GOMAXPROCS goroutines (on the caller's for one), and
// returns when every call has returned. Calls for different i run concurrently.
func Each(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}
