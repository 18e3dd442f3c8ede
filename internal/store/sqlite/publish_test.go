package sqlite

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestPublish: where the filesystem has no hard links, the copy is renamed to its name, never
// over an existing file; other link errors are returned as they are.
func TestPublish(t *testing.T) {
	t.Parallel()
	noLinks := func(oldname, newname string) error {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EPERM}
	}
	otherErr := func(oldname, newname string) error {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EIO}
	}
	for _, tc := range []struct {
		name       string
		link       func(string, string) error
		destExists bool
		wantErr    bool
		wantDest   string
	}{
		{"link", os.Link, false, false, "copy"},
		{"no hard links", noLinks, false, false, "copy"},
		{"no hard links, dest exists", noLinks, true, true, "keep me"},
		{"link, dest exists", os.Link, true, true, "keep me"},
		{"other error", otherErr, false, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tmp, dest := filepath.Join(dir, ".b.db.tmp-1"), filepath.Join(dir, "b.db")
			if err := os.WriteFile(tmp, []byte("copy"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.destExists {
				if err := os.WriteFile(dest, []byte("keep me"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := publish(tmp, dest, tc.link)
			if (err != nil) != tc.wantErr {
				t.Fatalf("publish: %v, want error %v", err, tc.wantErr)
			}
			if got, _ := os.ReadFile(dest); string(got) != tc.wantDest {
				t.Errorf("dest holds %q, want %q", got, tc.wantDest)
			}
		})
	}
}
