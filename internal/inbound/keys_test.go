package inbound_test

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

// loginWith stores a key with secret and the settings of k, then greets and authenticates with
// it, expecting the AUTH reply to start with want.
func (b *bundle) loginWith(t *testing.T, secret string, k store.APIKey, want string) *client {
	t.Helper()
	sum := sha256.Sum256([]byte(secret))
	k.ID, k.Hash, k.CreatedAt = "key_"+secret, sum[:], t0
	if err := b.store.APIKeyCreate(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	c := b.dial(t)
	c.want("EHLO app.test", "250")
	c.want(plain(secret), want)
	return c
}

// TestSubmissionNeedsSendScope: AUTH with a key lacking the send scope fails naming the scope.
func TestSubmissionNeedsSendScope(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	b.loginWith(t, "pk_read_only", store.APIKey{Scopes: []string{"read", "templates"}},
		`535 5.7.8 Authentication failed: this API key lacks the scope "send"`)
	b.loginWith(t, "pk_admin", store.APIKey{Scopes: []string{"admin"}}, "235")
}

// TestSubmissionSenderDomains: a key with sender domains submits with a From and a MAIL FROM
// in them only (550 5.7.1 naming the domains otherwise, nothing stored); a key without any
// keeps the From at the MAIL FROM domain.
func TestSubmissionSenderDomains(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.loginWith(t, "pk_shop", store.APIKey{Scopes: []string{"send"}, SenderDomains: []string{"shop.example", "news.shop.example"}}, "235")
	msg := func(from string) string {
		return "From: " + from + "\r\nTo: ann@example.com\r\nSubject: s\r\n\r\nbody\r\n"
	}
	for _, tc := range []struct {
		mailFrom, from, want string
	}{
		{"orders@shop.example", "orders@shop.example", "250 2.0.0"},
		{"bounces@shop.example", "News <hi@NEWS.shop.example>", "250 2.0.0"}, // another listed domain than MAIL FROM's
		{"orders@shop.example", "ceo@bank.example", "550 5.7.1 the From field: this API key may send only from shop.example, news.shop.example, not from bank.example"},
		{"orders@bank.example", "orders@shop.example", "550 5.7.1 MAIL FROM: this API key may send only from shop.example, news.shop.example, not from bank.example"},
		{"a@mail.shop.example", "a@mail.shop.example", "550 5.7.1 the From field: this API key may send only"},
	} {
		if r := c.send(tc.mailFrom, []string{"ann@example.com"}, msg(tc.from)); !strings.HasPrefix(r, tc.want) {
			t.Errorf("MAIL FROM %s, From %s: %q, want %q", tc.mailFrom, tc.from, r, tc.want)
		}
		c.want("RSET", "250")
	}
	if n := len(b.messages(t)); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
}

// TestSubmissionRateLimit: a key's rate limit counts submitted messages: over it, 451 4.7.1
// saying how long to wait, nothing stored; a message refused for another reason costs
// nothing; time refills the bucket.
func TestSubmissionRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.loginWith(t, "pk_slow", store.APIKey{Scopes: []string{"send"}, RateLimit: 0.5, Burst: 2}, "235")
	to := []string{"ann@example.com"}
	bad := "From: ceo@bank.example\r\nTo: ann@example.com\r\nSubject: s\r\n\r\nbody\r\n"
	for i, want := range []string{"250 2.0.0", "550 5.7.1", "250 2.0.0", "451 4.7.1 This API key's rate limit (0.5 messages per second) is used up: try again in 2 seconds"} {
		raw := fmt.Sprintf("From: orders@shop.example\r\nTo: ann@example.com\r\nSubject: %d\r\n\r\nbody\r\n", i)
		if want == "550 5.7.1" {
			raw = bad
		}
		if r := c.send("orders@shop.example", to, raw); !strings.HasPrefix(r, want) {
			t.Errorf("message %d: %q, want %q", i, r, want)
		}
		c.want("RSET", "250")
	}
	b.clock.add(2 * time.Second)
	if r := c.send("orders@shop.example", to, "From: orders@shop.example\r\nTo: ann@example.com\r\nSubject: later\r\n\r\nbody\r\n"); !strings.HasPrefix(r, "250 2.0.0") {
		t.Errorf("after 2 s: %q", r)
	}
	if n := len(b.messages(t)); n != 3 {
		t.Errorf("%d messages stored, want 3", n)
	}
}
