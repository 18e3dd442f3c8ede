// Package mariadbtest gives tests a fresh, empty MariaDB (or MySQL) database of their own, on the
// server named by the environment variable TEST_MARIADB_DSN (`make test` starts a throwaway
// server and sets it; see scripts/mariadb.sh).
//
//	dsn := mariadbtest.DSN(t) // skips the test when TEST_MARIADB_DSN is not set (fails in CI)
//
// Each call creates a database named postie_sync_<random> and drops it when the test ends.
package mariadbtest

import (
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// EnvDSN is the environment variable naming the server tests use, as a go-sql-driver/mysql DSN
// (no database needed) of a user allowed to create databases.
const EnvDSN = "TEST_MARIADB_DSN"

// SkipMessage is the reason MariaDB tests give when EnvDSN is not set.
const SkipMessage = EnvDSN + " not set: MariaDB tests skipped (make test starts a server)"

// DSN creates a fresh database on the server of TEST_MARIADB_DSN and returns a DSN for it.
// Without TEST_MARIADB_DSN the test is skipped, unless the environment variable CI is set: then
// it fails, since CI must run every test.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal(EnvDSN + " not set, and CI is: MariaDB tests must run in CI (make test starts a server)")
		}
		t.Skip(SkipMessage)
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("mariadbtest: %s is not a DSN: %v", EnvDSN, err)
	}
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("mariadbtest: %v", err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("postie_sync_%x", b)
	if _, err := admin.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("mariadbtest: creating a database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Errorf("mariadbtest: %v", err)
			return
		}
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("mariadbtest: dropping %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}
