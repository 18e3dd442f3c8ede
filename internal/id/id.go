// Package id makes postie's resource identifiers: a short type prefix and a UUIDv7 in lowercase
// Crockford base32 ("msg_01jd8x…"). The encoding preserves byte order, so ids sort by creation
// time (millisecond precision) and can serve as pagination cursors.
package id

import (
	"strings"

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
