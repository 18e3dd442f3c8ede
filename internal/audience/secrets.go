package audience

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/postie/postie/internal/store"
)

// Key is one key that signs or verifies tokens. ID travels in every token it signs, so a
// token keeps verifying after a rotation for as long as its key is still among the Keys.
type Key struct {
	ID     string
	Secret []byte
}

// Names of the secrets kept in the database (store.Secrets).
const (
	secretSigning = "token_signing_key" // signs when no key is configured; verifies always
	secretErasure = "erasure_key"       // keys erased addresses; never rotated
	autoKeyID     = "auto"              // the id of the signing key kept in the database
	secretSize    = 32
)

// Keys are the keys of a node: the configured ones (the first signs), then the key kept in the
// database, which signs when none is configured and verifies always (so links sent before a
// key was first configured keep working). It also holds the key of erased addresses. A Keys is
// immutable and safe for concurrent use. Its secrets are never logged or formatted.
type Keys struct {
	sign    key
	byID    map[string]key
	erasure []byte
}

// key is a Key with its derived subkeys: one authenticates tokens (HMAC-SHA-256), the other
// hides their content (AES-256).
type key struct {
	id       string
	mac, enc []byte
}

func deriveKey(k Key) key {
	sub := func(label string) []byte {
		h := hmac.New(sha256.New, k.Secret)
		h.Write([]byte("postie token " + label))
		return h.Sum(nil)
	}
	return key{id: k.ID, mac: sub("mac"), enc: sub("enc")}
}

// LoadKeys builds the Keys of a node from the configured keys (may be none) and the secrets
// kept in the database, generating those once: every node, and every restore of the database,
// gets the same ones.
func LoadKeys(ctx context.Context, st store.Secrets, configured []Key, now time.Time) (*Keys, error) {
	auto, err := secretGetOrCreate(ctx, st, secretSigning, now)
	if err != nil {
		return nil, err
	}
	erasure, err := secretGetOrCreate(ctx, st, secretErasure, now)
	if err != nil {
		return nil, err
	}
	return NewKeys(append(configured, Key{ID: autoKeyID, Secret: auto}), erasure)
}

// NewKeys returns Keys signing with the first of keys and verifying with all of them; erasure
// keys erased addresses (ErasedKey). Ids must be distinct and non-empty, secrets at least 32
// bytes.
func NewKeys(keys []Key, erasure []byte) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("audience: no signing key")
	}
	if len(erasure) < secretSize {
		return nil, errors.New("audience: the erasure key is too short")
	}
	ks := &Keys{byID: map[string]key{}, erasure: erasure}
	for i, k := range keys {
		switch {
		case k.ID == "" || len(k.ID) > 255:
			return nil, fmt.Errorf("audience: key %d has no id", i+1)
		case len(k.Secret) < secretSize:
			return nil, fmt.Errorf("audience: key %s is shorter than %d bytes", k.ID, secretSize)
		}
		if _, dup := ks.byID[k.ID]; dup {
			return nil, fmt.Errorf("audience: key id %s is used twice", k.ID)
		}
		ks.byID[k.ID] = deriveKey(k)
		if i == 0 {
			ks.sign = ks.byID[k.ID]
		}
	}
	return ks, nil
}

// SigningKeyID is the id of the key new tokens are signed with.
func (ks *Keys) SigningKeyID() string { return ks.sign.id }

// ErasedKey is the form an erased person's address takes in the suppression list: "erased:"
// and the hex HMAC-SHA-256 of their email key under the erasure key. The key never rotates, so
// an erasure is honoured for as long as the database lives; it is kept in the database (not in
// the configuration) so that it travels with the suppressions it keys.
func (ks *Keys) ErasedKey(emailKey string) string { return ErasedKey(ks.erasure, emailKey) }

// ErasureKey is the key of erased addresses (Config.ErasureKey).
func (ks *Keys) ErasureKey() []byte { return ks.erasure }

// ErasedPrefix begins the address of every erased person's suppression.
const ErasedPrefix = "erased:"

// String hides the secrets from any formatting.
func (ks *Keys) String() string { return "audience.Keys{signing: " + ks.sign.id + "}" }

func secretGetOrCreate(ctx context.Context, st store.Secrets, name string, now time.Time) ([]byte, error) {
	fresh := make([]byte, secretSize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("audience: generating the %s: %w", name, err)
	}
	v, err := st.SecretGetOrCreate(ctx, name, fresh, now)
	if err != nil {
		return nil, fmt.Errorf("audience: loading the %s: %w", name, err)
	}
	if len(v) < secretSize {
		return nil, fmt.Errorf("audience: the stored %s is too short", name)
	}
	return v, nil
}
