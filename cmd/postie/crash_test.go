package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postie/postie/internal/smtpsink"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite"
)

// TestCrashLosesNothing starts the real binary against a loopback relay, accepts 2,000 messages,
// SIGKILLs the process while it is delivering them, restarts it, and checks that every message
// reached the relay at least once, and that the relay saw no more duplicates than there were
// messages in flight (leased, outcome not yet recorded) when the process died.
func TestCrashLosesNothing(t *testing.T) {
	t.Parallel()
	const total = 2000
	var mu sync.Mutex
	seen := map[string]int{} // Message-ID header → times the relay accepted it
	sink, err := smtpsink.Start(smtpsink.Options{
		// A little latency per message keeps the delivery going for a few seconds.
		Script: func(s smtpsink.Step) smtpsink.Action {
			if s.Stage == "data" {
				return smtpsink.Action{Delay: 2 * time.Millisecond}
			}
			return smtpsink.Action{}
		},
		OnMessage: func(m smtpsink.Message) {
			mu.Lock()
			seen[m.MessageID]++
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()

	dir := t.TempDir()
	const key = "pk_crash_test_key_0123456789"
	env := []string{"POSTIE_API_KEY=" + key, "POSTIE_FROM=crash@postie.example", "POSTIE_SMTP_URL=" + sink.URL() + "&pool=4"}
	p := start(t, dir, env...)
	for sent := 0; sent < total; sent += 500 {
		batch := make([]map[string]any, 500)
		for i := range batch {
			batch[i] = map[string]any{"to": []string{fmt.Sprintf("user%d@example.com", sent+i)},
				"subject": fmt.Sprintf("crash %d", sent+i), "text": "hello", "stream": "broadcast"}
		}
		if code, body := p.request("POST", "/v1/messages/batch", key, map[string]any{"messages": batch}); code != 200 || bytes.Contains(body, []byte(`"error"`)) {
			t.Fatalf("batch: %d %.500s", code, body)
		}
	}

	// Kill it mid-delivery.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sink.WaitCount(ctx, total/4); err != nil {
		t.Fatalf("relay got %d messages: %v", sink.Count(), err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	atKill := sink.Count()
	if atKill >= total {
		t.Fatalf("everything was delivered before the kill (%d); slow the relay down", atKill)
	}

	// What was in flight when it died: leased messages whose outcome was never recorded.
	st, err := sqlite.Open(ctx, filepath.Join(dir, "postie-data", "postie.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inflight, err := st.MessageList(ctx, store.MessageListParams{Statuses: []store.Status{store.StatusSending}, Limit: total})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed with %d messages at the relay and %d in flight", atKill, len(inflight))

	p2 := start(t, dir, env...)
	if err := sink.WaitCount(ctx, total); err != nil {
		t.Fatalf("after the restart the relay has %d of %d messages: %v", sink.Count(), total, err)
	}
	// Let the restarted node finish recording, then check the API agrees.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := p2.request("GET", "/v1/messages?status=queued,sending,deferred&limit=1", key, nil)
		var page struct{ Data []json.RawMessage }
		_ = json.Unmarshal(body, &page)
		if code == 200 && len(page.Data) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages still pending 30s after the relay got them all: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := p2.stop(); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p2.errOut())
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != total {
		t.Fatalf("relay saw %d distinct messages, want %d", len(seen), total)
	}
	// In flight means claimed: the engine keeps a local queue of claimed messages, so some of
	// these had not been handed to the relay yet. A message the relay got twice must be one of
	// them, and got twice at most (one crash, one resend).
	claimed := make(map[string]bool, len(inflight))
	for _, m := range inflight {
		claimed[m.MessageID] = true
	}
	dups := 0
	for id, n := range seen {
		if n > 1 && (!claimed[id] || n > 2) {
			t.Errorf("message %s reached the relay %d times; in flight at the kill: %v", id, n, claimed[id])
		}
		dups += n - 1
	}
	t.Logf("%d duplicates", dups)
	if dups > len(inflight) {
		t.Fatalf("%d duplicates, more than the %d messages in flight at the kill", dups, len(inflight))
	}
}
