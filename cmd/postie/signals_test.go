package main_test

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeExitsZeroOnSignal: Ctrl-C (SIGINT) and a supervisor's SIGTERM both end postie serve
// with a clean shutdown and exit status 0, so make run and systemd see no error.
func TestServeExitsZeroOnSignal(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			p := start(t, t.TempDir())
			_ = p.cmd.Process.Signal(sig)
			select {
			case <-p.done:
			case <-time.After(40 * time.Second):
				t.Fatalf("postie did not exit within 40s of %v", sig)
			}
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("postie exited with %d after %v:\n%s", code, sig, p.errOut())
			}
			if !strings.Contains(p.errOut(), "shutting down") {
				t.Errorf("no clean shutdown logged:\n%s", p.errOut())
			}
		})
	}
}

// TestKeys: keys made and revoked by postie keys on a server's database (while it is stopped:
// one SQLite file serves one process) are accepted and refused by it.
func TestKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary(t), append([]string{"keys"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("postie keys %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	p := start(t, dir, "POSTIE_FROM=shop@example.com")
	first := p.waitOut(keyLine)[1]
	p.stop()
	secret := strings.Fields(keys("create", "--name", "billing"))[0]
	if list := keys("list"); !strings.Contains(list, "billing") || !strings.Contains(list, "generated on first start") ||
		!strings.Contains(list, secret[:8]) || strings.Contains(list, secret) {
		t.Fatalf("postie keys list:\n%s", list)
	}
	keys("revoke", first[:8])

	p = start(t, dir, "POSTIE_FROM=shop@example.com")
	msg := map[string]any{"to": []string{"a@example.com"}, "subject": "hi", "text": "hello"}
	if code, body := p.request("POST", "/v1/messages", secret, msg); code != 202 {
		t.Errorf("send with a key from postie keys create: %d %s", code, body)
	}
	if code, body := p.request("POST", "/v1/messages", first, msg); code != 401 {
		t.Errorf("send with a revoked key: %d %s", code, body)
	}
	p.stop()
}
