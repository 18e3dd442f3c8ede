package dbsync

import (
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience/dbsync/mariadbtest"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres/pgtest"
)

// t0 is the tests' "now"; they move time by adding to it, never by sleeping.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// drivers are the kinds of application database a source reads.
var drivers = []string{store.SourceMySQL, store.SourcePostgres}

// eachDriver runs fn in parallel subtests, one per driver, each with a fresh application
// database.
func eachDriver(t *testing.T, fn func(t *testing.T, a *appDB)) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			fn(t, newAppDB(t, driver))
		})
	}
}

// appDB is a fresh application database of one driver, with a users table.
type appDB struct {
	t      *testing.T
	driver string
	dsn    string
	db     *sql.DB // UTC session, as a sync reads
}

// newAppDB creates an empty database on the test server of driver (skipping the test when
// there is none, failing in CI) and its users table.
func newAppDB(t *testing.T, driver string) *appDB {
	t.Helper()
	var dsn, ts string
	switch driver {
	case store.SourceMySQL:
		dsn, ts = mariadbtest.DSN(t), "DATETIME(6)"
	default:
		dsn, ts = pgtest.URL(t), "TIMESTAMPTZ"
	}
	db, err := openDB(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a := &appDB{t: t, driver: driver, dsn: dsn, db: db}
	a.exec(`CREATE TABLE users (
		id BIGINT PRIMARY KEY,
		email VARCHAR(200) NOT NULL,
		full_name VARCHAR(200),
		plan VARCHAR(20),
		opted_out BOOLEAN NOT NULL DEFAULT FALSE,
		deleted_at ` + ts + ` NULL,
		updated_at ` + ts + ` NOT NULL)`)
	return a
}

// exec runs q, written with '?' placeholders, on the application database.
func (a *appDB) exec(q string, args ...any) {
	a.t.Helper()
	if a.driver == store.SourcePostgres {
		var b strings.Builder
		n := 0
		for _, c := range q {
			if c == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(c)
		}
		q = b.String()
	}
	if _, err := a.db.ExecContext(a.t.Context(), q, args...); err != nil {
		a.t.Fatalf("%s: %v", q, err)
	}
}

// user writes one row of users (insert or update).
type user struct {
	id       int64
	email    string
	name     string
	plan     string
	optedOut bool
	deleted  bool
	at       time.Time
}

func (a *appDB) put(users ...user) {
	a.t.Helper()
	for _, u := range users {
		var deleted any
		if u.deleted {
			deleted = u.at
		}
		a.exec("DELETE FROM users WHERE id = ?", u.id)
		a.exec("INSERT INTO users (id, email, full_name, plan, opted_out, deleted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			u.id, u.email, u.name, u.plan, u.optedOut, deleted, u.at)
	}
}

// usersQuery and usersMapping are the source every test reads.
const usersQuery = "SELECT id, email, full_name, plan, opted_out, deleted_at, updated_at FROM users;"

var usersMapping = store.SourceMapping{Email: "email", ExternalID: "id", Name: "full_name", UpdatedAt: "updated_at",
	Key: "id", OptOut: "opted_out", Deleted: "deleted_at"}

// reader opens a reader of the users source.
func (a *appDB) reader(mapping store.SourceMapping) *reader {
	a.t.Helper()
	return &reader{db: a.db, driver: a.driver, query: trimQuery(usersQuery), mapping: mapping}
}
