// Package id makes postie's resource identifiers: a short type prefix and a UUIDv7 in lowercase
// Crockford base32 ("msg_01jd8x…"). The encoding preserves byte order, so ids sort by creation
// time (millisecond precision) and can serve as pagination cursors.
package id

import (
	"strings"
	"time"

	"github.com/google/uuid"
)

// Prefixes of postie's resources.
const (
	Message  = "msg"
	APIKey   = "key"
	Contact  = "ctc"
	List     = "lst"
	Import   = "imp"
	Campaign = "cmp"
	Run      = "run"
)

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz" // Crockford, ascending

// New returns a new id with the given prefix, e.g. New(id.Message).
func New(prefix string) string {
	u := uuid.Must(uuid.NewV7())
	var b strings.Builder
	b.Grow(len(prefix) + 1 + 26)
	b.WriteString(prefix)
	b.WriteByte('_')
	// 128 bits → 26 base32 digits; the first digit carries the top 3 bits.
	var acc uint64
	bits := 2 // pad to 130 bits so the encoding is a fixed 26 digits
	for _, c := range u {
		acc = acc<<8 | uint64(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			b.WriteByte(alphabet[(acc>>uint(bits))&31])
		}
	}
	if bits > 0 {
		b.WriteByte(alphabet[(acc<<uint(5-bits))&31])
	}
	return b.String()
}

// Valid reports whether s looks like an id with the given prefix.
func Valid(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(rest) != 26 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if !strings.ContainsRune(alphabet, rune(rest[i])) {
			return false
		}
	}
	return true
}

// Time returns the creation time of an id made by New (millisecond precision), false when s is
// not one.
func Time(s string) (time.Time, bool) {
	i := strings.IndexByte(s, '_')
	if i < 0 || len(s)-i-1 != 26 {
		return time.Time{}, false
	}
	// The first 10 digits are 50 bits: the 2 bits of padding, then UUIDv7's 48-bit Unix
	// milliseconds.
	var v uint64
	for _, c := range []byte(s[i+1 : i+11]) {
		d := strings.IndexByte(alphabet, c)
		if d < 0 {
			return time.Time{}, false
		}
		v = v<<5 | uint64(d)
	}
	return time.UnixMilli(int64(v & (1<<48 - 1))), true
}
