package cli

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctor: postie doctor exits 0 when nothing failed (warnings included), 1 when a check
// failed, 2 when the configuration is invalid.
func TestDoctor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"POSTIE_DATABASE_URL": "sqlite:" + filepath.Join(dir, "postie.db"), "POSTIE_LOG_LEVEL": "warn"}
	if code, out, errOut := run(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d: %s %s", code, out, errOut)
	}
	code, out, errOut := run(t, env, "doctor", "--import-dir", filepath.Join(dir, "imports"))
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{"ok    database", "ok    migrations", "ok    clock", "warn  relay", "warn  dns", "ok    disk", "0 FAIL"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	code, out, _ = run(t, env, "doctor", "--smtp-url", "smtp://u:hunter2@"+closed, "--timeout", "5s")
	if code != 1 || !strings.Contains(out, "FAIL  relay") || !strings.Contains(out, "connect failed") || strings.Contains(out, "hunter2") {
		t.Errorf("an unreachable relay: exit %d:\n%s", code, out)
	}
	if code, _, errOut := run(t, env, "doctor", "--lease", "soon", "--dns-server", "1.1.1.1:53"); code != 2 || !strings.Contains(errOut, "--lease: not a duration") {
		t.Errorf("a bad setting: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(t, env, "doctor", "--dns-server", "1.1.1.1"); code != 2 || !strings.Contains(errOut, "--dns-server: want host:port") {
		t.Errorf("a bad --dns-server: exit %d: %s", code, errOut)
	}
}
