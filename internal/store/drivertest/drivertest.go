// Package drivertest runs a test above the store on each driver: a fresh, migrated SQLite file
// and a fresh PostgreSQL database (skipped without TEST_DATABASE_URL, see pgtest), each closed
// when its subtest ends.
package drivertest

import (
	"context"
	"testing"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// Each runs fn in a parallel subtest per driver ("sqlite", "postgres") with a fresh store.
func Each(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Helper()
	for _, d := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"sqlite", func(t *testing.T) store.Store { return sqlitetest.Open(t) }},
		{"postgres", openPostgres},
	} {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			fn(t, d.open(t))
		})
	}
}

func openPostgres(t *testing.T) store.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Options{URL: pgtest.URL(t), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
