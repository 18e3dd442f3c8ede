// Package apikey checks the API keys clients present, for every way in that takes one (the HTTP
// API's bearer token, the SMTP submission password): the secret's SHA-256 is looked up in the
// store, and a key found is trusted for a few seconds without asking again. It also owns what a
// key allows: its scopes, its sender domains, and its rate limit in messages (a token bucket
// per key on each node).
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

// ErrUnauthorized is a secret that is not a live stored key (never stored, or revoked).
var ErrUnauthorized = errors.New("unauthorized")

// CacheTTL bounds how long a validated API key is trusted without asking the store again, and
// so how long a key revoked in the database (by `postie keys revoke`, on any node) can still
// authenticate on this one. A check is dated before its lookup starts, so a key revoked at t is
// refused from t + CacheTTL on. Short enough for that promise (5 s on every node), long enough
// that a busy client's key is looked up once in a while rather than on every request.
const CacheTTL = 5 * time.Second

// TouchEvery is how often a node records that a key is in use (its last_used_at): at most once
// per key in this time, so that a busy key does not cost a write per request.
const TouchEvery = time.Minute

// Store is the part of the store a Checker reads.
type Store interface {
	APIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error)
	APIKeyTouch(ctx context.Context, id string, at time.Time) error
}

// Checker checks secrets against the stored keys and keeps the node's rate limit buckets. It is
// safe for concurrent use. A node has one, shared by its ways in, so that a key's limit and a
// revocation made on the node hold for all of them.
type Checker struct {
	store   Store
	now     func() time.Time
	keys    sync.Map // sha256 → cached: keys seen recently
	touched sync.Map // key id → time.Time: when this node last recorded its use
	limits  limiter
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
// there is none or it is revoked, or the store's error when it could not say. It records the
// key's use (last_used_at) at most once per TouchEvery; a failure to record is not the caller's.
func (c *Checker) Check(ctx context.Context, secret string) (store.APIKey, error) {
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return store.APIKey{}, ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(secret))
	now := c.now()
	k, err := c.lookup(ctx, sum, now)
	if err != nil {
		return store.APIKey{}, err
	}
	if !k.RevokedAt.IsZero() {
		return store.APIKey{}, ErrUnauthorized
	}
	c.touch(ctx, k.ID, now)
	return k, nil
}

// lookup returns the key of sum, from the cache when it was checked less than CacheTTL ago.
func (c *Checker) lookup(ctx context.Context, sum [sha256.Size]byte, now time.Time) (store.APIKey, error) {
	if v, ok := c.keys.Load(sum); ok {
		if age := now.Sub(v.(cached).checked); age >= 0 && age < CacheTTL {
			return v.(cached).key, nil
		}
	}
	k, err := c.store.APIKeyByHash(ctx, sum[:])
	if errors.Is(err, store.ErrNotFound) {
		c.keys.Delete(sum) // deleted: nothing of it kept
		return store.APIKey{}, ErrUnauthorized
	}
	if err != nil {
		return store.APIKey{}, err
	}
	c.keys.Store(sum, cached{key: k, checked: now})
	return k, nil
}

// touch records the use of key id at now unless this node did less than TouchEvery ago.
func (c *Checker) touch(ctx context.Context, id string, now time.Time) {
	if v, ok := c.touched.Load(id); ok {
		last := v.(time.Time)
		if d := now.Sub(last); d >= 0 && d < TouchEvery {
			return
		}
		if !c.touched.CompareAndSwap(id, last, now) {
			return // another request of the key records it
		}
	} else if _, loaded := c.touched.LoadOrStore(id, now); loaded {
		return
	}
	if err := c.store.APIKeyTouch(ctx, id, now); err != nil {
		c.touched.Delete(id) // the next request tries again
	}
}

// Revoked makes this node refuse k (a key just revoked, with its hash) at once, rather than
// within CacheTTL.
func (c *Checker) Revoked(k store.APIKey) {
	if len(k.Hash) != sha256.Size || k.RevokedAt.IsZero() {
		return
	}
	c.keys.Store([sha256.Size]byte(k.Hash), cached{key: k, checked: c.now()})
}

// Reserve takes n messages from k's rate limit bucket on this node, or returns a *RateError
// (nothing taken) when they are not there. Call the Reservation's Cancel when the messages are
// not stored after all.
func (c *Checker) Reserve(k store.APIKey, n int) (Reservation, error) {
	return c.limits.Reserve(k, n, c.now())
}
