package apikey_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// TestChecker: a stored key is found by its secret and trusted for CacheTTL; a key revoked on
// another node is refused once that has passed; an unknown or empty secret is ErrUnauthorized.
func TestChecker(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	sum := sha256.Sum256([]byte("pk_secret"))
	k := store.APIKey{ID: "key_1", Name: "app", Hash: sum[:], Prefix: "pk_secre", CreatedAt: now}
	if err := st.APIKeyCreate(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	c := apikey.New(st, func() time.Time { return now })
	for _, secret := range []string{"pk_secret", " pk_secret "} {
		if got, err := c.Check(t.Context(), secret); err != nil || got.ID != "key_1" {
			t.Errorf("Check(%q) = %v, %v", secret, got.ID, err)
		}
	}
	for _, secret := range []string{"", "pk_other"} {
		if _, err := c.Check(t.Context(), secret); !errors.Is(err, apikey.ErrUnauthorized) {
			t.Errorf("Check(%q): %v, want ErrUnauthorized", secret, err)
		}
	}
	if _, err := st.APIKeyRevoke(t.Context(), "key_1", now); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(t.Context(), "pk_secret"); err != nil {
		t.Errorf("revoked, within the cache time: %v, want the cached key", err)
	}
	now = now.Add(apikey.CacheTTL)
	if _, err := c.Check(t.Context(), "pk_secret"); !errors.Is(err, apikey.ErrUnauthorized) {
		t.Errorf("revoked, after the cache time: %v, want ErrUnauthorized", err)
	}
}

// TestCheckerRevoked: a key revoked through this node's Checker is refused at once.
func TestCheckerRevoked(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	sum := sha256.Sum256([]byte("pk_secret"))
	if err := st.APIKeyCreate(t.Context(), store.APIKey{ID: "key_1", Hash: sum[:], CreatedAt: now, Scopes: []string{"send"}}); err != nil {
		t.Fatal(err)
	}
	c := apikey.New(st, func() time.Time { return now })
	if _, err := c.Check(t.Context(), "pk_secret"); err != nil {
		t.Fatal(err)
	}
	k, err := st.APIKeyRevoke(t.Context(), "key_1", now)
	if err != nil {
		t.Fatal(err)
	}
	c.Revoked(k)
	if _, err := c.Check(t.Context(), "pk_secret"); !errors.Is(err, apikey.ErrUnauthorized) {
		t.Errorf("revoked on this node: %v, want ErrUnauthorized at once", err)
	}
}

// TestCheckerTouch: a key's use is recorded at most once per TouchEvery on a node.
func TestCheckerTouch(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t)
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	now := t0
	sum := sha256.Sum256([]byte("pk_secret"))
	if err := st.APIKeyCreate(t.Context(), store.APIKey{ID: "key_1", Hash: sum[:], CreatedAt: t0, Scopes: []string{"send"}}); err != nil {
		t.Fatal(err)
	}
	c := apikey.New(st, func() time.Time { return now })
	for _, tc := range []struct {
		at   time.Duration // after t0
		want time.Duration // last_used_at after t0
	}{
		{0, 0},
		{30 * time.Second, 0}, // within TouchEvery of the last record: not written
		{apikey.TouchEvery, apikey.TouchEvery},
		{apikey.TouchEvery + time.Second, apikey.TouchEvery},
	} {
		now = t0.Add(tc.at)
		if _, err := c.Check(t.Context(), "pk_secret"); err != nil {
			t.Fatal(err)
		}
		k, err := st.APIKeyGet(t.Context(), "key_1")
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(tc.want); !k.LastUsedAt.Equal(want) {
			t.Errorf("used at +%s: LastUsedAt = %s, want %s", tc.at, k.LastUsedAt, want)
		}
	}
}

// TestReserve: the rate limit is a token bucket counted in messages: a full bucket lets a burst
// through, an empty one says how long to wait and takes nothing, a request larger than the
// burst never fits, and a cancelled reservation gives its messages back.
func TestReserve(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	now := t0
	c := apikey.New(nil, func() time.Time { return now })
	k := store.APIKey{ID: "key_1", RateLimit: 2, Burst: 10}

	if _, err := c.Reserve(store.APIKey{ID: "key_free"}, 1_000_000); err != nil {
		t.Errorf("a key without limit: %v", err)
	}
	if _, err := c.Reserve(k, 8); err != nil {
		t.Fatalf("8 of a burst of 10: %v", err)
	}
	var re *apikey.RateError
	if _, err := c.Reserve(k, 5); !errors.As(err, &re) || re.Wait != 1500*time.Millisecond || re.RetryAfter() != 2 {
		t.Errorf("5 more with 2 left = %v, want a wait of 1.5 s (Retry-After 2)", err)
	}
	r, err := c.Reserve(k, 2) // the refusal took nothing: 2 are left
	if err != nil {
		t.Fatalf("the 2 left: %v", err)
	}
	r.Cancel()
	if _, err := c.Reserve(k, 2); err != nil {
		t.Errorf("the 2 given back: %v", err)
	}
	if _, err := c.Reserve(k, 11); !errors.As(err, &re) || re.Wait != 0 || re.Burst != 10 {
		t.Errorf("11 with a burst of 10 = %v, want a RateError without wait", err)
	}
	now = t0.Add(5 * time.Second) // refilled at 2 per second, up to the burst
	if _, err := c.Reserve(k, 10); err != nil {
		t.Errorf("10 after 5 s: %v", err)
	}
	// The default burst is a second's worth.
	if b := apikey.Burst(store.APIKey{RateLimit: 2.5}); b != 3 {
		t.Errorf("Burst(2.5/s) = %d, want 3", b)
	}
	if b := apikey.Burst(store.APIKey{RateLimit: 0.1}); b != 1 {
		t.Errorf("Burst(0.1/s) = %d, want 1", b)
	}
}

// TestScopesAndDomains: admin holds every scope; sender domains compare without case, exactly.
func TestScopesAndDomains(t *testing.T) {
	t.Parallel()
	k := store.APIKey{Scopes: []string{"send", "read"}, SenderDomains: []string{"example.com"}}
	admin := store.APIKey{Scopes: []string{"admin"}}
	for _, tc := range []struct {
		k     store.APIKey
		scope string
		want  bool
	}{
		{k, apikey.ScopeSend, true},
		{k, apikey.ScopeRead, true},
		{k, apikey.ScopeTemplates, false},
		{k, apikey.ScopeAdmin, false},
		{admin, apikey.ScopeCampaigns, true},
		{admin, apikey.ScopeAdmin, true},
		{store.APIKey{}, apikey.ScopeRead, false},
	} {
		if got := apikey.Allows(tc.k, tc.scope); got != tc.want {
			t.Errorf("Allows(%v, %s) = %v, want %v", tc.k.Scopes, tc.scope, got, tc.want)
		}
	}
	for domain, ok := range map[string]bool{"example.com": true, "EXAMPLE.com.": true, "mail.example.com": false, "example.org": false} {
		if err := apikey.SenderAllowed(k.SenderDomains, domain); (err == nil) != ok {
			t.Errorf("SenderAllowed(%s) = %v, want allowed %v", domain, err, ok)
		}
	}
	if err := apikey.SenderAllowed(admin.SenderDomains, "anything.example"); err != nil {
		t.Errorf("a key without sender domains: %v", err)
	}
	for in, want := range map[string]string{" Example.COM. ": "example.com", "xn--bcher-kva.example": "xn--bcher-kva.example",
		"": "", "a..b": "", "-a.b": "", "bob@example.com": "", "bücher.example": ""} {
		got, err := apikey.NormalizeDomain(in)
		if (err == nil) != (want != "") || got != want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if err := apikey.CheckScope("sned"); err == nil {
		t.Error("CheckScope(sned) = nil")
	}
}

// TestSettingsNormalize: settings come out in their stored form, and every bad one is named at
// its JSON field.
func TestSettingsNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		in     apikey.Settings
		want   string // the normalized settings, when good
		fields []string
	}{
		{"ordered, deduplicated", apikey.Settings{Scopes: []string{"read", "send", "read"}, SenderDomains: []string{"A.example", "a.example."}},
			"[send read] [a.example] 0 0", nil},
		{"default burst", apikey.Settings{Scopes: []string{"send"}, RateLimit: 7.5}, "[send] [] 7.5 8", nil},
		{"own burst", apikey.Settings{Scopes: []string{"admin"}, RateLimit: 1, Burst: 100}, "[admin] [] 1 100", nil},
		{"no scope", apikey.Settings{}, "", []string{"scopes"}},
		{"bad items", apikey.Settings{Scopes: []string{"send", "all"}, SenderDomains: []string{"x@y.example"}},
			"", []string{"scopes[1]", "sender_domains[0]"}},
		{"negative rate", apikey.Settings{Scopes: []string{"send"}, RateLimit: -1}, "", []string{"rate_limit"}},
		{"burst without rate", apikey.Settings{Scopes: []string{"send"}, Burst: 3}, "", []string{"burst"}},
		{"burst too large", apikey.Settings{Scopes: []string{"send"}, RateLimit: 1, Burst: apikey.MaxBurst + 1}, "", []string{"burst"}},
	} {
		s := tc.in
		ps := s.Normalize()
		var fields []string
		for _, p := range ps {
			fields = append(fields, p.Field)
		}
		if fmt.Sprint(fields) != fmt.Sprint(tc.fields) && !(len(fields) == 0 && len(tc.fields) == 0) {
			t.Errorf("%s: problems at %v, want %v (%v)", tc.name, fields, tc.fields, ps)
		}
		if tc.want != "" {
			if got := fmt.Sprint(s.Scopes, s.SenderDomains, s.RateLimit, s.Burst); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
			}
		}
	}
}
