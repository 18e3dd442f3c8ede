// Package sqlitetest opens the SQLite stores of tests: a real, migrated database file in the
// test's temporary directory, closed when the test ends.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/postie/postie/internal/store/sqlite"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest/migrated"
)

// template is the migrated database file Open copies.
var template migrated.Template

// Open returns a new migrated SQLite store in t.TempDir(), closed at the end of the test. The
// file is a copy of one migrated once per test process; opening it still runs Migrate, which
// finds nothing left to do.
func Open(t testing.TB) *sqlite.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "postie.db")
	template.CopyTo(t, path, Migrate)
	return OpenPath(t, path, sqlite.Options{Migrate: true})
}

// Migrate creates a migrated database at path and closes it.
func Migrate(path string) error {
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{Migrate: true})
	if err != nil {
		return err
	}
	return st.Close()
}

// OpenPath opens the SQLite store at path with opts, closed at the end of the test.
func OpenPath(t testing.TB, path string, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
