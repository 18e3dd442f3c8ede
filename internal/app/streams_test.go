package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres/pgtest"
)

// TestBroadcastPausedByComplaints: complaints about delivered broadcast mail over
// POSTIE_COMPLAINT_PAUSE pause the broadcast stream (a stream.paused webhook is recorded); a
// broadcast message then waits, queued, while a transactional one is delivered; resuming the
// stream through the API delivers the waiting one.
func TestBroadcastPausedByComplaints(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); broadcastPausedByComplaints(t, "") })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); broadcastPausedByComplaints(t, pgtest.URL(t)) })
}

// broadcastPausedByComplaints is TestBroadcastPausedByComplaints on the database of dbURL (""
// for a new SQLite file).
func broadcastPausedByComplaints(t *testing.T, dbURL string) {
	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	a, srv, cfg := runApp(t, sink, func(c *config.Config) {
		c.From, c.PostalAddress = "News <news@shop.example>", "Shop Inc., 1 Main St"
		c.RateMinVolume, c.ComplaintPause = 3, 0.002
		if dbURL != "" {
			c.DatabaseURL = dbURL
		}
	})
	ctx := t.Context()
	send := func(stream, to string) string {
		t.Helper()
		return postID(t, srv.URL+"/v1/messages", cfg.APIKey, map[string]any{"to": []string{to}, "subject": "Hello",
			"html": "<p>News</p>", "stream": stream}, 202)
	}
	waitStatus := func(id string, want store.Status) { t.Helper(); a.waitStatus(t, id, want) }
	var sent []string
	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		id := send(store.StreamBroadcast, to)
		waitStatus(id, store.StatusSent)
		sent = append(sent, id)
	}
	// b@ reports the message as spam (what the intake records from an ARF report).
	if _, err := a.store.InboundApply(ctx, store.InboundApplyParams{
		Entry: store.InboundEntry{Channel: store.InboundSMTP, Kind: "arf"}, Now: time.Now(),
		Reports: []store.RecipientReport{{MessageID: sent[1], Recipient: "b@example.com", Kind: store.ReportComplaint,
			Key: "k1", Detail: store.ReportDetail{Source: "arf", FeedbackType: "abuse"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := a.reputation.Check(ctx); err != nil { // what the minute's check does
		t.Fatal(err)
	}
	resp := get(t, srv.URL+"/v1/streams/broadcast", cfg.APIKey)
	if !strings.Contains(resp, `"paused":true`) || !strings.Contains(resp, `"pause_reason":"complaint_rate"`) {
		t.Fatalf("broadcast after 1 complaint of 3: %s", resp)
	}

	waiting := send(store.StreamBroadcast, "d@example.com")
	reset := send(store.StreamTransactional, "e@example.com")
	waitStatus(reset, store.StatusSent)
	if m, _ := a.store.MessageGet(ctx, waiting); m.Status != store.StatusQueued {
		t.Errorf("broadcast message while paused: %s, want queued", m.Status)
	}

	req, _ := http.NewRequest("POST", srv.URL+"/v1/streams/broadcast/resume", nil)
	req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("resume: %d", res.StatusCode)
	}
	waitStatus(waiting, store.StatusSent)
	if err := a.reputation.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if resp := get(t, srv.URL+"/v1/streams/broadcast", cfg.APIKey); !strings.Contains(resp, `"paused":false`) {
		t.Errorf("paused again at once by the complaint that paused it: %s", resp)
	}
}

// get GETs url with the API key and returns the body of a 200.
func get(t *testing.T, url, key string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b.String())
	}
	return b.String()
}
