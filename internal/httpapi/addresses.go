package httpapi

import (
	"net/mail"
	"strings"
)

// displayAddress turns a mailbox stored as written in the header ("=?utf-8?q?J=C3=BCrgen?=
// <j@x.de>", "\"Ada Lovelace\" <ada@x.org>") into the form a person reads and an API client can
// show as is ("Jürgen <j@x.de>", "Ada Lovelace <ada@x.org>"): the display name is decoded from
// RFC 2047 and quoted only where RFC 5322 needs it ("Doe, Jürgen" keeps its quotes, since a comma
// separates addresses). A mailbox with neither an encoded word nor a quoted name is already in
// that form and is returned unchanged, as is one that does not parse.
func displayAddress(s string) string {
	if !strings.Contains(s, "=?") && !strings.Contains(s, `"`) {
		return s
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name == "" {
		return s
	}
	return displayName(a.Name) + " <" + a.Address + ">"
}

// displayAddresses is displayAddress of each of as (nil stays nil).
func displayAddresses(as []string) []string {
	if as == nil {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = displayAddress(a)
	}
	return out
}

// displayName is name as an RFC 5322 phrase with RFC 6532 UTF-8 allowed: bare when it is atoms
// (ASCII atext or any non-ASCII character) separated by single spaces, else a quoted string.
func displayName(name string) string {
	bare := !strings.HasPrefix(name, " ") && !strings.HasSuffix(name, " ") && !strings.Contains(name, "  ")
	for _, r := range name {
		if bare && r < 0x80 && r != ' ' && !isAtext(byte(r)) {
			bare = false
		}
	}
	if bare {
		return name
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range name {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// isAtext reports whether c is an RFC 5322 §3.2.3 atext character.
func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
