package imports

import (
	"runtime/debug"
	"testing"
)

// TestLowerGC: bulk work collects at bulkGCPercent while any of it runs, then the setting
// comes back; a setting already at or below it is left alone. Not parallel: it changes the
// process's GC setting.
func TestLowerGC(t *testing.T) {
	orig := debug.SetGCPercent(400)
	defer debug.SetGCPercent(orig)

	a, b := lowerGC(), lowerGC()
	if got := debug.SetGCPercent(-1); got != bulkGCPercent {
		t.Errorf("during bulk work: GOGC %d, want %d", got, bulkGCPercent)
	}
	debug.SetGCPercent(bulkGCPercent)
	a()
	a() // twice is once
	if got := debug.SetGCPercent(bulkGCPercent); got != bulkGCPercent {
		t.Errorf("while one piece still runs: GOGC %d, want %d", got, bulkGCPercent)
	}
	b()
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("after: GOGC %d, want 400 back", got)
	}
	c := lowerGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("a setting of 100 changed to %d", got)
	}
	c()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after: GOGC %d, want 100 kept", got)
	}
}
