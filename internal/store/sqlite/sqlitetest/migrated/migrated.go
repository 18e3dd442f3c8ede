// Package migrated gives tests a migrated SQLite database file by copying one migrated once per
// test process: running every migration costs far more than writing the file, and the
// conformance suite alone opens a fresh store for each of its cases. It does not import the
// sqlite package, so that package's own tests can use it too; the caller supplies the migration.
package migrated

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Template is a database file migrated on first use, kept in memory for the rest of the process.
// The zero value is ready to use.
type Template struct {
	once sync.Once
	data []byte
	err  error
}

// CopyTo writes a copy of the migrated database file to path (mode 0600, its directory created
// 0700 as the driver does), migrating the template first if this is the first call: migrate must
// create a migrated database at the path it is given and close it, leaving no WAL behind (the
// last connection to close checkpoints it). The copy is then what migrate would have made at path.
func (tp *Template) CopyTo(t testing.TB, path string, migrate func(path string) error) {
	t.Helper()
	tp.once.Do(func() {
		dir, err := os.MkdirTemp("", "postie-template-")
		if err != nil {
			tp.err = err
			return
		}
		defer os.RemoveAll(dir)
		file := filepath.Join(dir, "postie.db")
		if tp.err = migrate(file); tp.err != nil {
			return
		}
		if _, err := os.Stat(file + "-wal"); err == nil {
			tp.err = errors.New("the migrated database left its WAL file behind")
			return
		}
		tp.data, tp.err = os.ReadFile(file)
	})
	if tp.err != nil {
		t.Fatalf("migrating the template database: %v", tp.err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, tp.data, 0o600); err != nil {
		t.Fatal(err)
	}
}
