package main_test

// End-to-end tests of the real binary: build it, start `postie serve` as a process, talk to it
// over HTTP, stop it with signals.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// build is one build of postie, made once per test run.
type build struct {
	once sync.Once
	path string
	err  error
}

var raceBuild, plainBuild build

// binary builds postie (with the race detector) once per test run.
func binary(t *testing.T) string { return raceBuild.get(t, "-race") }

func (b *build) get(t *testing.T, flags ...string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "postie-e2e-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "postie")
		args := append(append([]string{"build"}, flags...), "-o", b.path, ".")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
}

// start runs `postie serve` in dir with env and waits until it answers /readyz.
func start(t *testing.T, dir string, env ...string) *proc {
	t.Helper()
	return startBinary(t, binary(t), dir, env...)
}

// startBinary is start with the postie binary at bin.
func startBinary(t *testing.T, bin, dir string, env ...string) *proc {
	t.Helper()
	p := &proc{t: t, addr: freeAddr(t), done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Dir = dir
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "POSTIE_LISTEN=" + p.addr,
		"POSTIE_ADMIN_LISTEN=127.0.0.1:0"}, env...)
	p.cmd.Stdout = &lockedWriter{mu: &p.mu, w: &p.stdout}
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get("http://" + p.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("postie exited during start: %s\n%s", p.out(), p.errOut())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("postie not ready after 30s: %s", p.errOut())
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *proc) out() string    { p.mu.Lock(); defer p.mu.Unlock(); return p.stdout.String() }
func (p *proc) errOut() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stderr.String() }

// waitOut returns the first match of re in the process's stdout, waiting up to 10 s for it:
// the process writes its banner before it serves, but the pipe from it is copied into p.stdout
// by a goroutine of os/exec, so /readyz may answer before the banner has arrived here.
func (p *proc) waitOut(re *regexp.Regexp) []string {
	p.t.Helper()
	var m []string
	waitFor(p.t, 10*time.Second, func() error {
		if m = re.FindStringSubmatch(p.out()); m == nil {
			return fmt.Errorf("stdout has no match for %s:\n%s", re, p.out())
		}
		return nil
	})
	return m
}

// stop sends SIGTERM and fails the test unless postie exits with status 0 within 40 s.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		p.t.Fatal("postie did not exit within 40s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Errorf("postie exited with %d after SIGTERM:\n%s", code, p.errOut())
	}
}

func (p *proc) request(method, path, key string, body any) (int, []byte) {
	p.t.Helper()
	code, out, err := p.tryRequest(method, path, key, body)
	if err != nil {
		p.t.Fatal(err)
	}
	return code, out
}

// tryRequest is request for goroutines other than the test's, which may not call t.Fatal.
func (p *proc) tryRequest(method, path, key string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+p.addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// waitStatus waits up to 20 s for message id to reach status, and returns the message.
func (p *proc) waitStatus(key, id, status string) map[string]any {
	p.t.Helper()
	var m map[string]any
	waitFor(p.t, 20*time.Second, func() error {
		code, body := p.request("GET", "/v1/messages/"+id, key, nil)
		m = nil
		_ = json.Unmarshal(body, &m)
		if code != 200 || m["status"] != status {
			return fmt.Errorf("message %s not %s: %d %s", id, status, code, body)
		}
		return nil
	})
	return m
}

// waitFor calls check every 20 ms until it returns nil, and fails the test with check's last
// error if that takes longer than within. check runs on the test's goroutine: it may call
// t.Fatal.
func waitFor(t *testing.T, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	keyLine = regexp.MustCompile(`API key:\s+(pk_\S+)`)
	// anyKeyLine matches the banner's last line, whatever it says about the key.
	anyKeyLine = regexp.MustCompile(`API key:\s+(\S.*)\n`)
)

func TestServeWithNoConfiguration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, "POSTIE_FROM=Postie <hello@postie.example>")
	if _, err := os.Stat(filepath.Join(dir, "postie-data", "postie.db")); err != nil {
		t.Fatalf("no embedded database created: %v", err)
	}
	key := p.waitOut(keyLine)[1]
	if !strings.Contains(p.out(), "http://"+p.addr+"/v1") {
		t.Fatalf("API address not printed:\n%s", p.out())
	}

	code, body := p.request("POST", "/v1/messages", key, map[string]any{
		"to": []string{"a@example.com"}, "subject": "Hello from e2e", "html": "<p>Hi <b>there</b></p>",
	})
	if code != 202 {
		t.Fatalf("send: %d %s", code, body)
	}
	var acc struct{ ID string }
	_ = json.Unmarshal(body, &acc)
	msg := p.waitStatus(key, acc.ID, "sent")
	if msg["provider_id"] == "" {
		t.Errorf("sent message has no provider id: %v", msg)
	}
	// The banner names the admin listener, which serves the metrics without a key.
	admin := regexp.MustCompile(`admin: +(http://\S+/metrics)`).FindStringSubmatch(p.out())
	if admin == nil {
		t.Fatalf("admin listener not printed:\n%s", p.out())
	}
	if resp, err := http.Get(admin[1]); err != nil {
		t.Errorf("GET %s: %v", admin[1], err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `postie_messages_total{outcome="sent",stream="transactional",transport="capture"} 1`) {
			t.Errorf("GET %s: %d, without the message sent:\n%.3000s", admin[1], resp.StatusCode, b)
		}
	}
	code, raw := p.request("GET", "/v1/messages/"+acc.ID+"/raw", key, nil)
	if code != 200 || !bytes.Contains(raw, []byte("Subject: Hello from e2e")) || !bytes.Contains(raw, []byte("text/plain")) {
		t.Fatalf("raw: %d %s", code, raw)
	}
	if code, _ := p.request("GET", "/v1/messages/"+acc.ID, "wrong-key-0123456789", nil); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}

	// `postie send` is a client of the same API.
	send := exec.Command(binary(t), "send", "--to", "b@example.com", "--subject", "From the CLI", "--text", "hello")
	send.Env = []string{"POSTIE_URL=http://" + p.addr, "POSTIE_API_KEY=" + key}
	out, err := send.CombinedOutput()
	if err != nil {
		t.Fatalf("postie send: %v\n%s", err, out)
	}
	var cli struct{ ID string }
	if err := json.Unmarshal(out, &cli); err != nil || cli.ID == "" {
		t.Fatalf("postie send printed %s", out)
	}
	p.waitStatus(key, cli.ID, "sent")

	// A second process on the same SQLite file is refused with a clear error.
	second := exec.Command(binary(t), "serve")
	second.Dir = dir
	second.Env = []string{"PATH=" + os.Getenv("PATH"), "POSTIE_LISTEN=" + freeAddr(t), "POSTIE_ADMIN_LISTEN=127.0.0.1:0"}
	out, err = second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another postie process") {
		t.Fatalf("second process on one database: err %v, output:\n%s", err, out)
	}

	p.stop()

	// A restart keeps the data and the key, and prints no new key.
	p2 := start(t, dir)
	if p2.waitOut(anyKeyLine); keyLine.MatchString(p2.out()) {
		t.Fatalf("restart printed a new key:\n%s", p2.out())
	}
	if code, _ := p2.request("GET", "/v1/messages/"+acc.ID, key, nil); code != 200 {
		t.Fatalf("after restart: %d", code)
	}
	p2.stop()
}

func TestConfigurationErrors(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = []string{"POSTIE_LISTEN=nope", "POSTIE_MESSAGE_TTL=soon", "POSTIE_SMTP_URL=ftp://user:hunter2@x"}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("serve accepted a bad configuration")
	}
	for _, want := range []string{"POSTIE_LISTEN", "POSTIE_MESSAGE_TTL", "POSTIE_SMTP_URL"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error output does not name %s:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "hunter2") {
		t.Errorf("a password appears in the output:\n%s", out)
	}
	v, err := exec.Command(binary(t), "version").Output()
	if err != nil || !strings.HasPrefix(string(v), "postie ") {
		t.Fatalf("version: %v %s", err, v)
	}
	dir := t.TempDir()
	mig := exec.Command(binary(t), "migrate", "--database-url", "sqlite:"+filepath.Join(dir, "m.db"))
	if out, err := mig.CombinedOutput(); err != nil || !strings.Contains(string(out), "up to date") {
		t.Fatalf("migrate: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "m.db")); err != nil {
		t.Fatalf("migrate created no database: %v", err)
	}
}
