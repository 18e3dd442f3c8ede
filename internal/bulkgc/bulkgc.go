// Package bulkgc makes the Go collector run more often while bulk work runs on this node (a
// CSV import, a campaign run). postie serve sets GOGC=400 for its small live heap, which lets
// the heap grow to five times what is live; bulk work makes garbage at a steady pace (each CSV
// record, each rendered message once stored), so for its duration the node collects at the
// lowest percentage any running piece asks for, never less often than it was set to, and goes
// back to its setting when the last piece ends.
package bulkgc

import (
	"runtime/debug"
	"slices"
	"sync"
)

var state struct {
	mu     sync.Mutex
	active []int // the percentages asked for by the pieces running
	prev   int   // the setting before the first piece (-1: collection off)
}

// Lower starts one piece of bulk work that wants the collector to run at percent (GOGC) or
// more often; the returned func ends it (calling it again does nothing).
func Lower(percent int) (restore func()) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if len(state.active) == 0 {
		state.prev = debug.SetGCPercent(100)
		debug.SetGCPercent(state.prev)
	}
	state.active = append(state.active, percent)
	apply()
	var once sync.Once
	return func() {
		once.Do(func() {
			state.mu.Lock()
			defer state.mu.Unlock()
			i := slices.Index(state.active, percent)
			state.active = slices.Delete(state.active, i, i+1)
			apply()
		})
	}
}

// apply sets the collector for the pieces running (state.mu held).
func apply() {
	want := state.prev
	if len(state.active) > 0 && state.prev >= 0 {
		want = min(state.prev, slices.Min(state.active))
	}
	debug.SetGCPercent(want)
}
