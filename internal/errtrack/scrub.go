package errtrack

import (
	"regexp"
	"strings"
)

// Scrub masks the personal data and secrets a free text may carry, so that it can go into a
// log line or an error report: the local part of every email address ("550 5.1.1
// <bob@x.example>: user unknown" → "550 5.1.1 <***@x.example>: user unknown"; the domain stays,
// since which provider refused is what an operator needs), API keys (pk_…), the password of a
// URL (scheme://user:***@host) and bearer tokens. It is pure and safe for concurrent use; text
// with nothing to mask is returned as it is, without allocating.
func Scrub(s string) string {
	if !strings.ContainsAny(s, "@_") && !strings.Contains(s, "earer") {
		return s
	}
	if strings.IndexByte(s, '@') >= 0 {
		s = urlPassword.ReplaceAllString(s, "${1}***@")
		s = address.ReplaceAllString(s, "***@$1")
	}
	if strings.Contains(s, "pk_") {
		s = apiKey.ReplaceAllString(s, "pk_***")
	}
	if strings.Contains(s, "earer") {
		s = bearer.ReplaceAllString(s, "${1}***")
	}
	return s
}

var (
	// address matches the local part and the @ of an address: a dot-atom of RFC 5322 §3.2.3
	// atext (with UTF-8 letters, RFC 6531) or a quoted string, followed by @ and the start of
	// a domain. VERP bounce addresses (bounce+tag=bob=x.example@…) are masked whole, since
	// their local part carries the recipient.
	address = regexp.MustCompile(`(?:"[^"\r\n]*"|[\p{L}\p{N}!#$%&'*+/=?^_` + "`" + `{|}~.-]+)@([\p{L}\p{N}\[])`)
	// urlPassword matches the user:password@ of a URL; the user stays.
	urlPassword = regexp.MustCompile(`(://[^:/@\s]*:)[^@/\s]*@`)
	apiKey      = regexp.MustCompile(`pk_[A-Za-z0-9_-]+`)
	bearer      = regexp.MustCompile(`((?i:bearer)\s+)[A-Za-z0-9._~+/=-]+`)
)
