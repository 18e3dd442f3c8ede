package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheck: `postie config check` prints each effective setting with its source, secrets
// masked, and exits 2 listing every problem, each named by where it was set.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	for p, text := range map[string]string{
		good: "lease = \"2m\"\nsmtp_url = \"smtp://u:hunter2@relay.example:587\"\nretain_bodies = \"14d\"\n",
		bad:  "lease = \"10ms\"\nretry_delays = \"1m,-5s\"\nlisten_addr = \":80\"\nsmtp_url = \"smtp://u:hunter2@relay.example:587?pool=many\"\n",
	} {
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := run(t, map[string]string{"POSTIE_MAX_BATCH": "100"}, "config", "check", "--config", good, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"lease  ", "2m", "smtp://u:****@relay.example:587", "retain_bodies", "14d", good,
		"POSTIE_MAX_BATCH", "--log-level", "default", "configuration is valid"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "warning") {
		t.Errorf("the password shows, or a warning for a private file:\n%s", out)
	}
	if err := os.Chmod(good, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run(t, nil, "config", "check", "--config", good); code != 0 || !strings.Contains(out, "warning: "+good+" holds secrets (smtp_url) and is readable by others") {
		t.Errorf("no warning for secrets in a file others may read: exit %d\n%s", code, out)
	}

	code, out, errOut = run(t, map[string]string{"POSTIE_CONFIG": bad, "POSTIE_LOG_FORMAT": "xml"}, "config", "check", "--webhook-timeout", "1h")
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s %s", code, out, errOut)
	}
	for _, want := range []string{bad + ": lease: must be at least 1s", bad + `: retry_delays: not a positive duration: "-5s"`,
		bad + ": listen_addr: unknown setting", bad + ": smtp_url: ", "POSTIE_LOG_FORMAT: want text or json",
		"--webhook-timeout: must be between 100ms and 5m"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "hunter2") {
		t.Errorf("the password shows:\n%s", errOut)
	}
}

// TestConfigFileEveryCommand: the commands that load the configuration take --config and
// POSTIE_CONFIG; the environment wins over the file.
func TestConfigFileEveryCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "postie.toml")
	text := "database_url = \"sqlite:" + filepath.Join(dir, "file.db") + "\"\nlog_level = \"warn\"\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	if code, out, errOut := run(t, nil, "migrate", "--config", p); code != 0 || !exists("file.db") {
		t.Fatalf("migrate --config: exit %d: %s %s", code, out, errOut)
	}
	env := map[string]string{"POSTIE_CONFIG": p, "POSTIE_DATABASE_URL": "sqlite:" + filepath.Join(dir, "env.db")}
	if code, out, errOut := run(t, env, "keys", "list"); code != 0 || !exists("env.db") {
		t.Fatalf("keys list with POSTIE_CONFIG: exit %d: %s %s", code, out, errOut)
	}
	for _, args := range [][]string{{"serve", "--help"}, {"migrate", "--help"}, {"keys", "create", "--help"}, {"sync", "--help"}, {"config", "check", "--help"}, {"doctor", "--help"}} {
		if _, out, _ := run(t, nil, args...); !strings.Contains(out, "--config") {
			t.Errorf("%v lacks --config", args)
		}
	}
}
