package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite"
)

// TestBroadcastPausedByComplaints: the real binary, with a bounce domain, sends each broadcast
// recipient's mail from its own bounce address; complaints recorded about them pause the
// broadcast stream at the next check (one runs at start); a transactional message still goes
// out while a broadcast one waits; POST /v1/streams/broadcast/resume lets it go.
func TestBroadcastPausedByComplaints(t *testing.T) {
	t.Parallel()
	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	dir := t.TempDir()
	const key = "test-key-0123456789abcdef"
	env := []string{"POSTIE_SMTP_URL=" + sink.URL(), "POSTIE_API_KEY=" + key, "POSTIE_FROM=News <news@shop.example>",
		"POSTIE_POSTAL_ADDRESS=Shop Inc., 1 Main St", "POSTIE_RATE_MIN_VOLUME=3", "POSTIE_BOUNCE_DOMAIN=bounce.shop.example"}
	send := func(p *proc, stream, to string) string {
		t.Helper()
		code, body := p.request("POST", "/v1/messages", key, map[string]any{"to": []string{to}, "subject": "News",
			"html": "<p>News</p>", "stream": stream})
		var out struct{ ID string }
		if err := json.Unmarshal(body, &out); err != nil || code != 202 {
			t.Fatalf("send: %d %s", code, body)
		}
		return out.ID
	}

	p := start(t, dir, env...)
	var sent []string
	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		sent = append(sent, send(p, store.StreamBroadcast, to))
	}
	for _, id := range sent {
		p.waitStatus(key, id, "sent")
	}
	p.stop()
	for _, m := range sink.Messages() {
		if !strings.HasPrefix(m.From, "b-") || !strings.HasSuffix(m.From, "@bounce.shop.example") {
			t.Errorf("MAIL FROM %q, want a bounce address at bounce.shop.example", m.From)
		}
	}

	// b@ reported it as spam (what the intake records from a feedback report).
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "postie-data", "postie.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.InboundApply(ctx, store.InboundApplyParams{Entry: store.InboundEntry{Channel: store.InboundSMTP, Kind: "arf"},
		Reports: []store.RecipientReport{{MessageID: sent[1], Recipient: "b@example.com", Kind: store.ReportComplaint, Key: "k1",
			Detail: store.ReportDetail{Source: "arf", FeedbackType: "abuse"}}}, Now: time.Now()})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	p = start(t, dir, env...)
	var stream map[string]any
	waitFor(t, 30*time.Second, func() error {
		code, body := p.request("GET", "/v1/streams/broadcast", key, nil)
		stream = nil
		_ = json.Unmarshal(body, &stream)
		if code != 200 || stream["paused"] != true {
			return fmt.Errorf("broadcast not paused: %d %s", code, body)
		}
		return nil
	})
	if stream["pause_reason"] != "complaint_rate" || !strings.Contains(fmt.Sprint(stream["pause_detail"]), "1 complaints, 3 delivered") {
		t.Errorf("pause: %v", stream)
	}
	waiting := send(p, store.StreamBroadcast, "d@example.com")
	reset := send(p, store.StreamTransactional, "e@example.com")
	p.waitStatus(key, reset, "sent")
	if m := p.waitStatus(key, waiting, "queued"); m["attempts"] != 0.0 {
		t.Errorf("the waiting broadcast message: %v", m)
	}
	if code, body := p.request("POST", "/v1/streams/broadcast/resume", key, nil); code != 200 || !strings.Contains(string(body), `"paused":false`) {
		t.Fatalf("resume: %d %s", code, body)
	}
	p.waitStatus(key, waiting, "sent")
	if code, body := p.request("POST", "/v1/streams/broadcast/resume", key, nil); code != 409 {
		t.Errorf("second resume: %d %s", code, body)
	}
	p.stop()
}
