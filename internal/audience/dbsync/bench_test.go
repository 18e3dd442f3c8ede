package dbsync

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

// TestSyncThroughput is a benchmark, not a test: with POSTIE_SYNC_BENCH=N (e.g. 100000) it syncs
// N changed rows from the MariaDB of TEST_MARIADB_DSN into a SQLite store (the embedded default)
// in one pass, and logs the time taken and rows per second (docs/BENCHMARKS.md, "Audience:
// sync"). It asserts no time. Run:
//
//	POSTIE_SYNC_BENCH=100000 go test -run TestSyncThroughput -v ./internal/audience/dbsync/
func TestSyncThroughput(t *testing.T) {
	var n int
	if _, err := fmt.Sscan(os.Getenv("POSTIE_SYNC_BENCH"), &n); err != nil || n <= 0 {
		t.Skip("POSTIE_SYNC_BENCH not set: the sync benchmark is not run")
	}
	a := newAppDB(t, store.SourceMySQL)
	p := openStore(t, "sqlite")
	start := time.Now()
	const chunk = 2000
	for i := 0; i < n; i += chunk {
		var b strings.Builder
		args := make([]any, 0, 5*chunk)
		b.WriteString("INSERT INTO users (id, email, full_name, plan, updated_at) VALUES ")
		for j := i; j < min(i+chunk, n); j++ {
			if j > i {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?)")
			// A thousand rows share each updated_at, as a bulk change in the app would make.
			args = append(args, int64(j+1), fmt.Sprintf("user%d@example.com", j+1), fmt.Sprintf("User %d", j+1),
				[]string{"free", "pro", "team"}[j%3], t0.Add(time.Duration(j/1000)*time.Second))
		}
		a.exec(b.String(), args...)
	}
	t.Logf("inserted %d rows into MariaDB in %v", n, time.Since(start).Round(time.Millisecond))
	src := p.createSource(a, nil, 5*time.Minute)
	sy := p.syncer("bench", 0)
	start = time.Now()
	cpu0 := cpuTime()
	got, err := sy.RunOne(t.Context(), src.ID, false)
	d, cpu := time.Since(start), cpuTime()-cpu0
	if err != nil || got.Status != store.SourceOK || got.LastStats.Upserted != n {
		t.Fatalf("pass: %v, %s %q, %+v", err, got.Status, got.LastError, got.LastStats)
	}
	t.Logf("synced %d changed rows from MariaDB into SQLite in %v: %.0f rows/s; postie's CPU (user+sys) %v",
		n, d.Round(time.Millisecond), float64(n)/d.Seconds(), cpu.Round(time.Millisecond))
	// The next pass re-reads only what was not settled at the start of this one.
	p.advance(time.Minute)
	start = time.Now()
	got, err = sy.RunOne(t.Context(), src.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the next pass (nothing changed) read %d rows in %v", got.LastStats.Rows, time.Since(start).Round(time.Millisecond))
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
