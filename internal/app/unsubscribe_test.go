package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/store"
)

// TestOneClickUnsubscribeEndToEnd: a broadcast message's List-Unsubscribe URL is taken from the
// MIME the relay received and POSTed as a mail client does (RFC 8058); the next broadcast to
// that address is suppressed, and a transactional message to it is still delivered.
func TestOneClickUnsubscribeEndToEnd(t *testing.T) {
	t.Parallel()
	t.Run("address", func(t *testing.T) { t.Parallel(); oneClickEndToEnd(t, false) })
	t.Run("contact on a list", func(t *testing.T) { t.Parallel(); oneClickEndToEnd(t, true) })
}

func oneClickEndToEnd(t *testing.T, withList bool) {
	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	a, srv, cfg := runApp(t, sink, func(c *config.Config) {
		c.From, c.PostalAddress, c.PublicURL = "News <news@shop.example>", "Shop Inc., 1 Main St", "https://u.shop.example"
	})

	api := func(path string, body map[string]any, want int) string {
		t.Helper()
		return postID(t, srv.URL+path, cfg.APIKey, body, want)
	}
	listID := ""
	send := func(stream string) string {
		t.Helper()
		body := map[string]any{"to": []string{"Ann <ann@example.com>"}, "subject": "Hello", "html": "<p>News</p>", "stream": stream}
		if listID != "" && stream == store.StreamBroadcast {
			body["list_id"] = listID
		}
		return api("/v1/messages", body, 202)
	}
	if withList {
		listID = api("/v1/lists", map[string]any{"name": "Weekly news"}, 201)
		api("/v1/contacts", map[string]any{"email": "ann@example.com", "lists": []string{listID}}, 201)
	}
	waitStatus := func(id string, want store.Status) { t.Helper(); a.waitStatus(t, id, want) }

	first := send(store.StreamBroadcast)
	waitStatus(first, store.StatusSent)
	var raw string
	for _, m := range sink.Messages() {
		if m.MessageID != "" {
			raw = strings.ReplaceAll(string(m.Body), "\r\n ", " ")
		}
	}
	var link string
	for _, line := range strings.Split(raw, "\r\n") {
		if v, ok := strings.CutPrefix(line, "List-Unsubscribe: <"); ok {
			link, _, _ = strings.Cut(v, ">")
		}
	}
	if !strings.Contains(raw, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n") || !strings.HasPrefix(link, "https://u.shop.example/u/") {
		t.Fatalf("delivered MIME has no one-click List-Unsubscribe:\n%s", raw)
	}
	u, _ := url.Parse(link)

	// The GET shows a page and changes nothing.
	resp, err := http.Get(srv.URL + u.Path)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<form method=\"post\"") {
		t.Fatalf("GET %s: %d %s", u.Path, resp.StatusCode, page)
	}
	scope := store.ScopeBroadcast
	if withList {
		scope = listID
	}
	if _, err := a.store.SuppressionGet(context.Background(), "ann@example.com", scope, time.Time{}); err == nil {
		t.Fatal("the GET unsubscribed")
	}

	// What Gmail sends: no cookies, no auth, a form body; 200 and no redirect.
	resp, err = http.Post(srv.URL+u.Path, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("one-click POST: %d", resp.StatusCode)
	}

	if _, err := a.store.SuppressionGet(context.Background(), "ann@example.com", scope, time.Time{}); err != nil {
		t.Errorf("no %s suppression after the one-click: %v", scope, err)
	}
	if withList {
		subs, err := a.store.ContactSubscriptions(context.Background(), store.ContactRef{EmailKey: "ann@example.com"})
		if err != nil || len(subs) != 1 || subs[0].Status != store.SubscriptionUnsubscribed {
			t.Errorf("subscriptions after the one-click: %+v, %v; want unsubscribed", subs, err)
		}
	}

	second := send(store.StreamBroadcast)
	waitStatus(second, store.StatusSuppressed)
	reset := send(store.StreamTransactional)
	waitStatus(reset, store.StatusSent)
	if n := len(sink.Messages()); n != 2 {
		t.Errorf("the relay got %d messages, want 2 (the first broadcast and the transactional one)", n)
	}
}

// postID POSTs body as JSON to url with the API key, requires the status want, and returns the
// id the answer names.
func postID(t *testing.T, url, key string, body map[string]any, want int) string {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != want {
		t.Fatalf("POST %s %v: %d %v", url, body, resp.StatusCode, err)
	}
	return out.ID
}
