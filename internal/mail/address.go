package mail

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Length limits of RFC 5321 §4.5.3.1. The path limit of 256 octets includes the angle
// brackets, which leaves 254 for the address itself.
const (
	maxLocalPart  = 64
	maxDomain     = 255
	maxLabel      = 63
	maxAddress    = 254
	maxInputBytes = 998 // a header line; anything longer cannot be one address we would send to
)

// Address is a validated mailbox. Email is the bare addr-spec with the domain in A-labels
// (an internationalised domain is converted to its xn-- form with the IDNA2008 Lookup profile);
// the local part is kept exactly as given, because RFC 5321 §4.1.2 lets the receiving host treat
// it as case-sensitive. Name is the display name, decoded, possibly empty.
type Address struct{ Name, Email string }

// ParseAddress parses one mailbox as a user would type it: "a@x.com", "Name <a@x.com>",
// "\"Doe, J\" <a@x.com>" or "Ünïcode Name <a@bücher.de>".
//
// It accepts only what postie can send over SMTP without extensions: the addr-spec must match
// the RFC 5321 §4.1.2 Mailbox grammar with a dot-atom local part (quoted and non-ASCII local
// parts are rejected, as are address literals), a domain of at least two LDH labels, and the
// length limits of RFC 5321 §4.5.3.1. Comments, group syntax, several addresses and control
// characters anywhere (including in a display name, also after RFC 2047 decoding) are rejected.
//
// Errors are plain English and name the input and the problem, for example
// `invalid address "a@": missing domain`.
func ParseAddress(s string) (Address, error) {
	if strings.TrimSpace(s) == "" {
		return Address{}, addrError(s, "empty")
	}
	if len(s) > maxInputBytes {
		return Address{}, addrError(s, "longer than 998 octets")
	}
	if !utf8.ValidString(s) {
		return Address{}, addrError(s, "not valid UTF-8")
	}
	if why := controlProblem(s); why != "" {
		return Address{}, addrError(s, why)
	}
	spec, err := rawAddrSpec(s)
	if err != nil {
		return Address{}, addrError(s, err.Error())
	}
	email, err := normalizeMailbox(spec)
	if err != nil {
		return Address{}, addrError(s, err.Error())
	}
	// net/mail handles the display name: quoted strings, escapes, RFC 2047 encoded-words.
	parsed, err := mail.ParseAddress(s)
	if err != nil {
		return Address{}, addrError(s, strings.TrimPrefix(err.Error(), "mail: "))
	}
	if parsed.Address != spec {
		// Our scanner and net/mail disagree about where the address is; refuse rather than guess.
		return Address{}, addrError(s, "unsupported address syntax")
	}
	if err := checkDisplayName(parsed.Name); err != nil {
		return Address{}, addrError(s, err.Error())
	}
	return Address{Name: parsed.Name, Email: email}, nil
}

// String formats the address for a header field (RFC 5322 §3.4 name-addr): the display name is
// quoted when needed, or RFC 2047-encoded when it is not ASCII (or already looks like an
// encoded-word), followed by "<Email>". Without a name it returns "<Email>".
//
// Unlike net/mail.Address.String, encoded display names use only the characters RFC 2047 §5(3)
// allows in a phrase, so a comma in "Müller, Hans" can never be mistaken for an address separator.
func (a Address) String() string {
	switch {
	case a.Name == "":
		return "<" + a.Email + ">"
	case needsEncoding(a.Name):
		return string(appendEncodedWords(nil, a.Name, maxEncodedWord, maxEncodedWord)) + " <" + a.Email + ">"
	default:
		return (&mail.Address{Name: a.Name, Address: a.Email}).String()
	}
}

func addrError(input, why string) error {
	return fmt.Errorf("invalid address %q: %s", input, why)
}

// controlProblem describes the first C0 control or DEL in s, or returns "". HTAB is allowed
// here because it is folding whitespace; it is rejected later inside an addr-spec.
func controlProblem(s string) string {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\r' || c == '\n':
			return "contains a line break"
		case c == 0:
			return "contains a NUL character"
		case c == '\t':
		case c < 0x20 || c == 0x7f:
			return fmt.Sprintf("contains control character %#02x", c)
		}
	}
	return ""
}

// rawAddrSpec returns the addr-spec of a single mailbox exactly as written in s: between the
// angle brackets, or the whole trimmed input. It rejects, outside quoted strings, the syntax
// RFC 5322 allows but we do not send: comments (§3.2.2), groups (§3.4), lists and routes.
func rawAddrSpec(s string) (string, error) {
	inQuote, escaped := false, false
	openAt, closeAt := -1, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inQuote {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inQuote = false
			}
			continue
		}
		if closeAt >= 0 && c != ' ' && c != '\t' {
			return "", fmt.Errorf("unexpected text after '>'")
		}
		switch c {
		case '"':
			inQuote = true
		case '(', ')':
			return "", fmt.Errorf("comments are not allowed")
		case ',':
			return "", fmt.Errorf("multiple addresses are not allowed")
		case ':', ';':
			return "", fmt.Errorf("group syntax and source routes are not allowed")
		case '<':
			if openAt >= 0 {
				return "", fmt.Errorf("unexpected '<'")
			}
			openAt = i
		case '>':
			if openAt < 0 {
				return "", fmt.Errorf("unexpected '>'")
			}
			closeAt = i
		}
	}
	switch {
	case inQuote:
		return "", fmt.Errorf("unterminated quoted string")
	case openAt >= 0 && closeAt < 0:
		return "", fmt.Errorf("missing '>'")
	case openAt >= 0:
		return s[openAt+1 : closeAt], nil
	}
	return strings.TrimSpace(s), nil
}

// normalizeMailbox validates spec against the RFC 5321 §4.1.2 Mailbox grammar (dot-string
// local part, domain of LDH labels) and returns it with the domain converted to A-labels.
func normalizeMailbox(spec string) (string, error) {
	if spec == "" {
		return "", fmt.Errorf("empty")
	}
	if spec[0] == '"' {
		return "", fmt.Errorf("quoted local parts are not supported")
	}
	if strings.ContainsAny(spec, " \t") {
		return "", fmt.Errorf("contains a space")
	}
	at := strings.LastIndexByte(spec, '@')
	if at < 0 {
		return "", fmt.Errorf("missing @")
	}
	local, domain := spec[:at], spec[at+1:]
	if local == "" {
		return "", fmt.Errorf("missing local part")
	}
	if domain == "" {
		return "", fmt.Errorf("missing domain")
	}
	if err := checkLocalPart(local); err != nil {
		return "", err
	}
	ascii, err := domainToASCII(domain)
	if err != nil {
		return "", err
	}
	if n := len(local) + 1 + len(ascii); n > maxAddress {
		return "", fmt.Errorf("longer than %d octets (%d)", maxAddress, n)
	}
	if ascii == domain {
		return spec, nil
	}
	return local + "@" + ascii, nil
}

// checkLocalPart enforces RFC 5321 §4.1.2 Dot-string = Atom *("." Atom) and the 64-octet limit.
func checkLocalPart(local string) error {
	if local[0] == '"' {
		return fmt.Errorf("quoted local parts are not supported")
	}
	if len(local) > maxLocalPart {
		return fmt.Errorf("local part longer than %d octets", maxLocalPart)
	}
	if local[0] == '.' || local[len(local)-1] == '.' {
		return fmt.Errorf("local part starts or ends with a dot")
	}
	if strings.Contains(local, "..") {
		return fmt.Errorf("local part contains consecutive dots")
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case c >= utf8.RuneSelf:
			// RFC 6531 would allow it, but only with SMTPUTF8 end to end (email-rules §5.5).
			return fmt.Errorf("local part contains non-ASCII characters (SMTPUTF8 is not supported)")
		case c != '.' && !isAtext(c):
			return fmt.Errorf("local part contains invalid character %q", c)
		}
	}
	return nil
}

// domainToASCII converts an internationalised domain to A-labels (RFC 5891, idna.Lookup) and
// checks the result against RFC 5321 §4.1.2: sub-domain = Let-dig [Ldh-str], at least two
// labels (a single-label domain is not deliverable on the public Internet), no address literals.
func domainToASCII(domain string) (string, error) {
	if domain[0] == '[' {
		return "", fmt.Errorf("address literals are not supported")
	}
	ascii := domain
	if !isASCII(domain) || hasPunycodeLabel(domain) {
		var err error
		if ascii, err = idna.Lookup.ToASCII(domain); err != nil {
			return "", fmt.Errorf("invalid internationalized domain %q: %v", domain, strings.TrimPrefix(err.Error(), "idna: "))
		}
	}
	if err := checkDomain(ascii); err != nil {
		return "", err
	}
	return ascii, nil
}

func checkDomain(d string) error {
	if len(d) > maxDomain {
		return fmt.Errorf("domain longer than %d octets", maxDomain)
	}
	if strings.HasSuffix(d, ".") {
		return fmt.Errorf("domain ends with a dot")
	}
	labels := 0
	for label := range strings.SplitSeq(d, ".") {
		labels++
		if label == "" {
			return fmt.Errorf("domain contains an empty label")
		}
		if len(label) > maxLabel {
			return fmt.Errorf("domain label %q longer than %d octets", label, maxLabel)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("domain label %q starts or ends with a hyphen", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c == '_':
				return fmt.Errorf("domain label %q contains an underscore", label)
			case c != '-' && !isAlnum(c):
				return fmt.Errorf("domain label %q contains invalid character %q", label, c)
			}
		}
	}
	if labels < 2 {
		return fmt.Errorf("domain %q has no dot", d)
	}
	return nil
}

// checkDisplayName rejects what must never reach a header: invalid UTF-8 and control characters
// (RFC 5322 §2.2, email-rules §5.3). It runs on the decoded name, so "=?utf-8?q?a=0D=0A?=" fails.
func checkDisplayName(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("display name is not valid UTF-8")
	}
	if why := controlProblem(name); why != "" {
		return fmt.Errorf("display name %s", why)
	}
	return nil
}

func hasPunycodeLabel(d string) bool {
	for label := range strings.SplitSeq(d, ".") {
		if len(label) >= 4 && strings.EqualFold(label[:4], "xn--") {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isAtext reports whether c is RFC 5322 §3.2.3 atext (the same set as RFC 5321 atext).
func isAtext(c byte) bool {
	if isAlnum(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
