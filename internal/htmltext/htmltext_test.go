package htmltext

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/inbucket/html2text"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestConvertGolden covers testdata/features.html: headings, paragraphs, links (text and URL,
// mailto, anchors, images), lists (nested, numbered), tables (data, spacers, nested layout
// tables), block quotes, <pre>, entities, and what is left out.
func TestConvertGolden(t *testing.T) {
	t.Parallel()
	got := Convert(readTestdata(t, "features.html")) + "\n"
	path := filepath.Join("testdata", "features.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(readTestdata(t, "features.golden"), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

func TestConvert(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ html, want string }{
		{"", ""},
		{"plain  text\n here", "plain text here"},
		{"<p>a</p><p>b</p>", "a\n\nb"},
		{"<p>a<br>b<br><br><br>c</p>", "a\nb\n\nc"},
		{"<b>x</b>y <i>z</i>", "*x*y z"},
		{`<a href="https://e.example">e</a>`, "e (https://e.example)"},
		{`<a href="https://e.example">https://e.example</a>`, "https://e.example"},
		{`<a href=https://e.example/u?a=1&amp;b=2>go</a>`, "go (https://e.example/u?a=1&b=2)"},
		{`<a href="javascript:x()">js</a>`, "js"},
		{`<a href="x">unclosed`, "unclosed (x)"},
		{"<ol><li>a<li>b</ol>", "1. a\n2. b"},
		{"<h3>Hé</h3>", "Hé\n--"},
		{"<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a | b\nc"},
		{"<p>unterminated <b", "unterminated"},
		{"<!-- unterminated comment", ""},
		{"<style>p{}", ""},
		{"<head><title>t</title><p>no end of head</p>", "no end of head"},
		{"a<textarea>x  <b>y</b></textarea>b", "a\n\nx  <b>y</b>\n\nb"},
		{"a<pre>\nb\n\nc</pre>", "a\n\nb\n\nc"},
		{"<blockquote>a<p>b</p></blockquote>", "> a\n>\n> b"},
		{"<p>a</p><blockquote>b</blockquote><p>c</p>", "a\n\n> b\n\nc"},
		{"<head><script>x = '<p>'</script></head>text", "text"},
	} {
		if got := Convert(tc.html); got != tc.want {
			t.Errorf("Convert(%q) = %q, want %q", tc.html, got, tc.want)
		}
	}
}

// TestAppend: Append adds to what dst holds and leaves it as it is.
func TestAppend(t *testing.T) {
	t.Parallel()
	const html = "<p> a </p><h1>b</h1>"
	got := Append([]byte("kept\n"), html)
	if want := "kept\n" + Convert(html); string(got) != want {
		t.Errorf("Append = %q, want %q", got, want)
	}
}

// FuzzConvert: any input gives valid UTF-8 (for valid input) without white space at either
// end or two blank lines in a row (but in verbatim text), and never panics.
func FuzzConvert(f *testing.F) {
	for _, s := range []string{"<p>a</p>", "<a href='x'>y</a>", "<h1>a<h2>b</h1>", "<ul><li><ol><li>x", "<pre>\n a\n</pre>",
		"<b><b>x</b>", "</b>x", "<table><td>a<td>b", "<blockquote><pre>a\n\nb</pre>", "<a href=x><img alt=y></a>", "<h1></h1>x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Convert(s)
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Errorf("invalid UTF-8 from valid input: %q", got)
		}
		if strings.Trim(got, " \t\n") != got {
			t.Errorf("white space at an end: %q", got)
		}
		verbatim := false // <pre>, <textarea> and <xmp> keep their blank lines
		for _, tag := range []string{"pre", "textarea", "xmp"} {
			verbatim = verbatim || strings.Contains(strings.ToLower(s), "<"+tag)
		}
		if strings.Contains(got, "\n\n\n") && !verbatim {
			t.Errorf("two blank lines in a row: %q", got)
		}
	})
}

// TestConvertDeepNesting: nesting marks are capped, so deep input gives text linear in its
// size.
func TestConvertDeepNesting(t *testing.T) {
	t.Parallel()
	for _, unit := range []string{"<ul><li>x", "<blockquote>x<br>", "<b>", "<h1><a href=u>"} {
		in := strings.Repeat(unit, 20000)
		if got := Convert(in); len(got) > 20*len(in) {
			t.Errorf("%d bytes of %q give %d bytes of text", len(in), unit, len(got))
		}
	}
}

// BenchmarkConvert converts testdata/newsletter.html, the newsletter of internal/render's
// benchmarks as it renders (6.8 KB, CSS inlined); BenchmarkConvertByHTML2Text does the same
// with github.com/inbucket/html2text, which render and internal/mail used before.
//
//	go test -run x -bench Convert -benchmem ./internal/htmltext/
func BenchmarkConvert(b *testing.B) {
	html := readTestdata(b, "newsletter.html")
	b.SetBytes(int64(len(html)))
	b.ReportAllocs()
	for b.Loop() {
		Convert(html)
	}
}

func BenchmarkConvertByHTML2Text(b *testing.B) {
	html := readTestdata(b, "newsletter.html")
	b.SetBytes(int64(len(html)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := html2text.FromString(html, html2text.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func readTestdata(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
