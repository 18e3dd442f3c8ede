package errtrack

import (
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
)

// Scrub masks the personal data and secrets a free text may carry, so that it can go into a
// log line or an error report: the local part of every email address ("550 5.1.1
// <bob@x.example>: user unknown" → "550 5.1.1 <***@x.example>: user unknown"; the domain stays,
// since which provider refused is what an operator needs), API keys (pk_…), the password of a
// URL (scheme://user:***@host), bearer tokens and the secrets given to AddSecret. Addresses are
// also found percent-encoded (bob%40x.example, in a URL's query). It is safe for concurrent use;
// text with nothing to mask is returned as it is, without allocating.
func Scrub(s string) string {
	if p := secrets.Load(); p != nil {
		for _, secret := range *p {
			if strings.Contains(s, secret) {
				s = strings.ReplaceAll(s, secret, "***")
			}
		}
	}
	if !strings.ContainsAny(s, "@_%") && !strings.Contains(s, "earer") {
		return s
	}
	if strings.IndexByte(s, '@') >= 0 {
		s = urlPassword.ReplaceAllString(s, "${1}***@")
		s = address.ReplaceAllString(s, "***@$1")
	}
	if strings.Contains(s, "%40") {
		s = encodedAddress.ReplaceAllString(s, "***%40$1")
	}
	if strings.Contains(s, "pk_") {
		s = apiKey.ReplaceAllString(s, "pk_***")
	}
	if strings.Contains(s, "earer") {
		s = bearer.ReplaceAllString(s, "${1}***")
	}
	return s
}

// secrets are the texts AddSecret was given, masked wherever they appear.
var secrets atomic.Pointer[[]string]

// minSecret is the length below which AddSecret ignores a secret: masking a short one would
// mask ordinary words.
const minSecret = 8

// AddSecret makes Scrub mask secret wherever it appears from now on: a configured secret that
// has no shape Scrub knows (a POSTIE_API_KEY without the pk_ prefix). Secrets shorter than 8
// characters are ignored.
func AddSecret(secret string) {
	if len(secret) < minSecret {
		return
	}
	for {
		old := secrets.Load()
		var list []string
		if old != nil {
			if slices.Contains(*old, secret) {
				return
			}
			list = slices.Clone(*old)
		}
		list = append(list, secret)
		if secrets.CompareAndSwap(old, &list) {
			return
		}
	}
}

var (
	// address matches the local part and the @ of an address: a dot-atom of RFC 5322 §3.2.3
	// atext (with UTF-8 letters, RFC 6531) or a quoted string, followed by @ and the start of
	// a domain. VERP bounce addresses (bounce+tag=bob=x.example@…) are masked whole, since
	// their local part carries the recipient.
	address = regexp.MustCompile(`(?:"[^"\r\n]*"|[\p{L}\p{N}!#$%&'*+/=?^_` + "`" + `{|}~.-]+)@([\p{L}\p{N}\[])`)
	// encodedAddress is address percent-encoded (in a URL's query or path): the local part's
	// escapes included, then %40 and the start of a domain. = & ? / are left out: unescaped,
	// they separate a query's parameters or a path's segments.
	encodedAddress = regexp.MustCompile(`(?:[\p{L}\p{N}!#$'*+^_` + "`" + `{|}~.-]|%[0-9A-Fa-f]{2})+%40([\p{L}\p{N}\[])`)
	// urlPassword matches the user:password@ of a URL; the user stays.
	urlPassword = regexp.MustCompile(`(://[^:/@\s]*:)[^@/\s]*@`)
	apiKey      = regexp.MustCompile(`pk_[A-Za-z0-9_-]+`)
	bearer      = regexp.MustCompile(`((?i:bearer)\s+)[A-Za-z0-9._~+/=-]+`)
)
