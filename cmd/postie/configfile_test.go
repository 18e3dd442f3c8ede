package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeConfigFile: postie serve takes its settings from POSTIE_CONFIG's file, the environment
// overriding it (POSTIE_LISTEN, which start sets, wins over the file's listen).
func TestServeConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const key = "file-key-0123456789abcdef"
	text := `listen = "127.0.0.1:1"
api_key = "` + key + `"
database_url = "sqlite:data/postie.db"
admin_listen = ""
max_batch = 2
retain_bodies = "14d"
`
	if err := os.WriteFile(filepath.Join(dir, "postie.toml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, "POSTIE_CONFIG=postie.toml")
	p.waitOut(regexp.MustCompile(`config: +postie.toml`))
	if code, body := p.request("GET", "/v1/messages", key, nil); code != 200 {
		t.Fatalf("the file's API key: %d %s", code, body)
	}
	msg := map[string]any{"from": "a@example.com", "to": []string{"b@example.com"}, "subject": "x", "text": "x"}
	code, body := p.request("POST", "/v1/messages/batch", key, map[string]any{"messages": []any{msg, msg, msg}})
	if code != 422 || !strings.Contains(string(body), "body.messages") {
		t.Errorf("a batch over the file's max_batch: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "postie.db")); err != nil {
		t.Errorf("the file's database: %v", err)
	}
}
