package audience

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/postie/postie/internal/mail"
)

// EmailKey returns the identity of an address: its bare addr-spec, checked as mail.ParseAddress
// checks the addresses postie sends to, with the domain in A-labels and everything lowercased.
// Addresses differing only in case, or in the form of an internationalised domain, have one key.
// The suppression list and the message recipients use the same form, so a contact, its
// suppression and its messages meet on it. A display name ("Ann <ann@example.com>") is not
// part of the key.
func EmailKey(addr string) (string, error) {
	a, err := mail.ParseAddress(addr)
	if err != nil {
		return "", err
	}
	return strings.ToLower(a.Email), nil
}

// ErasedKey is the key of the suppression an erased contact leaves: "erased:" and the hex
// HMAC-SHA-256 of its email key under key. A plain hash of an address could be reversed by
// hashing guesses; without the key, this cannot.
func ErasedKey(key []byte, emailKey string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(emailKey))
	return ErasedPrefix + hex.EncodeToString(m.Sum(nil))
}
