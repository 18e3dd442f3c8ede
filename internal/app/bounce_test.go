package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// TestBounceAddressWiring: with POSTIE_BOUNCE_DOMAIN(S) set, every recipient's MAIL FROM is a
// bounce address the node's VERP verifies, at the bounce domain of the sending domain; the
// Message-ID names the message.
func TestBounceAddressWiring(t *testing.T) {
	t.Parallel()
	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	a, srv, cfg := runApp(t, sink, func(c *config.Config) {
		c.From = "Shop <shop@shop.example>"
		c.BounceDomain, c.BounceDomains = "bounce.postie.example", "Billing.example=bounce.billing.example"
	})
	shop := postID(t, srv.URL+"/v1/messages", cfg.APIKey, map[string]any{
		"to": []string{"ann@example.com", "bob@example.com"}, "subject": "Hi", "text": "Hi"}, 202)
	billing := postID(t, srv.URL+"/v1/messages", cfg.APIKey, map[string]any{
		"from": "billing@billing.example", "to": []string{"cy@example.com"}, "subject": "Invoice", "text": "Due"}, 202)
	wctx, wcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer wcancel()
	if err := sink.WaitCount(wctx, 3); err != nil {
		t.Fatal(err)
	}
	for _, m := range sink.Messages() {
		b, ok := a.VERP().Parse(m.From)
		wantID, wantDomain := shop, "bounce.postie.example"
		if m.To[0] == "cy@example.com" {
			wantID, wantDomain = billing, "bounce.billing.example"
		}
		if !ok || b.MessageID != wantID || b.Domain != wantDomain || len(m.To) != 1 {
			t.Errorf("to %v MAIL FROM %q: verifies %v, %+v; want %s at %s", m.To, m.From, ok, b, wantID, wantDomain)
		}
		if got, ok := mail.MessageIDOf(m.MessageID); !ok || got != wantID {
			t.Errorf("Message-ID %q names %q, want %s", m.MessageID, got, wantID)
		}
	}
}

// TestBounceKeyShared: the bounce address key is made once and kept in the database, so every
// node (and every restart) signs and verifies alike.
func TestBounceKeyShared(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t)
	v1, err := loadVERP(t.Context(), st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v2, err := loadVERP(t.Context(), st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const id = "msg_01jd8xq3m5v7w9y0a2c4e6g8hk"
	addr := v1.Address(id, "ann@example.com", "bounce.postie.example")
	if b, ok := v2.Parse(addr); !ok || b.MessageID != id {
		t.Errorf("a second load does not verify %s: %v %+v", addr, ok, b)
	}
	// No bounce domain: no bounce addresses.
	if f := bounceAddress(config.Default(), v1); f != nil {
		t.Error("bounceAddress without a bounce domain is not nil")
	}
	// Only per-domain ones: other senders keep their envelope sender.
	cfg := config.Default()
	cfg.BounceDomains = "shop.example=bounce.shop.example"
	f := bounceAddress(cfg, v1)
	if got := f(id, "ann@example.com", "news@other.example"); got != "" {
		t.Errorf("bounce address of another sending domain: %q", got)
	}
	if got := f(id, "ann@example.com", "news@SHOP.example"); !strings.HasSuffix(got, "@bounce.shop.example") {
		t.Errorf("bounce address of shop.example: %q", got)
	}
}
