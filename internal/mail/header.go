package mail

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	maxHeaderName = 76  // keeps "Name: x" within one RFC 5322 §2.1.1 78-character line
	maxLine       = 998 // RFC 5322 §2.1.1: "MUST be no more than 998 characters" excluding CRLF
	// foldAt is where Build folds header lines. RFC 5322 §2.1.1 says SHOULD ≤ 78, and RFC 2047 §2
	// limits a line that contains an encoded-word to 76.
	foldAt = 76
)

// CheckHeaderName reports whether name may be used for a custom header field: RFC 5322 §2.2
// field-name = 1*ftext, where ftext is printable US-ASCII 33–126 except ':', at most 76
// characters, and not on the deny-list of IsForbiddenHeader.
func CheckHeaderName(name string) error {
	if name == "" {
		return fmt.Errorf("header name is empty")
	}
	if len(name) > maxHeaderName {
		return fmt.Errorf("header name %q is longer than %d characters", name, maxHeaderName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return fmt.Errorf("header name %q contains invalid character %q", name, c)
		}
	}
	if IsForbiddenHeader(name) {
		return fmt.Errorf("header %q cannot be set as a custom header", name)
	}
	return nil
}

// forbiddenHeaders are set by postie itself (email-rules §5.3), or by the MTAs on the way: the
// trace and authentication results a receiver trusts (Received, Received-SPF RFC 7208 §9.1,
// Authentication-Results RFC 8601, Delivered-To and X-Original-To written at final delivery),
// Return-Receipt-To (an obsolete request for delivery receipts from every MTA on the way), and
// TLS-Required (RFC 8689: "No" asks the relays to ignore the recipient's MTA-STS and DANE
// policies, which a message handed over an API must not be able to turn off).
var forbiddenHeaders = [...]string{
	"from", "to", "cc", "bcc", "date", "message-id", "sender", "return-path", "mime-version",
	"dkim-signature", "feedback-id", "received", "reply-to", "subject",
	"received-spf", "authentication-results", "delivered-to", "x-original-to", "return-receipt-to",
	"tls-required",
}

// forbiddenPrefixes deny whole families: every Content-* field describes the MIME structure
// Build writes, List-Unsubscribe* must be postie's own (RFC 8058, covered by DKIM), ARC-* are the
// seals of the relays that handled a message (RFC 8617), and Resent-* say who re-sent it
// (RFC 5322 §3.6.6), which postie does not do.
var forbiddenPrefixes = [...]string{"content-", "list-unsubscribe", "arc-", "resent-"}

// IsForbiddenHeader reports, case-insensitively, whether name is a header field that callers may
// not set: From, To, Cc, Bcc, Date, Message-ID, Sender, Return-Path, MIME-Version, Content-*,
// DKIM-Signature, List-Unsubscribe*, Feedback-ID, Received, Reply-To, Subject, Received-SPF,
// Authentication-Results, ARC-*, Delivered-To, X-Original-To, Resent-*, Return-Receipt-To and
// TLS-Required.
func IsForbiddenHeader(name string) bool {
	for _, f := range forbiddenHeaders {
		if strings.EqualFold(name, f) {
			return true
		}
	}
	for _, p := range forbiddenPrefixes {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}

// CheckHeaderValue reports whether v may be written as (the unfolded) value of a header field:
// no CR, LF, NUL or other C0 control except HTAB, no DEL (RFC 5322 §2.2, email-rules §5.3: these
// are rejected, never stripped), valid UTF-8, and at most 998 octets (RFC 5322 §2.1.1).
func CheckHeaderValue(v string) error {
	if len(v) > maxLine {
		return fmt.Errorf("header value is longer than %d octets", maxLine)
	}
	if why := controlProblem(v); why != "" {
		return fmt.Errorf("header value %s", why)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("header value is not valid UTF-8")
	}
	return nil
}

// needsEncoding reports whether text for an unstructured field or a phrase must be written as
// RFC 2047 encoded-words: it is not ASCII, or it contains "=?", which a reader would otherwise
// decode as an encoded-word the sender never wrote.
func needsEncoding(s string) bool {
	return !isASCII(s) || strings.Contains(s, "=?")
}

const (
	maxEncodedWord = 75 // RFC 2047 §2
	qPrefix        = "=?utf-8?q?"
	bPrefix        = "=?utf-8?b?"
	wordOverhead   = len(qPrefix) + len("?=")
)

// minFirstWord is the shortest first encoded-word a field is given room for: the prefix, "?="
// and one character in either encoding.
const minFirstWord = wordOverhead + 12

// appendEncodedWords appends s as RFC 2047 encoded-words separated by single spaces, each
// holding whole UTF-8 characters (§5: a multi-octet character must not be split across words):
// the first at most first characters long, the others at most rest (both at most 75, §2, and at
// least minFirstWord). A field gives its first word the room left on its first line, so the
// line is not folded right after "Name:": a reader would keep the whitespace of that fold
// (Python's email reads such a Subject with a leading space). It uses Q, which keeps Latin text
// readable, unless more than two thirds of the octets would need escaping (Cyrillic, Greek,
// CJK), where B is much shorter. The Q form writes literally only the characters §5(3) allows in
// a phrase, so the result is valid in Subject, in display names and inside a quoted parameter.
func appendEncodedWords(dst []byte, s string, first, rest int) []byte {
	escaped := 0
	for i := 0; i < len(s); i++ {
		if !qLiteral(s[i]) && s[i] != ' ' {
			escaped++
		}
	}
	if 3*escaped > 2*len(s) {
		return appendBWords(dst, s, first, rest)
	}
	return appendQWords(dst, s, first, rest)
}

// firstWord is the length allowed to the first encoded-word of a field value that starts right
// after "name: ": what is left of its first line, or a whole word when that is too little (the
// line is then folded after the colon).
func firstWord(name string) int {
	if n := foldAt - len(name) - len(": "); n >= minFirstWord {
		return min(n, maxEncodedWord)
	}
	return maxEncodedWord
}

func appendQWords(dst []byte, s string, first, rest int) []byte {
	const hex = "0123456789ABCDEF"
	dst = append(dst, qPrefix...)
	limit := first
	n := 0 // encoded characters in the current word
	for _, r := range s {
		size := 0
		var buf [utf8.UTFMax]byte
		w := utf8.EncodeRune(buf[:], r)
		for _, c := range buf[:w] {
			if qLiteral(c) || c == ' ' {
				size++
			} else {
				size += 3
			}
		}
		if n > 0 && wordOverhead+n+size > limit {
			dst = append(dst, "?= "...)
			dst = append(dst, qPrefix...)
			n, limit = 0, rest
		}
		for _, c := range buf[:w] {
			switch {
			case c == ' ':
				dst = append(dst, '_')
			case qLiteral(c):
				dst = append(dst, c)
			default:
				dst = append(dst, '=', hex[c>>4], hex[c&0x0f])
			}
		}
		n += size
	}
	return append(dst, "?="...)
}

func appendBWords(dst []byte, s string, first, rest int) []byte {
	// In a word of 75 characters, 60 base64 characters fit between the prefix and "?=", and
	// encode 45 octets; at minFirstWord, 12 characters encode 9, room for any character.
	limit := first
	for i := 0; s != ""; i++ {
		maxChunk := (limit - wordOverhead) / 4 * 3
		end := len(s)
		if end > maxChunk {
			end = maxChunk
			for end > 0 && !utf8.RuneStart(s[end]) {
				end--
			}
		}
		if i > 0 {
			dst = append(dst, ' ')
		}
		limit = rest
		dst = append(dst, bPrefix...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(s[:end]))
		dst = append(dst, "?="...)
		s = s[end:]
	}
	return dst
}

// qLiteral reports whether c may appear unencoded in a Q encoded-word in a phrase (RFC 2047 §5(3):
// letters, digits, "!", "*", "+", "-", "/"); "=", "_" and "?" are always encoded.
func qLiteral(c byte) bool {
	return isAlnum(c) || c == '!' || c == '*' || c == '+' || c == '-' || c == '/'
}

// appendField appends "Name: value" CRLF, folded (RFC 5322 §2.2.3) by inserting CRLF before
// existing whitespace so that lines stay within foldAt characters where the value allows it.
// It never produces a line of only whitespace, and fails if a token too long to fold would make a
// line exceed 998 octets. Callers have already checked name and value.
func appendField(dst []byte, name, value string) ([]byte, error) {
	return appendFolded(dst, name, value, false)
}

// appendMIMEField is appendField for a MIME field whose parameters may be quoted strings
// (Content-Type, Content-Disposition): it does not fold inside one, except between two
// encoded-words (appendNameParam). Readers unfold a quoted parameter differently: Python's
// compat32 parser keeps the CRLF in the file name.
func appendMIMEField(dst []byte, name, value string) ([]byte, error) {
	return appendFolded(dst, name, value, true)
}

// appendFolded is appendField; with quotes, whitespace inside a quoted string folds only between
// encoded-words.
func appendFolded(dst []byte, name, value string, quotes bool) ([]byte, error) {
	lineStart := len(dst)
	dst = append(dst, name...)
	dst = append(dst, ':')
	for i, first := 0, true; i < len(value); first = false {
		// A segment is a run of whitespace followed by a run of non-whitespace. The first one gets
		// the space after the colon when the value does not start with whitespace.
		wsStart := i
		for i < len(value) && isWSP(value[i]) {
			i++
		}
		wordStart := i
		for inQuote := false; i < len(value); i++ {
			c := value[i]
			if isWSP(c) && (!inQuote || strings.HasSuffix(value[:i], "?=") && strings.HasPrefix(value[i+1:], "=?")) {
				break
			}
			switch {
			case !quotes:
			case c == '"':
				inQuote = !inQuote
			case c == '\\' && inQuote && i+1 < len(value):
				i++
			}
		}
		ws, word := value[wsStart:wordStart], value[wordStart:i]
		if first && ws == "" {
			ws = " "
		}
		// Fold before the last whitespace character, so that the continuation line is that
		// character and the word. Right after "Name:" folding only helps if the word then fits.
		col := len(dst) - lineStart
		if word != "" && col+len(ws)+len(word) > foldAt && (!first || 1+len(word) <= foldAt) {
			dst = append(dst, ws[:len(ws)-1]...)
			if len(dst)-lineStart > maxLine {
				return dst, fmt.Errorf("header %s: line longer than %d octets", name, maxLine)
			}
			dst = append(dst, '\r', '\n')
			lineStart = len(dst)
			ws = ws[len(ws)-1:]
		}
		dst = append(dst, ws...)
		dst = append(dst, word...)
	}
	if len(dst)-lineStart > maxLine {
		return dst, fmt.Errorf("header %s: line longer than %d octets", name, maxLine)
	}
	return append(dst, '\r', '\n'), nil
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }
