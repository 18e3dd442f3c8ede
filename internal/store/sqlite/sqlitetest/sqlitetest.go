// Package sqlitetest opens the SQLite stores of tests: a real, migrated database file in the
// test's temporary directory, closed when the test ends.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/postie/postie/internal/store/sqlite"
)

// Open returns a new migrated SQLite store in t.TempDir(), closed at the end of the test.
func Open(t testing.TB) *sqlite.Store {
	t.Helper()
	return OpenPath(t, filepath.Join(t.TempDir(), "postie.db"), sqlite.Options{Migrate: true})
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
