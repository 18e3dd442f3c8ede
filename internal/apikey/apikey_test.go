package apikey_test

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// TestChecker: a stored key is found by its secret and trusted for CacheTTL; a revoked one is
// refused once that has passed; an unknown or empty secret is ErrUnauthorized.
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
	if err := st.APIKeyDelete(t.Context(), "key_1"); err != nil {
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
