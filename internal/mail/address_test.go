package mail

import (
	"strings"
	"testing"
)

func TestParseAddressAccepts(t *testing.T) {
	t.Parallel()
	label63 := strings.Repeat("d", 63)
	local64 := strings.Repeat("l", 64)
	tests := []struct {
		in   string
		want Address
	}{
		{"a@x.com", Address{"", "a@x.com"}},
		{"  a@x.com  ", Address{"", "a@x.com"}},
		{"<a@x.com>", Address{"", "a@x.com"}},
		{"Name <a@x.com>", Address{"Name", "a@x.com"}},
		{"Name<a@x.com>", Address{"Name", "a@x.com"}},
		// RFC 5322 §3.2.4: a quoted display name may contain specials such as the comma.
		{`"Doe, J" <a@x.com>`, Address{"Doe, J", "a@x.com"}},
		{`"a \"b\" c" <a@x.com>`, Address{`a "b" c`, "a@x.com"}},
		// RFC 6532 UTF-8 display name; RFC 5891 A-label domain.
		{"Ünïcode Name <a@bücher.de>", Address{"Ünïcode Name", "a@xn--bcher-kva.de"}},
		{"user@bücher.de", Address{"", "user@xn--bcher-kva.de"}},
		{"a@BÜCHER.de", Address{"", "a@xn--bcher-kva.de"}}, // IDNA mapping lower-cases
		{"a@xn--bcher-kva.de", Address{"", "a@xn--bcher-kva.de"}},
		// RFC 2047 encoded-word in the display name is decoded.
		{"=?utf-8?q?J=C3=BCrgen?= <j@x.com>", Address{"Jürgen", "j@x.com"}},
		// RFC 5321 §4.1.2: the local part is kept exactly, case included.
		{"First.Last+tag@Example.COM", Address{"", "First.Last+tag@Example.COM"}},
		{"!#$%&'*+-/=?^_`{|}~@x.com", Address{"", "!#$%&'*+-/=?^_`{|}~@x.com"}},
		{"a@sub.do-main.co.uk", Address{"", "a@sub.do-main.co.uk"}},
		{"a@1.example", Address{"", "a@1.example"}},
		// RFC 5321 §4.5.3.1.1 and §4.5.3.1.2 maxima are allowed.
		{local64 + "@x.com", Address{"", local64 + "@x.com"}},
		{"a@" + label63 + ".com", Address{"", "a@" + label63 + ".com"}},
		{"Tab\tName <a@x.com>", Address{"Tab Name", "a@x.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseAddress(tt.in)
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseAddress(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseAddressRejects(t *testing.T) {
	t.Parallel()
	label := strings.Repeat("d", 63)
	tests := []struct {
		in, want string // want is a substring of the error
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"a", "missing @"},
		{"a@", `invalid address "a@": missing domain`},
		{"@x.com", "missing local part"},
		{"Name <>", "empty"},
		// RFC 5321 §4.1.2: no spaces or CFWS in a Mailbox.
		{"a b@x.com", "contains a space"},
		{"Name <a b@x.com>", "contains a space"},
		// RFC 5321 §4.1.2 sub-domain = Let-dig [Ldh-str].
		{"a@-x.com", `domain label "-x" starts or ends with a hyphen`},
		{"a@x-.com", "starts or ends with a hyphen"},
		{"a@x_y.com", "underscore"},
		{"a@x!.com", "invalid character"},
		{"a@localhost", "has no dot"},
		{"a@x.com.", "ends with a dot"},
		{"a@x..com", "empty label"},
		{"a@.x.com", "empty label"},
		{"a@[192.0.2.1]", "address literals"},
		{"a@bü_cher.de", "invalid internationalized domain"},
		// RFC 5321 §4.1.2 Dot-string.
		{"a..b@x.com", "consecutive dots"},
		{".a@x.com", "starts or ends with a dot"},
		{"a.@x.com", "starts or ends with a dot"},
		{`"a b"@x.com`, "quoted local parts"},
		{`"ab"@x.com`, "quoted local parts"},
		{"a\\b@x.com", "invalid character"},
		{"ü@x.com", "non-ASCII"},
		// RFC 5321 §4.5.3.1 limits.
		{strings.Repeat("l", 65) + "@x.com", "local part longer than 64 octets"},
		{"a@" + label + "d.com", "longer than 63 octets"},
		{"a@" + strings.Repeat(label+".", 4) + "com", "domain longer than 255 octets"},
		{strings.Repeat("l", 64) + "@" + strings.Repeat(label[:62]+".", 3) + "com", "longer than 254 octets"},
		{strings.Repeat("x", 999), "longer than 998 octets"},
		// RFC 5322 syntax we do not send.
		{"a@x.com (comment)", "comments are not allowed"},
		{"Name (c) <a@x.com>", "comments are not allowed"},
		{"G: a@x.com;", "group syntax"},
		{"<@route.example:a@x.com>", "source routes"},
		{"a@x.com, b@x.com", "multiple addresses"},
		{"Name <a@x.com> <b@x.com>", "unexpected text after '>'"},
		{"Name <a@x.com> trailing", "unexpected text after '>'"},
		{"Name <a@x.com", "missing '>'"},
		{"a@x.com>", "unexpected '>'"},
		{`"unterminated <a@x.com>`, "unterminated quoted string"},
		// RFC 5322 §2.2 / email-rules §5.3: never let CR, LF or NUL near a header.
		{"Na\r\nme <a@x.com>", "line break"},
		{"Name\r\nBcc: victim@x.com <a@x.com>", "line break"},
		{"a@x.com\n", "line break"},
		{"a@x.com\r", "line break"},
		{"Name\x00 <a@x.com>", "NUL"},
		{"Name\x1b <a@x.com>", "control character"},
		{"a@x.com\x7f", "control character"},
		{"\xff@x.com", "not valid UTF-8"},
		// An encoded-word must not smuggle a line break in after decoding.
		{"=?utf-8?q?a=0D=0AX-Injected=3A_1?= <a@x.com>", "display name contains a line break"},
		{"=?utf-8?q?a=00?= <a@x.com>", "display name contains a NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseAddress(tt.in)
			if err == nil {
				t.Fatalf("ParseAddress(%q) = %#v, want error containing %q", tt.in, got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseAddress(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestAddressString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Address
		want string
	}{
		{Address{"", "a@x.com"}, "<a@x.com>"},
		{Address{"Name", "a@x.com"}, `"Name" <a@x.com>`},
		{Address{"Doe, J", "a@x.com"}, `"Doe, J" <a@x.com>`},
		{Address{`a "b" \c`, "a@x.com"}, `"a \"b\" \\c" <a@x.com>`},
		// RFC 2047 §5(3): in a phrase the Q form may only keep letters, digits and !*+-/ literal,
		// so the comma is encoded.
		{Address{"Müller, Hans", "a@x.com"}, "=?utf-8?q?M=C3=BCller=2C_Hans?= <a@x.com>"},
		// Mostly non-ASCII text is shorter as B.
		{Address{"Иван", "a@x.com"}, "=?utf-8?b?0JjQstCw0L0=?= <a@x.com>"},
		// ASCII that looks like an encoded-word is encoded, so that readers show it as typed.
		{Address{"=?utf-8?q?x?=", "a@x.com"}, "=?utf-8?q?=3D=3Futf-8=3Fq=3Fx=3F=3D?= <a@x.com>"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.in.String(); got != tt.want {
				t.Errorf("%#v.String() = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestAddressRoundTrip checks that String output parses back to the same Address.
func TestAddressRoundTrip(t *testing.T) {
	t.Parallel()
	names := []string{
		"", "Name", "Doe, J", `a "b" \c`, "Ünïcode Name", "Müller, Hans <CEO>", "Иван Петров",
		"山田太郎", "👋 emoji", "=?utf-8?q?x?=", "a;b:c@d",
		strings.Repeat("Jürgen Müller-Lüdenscheidt ", 8),
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := Address{Name: name, Email: "a@xn--bcher-kva.de"}
			got, err := ParseAddress(a.String())
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", a.String(), err)
			}
			if got != a {
				t.Errorf("round trip of %#v via %q = %#v", a, a.String(), got)
			}
		})
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"a@x.com", "Name <a@x.com>", `"Doe, J" <a@x.com>`, "Ünïcode <a@bücher.de>",
		"=?utf-8?q?a=0D=0A?= <a@x.com>", "G: a@x.com;", "a@x.com (c)", `"a\"b" <a@x.com>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(a.Email, " \t\r\n\x00<>\"(),:;") || !isASCII(a.Email) {
			t.Fatalf("ParseAddress(%q) accepted Email %q", s, a.Email)
		}
		if controlProblem(a.Name) != "" {
			t.Fatalf("ParseAddress(%q) accepted Name %q", s, a.Name)
		}
		back, err := ParseAddress(a.String())
		if err != nil || back != a {
			t.Fatalf("round trip of %q via %q = %#v, %v; want %#v", s, a.String(), back, err, a)
		}
	})
}
