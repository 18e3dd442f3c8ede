package mail

import (
	"bytes"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// stdQuotedPrintable is what Build wrote before appendQuotedPrintable: the standard library's
// writer, one Write of the whole body, then Close.
func stdQuotedPrintable(s string) []byte {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func checkQuotedPrintable(t *testing.T, s string) {
	t.Helper()
	want := stdQuotedPrintable(s)
	got := appendQuotedPrintable([]byte("prefix"), s)
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("appendQuotedPrintable(%q) lost what dst held: %q", s, got)
	}
	if got := got[len("prefix"):]; !bytes.Equal(got, want) {
		t.Fatalf("appendQuotedPrintable(%q)\n got %q\nwant %q (mime/quotedprintable)", s, got, want)
	}
}

// qpCases are bodies at the edges of RFC 2045 §6.7: lengths around the 76-character limit
// (rule 5), trailing white space before a break and at the end (rule 3), "=" and non-ASCII
// (rules 1–2), and every kind of line break.
var qpCases = []string{
	"",
	"a",
	"Hello, world.",
	" ",
	"\t",
	"a ",
	"a\t\r\nb",
	"a \nb",
	"a \rb",
	"trailing  \r\n",
	"=",
	"a=b==c",
	"é ünïcödé €",
	"\x00\x01\x7f\x80\xff",
	"\r\n",
	"\n\n",
	"\r\r\n\n",
	"\r=\n",        // CR, an encoded byte, LF: the LF belongs to the CR
	"\r\x00\x01\n", // likewise
	"\r \n",        // a literal byte in between: two breaks
	"line\r\nline\nline\rline",
	strings.Repeat("x", 75),
	strings.Repeat("x", 76),
	strings.Repeat("x", 77),
	strings.Repeat("x", 75) + "\r\n",
	strings.Repeat("x", 74) + " \r\n",
	strings.Repeat("x", 75) + " \r\n",
	strings.Repeat("x", 73) + "=",
	strings.Repeat("x", 72) + "==",
	strings.Repeat("x", 74) + " ",
	strings.Repeat("x", 75) + " ",
	strings.Repeat("x", 72) + "é",
	strings.Repeat("x", 73) + "é",
	strings.Repeat(" ", 200),
	strings.Repeat("=", 100),
	strings.Repeat("é", 100),
	strings.Repeat("word ", 100),
	strings.Repeat("<p>shipping order parcel tracking delivery customer thanks update account</p>\n", 10),
	`<a href="https://shop.example/orders/A-1" style="color:#888">Track it</a>`,
}

func TestAppendQuotedPrintableCases(t *testing.T) {
	t.Parallel()
	for _, s := range qpCases {
		checkQuotedPrintable(t, s)
	}
}

// TestAppendQuotedPrintableShort compares with mime/quotedprintable on every string of up to four
// bytes that matter to the encoder, alone and at the end of lines of 72 to 75 characters.
func TestAppendQuotedPrintableShort(t *testing.T) {
	t.Parallel()
	const alphabet = "a \t\r\n=\x80"
	var all func(prefix string, n int)
	all = func(prefix string, n int) {
		for _, p := range []string{"", strings.Repeat("x", 72), strings.Repeat("x", 73),
			strings.Repeat("x", 74), strings.Repeat("x", 75)} {
			checkQuotedPrintable(t, p+prefix)
		}
		if n == 0 {
			return
		}
		for i := range len(alphabet) {
			all(prefix+alphabet[i:i+1], n-1)
		}
	}
	all("", 4)
}

// TestAppendQuotedPrintableRandom compares with mime/quotedprintable on random bodies made of
// the bytes that matter to the encoder, in runs long enough to cross the line limit.
func TestAppendQuotedPrintableRandom(t *testing.T) {
	t.Parallel()
	pieces := []string{"a", "Z", "~", "!", " ", "\t", "\r", "\n", "\r\n", "=", "\x00", "\x7f", "é", "\xff",
		"word", strings.Repeat("x", 30), strings.Repeat("y", 70), strings.Repeat(" ", 5)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var sb strings.Builder
		for n := rng.IntN(60); n > 0; n-- {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		checkQuotedPrintable(t, sb.String())
	}
}

func FuzzAppendQuotedPrintable(f *testing.F) {
	for _, s := range qpCases {
		f.Add(s)
	}
	f.Fuzz(checkQuotedPrintable)
}

// benchBody is about 4.5 KB of text or HTML like the delivery benchmark's ≈10 KB message.
func benchBody(html bool) string {
	const words = "shipping order parcel tracking delivery customer thanks update account invoice receipt "
	var b strings.Builder
	for k := 0; b.Len() < 4600; k++ {
		line := (words + words)[k%17 : k%17+70]
		if html {
			b.WriteString(`<p style="margin:0">` + line + "</p>\n")
		} else {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func BenchmarkQuotedPrintable(b *testing.B) {
	for _, bc := range []struct {
		name string
		body string
	}{
		{"text", benchBody(false)},
		{"html", benchBody(true)},
		{"non-ascii", strings.Repeat("Grüße aus Köln, à bientôt ", 180)},
	} {
		b.Run(bc.name+"/std", func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				stdQuotedPrintable(bc.body)
			}
		})
		b.Run(bc.name+"/append", func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			buf := make([]byte, 0, 2*len(bc.body))
			for b.Loop() {
				buf = appendQuotedPrintable(buf[:0], bc.body)
			}
		})
	}
}
