package app

import (
	"crypto/sha256"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
)

func TestOpenStorePostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	for _, u := range []string{url, "postgresql://" + strings.TrimPrefix(url, "postgres://")} {
		cfg := config.Default()
		cfg.DatabaseURL = u
		cfg.DBPool = 3
		st, err := OpenStore(t.Context(), cfg, slog.New(slog.DiscardHandler), true)
		if err != nil {
			t.Fatalf("OpenStore(%s): %v", u, err)
		}
		if _, ok := st.(*postgres.Store); !ok {
			t.Errorf("OpenStore(%s) = %T, want *postgres.Store", u, st)
		}
		if err := st.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
		st.Close()
	}
}

// TestNewPostgresKeepsOtherLeases: a node starting on PostgreSQL must not take back the leases of
// the nodes already running (a SQLite node takes back every lease: it is alone).
func TestNewPostgresKeepsOtherLeases(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DatabaseURL = pgtest.URL(t)
	cfg.Listen = "127.0.0.1:0"
	other, err := OpenStore(t.Context(), cfg, slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	m := store.NewMessage{Message: store.Message{ID: id.New(id.Message), Stream: store.StreamTransactional,
		Status: store.StatusQueued, From: "a@example.com", To: []string{"b@example.com"}, EnvelopeFrom: "a@example.com",
		Recipients: []string{"b@example.com"}, MaxAttempts: 4, NextAttemptAt: now, CreatedAt: now}, Raw: []byte("x\r\n")}
	if _, err := other.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: now}); err != nil {
		t.Fatal(err)
	}
	if got, err := other.MessageClaim(t.Context(), store.MessageClaimParams{Owner: "other-node", Stream: store.StreamTransactional,
		Limit: 1, Now: now, LeaseUntil: now.Add(time.Hour)}); err != nil || len(got) != 1 {
		t.Fatalf("claim = %d, %v", len(got), err)
	}

	a, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a.listener.Close()
	a.store.Close()
	got, err := other.MessageGet(t.Context(), m.Message.ID)
	if err != nil || got.Status != store.StatusSending || got.LeaseOwner != "other-node" {
		t.Errorf("after a node started: %s leased by %q, %v; want still sending for other-node", got.Status, got.LeaseOwner, err)
	}
}

func TestNodeOwnerUnique(t *testing.T) {
	t.Parallel()
	if a, b := nodeOwner(), nodeOwner(); a == b {
		t.Errorf("two owners of one process are equal: %s", a)
	}
}

// TestFailedFirstStartLeavesNoKey: a first start that cannot listen (the port is taken) must not
// store a generated key it never showed; the next start generates the key and shows it.
func TestFailedFirstStartLeavesNoKey(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := config.Default()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "postie.db")
	cfg.Listen = busy.Addr().String()
	log := slog.New(slog.DiscardHandler)
	if a, err := New(t.Context(), cfg, log); err == nil {
		a.store.Close()
		t.Fatal("New on a taken port succeeded")
	}
	st, err := OpenStore(t.Context(), cfg, log, false)
	if err != nil {
		t.Fatal(err)
	}
	n, err := st.APIKeyCount(t.Context())
	st.Close()
	if err != nil || n != 0 {
		t.Fatalf("after a failed first start APIKeyCount = %d, %v; want 0 (a key nobody saw)", n, err)
	}

	cfg.Listen = "127.0.0.1:0"
	a, err := New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.store.Close()
	defer a.listener.Close()
	if !strings.HasPrefix(a.GeneratedKey, "pk_") {
		t.Fatalf("GeneratedKey = %q after the first successful start", a.GeneratedKey)
	}
	sum := sha256.Sum256([]byte(a.GeneratedKey))
	if _, err := a.store.APIKeyByHash(t.Context(), sum[:]); err != nil {
		t.Errorf("the generated key is not stored: %v", err)
	}
}
