package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/storetest"
)

func TestOpenStorePostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	for _, u := range []string{url, "postgresql://" + strings.TrimPrefix(url, "postgres://")} {
		cfg := config.Default()
		cfg.AdminListen = "127.0.0.1:0" // tests run many nodes at once
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
	cfg.AdminListen = "127.0.0.1:0" // tests run many nodes at once
	cfg.DatabaseURL = pgtest.URL(t)
	cfg.Listen = "127.0.0.1:0"
	other, err := OpenStore(t.Context(), cfg, slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	msgID := acceptClaimed(t, other, "other-node")[0]

	a, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a.listener.Close()
	a.store.Close()
	got, err := other.MessageGet(t.Context(), msgID)
	if err != nil || got.Status != store.StatusSending || got.LeaseOwner != "other-node" {
		t.Errorf("after a node started: %s leased by %q, %v; want still sending for other-node", got.Status, got.LeaseOwner, err)
	}
}

func TestNodeOwnerUnique(t *testing.T) {
	t.Parallel()
	if a, b := nodeOwner("n"), nodeOwner("n"); a == b {
		t.Errorf("two owners of one process are equal: %s", a)
	}
}

// acceptClaimed stores one message per owner in st, each claimed by its owner for an hour, and
// returns their ids in the owners' order.
func acceptClaimed(t *testing.T, st store.Store, owners ...string) []string {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var ids []string
	for _, owner := range owners {
		m := storetest.Message(now)
		if _, err := st.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: now}); err != nil {
			t.Fatal(err)
		}
		if got, err := st.MessageClaim(t.Context(), store.MessageClaimParams{Owner: owner, Stream: store.StreamTransactional,
			Limit: 1, Now: now, LeaseUntil: now.Add(time.Hour)}); err != nil || len(got) != 1 {
			t.Fatalf("claim = %d, %v", len(got), err)
		}
		ids = append(ids, m.Message.ID)
	}
	return ids
}

// TestNewPostgresTakesBackItsOwnLeases: a node starting on PostgreSQL with a node id takes back
// at once the leases a previous run of that id held (whatever its process part), with a
// released event naming the old owner, and leaves every other node's alone.
func TestNewPostgresTakesBackItsOwnLeases(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0" // tests run many nodes at once
	cfg.DatabaseURL = pgtest.URL(t)
	cfg.Listen = "127.0.0.1:0"
	cfg.NodeID = "web_1"
	other, err := OpenStore(t.Context(), cfg, slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	owners := []string{"web_1/4242/0a1b2c3d4e5f", "web_10/4242/0a1b2c3d4e5f", "webx1/1/aa", "other/1/bb"}
	ids := acceptClaimed(t, other, owners...)

	a, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a.listener.Close()
	a.store.Close()
	for i, msgID := range ids {
		m, err := other.MessageGet(t.Context(), msgID)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			events, err := other.MessageEvents(t.Context(), msgID)
			if err != nil {
				t.Fatal(err)
			}
			last := events[len(events)-1]
			var detail struct{ Owner string }
			_ = json.Unmarshal(last.Detail, &detail)
			if m.Status != store.StatusQueued || last.Type != store.EventReleased || detail.Owner != owners[0] {
				t.Errorf("the previous run's message: %s, last event %s %s; want queued, released from %s",
					m.Status, last.Type, last.Detail, owners[0])
			}
			continue
		}
		if m.Status != store.StatusSending || m.LeaseOwner != owners[i] {
			t.Errorf("%s's message after node web_1 started: %s leased by %q", owners[i], m.Status, m.LeaseOwner)
		}
	}
}

func TestNodeID(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0" // tests run many nodes at once
	if got, want := nodeID(cfg), host+":8080"; got != want {
		t.Errorf("default node id = %q, want %q", got, want)
	}
	cfg.NodeID = "postie-0"
	if got := nodeID(cfg); got != "postie-0" {
		t.Errorf("node id = %q, want POSTIE_NODE_ID", got)
	}
	cfg.NodeID, cfg.Listen = "", "127.0.0.1:0"
	if a, b := nodeID(cfg), nodeID(cfg); a == b || config.CheckNodeID(a) != nil {
		t.Errorf("node ids with an ephemeral port: %q, %q; want two different valid ones", a, b)
	}
	if owner := nodeOwner("postie-0"); !strings.HasPrefix(owner, "postie-0/") {
		t.Errorf("owner %q does not begin with its node id and /", owner)
	}
}

// TestListenWarning: listening beyond loopback logs a warning, unless POSTIE_BEHIND_PROXY says a
// TLS-terminating proxy is in front.
func TestListenWarning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen      string
		behindProxy bool
		warn        bool
	}{
		{"127.0.0.1:0", false, false},
		{"[::1]:0", false, false},
		{"0.0.0.0:0", false, true},
		{":0", false, true},
		{"0.0.0.0:0", true, false},
	} {
		cfg := config.Default()
		cfg.AdminListen = "127.0.0.1:0" // tests run many nodes at once
		cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "postie.db")
		cfg.Listen, cfg.BehindProxy = tc.listen, tc.behindProxy
		var logs bytes.Buffer
		a, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			if tc.listen == "[::1]:0" {
				continue // no IPv6 loopback here
			}
			t.Fatalf("New(%s): %v", tc.listen, err)
		}
		a.listener.Close()
		a.store.Close()
		warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "POSTIE_BEHIND_PROXY")
		if warned != tc.warn {
			t.Errorf("listen %s, behind proxy %v: warned %v, want %v; logs:\n%s", tc.listen, tc.behindProxy, warned, tc.warn, logs.String())
		}
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
	cfg.AdminListen = "127.0.0.1:0" // tests run many nodes at once
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
