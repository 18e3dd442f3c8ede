package main_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify: started by systemd with Type=notify (NOTIFY_SOCKET set), postie sends
// READY=1 once it serves and STOPPING=1 when SIGTERM starts its shutdown, each a datagram on
// that unix socket.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	// A unix socket path is limited to 108 bytes, which t.TempDir() can exceed.
	sockDir, err := os.MkdirTemp("", "sdnotify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	next := func() string {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}

	p := start(t, t.TempDir(), "NOTIFY_SOCKET="+sock)
	if got := next(); !strings.HasPrefix(got, "READY=1\n") || !strings.Contains(got, "STATUS=serving the API on "+p.addr) {
		t.Errorf("first notification = %q, want READY=1 and the status naming %s", got, p.addr)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if got := next(); got != "STOPPING=1" {
		t.Errorf("notification at SIGTERM = %q, want STOPPING=1", got)
	}
	<-p.done
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("postie exited with %d:\n%s", code, p.errOut())
	}
}

// TestHealthcheck: postie healthcheck, the container's HEALTHCHECK, exits 0 when the server
// answers /healthz at POSTIE_ADMIN_LISTEN (a wildcard host asked on loopback) and 1 when
// nothing answers there.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir())
	_, port, _ := net.SplitHostPort(p.addr)
	closed := freeAddr(t)
	for _, tc := range []struct {
		admin string
		code  int
	}{
		{p.addr, 0},
		{":" + port, 0},
		{"0.0.0.0:" + port, 0},
		{closed, 1},
	} {
		cmd := exec.Command(binary(t), "healthcheck", "--timeout", "10s")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "POSTIE_LISTEN=" + p.addr, "POSTIE_ADMIN_LISTEN=" + tc.admin}
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != tc.code {
			t.Errorf("healthcheck with POSTIE_ADMIN_LISTEN=%s: exit %d, want %d:\n%s", tc.admin, code, tc.code, out)
		}
		if tc.code == 0 && !strings.Contains(string(out), "/healthz: ok") {
			t.Errorf("healthcheck with POSTIE_ADMIN_LISTEN=%s printed %q", tc.admin, out)
		}
	}
}
