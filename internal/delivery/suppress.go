package delivery

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
)

// Suppression scopes at delivery. A transactional message is stopped only by global
// suppressions, so leaving a newsletter never blocks a password reset; a broadcast message by
// global, broadcast and its own list's ones. An erased person's suppression is keyed by an HMAC
// of their address (Config.ErasedKey), so each recipient is also looked up in that form.

// scopesOf returns the suppression scopes that stop m.
func scopesOf(m store.ClaimedMessage) []string {
	if m.Stream != store.StreamBroadcast {
		return []string{store.ScopeGlobal}
	}
	if m.ListID == "" {
		return []string{store.ScopeGlobal, store.ScopeBroadcast}
	}
	return []string{store.ScopeGlobal, store.ScopeBroadcast, m.ListID}
}

// suppressions is what one look-up found for a set of messages.
type suppressions struct {
	found  map[string][]store.Suppression // by lowercased address (or erased key)
	erased map[string]string              // lowercased recipient → its erased key
}

// lookupSuppressions finds, in one query, the suppressions of every recipient of msgs in any
// scope that stops one of them.
func (e *Engine) lookupSuppressions(ctx context.Context, msgs []store.ClaimedMessage, now time.Time) (suppressions, error) {
	var (
		emails, scopes []string
		erased         map[string]string
	)
	if e.cfg.ErasedKey != nil {
		erased = map[string]string{}
	}
	for _, m := range msgs {
		for _, r := range m.Recipients {
			emails = append(emails, r)
			if erased != nil {
				lr := strings.ToLower(r)
				if _, done := erased[lr]; !done {
					k := e.cfg.ErasedKey(lr)
					erased[lr] = k
					emails = append(emails, k)
				}
			}
		}
		for _, sc := range scopesOf(m) {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	found, err := e.cfg.Store.SuppressionMatch(ctx, emails, scopes, now)
	return suppressions{found: found, erased: erased}, err
}

// suppressedIn returns the suppression in one of scopes (scopesOf the message) that stops the
// recipient r, if any.
func (s suppressions) suppressedIn(scopes []string, r string) (store.Suppression, bool) {
	if len(s.found) == 0 {
		return store.Suppression{}, false
	}
	lr := strings.ToLower(r)
	keys := []string{lr}
	if k := s.erased[lr]; k != "" {
		keys = append(keys, k)
	}
	for _, key := range keys {
		for _, sup := range s.found[key] {
			if slices.Contains(scopes, sup.Scope) {
				return sup, true
			}
		}
	}
	return store.Suppression{}, false
}
