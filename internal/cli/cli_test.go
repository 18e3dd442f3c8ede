package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/app"
	"github.com/postie/postie/internal/config"
)

// run runs the command line args with the environment env and returns the exit code and output.
func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestFlagsPerCommand: each subcommand's help lists the flags it reads, and no other command's.
func TestFlagsPerCommand(t *testing.T) {
	t.Parallel()
	serveOnly := []string{"--listen", "--smtp-url", "--api-key", "--retry-delays", "--max-batch", "--templates-dir"}
	for _, tc := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"serve", "--help"}, append([]string{"--database-url"}, serveOnly...), nil},
		{[]string{"migrate", "--help"}, []string{"--database-url", "--log-level"}, serveOnly},
		{[]string{"keys", "create", "--help"}, []string{"--database-url", "--name"}, serveOnly},
		{[]string{"keys", "list", "--help"}, []string{"--database-url"}, append([]string{"--name"}, serveOnly...)},
		{[]string{"keys", "revoke", "--help"}, []string{"--database-url"}, serveOnly},
		{[]string{"sync", "--help"}, []string{"--once", "--source", "--reconcile", "--database-url"}, serveOnly},
		{[]string{"send", "--help"}, []string{"--url", "--api-key", "--to", "--subject", "--template", "--data"}, []string{"--database-url", "--smtp-url", "--listen"}},
		{[]string{"version", "--help"}, nil, append([]string{"--database-url"}, serveOnly...)},
		{[]string{"bench", "--help"}, []string{"--mode", "--duration", "--clients", "--batch-size", "--batch-clients", "--data-dir",
			"--database-url", "--nodes", "--pool", "--relay-delay", "--messages", "--large-messages", "--latency-rate", "--broadcast", "--tx-rate"},
			[]string{"--smtp-url", "--listen", "--api-key", "--log-level"}},
		{[]string{"sink", "--help"}, []string{"--listen", "--reject", "--webhooks", "--webhook-secret"}, []string{"--database-url", "--smtp-url", "--api-key", "--log-level"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			code, out, errOut := run(t, nil, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, f := range tc.want {
				if !regexp.MustCompile(`(?m)^\s+(-\w, )?` + f + `\b`).MatchString(out) {
					t.Errorf("%s not listed:\n%s", f, out)
				}
			}
			for _, f := range tc.not {
				if regexp.MustCompile(`(?m)^\s+(-\w, )?` + f + `\b`).MatchString(out) {
					t.Errorf("%s listed, but this command does not read it:\n%s", f, out)
				}
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, nil, "version")
	v := app.ReadVersion()
	if want := "postie " + v.String() + " " + v.Go + "\n"; code != 0 || out != want {
		t.Errorf("postie version = %d %q, want %q", code, out, want)
	}
}

// TestKeys: create prints a secret once and stores only its hash; list shows the key; revoke
// finds it by id, prefix or secret and revokes it (it stays listed).
func TestKeys(t *testing.T) {
	t.Parallel()
	env := map[string]string{"POSTIE_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "postie.db"), "POSTIE_LOG_LEVEL": "warn"}
	create := func(name string) string {
		t.Helper()
		code, out, errOut := run(t, env, "keys", "create", "--name", name)
		if code != 0 {
			t.Fatalf("keys create: %d %s", code, errOut)
		}
		secret := strings.TrimSpace(out)
		if !regexp.MustCompile(`^pk_[A-Za-z0-9_-]{32}$`).MatchString(secret) || !strings.Contains(errOut, "shown only once") {
			t.Fatalf("keys create printed %q / %q", out, errOut)
		}
		return secret
	}
	crm, signup, billing := create("CRM"), create("signup"), create("billing")

	code, out, errOut := run(t, env, "keys", "list")
	if code != 0 {
		t.Fatalf("keys list: %d %s", code, errOut)
	}
	for _, s := range []string{crm, signup, billing} {
		if strings.Contains(out, s) {
			t.Errorf("keys list shows a secret:\n%s", out)
		}
		if !strings.Contains(out, s[:8]) {
			t.Errorf("keys list lacks the prefix %s:\n%s", s[:8], out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "CRM") || !strings.Contains(lines[3], "billing") {
		t.Fatalf("keys list:\n%s", out)
	}
	signupID := strings.Fields(lines[2])[0]

	cfg := config.Default()
	cfg.DatabaseURL = env["POSTIE_DATABASE_URL"]
	stored := func(secret string) bool {
		t.Helper()
		st, err := app.OpenStore(t.Context(), cfg, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		sum := sha256.Sum256([]byte(secret))
		k, err := st.APIKeyByHash(t.Context(), sum[:])
		return err == nil && k.RevokedAt.IsZero()
	}
	for _, tc := range []struct{ arg, secret string }{
		{signupID, signup},
		{crm[:8], crm},
		{billing, billing},
	} {
		if !stored(tc.secret) {
			t.Fatalf("key %s not stored before revoke", tc.secret[:8])
		}
		if code, out, errOut := run(t, env, "keys", "revoke", tc.arg); code != 0 || !strings.Contains(out, "revoked API key") {
			t.Fatalf("keys revoke %s: %d %s %s", tc.arg, code, out, errOut)
		}
		if stored(tc.secret) {
			t.Errorf("keys revoke %s: the key still authenticates", tc.arg)
		}
	}
	if code, _, errOut := run(t, env, "keys", "revoke", "key_unknown"); code == 0 || !strings.Contains(errOut, "no API key") {
		t.Errorf("revoking an unknown key: %d %s", code, errOut)
	}
	if code, out, _ := run(t, env, "keys", "list"); code != 0 || strings.Count(out, "\n") != 4 || strings.Count(out, "Z\n") != 3 {
		t.Errorf("keys list after revoking all (each listed with its revocation time):\n%s", out)
	}
	if code, out, _ := run(t, env, "keys", "revoke", signupID); code != 0 || !strings.Contains(out, "already revoked") {
		t.Errorf("revoking a revoked key: %d %s", code, out)
	}
}

// TestKeysCreateSettings: keys create stores the scopes, sender domains and rate limit given by
// its flags, and refuses bad ones naming every flag at fault, storing nothing.
func TestKeysCreateSettings(t *testing.T) {
	t.Parallel()
	env := map[string]string{"POSTIE_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "postie.db"), "POSTIE_LOG_LEVEL": "warn"}
	code, out, errOut := run(t, env, "keys", "create", "--name", "shop", "--scope", "read,send", "--sender-domain", "Shop.Example",
		"--sender-domain", "mail.shop.example", "--rate", "2.5")
	if code != 0 {
		t.Fatalf("keys create: %d %s", code, errOut)
	}
	cfg := config.Default()
	cfg.DatabaseURL = env["POSTIE_DATABASE_URL"]
	st, err := app.OpenStore(t.Context(), cfg, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(out)))
	k, err := st.APIKeyByHash(t.Context(), sum[:])
	st.Close() // the database is one process's at a time
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(k.Scopes, k.SenderDomains, k.RateLimit, k.Burst); got != "[send read] [shop.example mail.shop.example] 2.5 3" {
		t.Errorf("stored key: %s", got)
	}
	if code, out, _ := run(t, env, "keys", "list"); code != 0 || !strings.Contains(out, "send,read") || !strings.Contains(out, "2.5/s burst 3") {
		t.Errorf("keys list:\n%s", out)
	}

	code, _, errOut = run(t, env, "keys", "create", "--scope", "send,sned", "--sender-domain", "bob@shop.example", "--burst", "5")
	if code == 0 {
		t.Fatal("keys create with bad flags succeeded")
	}
	for _, want := range []string{"--scope[1]", "sned", "--sender-domain[0]", "--burst: a burst needs a rate_limit"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("keys create with bad flags: %q lacks %q", errOut, want)
		}
	}
	if code, out, _ := run(t, env, "keys", "list"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("keys list after a refused create, want only the first key:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer written by a running command and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// serve runs `postie serve` in this process on a free port with a fresh SQLite database, and
// returns its address and the key it generated. It stops when the test ends, and the test fails
// unless it then exits 0.
func serve(t *testing.T) (addr, key string) {
	t.Helper()
	env := map[string]string{"POSTIE_LISTEN": "127.0.0.1:0", "POSTIE_ADMIN_LISTEN": "127.0.0.1:0", "POSTIE_LOG_LEVEL": "warn", "POSTIE_FROM": "Shop <shop@example.com>",
		"POSTIE_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "postie.db")}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, []string{"serve"}, func(k string) string { return env[k] }, &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d after its context was cancelled: %s", code, errOut.String())
		}
	})
	banner := regexp.MustCompile(`API:\s+http://(\S+)/v1[\s\S]*API key:\s+(pk_\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := banner.FindStringSubmatch(out.String()); m != nil {
			return m[1], m[2]
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited %d: %s", code, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner after 30s: %s %s", out.String(), errOut.String())
		}
	}
}

// TestSend: postie send against a real server, with its key and address from flags or from the
// environment, a plain message or a template with or without data.
func TestSend(t *testing.T) {
	t.Parallel()
	addr, key := serve(t)
	for name, body := range map[string]string{
		"welcome": `{"subject":"Welcome, {{.data.name}}","text":"Hello {{.data.name}}"}`,
		"hello":   `{"subject":"Hello","text":"Hello there"}`,
	} {
		req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/templates/"+name, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("PUT template %s: %s", name, resp.Status)
		}
	}
	subject := func(id string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/messages/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m struct{ Subject string }
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m.Subject
	}

	host, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(t.TempDir(), "postie.toml")
	if err := os.WriteFile(conf, []byte("listen = \""+addr+"\"\napi_key = \""+key+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(t.TempDir(), "postie.toml")
	if err := os.WriteFile(stale, []byte("listen = \"127.0.0.1:1\"\napi_key = \"pk_not_the_key_at_all\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		env         map[string]string
		args        []string
		wantSubject string
	}{
		{"plain, from the environment", map[string]string{"POSTIE_URL": "http://" + addr, "POSTIE_API_KEY": key},
			[]string{"--to", "a@example.com", "--subject", "hi", "--text", "hello"}, "hi"},
		{"plain, from flags", nil,
			[]string{"--url", "http://" + addr, "--api-key", key, "--to", "a@example.com", "--subject", "flags", "--html", "<p>hello</p>"}, "flags"},
		{"the address of POSTIE_LISTEN", map[string]string{"POSTIE_LISTEN": host + ":" + port, "POSTIE_API_KEY": key},
			[]string{"--to", "a@example.com", "--subject", "listen", "--text", "hello"}, "listen"},
		{"template with data", map[string]string{"POSTIE_URL": "http://" + addr, "POSTIE_API_KEY": key},
			[]string{"--to", "a@example.com", "--template", "welcome", "--data", `{"name":"Ada"}`}, "Welcome, Ada"},
		{"template without data", map[string]string{"POSTIE_URL": "http://" + addr, "POSTIE_API_KEY": key},
			[]string{"--to", "a@example.com", "--template", "hello"}, "Hello"},
		{"flags over the environment", map[string]string{"POSTIE_URL": "http://127.0.0.1:1", "POSTIE_API_KEY": "pk_not_a_key"},
			[]string{"--url", "http://" + addr, "--api-key", key, "--to", "a@example.com", "--subject", "flags win", "--text", "hello"}, "flags win"},
		{"the server's configuration file", map[string]string{"POSTIE_CONFIG": conf},
			[]string{"--to", "a@example.com", "--subject", "file", "--text", "hello"}, "file"},
		{"--config, the environment over it", map[string]string{"POSTIE_LISTEN": addr, "POSTIE_API_KEY": key},
			[]string{"--config", stale, "--to", "a@example.com", "--subject", "env over file", "--text", "hello"}, "env over file"},
		{"POSTIE_URL over POSTIE_LISTEN", map[string]string{"POSTIE_URL": "http://" + addr, "POSTIE_LISTEN": "127.0.0.1:1", "POSTIE_API_KEY": key},
			[]string{"--to", "a@example.com", "--subject", "url wins", "--text", "hello"}, "url wins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.env, append([]string{"send"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s %s", code, out, errOut)
			}
			var acc struct{ ID, Status string }
			if err := json.Unmarshal([]byte(out), &acc); err != nil || acc.Status != "queued" {
				t.Fatalf("printed %q", out)
			}
			if got := subject(acc.ID); got != tc.wantSubject {
				t.Errorf("subject = %q, want %q", got, tc.wantSubject)
			}
		})
	}

	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		wantErr string
	}{
		{"no key", map[string]string{"POSTIE_URL": "http://" + addr}, []string{"--to", "a@example.com", "--subject", "x", "--text", "y"}, 2, "POSTIE_API_KEY"},
		{"data not JSON", map[string]string{"POSTIE_URL": "http://" + addr, "POSTIE_API_KEY": key}, []string{"--to", "a@example.com", "--template", "welcome", "--data", "{name:"}, 2, "--data"},
		{"refused by the server", map[string]string{"POSTIE_URL": "http://" + addr, "POSTIE_API_KEY": key}, []string{"--subject", "x", "--text", "y"}, 1, "422"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, errOut := run(t, tc.env, append([]string{"send"}, tc.args...)...); code != tc.code || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d (want %d), stderr %q (want %q in it)", code, tc.code, errOut, tc.wantErr)
			}
		})
	}
}
