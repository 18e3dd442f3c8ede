package app

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres/pgtest"
)

// TestNewPostgresTakesBackItsActionLeases: a node starting on PostgreSQL takes back the event
// actions a previous run of its node id held, and leaves the other nodes'.
func TestNewPostgresTakesBackItsActionLeases(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0" // tests run many nodes at once
	cfg.DatabaseURL = pgtest.URL(t)
	cfg.Listen = "127.0.0.1:0"
	cfg.NodeID = "act_1"
	other, err := OpenStore(t.Context(), cfg, slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	trg := store.Trigger{ID: id.New(id.Trigger), Name: "t", Event: "a.b", Template: "x", To: store.TriggerTo{Contact: true},
		Stream: store.StreamTransactional, Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := other.TriggerCreate(t.Context(), trg); err != nil {
		t.Fatal(err)
	}
	var evs []store.EventIn
	for range 2 {
		evs = append(evs, store.EventIn{
			Event:   store.AppEvent{ID: id.New(id.Event), Name: "a.b", Data: json.RawMessage(`{}`), OccurredAt: now, CreatedAt: now},
			Actions: []store.Action{{ID: id.New(id.Action), TriggerID: trg.ID, DueAt: now}}})
	}
	if _, err := other.EventsAccept(t.Context(), store.EventsAcceptParams{Events: evs, Now: now}); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"act_1/4242/0a1b2c3d4e5f", "act_10/1/aa"} {
		as, err := other.ActionClaim(t.Context(), store.ActionClaimParams{Owner: owner, Limit: 1, Now: now, LeaseUntil: now.Add(time.Hour)})
		if err != nil || len(as) != 1 {
			t.Fatalf("claim: %d %v", len(as), err)
		}
	}
	a, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a.listener.Close()
	a.store.Close()
	as, err := other.ActionClaim(t.Context(), store.ActionClaimParams{Owner: "check", Limit: 10, Now: time.Now().UTC(),
		LeaseUntil: time.Now().Add(time.Hour)})
	if err != nil || len(as) != 1 {
		t.Fatalf("after act_1 started, %d actions free (%v), want its own one", len(as), err)
	}
}
