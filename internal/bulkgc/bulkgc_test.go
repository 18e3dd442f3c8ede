package bulkgc

import (
	"runtime/debug"
	"testing"
)

// TestLower: the collector runs at the lowest percentage of the pieces running, never less
// often than it was set to, and goes back to its setting after the last one.
func TestLower(t *testing.T) {
	gcPercent := func() int {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	defer debug.SetGCPercent(debug.SetGCPercent(400))

	importing := Lower(200)
	if got := gcPercent(); got != 200 {
		t.Errorf("one import: GOGC %d, want 200", got)
	}
	campaign := Lower(100)
	if got := gcPercent(); got != 100 {
		t.Errorf("an import and a campaign: GOGC %d, want 100", got)
	}
	campaign()
	campaign() // a second call does nothing
	if got := gcPercent(); got != 200 {
		t.Errorf("the import alone again: GOGC %d, want 200", got)
	}
	importing()
	if got := gcPercent(); got != 400 {
		t.Errorf("after the last piece: GOGC %d, want 400", got)
	}

	debug.SetGCPercent(50) // set lower than asked: left alone
	done := Lower(200)
	if got := gcPercent(); got != 50 {
		t.Errorf("GOGC set to 50: %d during bulk work, want 50", got)
	}
	done()
	debug.SetGCPercent(-1) // collection off: left off
	done = Lower(200)
	if got := gcPercent(); got != -1 {
		t.Errorf("GOGC off: %d during bulk work, want off", got)
	}
	done()
	if got := gcPercent(); got != -1 {
		t.Errorf("GOGC off: %d after, want off", got)
	}
}
