package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// TestStreamPauseReopen: the driver keeps the paused streams in memory; a store opened again on
// the file (migrated or not) still claims none of a paused stream's messages, nor hands them
// over at accept.
func TestStreamPauseReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "postie.db")
	s := openAt(t, path, Options{Migrate: true})
	m := storetest.Message(t0, func(m *store.Message) { m.Stream = store.StreamBroadcast })
	if _, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.StreamPause(t.Context(), store.StreamPauseParams{Stream: store.StreamBroadcast,
		Reason: store.PauseManual, Now: t0}); err != nil || !ok {
		t.Fatalf("StreamPause = %v, %v", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, migrate := range []bool{false, true} {
		s := openAt(t, path, Options{Migrate: migrate})
		got, err := s.MessageClaim(t.Context(), store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast,
			Limit: 10, Now: t0, LeaseUntil: t0.Add(time.Minute)})
		if err != nil || len(got) != 0 {
			t.Errorf("migrate %v: claimed %d, %v; want none of a paused stream", migrate, len(got), err)
		}
		if !s.paused.has(store.StreamBroadcast) {
			t.Errorf("migrate %v: the handoff does not know the stream is paused", migrate)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
