package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/store/sqlite"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// TestReadyzDiskFull: /readyz answers 503 while the database's disk is too full to take writes
// (the database still answers reads), and 200 again once there is room. It needs to mount a
// tmpfs (root on Linux); elsewhere it is skipped.
func TestReadyzDiskFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v); this test needs root", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	st := sqlitetest.OpenPath(t, filepath.Join(dir, "postie.db"), sqlite.Options{Migrate: true, MinFreeBytes: 2 << 20})
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: st}))
	t.Cleanup(srv.Close)

	filler := filepath.Join(dir, "filler")
	for _, step := range []struct {
		name   string
		fill   bool // leave less than MinFreeBytes
		status int
	}{
		{"room", false, 200},
		{"disk full", true, 503},
		{"room again", false, 200},
	} {
		if step.fill {
			var fs syscall.Statfs_t
			if err := syscall.Statfs(dir, &fs); err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			err = syscall.Fallocate(int(f.Fd()), 0, 0, int64(fs.Bavail)*int64(fs.Bsize)-1<<20)
			if cerr := f.Close(); err != nil || cerr != nil {
				t.Fatalf("filling the disk: %v, %v", err, cerr)
			}
		} else {
			_ = os.Remove(filler)
		}
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != step.status {
			t.Errorf("%s: /readyz answers %d, want %d", step.name, resp.StatusCode, step.status)
		}
	}
}
