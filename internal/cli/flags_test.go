package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvAndFlags: a command reads each setting from its flag when one is given, else from its
// environment variable, else the default; a bad environment value a flag overrides is not read.
func TestEnvAndFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := func(name string) string { return "sqlite:" + filepath.Join(dir, name) }
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	for _, tc := range []struct {
		name        string
		env         map[string]string
		args        []string
		want, notAt string // the database file migrate creates, and one it must not
	}{
		{"environment", map[string]string{"POSTIE_DATABASE_URL": db("env.db")}, nil, "env.db", ""},
		{"flag", nil, []string{"--database-url", db("flag.db")}, "flag.db", ""},
		{"flag over environment", map[string]string{"POSTIE_DATABASE_URL": db("loser.db")},
			[]string{"--database-url", db("winner.db")}, "winner.db", "loser.db"},
		{"flag over a bad environment value", map[string]string{"POSTIE_DATABASE_URL": db("bad-env.db"), "POSTIE_DB_STATEMENT_TIMEOUT": "soon"},
			[]string{"--db-statement-timeout", "5s"}, "bad-env.db", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"POSTIE_LOG_LEVEL": "warn"}
			for k, v := range tc.env {
				env[k] = v
			}
			code, out, errOut := run(t, env, append([]string{"migrate"}, tc.args...)...)
			if code != 0 || !strings.Contains(out, "database is up to date") {
				t.Fatalf("exit %d: %s %s", code, out, errOut)
			}
			if !exists(tc.want) {
				t.Errorf("no database at %s", tc.want)
			}
			if tc.notAt != "" && exists(tc.notAt) {
				t.Errorf("a database at %s, which the flag overrides", tc.notAt)
			}
		})
	}
}

// TestBadValues: a bad setting, from a flag or the environment, exits 2 before anything starts
// and names where the value came from; every bad setting is reported at once. Flags a command
// does not have and bad arguments of its own flags are refused too.
func TestBadValues(t *testing.T) {
	t.Parallel()
	dbEnv := func() map[string]string {
		return map[string]string{"POSTIE_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "postie.db")}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int // 0: any failure
		want []string
	}{
		{"bad duration flag", dbEnv(), []string{"migrate", "--db-statement-timeout", "soon"}, 2,
			[]string{"configuration", `--db-statement-timeout: not a duration (like 30s, 10m, 24h, 30d): "soon"`}},
		{"bad duration in the environment", map[string]string{"POSTIE_DB_STATEMENT_TIMEOUT": "soon"}, []string{"migrate"}, 2,
			[]string{"POSTIE_DB_STATEMENT_TIMEOUT: not a duration"}},
		{"unknown database scheme", map[string]string{"POSTIE_DATABASE_URL": "mysql://db/postie"}, []string{"migrate"}, 2,
			[]string{"configuration", "POSTIE_DATABASE_URL: want sqlite:PATH or postgres://"}},
		{"bad retry ladder", dbEnv(), []string{"serve", "--retry-delays", "1m,-5s"}, 2,
			[]string{`--retry-delays: not a positive duration: "-5s"`}},
		{"every problem at once", map[string]string{"POSTIE_MESSAGE_TTL": "a day"}, []string{"serve", "--lease", "long", "--max-batch", "many"}, 2,
			[]string{"POSTIE_MESSAGE_TTL: not a duration", "--lease: not a duration", "--max-batch: not an integer"}},
		{"a bad relay URL among other problems", map[string]string{"POSTIE_SMTP_URL": "smtp://u:secret@relay.example:587?pool=many",
			"POSTIE_LEASE": "10ms"}, []string{"serve"}, 2, []string{"POSTIE_SMTP_URL: ", "POSTIE_LEASE: "}},
		{"bad boolean", map[string]string{"POSTIE_BEHIND_PROXY": "maybe"}, []string{"serve"}, 2,
			[]string{"POSTIE_BEHIND_PROXY: want true or false"}},
		{"a flag of another command", dbEnv(), []string{"migrate", "--smtp-url", "smtp://relay"}, 0,
			[]string{"unknown flag: --smtp-url"}},
		{"an argument serve does not take", dbEnv(), []string{"serve", "now"}, 0,
			[]string{`unknown command "now"`}},
		{"bench mode", nil, []string{"bench", "--mode", "fast"}, 2,
			[]string{`--mode must be accept, delivery, transactional, contacts, import, campaign, events, submission, dsn, purge, metrics or scrape, not "fast"`}},
		{"sink rejection without a reply", nil, []string{"sink", "--listen", "127.0.0.1:0", "--reject", "nobody@example.com"}, 2,
			[]string{`--reject "nobody@example.com": want ADDRESS=CODE`}},
		{"sink rejection with a success code", nil, []string{"sink", "--listen", "127.0.0.1:0", "--reject", "a@example.com=250 ok"}, 2,
			[]string{"--reject"}},
		{"keys revoke without a key", dbEnv(), []string{"keys", "revoke"}, 0,
			[]string{"accepts 1 arg"}},
		{"sync without --once", dbEnv(), []string{"sync"}, 2,
			[]string{"sync needs --once"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := run(t, tc.env, tc.args...)
			if code == 0 || tc.code != 0 && code != tc.code {
				t.Fatalf("exit %d, want %d: %s %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}
