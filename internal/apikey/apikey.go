// Package apikey checks the API keys clients present, for every way in that takes one (the HTTP
// API's bearer token, the SMTP submission password): the secret's SHA-256 is looked up in the
// store, and a key found is trusted for a few seconds without asking again.
package apikey

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/postie/postie/internal/store"
)

// ErrUnauthorized is a secret that is not a stored key (never stored, or revoked).
var ErrUnauthorized = errors.New("unauthorized")

// CacheTTL bounds how long a validated API key is trusted without asking the store again, and
// so how long a key revoked in the database (by `postie keys revoke`, on any node) can still
// authenticate on this one. A check is dated before its lookup starts, so a key revoked at t is
// refused from t + CacheTTL on. Short enough for that promise (5 s on every node), long enough
// that a busy client's key is looked up once in a while rather than on every request.
const CacheTTL = 5 * time.Second

// Store is the part of the store a Checker reads.
type Store interface {
	APIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error)
}

// Checker checks secrets against the stored keys. It is safe for concurrent use.
type Checker struct {
	store Store
	now   func() time.Time
	keys  sync.Map // sha256 → cached: keys seen recently
}

type cached struct {
	key     store.APIKey
	checked time.Time
}

// New returns a Checker reading st; now is the clock (nil: time.Now).
func New(st Store, now func() time.Time) *Checker {
	if now == nil {
		now = time.Now
	}
	return &Checker{store: st, now: now}
}

// Check returns the stored key of secret (surrounding space ignored): ErrUnauthorized when
// there is none, or the store's error when it could not say.
func (c *Checker) Check(ctx context.Context, secret string) (store.APIKey, error) {
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return store.APIKey{}, ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(secret))
	now := c.now()
	if v, ok := c.keys.Load(sum); ok {
		if age := now.Sub(v.(cached).checked); age >= 0 && age < CacheTTL {
			return v.(cached).key, nil
		}
	}
	k, err := c.store.APIKeyByHash(ctx, sum[:])
	if errors.Is(err, store.ErrNotFound) {
		c.keys.Delete(sum) // revoked: nothing of it kept
		return store.APIKey{}, ErrUnauthorized
	}
	if err != nil {
		return store.APIKey{}, err
	}
	c.keys.Store(sum, cached{key: k, checked: now})
	return k, nil
}
