package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/postie/postie/internal/app"
	"github.com/postie/postie/internal/config"
)

// TestBackupWhileServing: postie backup copies the database of a server that is accepting and
// delivering mail; the copy holds every message accepted before the backup started.
func TestBackupWhileServing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const key = "pk_backuptestbackuptestbackuptest01"
	cfg := config.Default()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "postie.db")
	cfg.Listen, cfg.AdminListen, cfg.APIKey = "127.0.0.1:0", "127.0.0.1:0", key
	cfg.From = "Shop <shop@example.com>"
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("server: %v", err)
		}
	})

	var (
		mu       sync.Mutex
		accepted []string
	)
	send := func(i int) error {
		body := fmt.Sprintf(`{"to":["ann@example.com"],"subject":"Order %d","text":"Shipped."}`, i)
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.Addr()+"/v1/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var m struct{ ID string }
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("send: %s, %v", resp.Status, err)
		}
		mu.Lock()
		accepted = append(accepted, m.ID)
		mu.Unlock()
		return nil
	}
	for i := range 30 {
		if err := send(i); err != nil {
			t.Fatal(err)
		}
	}
	stop, sent := make(chan struct{}), make(chan error, 1)
	go func() {
		for i := 30; ; i++ {
			select {
			case <-stop:
				sent <- nil
				return
			default:
			}
			if err := send(i); err != nil {
				sent <- err
				return
			}
		}
	}()

	mu.Lock()
	before := append([]string(nil), accepted...)
	mu.Unlock()
	dest := filepath.Join(dir, "copy.db")
	env := map[string]string{"POSTIE_DATABASE_URL": cfg.DatabaseURL}
	code, out, errOut := run(t, env, "backup", dest)
	close(stop)
	if err := <-sent; err != nil {
		t.Fatalf("sending during the backup: %v", err)
	}
	if code != 0 || !strings.Contains(out, "integrity check ok") {
		t.Fatalf("postie backup = %d %q %q", code, out, errOut)
	}

	copyCfg := cfg
	copyCfg.DatabaseURL = "sqlite:" + dest
	st, err := app.OpenStore(t.Context(), copyCfg, slog.New(slog.DiscardHandler), false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range before {
		if _, err := st.MessageGet(t.Context(), id); err != nil {
			t.Fatalf("message %s accepted before the backup, in the copy: %v", id, err)
		}
	}

	// A second backup to the same file is refused, and the first copy is left as it was.
	info, _ := os.Stat(dest)
	if code, _, errOut := run(t, env, "backup", dest); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("backup over an existing file = %d %q; want refused", code, errOut)
	}
	if again, _ := os.Stat(dest); again.Size() != info.Size() || !again.ModTime().Equal(info.ModTime()) {
		t.Error("the existing copy was changed")
	}
}

// TestBackupRefusesPostgres: postie backup points PostgreSQL users at its own tools.
func TestBackupRefusesPostgres(t *testing.T) {
	t.Parallel()
	code, _, errOut := run(t, map[string]string{"POSTIE_DATABASE_URL": "postgres://postie@127.0.0.1:1/postie"},
		"backup", filepath.Join(t.TempDir(), "x.db"))
	if code != 1 || !strings.Contains(errOut, "pg_dump") {
		t.Errorf("backup of PostgreSQL = %d %q; want refused, naming pg_dump", code, errOut)
	}
	var buf bytes.Buffer
	if code := Run(t.Context(), []string{"backup"}, func(string) string { return "" }, &buf, &buf); code == 0 {
		t.Errorf("backup without FILE = 0 %q; want an error", buf.String())
	}
}
