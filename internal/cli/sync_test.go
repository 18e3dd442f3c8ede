package cli

import (
	"database/sql"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience/dbsync/mariadbtest"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite"
)

// TestSyncOnce: postie sync --once runs a pass of every source, printing what each did, and
// exits 1 when one failed; --source runs one.
func TestSyncOnce(t *testing.T) {
	t.Parallel()
	dsn := mariadbtest.DSN(t)
	app, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for _, q := range []string{
		"CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(200) NOT NULL, updated_at DATETIME(6) NOT NULL)",
		"INSERT INTO users VALUES (1, 'ann@example.com', '2026-03-01 12:00:00'), (2, 'bob@example.com', '2026-03-01 12:00:00')",
	} {
		if _, err := app.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "postie.db")
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	mk := func(query string) string {
		src, err := st.SourceCreate(t.Context(), store.Source{ID: id.New(id.Source), Name: "users", Driver: store.SourceMySQL,
			DSN: dsn, Query: query, Mapping: store.SourceMapping{Email: "email", UpdatedAt: "updated_at", Key: "id"},
			Interval: time.Hour, Overlap: 5 * time.Minute, NextRunAt: now.Add(time.Hour), CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		return src.ID
	}
	good, bad := mk("SELECT id, email, updated_at FROM users"), mk("SELECT id, email FROM users")
	st.Close()

	env := map[string]string{"POSTIE_DATABASE_URL": "sqlite:" + path}
	code, out, errOut := run(t, env, "sync", "--once", "--source", good)
	if code != 0 || !regexp.MustCompile(`(?m)^`+good+`\s+ok\s+2\s+2\s+0\s+0\s*$`).MatchString(out) {
		t.Errorf("sync --once --source: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, env, "sync", "--once")
	if code != 1 || !strings.Contains(out, bad+"  error") || !strings.Contains(out, "updated_at (updated_at)") ||
		!strings.Contains(errOut, "does not return the mapped column") {
		t.Errorf("sync --once with a bad source: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "postie:postie@") {
		t.Errorf("the output shows the DSN:\n%s%s", out, errOut)
	}
}
