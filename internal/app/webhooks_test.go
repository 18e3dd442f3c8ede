package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres/pgtest"
)

// verifySignature is the Standard Webhooks verification, written from the specification.
func verifySignature(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if b64, ok := strings.CutPrefix(sig, "v1,"); ok {
			if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, mac.Sum(nil)) {
				return true
			}
		}
	}
	return false
}

// TestWebhooksServed: a node with POSTIE_WEBHOOK_ALLOW=loopback and POSTIE_WEBHOOK_ALLOW_HTTP
// accepts an endpoint on loopback, and a message it delivers is reported there, signed; without
// them, the same URL is refused.
func TestWebhooksServed(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 10)
	bodies := make(chan []byte, 10)
	rv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer rv.Close()

	cfg := config.Default()

	cfg.AdminListen = "127.0.0.1:0" // tests run many nodes at once
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "postie.db")
	cfg.Listen, cfg.APIKey, cfg.From = "127.0.0.1:0", "test-key-0123456789abcdef", "shop@example.com"
	strict := cfg
	cfg.WebhookAllow, cfg.WebhookAllowHTTP = "loopback", true
	a, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	call := func(path string, body any) map[string]any {
		t.Helper()
		j, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", "http://"+a.Addr()+path, bytes.NewReader(j))
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	endpoint := call("/v1/webhooks", map[string]any{"url": rv.URL + "/hook", "types": []string{"message.sent"}})
	msg := call("/v1/messages", map[string]any{"to": []string{"Ann <ann@example.com>"}, "subject": "hi", "text": "hi",
		"tags": []string{"welcome"}})
	select {
	case r := <-got:
		body := <-bodies
		if !verifySignature(endpoint["secret"].(string), r.Header, body) {
			t.Errorf("the signature does not verify: %v", r.Header)
		}
		var p struct {
			Type string
			Data struct {
				MessageID string `json:"message_id"`
				Recipient string
				Tags      []string
			}
		}
		if err := json.Unmarshal(body, &p); err != nil || p.Type != "message.sent" || p.Data.MessageID != msg["id"] ||
			p.Data.Recipient != "ann@example.com" || len(p.Data.Tags) != 1 || !strings.HasPrefix(r.UserAgent(), "postie-webhooks/") {
			t.Errorf("payload %s (%v), user agent %q", body, err, r.UserAgent())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook arrived")
	}

	// The same URL, refused by a node with the default policy.
	s := strict
	s.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "postie.db")
	b, err := New(t.Context(), s, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.listener.Close(); b.store.Close() }()
	req := httptest.NewRequest("POST", "/v1/webhooks", strings.NewReader(`{"url":"`+rv.URL+`","types":["message.sent"]}`))
	req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	b.Handler().ServeHTTP(w, req)
	if w.Code != 422 || !strings.Contains(w.Body.String(), "body.url") {
		t.Errorf("default policy: %d %s", w.Code, w.Body)
	}
}

// TestNewPostgresTakesBackItsWebhookLeases: a node starting on PostgreSQL takes back the webhook
// deliveries a previous run of its node id held, and leaves the other nodes'.
func TestNewPostgresTakesBackItsWebhookLeases(t *testing.T) {
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
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := other.WebhookCreate(t.Context(), store.WebhookEndpoint{ID: id.New(id.Webhook), URL: "https://hooks.example.com/",
		Types: []string{store.WebhookMessageSent}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Enabled: true,
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	msgs := acceptClaimed(t, other, "mta", "mta")
	for _, m := range msgs {
		if n, err := other.MessageFinish(t.Context(), now, []store.MessageFinishParams{{ID: m, Owner: "mta",
			Status: store.StatusSent, Attempts: 1, SentAt: now, Events: []store.Event{{Type: store.EventSent, At: now}}}}); err != nil || n != 1 {
			t.Fatalf("finish: %d %v", n, err)
		}
	}
	owners := []string{"web_1/4242/0a1b2c3d4e5f", "web_10/1/aa"}
	for _, owner := range owners {
		ds, err := other.WebhookClaim(t.Context(), store.WebhookClaimParams{Owner: owner, Limit: 1, Now: now.Add(time.Second),
			LeaseUntil: now.Add(time.Hour)})
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim: %d %v", len(ds), err)
		}
	}
	a, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a.listener.Close()
	a.store.Close()
	ds, err := other.WebhookClaim(t.Context(), store.WebhookClaimParams{Owner: "check", Limit: 10, Now: time.Now().UTC(),
		LeaseUntil: time.Now().Add(time.Hour)})
	if err != nil || len(ds) != 1 {
		t.Fatalf("after web_1 started, %d deliveries free (%v), want its own one", len(ds), err)
	}
}
