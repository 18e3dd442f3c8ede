package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// sinkProc runs `postie sink` with args and collects its output lines.
type sinkProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startSink(t *testing.T, args ...string) *sinkProc {
	t.Helper()
	s := &sinkProc{done: make(chan struct{})}
	s.cmd = exec.Command(binary(t), append([]string{"sink"}, args...)...)
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		once := sync.OnceFunc(func() { close(ready) })
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
			if strings.Contains(sc.Text(), "POSTIE_SMTP_URL=") {
				once()
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-s.done })
	select {
	case <-ready:
	case <-s.done:
		t.Fatalf("postie sink exited: %v", s.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("postie sink not ready: %v", s.output())
	}
	return s
}

func (s *sinkProc) output() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func (s *sinkProc) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// TestTourRelayFailureReplay follows the README tour: a relay that refuses two recipients, the
// failure queue, the automatic suppression, and a replay once the relay is fixed.
func TestTourRelayFailureReplay(t *testing.T) {
	t.Parallel()
	relay := freeAddr(t)
	sink := startSink(t, "--listen", relay,
		"--reject", "nobody@example.com=550 5.1.1 User unknown",
		"--reject", "ops@example.com=554 5.7.1 Relay access denied")
	const key = "pk_tour_0123456789abcdef"
	p := start(t, t.TempDir(), "POSTIE_API_KEY="+key, "POSTIE_FROM=Shop <news@shop.example>",
		"POSTIE_SMTP_URL=smtp://"+relay+"?tls=none")

	ids := map[string]string{}
	for _, to := range []string{"ada", "nobody", "ops"} {
		code, body := p.request("POST", "/v1/messages", key, map[string]any{
			"to": []string{to + "@example.com"}, "subject": "Your invoice", "text": "Attached."})
		var acc struct{ ID string }
		if err := json.Unmarshal(body, &acc); code != 202 || err != nil {
			t.Fatalf("send to %s: %d %s", to, code, body)
		}
		ids[to] = acc.ID
	}
	if m := p.waitStatus(key, ids["ada"], "sent"); m["provider_id"] == "" {
		t.Errorf("no provider id: %v", m)
	}

	var failed struct {
		Data []struct {
			ID        string
			LastError struct {
				Code     int
				Enhanced string
				Text     string
				Stage    string
			} `json:"last_error"`
		}
	}
	waitFor(t, 20*time.Second, func() error {
		_, body := p.request("GET", "/v1/messages?status=failed", key, nil)
		failed.Data = nil
		_ = json.Unmarshal(body, &failed)
		if len(failed.Data) < 2 {
			return fmt.Errorf("failure queue: %s", body)
		}
		return nil
	})
	for _, f := range failed.Data {
		want := map[string]string{ids["nobody"]: "550 5.1.1 User unknown rcpt", ids["ops"]: "554 5.7.1 Relay access denied rcpt"}[f.ID]
		e := f.LastError
		if got := strings.Join([]string{itoa(e.Code), e.Enhanced, e.Text, e.Stage}, " "); got != want {
			t.Errorf("failure %s: %q, want %q", f.ID, got, want)
		}
	}

	_, body := p.request("GET", "/v1/suppressions", key, nil)
	if !strings.Contains(string(body), `"nobody@example.com"`) || strings.Contains(string(body), "ops@") {
		t.Errorf("suppressions: %s", body)
	}

	// Fix the relay and replay the 5.7.1 failures.
	sink.stop()
	startSink(t, "--listen", relay)
	code, body := p.request("POST", "/v1/messages/retry", key, map[string]any{"error_code": "5.7.1"})
	if code != 200 || !strings.Contains(string(body), `"retried":1`) || !strings.Contains(string(body), ids["ops"]) {
		t.Fatalf("bulk retry: %d %s", code, body)
	}
	p.waitStatus(key, ids["ops"], "sent")

	// A single replay of the hard bounce: the address is still suppressed.
	if code, body := p.request("POST", "/v1/messages/"+ids["nobody"]+"/retry", key, nil); code != 200 {
		t.Fatalf("retry one: %d %s", code, body)
	}
	p.waitStatus(key, ids["nobody"], "suppressed")
	p.stop()
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
