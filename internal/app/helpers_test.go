package app

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/store"
)

// runApp starts a node on a new SQLite database relaying to sink, its configuration adjusted
// by mod, and its API on a test server; both stop when the test ends.
func runApp(t *testing.T, sink *smtpsink.Sink, mod func(*config.Config)) (*App, *httptest.Server, config.Config) {
	t.Helper()
	a, cfg := newApp(t, sink, mod)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return a, srv, cfg
}

// newApp is a node as runApp makes it, not yet running.
func newApp(t *testing.T, sink *smtpsink.Sink, mod func(*config.Config)) (*App, config.Config) {
	t.Helper()
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0" // tests run many nodes at once
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "postie.db")
	cfg.Listen = "127.0.0.1:0"
	cfg.SMTPURL = sink.URL()
	cfg.APIKey = "test-key-0123456789abcdef"
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a, cfg
}

// waitStatus waits up to 20 s for message id to reach want.
func (a *App) waitStatus(t *testing.T, id string, want store.Status) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := a.store.MessageGet(context.Background(), id)
		if err == nil && m.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: %s (%v), want %s", id, m.Status, err, want)
		}
		time.Sleep(20 * time.Millisecond) // polling the store for the engine's outcome
	}
}
