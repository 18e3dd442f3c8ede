package audience

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Purpose says what a token lets its holder do.
type Purpose byte

// Token purposes.
const (
	PurposeUnsubscribe Purpose = 1 // the List-Unsubscribe link: one click leaves the message's list
	PurposePreferences Purpose = 2 // the preference page of a contact
	PurposeConfirm     Purpose = 3 // a double opt-in confirmation; expires (ConfirmValidity)
)

// ConfirmValidity is how long a confirmation link works.
const ConfirmValidity = 7 * 24 * time.Hour

// Token is what a signed link carries. ContactID or Address (or both) name the person.
type Token struct {
	Purpose   Purpose
	ContactID string    // ctc_…, "" when the link was made for an address
	Address   string    // the recipient's email key (lowercased, A-label domain)
	ListID    string    // the list the message was sent for, "" for none
	MessageID string    // msg_… the link was sent in, "" when none
	Expires   time.Time // zero: never (unsubscribe links must keep working)
}

// Token errors. A caller shows both the same way: nothing about the token's content is told.
var (
	ErrBadToken     = errors.New("invalid link")
	ErrExpiredToken = errors.New("the link has expired")
)

// Token wire format, base64url without padding:
//
//	version (1) | len(key id) (1) | key id | tag (16) | sealed content
//
// content = purpose (1) | expiry (uvarint unix seconds, 0 for none) | then, each as uvarint
// length and bytes, contact id, address, list id, message id. tag is HMAC-SHA-256 under the
// key's MAC subkey of version, key id and content, cut to 128 bits: unforgeable without the key.
// The content is sealed with AES-256-CTR under the key's encryption subkey with the tag as IV
// (a synthetic IV: the same content gives the same token), so a link shows no address, id or
// list to whoever sees it (logs, proxies).
const (
	tokenVersion = 1
	tagSize      = 16
	maxTokenLen  = 2048
)

// Seal returns the token for t, signed with the signing key.
func (ks *Keys) Seal(t Token) string {
	content := make([]byte, 0, 128)
	content = append(content, byte(t.Purpose))
	var exp uint64
	if !t.Expires.IsZero() {
		exp = uint64(max(t.Expires.Unix(), 1))
	}
	content = binary.AppendUvarint(content, exp)
	for _, f := range []string{t.ContactID, t.Address, t.ListID, t.MessageID} {
		content = binary.AppendUvarint(content, uint64(len(f)))
		content = append(content, f...)
	}
	k := ks.sign
	head := append([]byte{tokenVersion, byte(len(k.id))}, k.id...)
	tag := tokenTag(k, head, content)
	out := make([]byte, 0, len(head)+tagSize+len(content))
	out = append(append(out, head...), tag...)
	sealed := make([]byte, len(content))
	tokenStream(k, tag).XORKeyStream(sealed, content)
	return base64.RawURLEncoding.EncodeToString(append(out, sealed...))
}

// Open verifies s and returns its token: ErrBadToken when it is malformed, truncated, altered,
// or signed by a key that is not among ks; ErrExpiredToken when its expiry is not after now.
func (ks *Keys) Open(s string, now time.Time) (Token, error) {
	if len(s) > maxTokenLen {
		return Token{}, ErrBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < 2 || raw[0] != tokenVersion {
		return Token{}, ErrBadToken
	}
	n := int(raw[1])
	if len(raw) < 2+n+tagSize+1 {
		return Token{}, ErrBadToken
	}
	k, ok := ks.byID[string(raw[2:2+n])]
	if !ok {
		return Token{}, ErrBadToken
	}
	head, tag, sealed := raw[:2+n], raw[2+n:2+n+tagSize], raw[2+n+tagSize:]
	content := make([]byte, len(sealed))
	tokenStream(k, tag).XORKeyStream(content, sealed)
	if !hmac.Equal(tag, tokenTag(k, head, content)) {
		return Token{}, ErrBadToken
	}
	t, ok := decodeContent(content)
	if !ok {
		return Token{}, ErrBadToken
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return Token{}, ErrExpiredToken
	}
	return t, nil
}

func decodeContent(c []byte) (Token, bool) {
	t := Token{Purpose: Purpose(c[0])}
	if t.Purpose < PurposeUnsubscribe || t.Purpose > PurposeConfirm {
		return Token{}, false
	}
	c = c[1:]
	exp, n := binary.Uvarint(c)
	if n <= 0 || exp > 1<<40 {
		return Token{}, false
	}
	if exp > 0 {
		t.Expires = time.Unix(int64(exp), 0).UTC()
	}
	c = c[n:]
	for _, f := range []*string{&t.ContactID, &t.Address, &t.ListID, &t.MessageID} {
		l, n := binary.Uvarint(c)
		if n <= 0 || l > uint64(len(c)-n) {
			return Token{}, false
		}
		*f = string(c[n : n+int(l)])
		c = c[n+int(l):]
	}
	if len(c) != 0 || t.ContactID == "" && t.Address == "" {
		return Token{}, false
	}
	return t, true
}

func tokenTag(k key, head, content []byte) []byte {
	h := hmac.New(sha256.New, k.mac)
	h.Write(head)
	h.Write(content)
	return h.Sum(nil)[:tagSize]
}

func tokenStream(k key, iv []byte) cipher.Stream {
	b, err := aes.NewCipher(k.enc)
	if err != nil {
		panic("audience: " + err.Error()) // k.enc is always 32 bytes
	}
	return cipher.NewCTR(b, iv)
}
