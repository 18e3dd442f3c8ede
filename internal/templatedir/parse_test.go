package templatedir

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFile(t *testing.T) {
	t.Parallel()
	src := `{{/* layout: base */}}
{{/* description: Sent when an order ships */}}
{{/* any other comment, even with }} in it */}}

{{define "subject"}}Order {{.data.order.id}} shipped{{end}}
{{define "html"}}
<p>{{if .data.name}}Hi {{.data.name}}{{else}}Hello{{end}}</p>
{{range .data.items}}<li>{{.}}</li>{{end}}
{{- /* a comment with {{end}} inside */ -}}
<p>{{"{{end}}"}} {{` + "`}}`" + `}}</p>
{{end}}
{{define "text" -}}
  Hi
{{- end}}
`
	f, err := parseFile(src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]block{
		"subject": {body: "Order {{.data.order.id}} shipped", line: 5, col: 21, defineLine: 5},
		"html": {body: "\n<p>{{if .data.name}}Hi {{.data.name}}{{else}}Hello{{end}}</p>\n{{range .data.items}}<li>{{.}}</li>{{end}}\n" +
			"{{- /* a comment with {{end}} inside */ -}}\n<p>{{\"{{end}}\"}} {{`}}`}}</p>\n", line: 6, col: 18, defineLine: 6},
		"text": {body: "Hi", line: 13, col: 3, defineLine: 12},
	}
	if diff := cmp.Diff(want, f.blocks, cmp.AllowUnexported(block{})); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
	wantMeta := map[string]meta{"layout": {value: "base", line: 1}, "description": {value: "Sent when an order ships", line: 2}}
	if diff := cmp.Diff(wantMeta, f.meta, cmp.AllowUnexported(meta{})); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}

	// A position in a body maps to the file.
	if l, c := f.blocks["subject"].fileLine(1, 7); l != 5 || c != 27 {
		t.Errorf("subject 1:7 is file %d:%d, want 5:27", l, c)
	}
	if l, c := f.blocks["html"].fileLine(3, 5); l != 8 || c != 5 {
		t.Errorf("html 3:5 is file %d:%d, want 8:5", l, c)
	}
}

func TestParseFileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, src, want string }{
		{"text outside", "{{define \"html\"}}x{{end}}\nstray text", "2:1: text outside a {{define}} block"},
		{"unknown block", "\n  {{define \"footer\"}}x{{end}}", `2:3: unknown block "footer"`},
		{"action at top level", "{{.data.x}}", "1:1: only {{define}} blocks and comments"},
		{"no end", "{{define \"html\"}}{{if .x}}y{{end}}", "1:1: {{define}} without a matching {{end}}"},
		{"unclosed action", "{{define \"html\"}}\n{{if .x", "2:1: unclosed action"},
		{"unclosed comment", "{{/* layout: x", "1:1: unclosed comment"},
		{"unterminated string", "{{define \"html\"}}{{\"abc}}{{end}}", "1:20: unterminated quoted string"},
		{"defined twice", "{{define \"text\"}}a{{end}}{{define \"text\"}}b{{end}}", `1:26: "text" is defined twice`},
		{"layout twice", "{{/* layout: a */}}\n{{/* layout: b */}}", "2:1: layout is set twice"},
	} {
		_, err := parseFile(tc.src)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q…", tc.name, err, tc.want)
		}
	}
}

func TestSplitName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, name, locale string }{
		{"news", "news", ""},
		{"news.ko", "news", "ko"},
		{"news.pt-BR", "news", "pt-BR"},
		{"order.v2", "order.v2", ""},
		{"a.b.c.fr", "a.b.c", "fr"},
		{"ko", "ko", ""},
	} {
		if n, l := splitName(tc.in); n != tc.name || l != tc.locale {
			t.Errorf("splitName(%q) = %q, %q; want %q, %q", tc.in, n, l, tc.name, tc.locale)
		}
	}
}
