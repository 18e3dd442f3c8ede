package mail

import (
	"mime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckHeaderName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want string // "" = valid, else a substring of the error
	}{
		{"X-Order", ""},
		{"x-order", ""},
		{"In-Reply-To", ""},
		{"References", ""},
		{"List-Id", ""},
		{"X-!#$%&'*+-.^_`|~", ""}, // RFC 5322 §3.6.8 ftext is %d33-57 / %d59-126
		{strings.Repeat("X", 76), ""},
		{"", "empty"},
		{strings.Repeat("X", 77), "longer than 76"},
		{"X Order", "invalid character ' '"},
		{"X-Order:", "invalid character ':'"},
		{"X-Ördér", "invalid character"},
		{"X-\x00", "invalid character"},
		{"X-\r\nBcc", "invalid character"},
		{"X-\x7f", "invalid character"},
		// The deny-list of email-rules §5.3.
		{"From", "cannot be set"},
		{"content-type", "cannot be set"},
		{"Content-Whatever", "cannot be set"},
		{"LIST-UNSUBSCRIBE-POST", "cannot be set"},
		{"DKIM-Signature", "cannot be set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckHeaderName(tt.name)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckHeaderName(%q) = %v, want nil", tt.name, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("CheckHeaderName(%q) = %v, want error containing %q", tt.name, err, tt.want)
			}
		})
	}
}

func TestIsForbiddenHeader(t *testing.T) {
	t.Parallel()
	forbidden := []string{
		"From", "to", "CC", "Bcc", "Date", "Message-ID", "message-id", "Sender", "Return-Path",
		"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
		"Content-ID", "content-x", "DKIM-Signature", "List-Unsubscribe", "List-Unsubscribe-Post",
		"list-unsubscribe-anything", "Feedback-ID", "Received", "Reply-To", "Subject",
		// Trace and authentication headers a sender must not forge.
		"Authentication-Results", "ARC-Seal", "ARC-Message-Signature", "arc-authentication-results",
		"Received-SPF", "Delivered-To", "X-Original-To", "Resent-From", "Resent-To", "resent-message-id",
		"Return-Receipt-To", "TLS-Required",
	}
	allowed := []string{
		"X-Order", "In-Reply-To", "References", "List-Id", "Keywords", "Comments", "Contents",
		"Content", "Froms", "X-From", "Precedence", "Auto-Submitted", "List-Help",
		"Disposition-Notification-To", "X-Arc", "Archived-At", "Resent",
	}
	for _, name := range forbidden {
		if !IsForbiddenHeader(name) {
			t.Errorf("IsForbiddenHeader(%q) = false, want true", name)
		}
	}
	for _, name := range allowed {
		if IsForbiddenHeader(name) {
			t.Errorf("IsForbiddenHeader(%q) = true, want false", name)
		}
	}
}

func TestCheckHeaderValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		want        string // "" = valid, else a substring of the error
	}{
		{"empty", "", ""},
		{"ascii", "A-1", ""},
		{"tab", "a\tb", ""}, // HTAB is WSP (RFC 5322 §2.2)
		{"utf8", "Grüße", ""},
		{"max", strings.Repeat("v", 998), ""},
		{"too long", strings.Repeat("v", 999), "longer than 998"},
		{"CRLF", "a\r\nBcc: x@y.com", "line break"},
		{"LF", "a\nb", "line break"},
		{"CR", "a\rb", "line break"},
		{"NUL", "a\x00b", "NUL"},
		{"ESC", "a\x1bb", "control character"},
		{"DEL", "a\x7fb", "control character"},
		{"invalid UTF-8", "a\xffb", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckHeaderValue(tt.value)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckHeaderValue(%q) = %v, want nil", tt.value, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("CheckHeaderValue(%q) = %v, want error containing %q", tt.value, err, tt.want)
			}
		})
	}
}

// TestEncodedWords checks RFC 2047 output: each encoded-word at most 75 characters (§2), each
// decodable on its own to valid UTF-8 (§5: no character split across words), and the whole
// decoding back to the input.
func TestEncodedWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		scheme   string // "q" or "b"
	}{
		{"latin", "Grüße aus Köln", "q"},
		{"specials", `Müller, Hans <"x"> (y) = ? _`, "q"},
		{"looks encoded", "=?utf-8?q?x?=", "q"},
		{"long latin", strings.Repeat("Grüße aus Köln – ", 12), "q"},
		{"multibyte at word edges", strings.Repeat("ü", 40) + strings.Repeat("€", 40), "b"},
		{"cyrillic", "Привет, как дела? Это длинная тема письма на русском языке", "b"},
		{"cjk", strings.Repeat("日本語のメール件名", 6), "b"},
		{"emoji", strings.Repeat("👋🏽", 20), "b"},
		{"emoji in latin", "Hello 👋 there, this is a friendly note with one emoji in it", "q"},
	}
	dec := new(mime.WordDecoder)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := string(appendEncodedWords(nil, tt.in, maxEncodedWord, maxEncodedWord))
			for _, w := range strings.Split(out, " ") {
				if len(w) > 75 {
					t.Errorf("encoded-word %q is %d characters, want ≤ 75", w, len(w))
				}
				if !strings.HasPrefix(w, "=?utf-8?"+tt.scheme+"?") {
					t.Errorf("encoded-word %q, want scheme %q", w, tt.scheme)
				}
				d, err := dec.Decode(w)
				if err != nil || !utf8.ValidString(d) {
					t.Errorf("word %q decodes to %q, %v: want valid UTF-8 on its own", w, d, err)
				}
				if strings.ContainsAny(strings.TrimSuffix(strings.TrimPrefix(w, "=?utf-8?q?"), "?="), `,"<>()`) {
					t.Errorf("Q word %q contains a character RFC 2047 §5(3) forbids in a phrase", w)
				}
			}
			got, err := dec.DecodeHeader(out)
			if err != nil || got != tt.in {
				t.Errorf("DecodeHeader(%q) = %q, %v; want %q", out, got, err, tt.in)
			}
		})
	}
}

// TestAppendField checks RFC 5322 §2.2.3 folding: unfolding (removing each CRLF that precedes
// WSP) restores the field exactly, lines stay within 76 characters when the value has whitespace
// to fold at, and no line is whitespace only.
func TestAppendField(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("word ", 40)
	tests := []struct {
		name, field, value string
		maxLen             int // longest allowed line, without CRLF
	}{
		{"short", "Subject", "hi", 76},
		{"empty", "X-Empty", "", 76},
		{"spaces only", "X-Blank", "   ", 76},
		{"long words", "Subject", long, 76},
		{"double spaces at fold", "Subject", strings.Repeat("abcdefgh  ", 30), 76},
		{"tabs", "Subject", strings.Repeat("abcdefgh\t", 30), 76},
		{"leading space", "Subject", "  starts with spaces " + long, 76},
		{"url", "X-Link", "see https://example.com/" + strings.Repeat("p", 200) + " for more", 24 + 200 + 1},
		{"first token long", "X-Token", strings.Repeat("t", 100) + " tail", 9 + 100},
		{"encoded words", "Subject", string(appendEncodedWords(nil, strings.Repeat("Grüße ", 30), maxEncodedWord, maxEncodedWord)), 76},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := appendField(nil, tt.field, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			s := string(out)
			if !strings.HasSuffix(s, "\r\n") {
				t.Fatalf("%q does not end in CRLF", s)
			}
			lines := strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")
			for i, l := range lines {
				if len(l) > tt.maxLen {
					t.Errorf("line %d is %d characters, want ≤ %d: %q", i, len(l), tt.maxLen, l)
				}
				if strings.Trim(l, " \t") == "" {
					t.Errorf("line %d is whitespace only: %q", i, s)
				}
				if i > 0 && !isWSP(l[0]) {
					t.Errorf("continuation line %d does not start with WSP: %q", i, l)
				}
			}
			want := tt.field + ":"
			if tt.value != "" && !isWSP(tt.value[0]) {
				want += " "
			}
			want += tt.value
			if got := strings.ReplaceAll(strings.TrimSuffix(s, "\r\n"), "\r\n", ""); got != want {
				t.Errorf("unfolded = %q, want %q", got, want)
			}
		})
	}
}

func TestAppendFieldTooLong(t *testing.T) {
	t.Parallel()
	// A token that cannot be folded and makes the line longer than RFC 5322 §2.1.1 allows.
	_, err := appendField(nil, "X-Long", strings.Repeat("t", 993))
	if err == nil || !strings.Contains(err.Error(), "longer than 998") {
		t.Errorf("appendField with a 1001-character line: err = %v, want line too long", err)
	}
	if _, err := appendField(nil, "X-Long", strings.Repeat("t", 990)); err != nil {
		t.Errorf("appendField with a 998-character line: %v", err)
	}
}

// TestAppendMIMEFieldKeepsQuotedStrings: a MIME field folds between parameters and between
// encoded-words, never elsewhere inside a quoted string, escaped quotes included.
func TestAppendMIMEFieldKeepsQuotedStrings(t *testing.T) {
	t.Parallel()
	quoted := `"` + strings.Repeat(`long \" name `, 10) + `"`
	words := `"` + strings.Repeat("=?utf-8?q?w=C3=B6rter?= ", 8) + `=?utf-8?q?end?="`
	for _, tc := range []struct {
		value string
		want  []string // the lines, without CRLF
	}{
		{"attachment; filename=" + quoted + "; size=10",
			[]string{"Content-Disposition: attachment;", " filename=" + quoted + ";", " size=10"}},
		{"text/plain; name=" + words, []string{
			`Content-Disposition: text/plain; name="=?utf-8?q?w=C3=B6rter?=`,
			" =?utf-8?q?w=C3=B6rter?= =?utf-8?q?w=C3=B6rter?= =?utf-8?q?w=C3=B6rter?=",
			" =?utf-8?q?w=C3=B6rter?= =?utf-8?q?w=C3=B6rter?= =?utf-8?q?w=C3=B6rter?=",
			` =?utf-8?q?w=C3=B6rter?= =?utf-8?q?end?="`}},
	} {
		out, err := appendMIMEField(nil, "Content-Disposition", tc.value)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n"); !slices.Equal(got, tc.want) {
			t.Errorf("appendMIMEField(%q):\n%q\nwant\n%q", tc.value, got, tc.want)
		}
	}
}
