package mail

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"
)

// VERP makes and checks per-recipient bounce addresses (email-rules §4.3):
//
//	b-{message}{recipient}-{mac}@{bounce domain}
//
// {message} is the 26 base32 digits of a postie message id (msg_…), {recipient} 8 base32 digits
// naming one of its recipients (an HMAC of the lowercased address, compared against the
// message's recipients), and {mac} 16 base32 digits (80 bits) of an HMAC-SHA-256 over both, so
// a bounce to an address postie did not make cannot name a recipient. Everything is lowercase
// base32, and checking ignores case, since some MTAs change the case of local parts. The local
// part is 53 octets (at most 64, RFC 5321 §4.5.3.1.1).
type VERP struct {
	key []byte
}

// verpEncoding is lowercase Crockford base32, the alphabet of postie ids.
var verpEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

const (
	verpPrefix  = "b-"
	verpIDLen   = 26 // a message id without its "msg_"
	verpTagLen  = 8  // 40 bits naming the recipient
	verpMACLen  = 16 // 80 bits
	verpLocal   = len(verpPrefix) + verpIDLen + verpTagLen + 1 + verpMACLen
	verpIDStart = len(verpPrefix)
)

// NewVERP returns a VERP signing with key (at least 32 bytes; postie keeps one in the database).
func NewVERP(key []byte) (*VERP, error) {
	if len(key) < 32 {
		return nil, errors.New("mail: the bounce address key is shorter than 32 bytes")
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte("postie verp"))
	return &VERP{key: h.Sum(nil)}, nil
}

// Address is the bounce address of recipient rcpt (a bare address, any case) of the message
// messageID (msg_…) at domain. It is "" when messageID is not a postie message id.
func (v *VERP) Address(messageID, rcpt, domain string) string {
	digits, ok := strings.CutPrefix(messageID, "msg_")
	if !ok || len(digits) != verpIDLen {
		return ""
	}
	rid := digits + v.tag(rcpt)
	return verpPrefix + rid + "-" + v.mac(rid) + "@" + strings.ToLower(domain)
}

// Bounce is what a verified bounce address names.
type Bounce struct {
	MessageID string // msg_…
	Domain    string // the bounce domain it was sent to, lowercased
	tag       string
}

// Parse checks a bounce address (local part and domain, any case) and returns what it names.
// ok is false for any address VERP did not make: another shape, or a MAC that does not verify.
// The domain is returned for the caller to check against its bounce domains.
func (v *VERP) Parse(addr string) (b Bounce, ok bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return Bounce{}, false
	}
	local, domain := strings.ToLower(addr[:at]), strings.ToLower(addr[at+1:])
	if len(local) != verpLocal || !strings.HasPrefix(local, verpPrefix) || local[verpLocal-verpMACLen-1] != '-' {
		return Bounce{}, false
	}
	rid := local[verpIDStart : verpIDStart+verpIDLen+verpTagLen]
	if !crockford(rid) {
		return Bounce{}, false
	}
	if !hmac.Equal([]byte(local[verpLocal-verpMACLen:]), []byte(v.mac(rid))) {
		return Bounce{}, false
	}
	return Bounce{MessageID: "msg_" + rid[:verpIDLen], Domain: domain, tag: rid[verpIDLen:]}, true
}

// Recipient returns the address among rcpts (the message's recipients) that b names; none
// when two different addresses share its tag, rather than blame the wrong one.
func (v *VERP) Recipient(b Bounce, rcpts []string) (string, bool) {
	found := ""
	for _, r := range rcpts {
		if v.tag(r) != b.tag {
			continue
		}
		if found != "" && !strings.EqualFold(found, r) {
			return "", false
		}
		found = r
	}
	return found, found != ""
}

func (v *VERP) sum(label, s string) []byte {
	h := hmac.New(sha256.New, v.key)
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write([]byte(s))
	return h.Sum(nil)
}

// tag names a recipient in 40 bits: two recipients of one message share a tag with a chance
// of about 1 in 2 million for 1,000 recipients, and Recipient refuses a tag two of them share.
func (v *VERP) tag(rcpt string) string {
	return verpEncoding.EncodeToString(v.sum("rcpt", strings.ToLower(rcpt))[:5])
}

func (v *VERP) mac(rid string) string {
	return verpEncoding.EncodeToString(v.sum("mac", rid)[:10])
}

// ValidDomain reports whether d is an ASCII domain name with at least two labels (a bounce
// domain, a sending domain in configuration).
func ValidDomain(d string) bool {
	return isASCII(d) && checkDomain(strings.ToLower(d)) == nil
}
