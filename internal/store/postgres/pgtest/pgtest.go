// Package pgtest gives tests a fresh, empty PostgreSQL database of their own, on the server named by
// the environment variable TEST_DATABASE_URL (`make test` starts a throwaway server and sets it;
// see scripts/pg.sh).
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.URL(t) // skips the test when TEST_DATABASE_URL is not set
//		s, err := postgres.Open(t.Context(), postgres.Options{URL: url, Migrate: true})
//		…
//	}
//
// Each call creates a database named postie_test_<random> and drops it when the test ends
// (t.Cleanup, after the test's own cleanups), so tests using it can run in parallel and in
// several processes at once (e.g. `postie serve` nodes started by a test, all given the same URL).
package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/postie/postie/internal/store/postgres/pgadmin"
)

// EnvURL is the environment variable naming the PostgreSQL server tests use, as a postgres:// URL
// (not a key=value DSN). The role it names must be allowed to create databases.
const EnvURL = "TEST_DATABASE_URL"

// SkipMessage is the reason PostgreSQL tests give when EnvURL is not set.
const SkipMessage = EnvURL + " not set: PostgreSQL tests skipped (make test starts a server)"

// URL creates a fresh, empty database on the server of TEST_DATABASE_URL and returns a URL for it
// (the same server, user and parameters, another database). The database is dropped, with any
// connection still open to it, when t ends. Without TEST_DATABASE_URL the test is skipped, unless
// the environment variable CI is set: then it fails, since CI must run every test.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal(EnvURL + " not set, and CI is: PostgreSQL tests must run in CI (make test starts a server)")
		}
		t.Skip(SkipMessage)
	}
	dbURL, drop, err := pgadmin.CreateDatabase(context.Background(), base, "postie_test")
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dbURL
}
