package mail

import (
	"crypto/rand"
	"encoding/base32"
	"strings"

	"golang.org/x/net/idna"
)

// idEncoding is lower-case RFC 4648 base32 without padding: only atext, so the id is a valid
// RFC 5322 §3.6.4 id-left.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

const (
	midDigits = 26 // a postie message id without its "msg_"
	midRandom = 8  // 40 random bits: two messages never share a Message-ID, even when resent
)

// NewMessageID returns a new Message-ID without angle brackets (email-rules §5.1). For a postie
// message id (msg_…) it is "{the id's 26 digits}.{8 random base32 digits}@{domain}", so a report
// that quotes only the original Message-ID (a complaint without the bounce address) still names
// the message (MessageIDOf); otherwise 128 random bits in lower-case base32. domain should be
// the sending domain, written in A-labels; if it cannot be converted it is used lower-cased,
// and Build rejects the result if it is not a valid id-right.
func NewMessageID(msgID, domain string) string {
	if a, err := idna.Lookup.ToASCII(domain); err == nil {
		domain = a
	} else {
		domain = strings.ToLower(domain)
	}
	if digits, ok := strings.CutPrefix(msgID, "msg_"); ok && len(digits) == midDigits && crockford(digits) {
		var b [5]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+)
		return digits + "." + verpEncoding.EncodeToString(b[:]) + "@" + domain
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:]) + "@" + domain
}

// MessageIDOf returns the postie message id (msg_…) that a Message-ID made by NewMessageID
// carries. header is the field's value, with or without angle brackets and surrounding space;
// the digits are compared case-insensitively. ok is false for any other Message-ID. Anyone can
// write such an id: the caller checks it against the message's stored Message-ID.
func MessageIDOf(header string) (msgID string, ok bool) {
	v := strings.TrimSpace(header)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	left, _, found := strings.Cut(v, "@")
	if !found || len(left) != midDigits+1+midRandom || left[midDigits] != '.' {
		return "", false
	}
	left = strings.ToLower(left)
	digits, random := left[:midDigits], left[midDigits+1:]
	if !crockford(digits) || !crockford(random) {
		return "", false
	}
	return "msg_" + digits, true
}

// crockford reports whether s is lower-case Crockford base32 digits (postie ids).
func crockford(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte("0123456789abcdefghjkmnpqrstvwxyz", s[i]) < 0 {
			return false
		}
	}
	return true
}
