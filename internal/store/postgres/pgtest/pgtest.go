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
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvURL, err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "postie_test_" + hex.EncodeToString(b[:])

	admin := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := admin("CREATE DATABASE " + name); err != nil {
		t.Fatalf("pgtest: creating database %s on %s: %v", name, u.Redacted(), err)
	}
	t.Cleanup(func() {
		// FORCE ends the connections a test left open (PostgreSQL 13 and later).
		if err := admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}
