package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// Generate makes a secret (pk_ and 32 random URL-safe characters) and the admin key to store
// for it: named name, created at now, holding only the secret's SHA-256 and its first
// characters. A caller that wants another key sets its Settings before storing it.
func Generate(name string, now time.Time) (secret string, k store.APIKey, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", store.APIKey{}, err
	}
	secret = "pk_" + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, FromSecret(secret, name, now), nil
}

// FromSecret is the stored form of secret, an admin key named name created at now.
func FromSecret(secret, name string, now time.Time) store.APIKey {
	sum := sha256.Sum256([]byte(secret))
	return store.APIKey{ID: id.New(id.APIKey), Name: name, Hash: sum[:], Prefix: secret[:min(8, len(secret))],
		CreatedAt: now.UTC(), Scopes: []string{ScopeAdmin}}
}
