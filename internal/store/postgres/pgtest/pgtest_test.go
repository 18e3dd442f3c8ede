package pgtest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestHelperURL is run by TestWithoutServer in a child process, with the environment it sets.
func TestHelperURL(t *testing.T) {
	if os.Getenv("PGTEST_HELPER") == "" {
		t.Skip("run by TestWithoutServer")
	}
	URL(t)
	t.Log("not skipped")
}

// TestWithoutServer: without TEST_DATABASE_URL a test is skipped, saying why, unless CI is set:
// then it fails.
func TestWithoutServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ci       string
		fail     bool
		wantText string
	}{
		{"", false, SkipMessage},
		{"true", true, "CI is"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperURL$", "-test.v")
		cmd.Env = append(os.Environ(), "PGTEST_HELPER=1", EnvURL+"=", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.fail || !strings.Contains(string(out), tc.wantText) ||
			strings.Contains(string(out), "not skipped") {
			t.Errorf("with CI=%q: failed %v, output:\n%s\nwant failed %v and %q", tc.ci, failed, out, tc.fail, tc.wantText)
		}
	}
}

// TestURL: the database is fresh and empty, usable, and gone after the test.
func TestURL(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("inner", func(t *testing.T) {
		url := URL(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var tables int
		if err := conn.QueryRow(t.Context(), `SELECT current_database(),
			(SELECT count(*) FROM pg_tables WHERE schemaname = 'public')`).Scan(&name, &tables); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "postie_test_") || tables != 0 {
			t.Errorf("database %q with %d tables, want a fresh postie_test_… one", name, tables)
		}
		if URL(t) == url {
			t.Error("two calls returned the same database")
		}
	})
	if name == "" {
		return // skipped
	}
	conn, err := pgx.Connect(t.Context(), os.Getenv(EnvURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s still exists after its test (%d, %v)", name, n, err)
	}
}
