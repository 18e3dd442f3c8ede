package imports

import (
	"runtime/debug"
	"sync"
)

// bulkGC makes the Go collector run more often while an upload is checked or an import runs.
// Every CSV record read is garbage at once, so under a high GOGC (postie serve sets 400 for
// its small live heap) the heap would grow to several times its small live set during an
// import; for the time bulk work runs, the node collects at bulkGCPercent instead (never less
// often than it was set to), and goes back to its setting when the last one ends.
var bulkGC struct {
	mu    sync.Mutex
	users int
	prev  int // the setting before the first user; -1 when it was left alone
}

const bulkGCPercent = 200

// lowerGC starts one piece of bulk work; the returned func ends it.
func lowerGC() (restore func()) {
	bulkGC.mu.Lock()
	defer bulkGC.mu.Unlock()
	if bulkGC.users == 0 {
		bulkGC.prev = debug.SetGCPercent(bulkGCPercent)
		if bulkGC.prev <= bulkGCPercent { // already as often, or off (-1): leave it
			debug.SetGCPercent(bulkGC.prev)
			bulkGC.prev = -1
		}
	}
	bulkGC.users++
	var once sync.Once
	return func() {
		once.Do(func() {
			bulkGC.mu.Lock()
			defer bulkGC.mu.Unlock()
			bulkGC.users--
			if bulkGC.users == 0 && bulkGC.prev >= 0 {
				debug.SetGCPercent(bulkGC.prev)
			}
		})
	}
}
