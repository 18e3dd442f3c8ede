package render

import (
	"context"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// renderIndirect renders c with text/template's executor alone: it hands Render an instance
// whose direct programs are removed, and takes it back afterwards.
func renderIndirect(tb testing.TB, tpl *Template, c Context) (Output, error) {
	tb.Helper()
	inst, err := tpl.newInstance()
	if err != nil {
		tb.Fatal(err)
	}
	inst.subjectProg, inst.htmlProg, inst.textProg = nil, nil, nil
	tpl.mu.Lock()
	tpl.free = append(tpl.free, inst) // acquire takes the last one
	tpl.mu.Unlock()
	defer func() {
		tpl.mu.Lock()
		tpl.free = slices.DeleteFunc(tpl.free, func(i *instance) bool { return i == inst })
		tpl.mu.Unlock()
	}()
	return tpl.Render(context.Background(), c, Limits{})
}

// directParts names the parts the direct executor runs.
func directParts(tb testing.TB, tpl *Template) []string {
	tb.Helper()
	inst, err := tpl.newInstance()
	if err != nil {
		tb.Fatal(err)
	}
	var parts []string
	for _, p := range []struct {
		name string
		prog *program
	}{{"subject", inst.subjectProg}, {"html", inst.htmlProg}, {"text", inst.textProg}} {
		if p.prog != nil {
			parts = append(parts, p.name)
		}
	}
	return parts
}

// checkSameOutput renders c both ways and fails when the outputs or the errors differ. It
// returns the error.
func checkSameOutput(tb testing.TB, tpl *Template, c Context) error {
	tb.Helper()
	direct, derr := tpl.Render(context.Background(), c, Limits{})
	indirect, ierr := renderIndirect(tb, tpl, c)
	if fmt.Sprint(derr) != fmt.Sprint(ierr) {
		tb.Fatalf("direct error %v, text/template error %v", derr, ierr)
	}
	if diff := cmp.Diff(indirect, direct); diff != "" {
		tb.Fatalf("direct output differs from text/template's (-text/template +direct):\n%s", diff)
	}
	return derr
}

// trickyStrings are values whose escaping differs between contexts.
var trickyStrings = []string{
	"", "plain", `<b>"Tom" & 'Jerry'</b>`, "a+b=c", "\x00nul", "javascript:alert(1)",
	"JavaScript:alert(1)", "mailto:a@b.example", "HTTPS://e.example/a b?q=1&r=%zz%41#f",
	"/relative/path?x=<y>", "data:text/html,x", "é ü 日本 \u2028 \U0001F600", "\xff\xfe bad utf-8",
	"%", "%4", "%41", "[::1]:80/~a_b-c.d", "{{.x}}", "1e+06",
}

func TestDirectExecutorMatches(t *testing.T) {
	t.Parallel()
	const data = `{"s": "<i>x</i> & \"y\"", "n": 1000000, "f": 2.5, "t": true, "z": false, "null": null,
		"list": [{"a": "one", "u": "https://e.example/1"}, {"a": "two", "u": "javascript:x"}],
		"empty": [], "obj": {"k2": "v2", "k1": "v1"}, "none": {}, "date": "2026-11-20"}`
	for _, tc := range []struct {
		name   string
		src    Source
		direct []string // the parts the direct executor must run
		fails  bool     // the render fails (with the same error both ways)
	}{
		{"contexts", Source{
			Subject: "{{.data.s}} {{.data.n}} {{.data.t}} [{{.data.null}}]",
			HTML: `<title>{{.data.s}}</title><p title="{{.data.s}}" data-x='{{.data.n}}'>{{.data.s}}{{.data.f}}{{.data.t}}{{.data.null}}</p>` +
				`<a href="{{.data.s}}">a</a><a href="https://e.example/?q={{.data.s}}&n={{.data.n}}">b</a><img alt="{{.data.z}}" src="/i/{{.data.s}}">`,
			Text: "{{.data.s}} {{.data.n}} {{.data.f}} {{.data.t}} [{{.data.null}}] {{.message.id}}",
		}, []string{"subject", "html", "text"}, false},
		{"control", Source{
			HTML: `{{if .data.t}}T{{else}}F{{end}}{{if .data.z}}T{{else if .data.null}}N{{else}}F{{end}}` +
				`{{with .data.obj}}<b>{{.k1}}</b>{{end}}{{with .data.none}}x{{else}}none{{end}}` +
				`{{range .data.list}}<a href="{{.u}}">{{.a}}</a>{{end}}{{range .data.empty}}x{{else}}empty{{end}}` +
				`{{range $k, $v := .data.obj}}{{$k}}={{$v}};{{end}}{{range $i, $e := .data.list}}{{$i}}:{{$e.a}}/{{$.data.s}} {{end}}` +
				`{{$x := .data.s}}{{$x = "changed"}}{{$x}}{{if .data.n}}{{$y := 1}}{{$y}}{{end}}` +
				`{{template "row" .data.obj}}{{define "row"}}<i>{{.k2}}</i>{{end}}`,
			Text: `{{range .data.list}}* {{.a}} ({{.u}}){{"\n"}}{{end}}{{with .data.obj}}{{.k1}}{{end}}{{range .data.null}}x{{else}}none{{end}}`,
		}, []string{"html", "text"}, false},
		{"funcs", Source{
			Subject: `{{default "there" (index .contact "first_name")}} {{upper .data.s}} {{.data.s | lower | title}}`,
			HTML: `<p>{{default "friend" .data.null}} {{default "x" .data.empty}} {{index .data.list 1 | len}}{{index .data.obj "k1"}}` +
				`{{date "long" .data.date}} {{date "date" .data.date "Europe/Paris"}} {{trim "  a "}}</p>` +
				`<a href="{{unsubscribe_url}}">u</a> <a href="{{preferences_url}}">p</a> {{index .data.list 0 "a"}}`,
		}, []string{"subject", "html"}, false},
		{"builtins", Source{
			Subject: `{{if eq .data.n "1000000"}}n{{end}}{{if eq .data.s "a" "<i>x</i> & \"y\""}}s{{end}}{{if ne .data.t false}}t{{end}}` +
				`{{if not .data.z}}z{{end}}{{and .data.s .data.n}} {{or .data.null .data.empty .data.s}} {{and .data.t .data.null}}`,
			HTML: `<p>{{number .data.n}} {{number .data.f 2}} {{currency .data.f "EUR"}} {{currency "JPY" .data.n}} {{.data.n | currency "USD"}}` +
				` {{truncate 3 .data.s}} {{join ", " .data.list}} {{len .data.s}} {{if eq 1 1 2}}one{{end}}{{if eq .data.t true}}T{{end}}</p>`,
			Text: `{{if and .data.t (eq .data.date "2026-11-20") (len .data.list)}}yes{{end}} {{or 0 "zero"}}`,
		}, []string{"subject", "html", "text"}, false},
		{"handed-over", Source{ // the direct executor leaves these to text/template, part by part
			Subject: `{{len .data.obj}}`,
			Text:    `{{or .data.s .data.nope}} {{index .data.s 0}}`,
		}, []string{"subject", "text"}, false},
		{"more-funcs", Source{
			HTML: `<p>{{index .data.list 0 "a"}} {{index .data.obj "missing"}} {{date "short" .data.date}} {{unsubscribe_url}}</p>`,
		}, []string{"html"}, false},
		{"indirect", Source{
			HTML: `<script>var x = {{.data.s}};</script><p>{{printf "%d" 3}} {{range .data.list}}{{break}}{{end}}</p>`,
		}, nil, false},
		{"errors", Source{
			HTML: `<p>{{.data.s}}</p><p>{{.data.nope}}</p>`,
			Text: `{{.data.s.x}}`,
		}, []string{"html", "text"}, true},
		{"bad-arguments", Source{
			HTML: `<p>{{date .data.n .data.date}} {{index .data.list "x"}}</p>`,
		}, []string{"html"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.src.Name = tc.name
			tpl, err := Compile(tc.src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := directParts(t, tpl); !slices.Equal(got, tc.direct) {
				t.Errorf("direct parts %v, want %v", got, tc.direct)
			}
			decoded, err := tpl.DecodeData(json.RawMessage(data))
			if err != nil {
				t.Fatal(err)
			}
			var floats any // numbers as float64, as a caller's own decoding gives them
			if err := json.Unmarshal([]byte(data), &floats); err != nil {
				t.Fatal(err)
			}
			for _, c := range []Context{
				{Data: decoded, Contact: map[string]any{"first_name": "Bo"}, Message: MessageInfo{ID: "m1", Stream: "s"}},
				{Data: floats, Links: Links{UnsubscribeURL: "https://e.example/u?a=1&b=<2>"}},
			} {
				if err := checkSameOutput(t, tpl, c); (err != nil) != tc.fails {
					t.Errorf("error %v, want one: %v", err, tc.fails)
				}
				if tc.fails {
					continue
				}
				// The same output could come from text/template after a hand-over: check the
				// direct executor ran each part through (or handed it over, where it should).
				for _, part := range tc.direct {
					_, err := runDirect(t, tpl, c, part)
					if tc.name == "handed-over" {
						if err != errIndirect {
							t.Errorf("%s: the direct executor did not hand over: %v", part, err)
						}
					} else if err != nil {
						t.Errorf("%s: the direct executor stopped: %v", part, err)
					}
				}
			}
		})
	}
}

// TestDirectExecutorErrors: each action fails, with text/template's error.
func TestDirectExecutorErrors(t *testing.T) {
	t.Parallel()
	data := map[string]any{"n": json.Number("12"), "s": "x", "obj": map[string]any{"a": "b"}, "null": nil,
		"list": []any{"a"}, "date": "2026-11-20"}
	for _, action := range []string{
		`{{number .data.n .data.n}}`, `{{number .data.s}}`, `{{currency .data.s "EUR"}}`, `{{currency .data.n}}`,
		`{{truncate .data.n .data.s}}`, `{{join .data.n .data.list}}`, `{{join "," .data.s}}`,
		`{{eq .data.obj .data.obj}}`, `{{eq .data.n}}`, `{{eq .data.s 1}}`, `{{ne .data.s .data.s .data.s}}`,
		`{{len .data.null}}`, `{{len 3}}`, `{{not}}`, `{{and}}`, `{{and .data.obj.nope 1}}`,
		`{{index .data.list 1}}`, `{{index .data.list "0"}}`, `{{index .data.null "a"}}`, `{{index .data.null}}`,
		`{{date "long" .data.s}}`, `{{date "long" .data.date "Mars/Olympus"}}`, `{{date .data.n .data.date}}`,
		`{{default .data.s}}`, `{{upper .data.s .data.s}}`, `{{unsubscribe_url .data.s}}`,
		`{{.data.s.x}}`, `{{.data.null.x}}`, `{{$.data.nope}}`, `{{.data.s 1}}`, `{{range .data.s}}x{{end}}`,
		`{{if .data.list.x}}{{end}}`, `{{template "t" .data.nope}}{{define "t"}}{{end}}`,
	} {
		for _, src := range []Source{{Name: "t", Text: action}, {Name: "h", HTML: "<p>" + action + "</p>"}} {
			tpl, err := Compile(src, nil)
			if err != nil {
				continue // refused at Compile: nothing to run
			}
			if err := checkSameOutput(t, tpl, Context{Data: data}); err == nil {
				t.Errorf("%s: no error", action)
			}
		}
	}
}

// TestDirectExecutorGolden renders the golden-file templates both ways.
func TestDirectExecutorGolden(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"newsletter", "order-shipped", "welcome"} {
		src := loadSource(t, name)
		for _, perRender := range []bool{false, true} {
			tpl, err := compile(src.Source, testLayouts(t), perRender)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for part, src := range map[string]string{"subject": src.Subject, "html": src.HTML, "text": src.Text} {
				if src != "" {
					parts = append(parts, part)
				}
			}
			if got := directParts(t, tpl); len(got) != len(parts) {
				t.Errorf("%s: the direct executor runs %v of %v", name, got, parts)
			}
			data, err := tpl.DecodeData(src.Data)
			if err != nil {
				t.Fatal(err)
			}
			checkSameOutput(t, tpl, Context{Data: data, Contact: map[string]any{"first_name": "Bo"},
				Message: MessageInfo{ID: "m1", Stream: "s"}})
		}
	}
}

// FuzzDirectExecutor puts one string in every HTML context the direct executor escapes
// (text, quoted attributes, URLs, RCDATA) and in the text parts, and compares the output
// with text/template's.
func FuzzDirectExecutor(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	tpl, err := Compile(Source{Name: "fuzz",
		Subject: `{{.data.s}}`,
		HTML: `<title>{{.data.s}}</title><textarea>{{.data.s}}</textarea><p title="{{.data.s}}" data-x='{{.data.s}}'>{{.data.s}}</p>` +
			`<a href="{{.data.s}}">a</a><a href="https://e.example/?q={{.data.s}}">b</a><a href="/p/{{.data.s}}#{{.data.s}}">c</a>` +
			`<img src="{{.data.s}}" alt="{{.data.s | upper}}"><form action='{{.data.s}}'></form>` +
			`<meta http-equiv="refresh" content="0;url={{.data.s}}"><p style="background: url('{{.data.s}}')">d</p>` +
			`<a href="mailto:{{.data.s}}?subject={{.data.s}}">e</a>`,
		Text: `{{.data.s}} {{default "x" .data.s}}`}, nil)
	if err != nil {
		f.Fatal(err)
	}
	if got := directParts(f, tpl); len(got) != 3 {
		f.Fatalf("direct parts %v, want all three", got)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkSameOutput(t, tpl, Context{Data: map[string]any{"s": s}})
	})
}

// FuzzDirectExecutorTemplates compiles the input as a text part and as an html part and
// compares both executors on fixed data: whatever the template, the outputs and the errors
// are the same.
func FuzzDirectExecutorTemplates(f *testing.F) {
	for _, s := range []string{
		`{{.data.s}} {{.data.n}} {{.data.t}} {{.data.null}} {{.message.id}} {{$.contact}}`,
		`{{if .data.t}}a{{else if .data.z}}b{{else}}c{{end}}{{with .data.obj}}{{.k}}{{else}}-{{end}}`,
		`{{range $i, $e := .data.list}}{{$i}}={{$e}}{{else}}none{{end}}{{range $k, $v := .data.obj}}{{$k}}{{$v}}{{end}}`,
		`{{$x := .data.s}}{{if .data.t}}{{$x = "y"}}{{end}}{{$x}}{{template "t" .data}}{{define "t"}}[{{.s}}]{{end}}`,
		`{{index .data.list 0}} {{index .data.obj "k"}} {{len .data.list}} {{default "d" .data.null}} {{.data.s | upper}}`,
		`{{eq .data.n "12"}} {{ne .data.s "x"}} {{not .data.z}} {{and .data.t .data.s}} {{or .data.null .data.n}}`,
		`{{number .data.n 2}} {{currency .data.n "EUR"}} {{truncate 2 .data.s}} {{join "," .data.list}} {{date "long" .data.date}}`,
		`<a href="{{.data.u}}" title="{{.data.s}}">{{.data.s}}</a><p style="color: red">{{.data.n}}</p>`,
		`<a href="/x?q={{.data.s}}&n={{.data.n}}">{{unsubscribe_url}}</a><title>{{.data.s}}</title>`,
		`<style>p { background: url({{.data.u}}) }</style><img src='{{.data.s}}'>`, `{{0i}} {{'a'}} {{0x1F}} {{1.0}}`,
		`{{.data.nope}}`, `{{.data.s.x}}`, `{{index .data.list 5}}`, `{{range .data.s}}{{end}}`, `{{printf "%v" .data.n}}`,
	} {
		f.Add(s)
	}
	data := map[string]any{"s": "<x>&'\"+", "n": json.Number("12"), "t": true, "z": false, "null": nil,
		"list": []any{"a", json.Number("2"), map[string]any{"k": "v"}}, "obj": map[string]any{"k": "v", "j": []any{}},
		"u": "https://e.example/a b?c=d&e", "date": "2026-11-20"}
	f.Fuzz(func(t *testing.T, src string) {
		for _, s := range []Source{{Name: "t", Subject: src, Text: src}, {Name: "h", HTML: src}} {
			tpl, err := Compile(s, nil)
			if err != nil {
				continue
			}
			checkSameOutput(t, tpl, Context{Data: data, Contact: map[string]any{"first_name": "Bo"}, Message: MessageInfo{ID: "m"}})
		}
	})
}

// runHTML runs the html part of c on a fresh instance, before CSS inlining: with the direct
// executor alone (errIndirect when it hands the part to text/template), or with html/template.
func runHTML(tb testing.TB, tpl *Template, c Context, direct bool) (string, error) {
	tb.Helper()
	if direct {
		return runDirect(tb, tpl, c, "html")
	}
	inst, root := freshInstance(tb, tpl, c)
	err := inst.html.Execute(&inst.out, root)
	return inst.out.String(), err
}

// runDirect runs one part ("subject", "html" or "text") of c with the direct executor alone on
// a fresh instance: errIndirect when the part has no program or the executor hands it over.
func runDirect(tb testing.TB, tpl *Template, c Context, part string) (string, error) {
	tb.Helper()
	inst, root := freshInstance(tb, tpl, c)
	prog := map[string]*program{"subject": inst.subjectProg, "html": inst.htmlProg, "text": inst.textProg}[part]
	if prog == nil {
		return "", errIndirect
	}
	err := inst.exec.run(prog, &inst.out, root)
	return inst.out.String(), err
}

func freshInstance(tb testing.TB, tpl *Template, c Context) (*instance, any) {
	tb.Helper()
	inst, err := tpl.newInstance()
	if err != nil {
		tb.Fatal(err)
	}
	inst.st.reset(context.Background(), time.Time{})
	inst.st.links, inst.st.tz = c.Links, time.UTC
	inst.out.reset(DefaultMaxOutput)
	return inst, rootData(c, nil, nil)
}

// hostileValues are data values for every escaping context: markup, quotes, schemes, NUL,
// invalid UTF-8, entities, long strings, and the other types of decoded JSON.
var hostileValues = []any{
	"<script>alert(1)</script>", `"`, `'`, "`", `" onmouseover="x`, "' onmouseover='x", "javascript:alert(1)",
	" JavaScript:alert(1)", "jAvAsCrIpT:alert(1)", "vbscript:x", "data:text/html;base64,PHNjcmlwdD4=",
	"java\x00script:x", "\x00", "\xff\xfe\xfd", "a\xc3", "&amp;", "&#34;", "&lt;script&gt;", "</title><script>x</script>",
	"</textarea><script>x</script>", "--><script>x</script>", "]]>", "a b\tc\nd", "%zz%41%", "?a=1&b=2#f", "//evil.example",
	"\\\\evil.example", "\u2028\u2029", "\ufdd0\uffff", "expression(alert(1))", "url(javascript:x)", "{{.data}}",
	strings.Repeat("<&\"'+>", 3000), strings.Repeat("a", 70000),
	json.Number("12"), json.Number("-0.5"), json.Number("1e6"), true, false, nil,
	[]any{"<a>", json.Number("1")}, map[string]any{"k": "<v>"}, map[string]any{},
	// Values only a Go caller can pass: the direct executor must leave them to text/template.
	htmltemplate.HTML("<b>bold</b>"), htmltemplate.URL("javascript:alert(1)"), htmltemplate.HTMLAttr(`onclick="x"`),
	htmltemplate.CSS("color: red"), htmltemplate.JS("alert(1)"), htmltemplate.Srcset("javascript:x 1x"),
	3, int64(4), 2.5, float32(1.5),
}

// TestDirectExecutorContexts puts each hostile value in each HTML escaping context: the
// output (or the error) must be html/template's. The contexts whose escapers the direct
// executor implements must run directly for plain values; the others must not run directly.
func TestDirectExecutorContexts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, html string
		direct     bool // the direct executor runs the part
	}{
		{"text", `<p>{{.data.v}}</p>`, true},
		{"double-quoted", `<p title="{{.data.v}}">x</p>`, true},
		{"single-quoted", `<p title='{{.data.v}}'>x</p>`, true},
		{"quoted-mixed", `<p title="a {{.data.v}} b" class='c {{.data.v}}'>x</p>`, true},
		{"href", `<a href="{{.data.v}}">x</a>`, true},
		{"href-single", `<a href='{{.data.v}}'>x</a>`, true},
		{"src", `<img src="{{.data.v}}">`, true},
		{"href-path", `<a href="/p/{{.data.v}}">x</a>`, true},
		{"href-query", `<a href="https://e.example/?q={{.data.v}}&r={{.data.v}}#{{.data.v}}">x</a>`, true},
		{"action", `<form action="{{.data.v}}"></form>`, true},
		{"meta-refresh", `<meta http-equiv="refresh" content="0;url={{.data.v}}">`, true},
		{"title", `<title>{{.data.v}}</title>`, true},
		{"textarea", `<textarea>{{.data.v}}</textarea>`, true},
		{"style-url", `<style>p { background: url({{.data.v}}) }</style>`, true},
		{"style-attr-url", `<p style="background: url('{{.data.v}}')">x</p>`, true},
		{"unquoted", `<p title={{.data.v}}>x</p>`, false},
		{"unquoted-href", `<a href={{.data.v}}>x</a>`, false},
		{"attr-name", `<p {{.data.v}}="x">x</p>`, false},
		{"style-attr", `<p style="color: {{.data.v}}">x</p>`, false},
		{"style-element", `<style>p { color: {{.data.v}} }</style>`, false},
		{"style-string", `<style>p { font-family: "{{.data.v}}" }</style>`, false},
		{"script", `<script>var x = {{.data.v}};</script>`, false},
		{"script-string", `<script>var x = "{{.data.v}}";</script>`, false},
		{"script-template", "<script>var x = `{{.data.v}}`;</script>", false},
		{"script-regexp", `<script>var x = /{{.data.v}}/;</script>`, false},
		{"onclick", `<p onclick="f({{.data.v}})">x</p>`, false},
		{"srcset", `<img srcset="{{.data.v}}">`, false},
		{"comment", `<p><!-- {{.data.v}} --></p>`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tpl, err := Compile(Source{Name: tc.name, HTML: tc.html}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(directParts(t, tpl)) > 0; got != tc.direct {
				t.Fatalf("direct executor runs it: %v, want %v", got, tc.direct)
			}
			for _, v := range hostileValues {
				c := Context{Data: map[string]any{"v": v}}
				want, werr := renderIndirect(t, tpl, c)
				got, gerr := tpl.Render(context.Background(), c, Limits{})
				if fmt.Sprint(gerr) != fmt.Sprint(werr) || !cmp.Equal(got, want) {
					t.Errorf("%T %.40q: got %.200q, %v; html/template: %.200q, %v", v, fmt.Sprint(v), got.HTML, gerr, want.HTML, werr)
				}
				if !tc.direct {
					continue
				}
				// The direct executor itself, when it runs the value, and html/template, before
				// CSS inlining (which removes <style>).
				out, err := runHTML(t, tpl, c, true)
				raw, rawErr := runHTML(t, tpl, c, false)
				if rawErr != nil {
					t.Fatalf("%T %.40q: html/template: %v", v, fmt.Sprint(v), rawErr)
				}
				switch v.(type) {
				case string, json.Number, bool, nil, int, float64: // Render makes float64 a json.Number
					if err != nil {
						t.Errorf("%T %.40q: the direct executor stopped: %v", v, fmt.Sprint(v), err)
					} else if out != raw {
						t.Errorf("%T %.40q: direct %.200q, html/template %.200q", v, fmt.Sprint(v), out, raw)
					}
				default:
					if err != errIndirect {
						t.Errorf("%T %.40q: the direct executor ran it (%v), want text/template", v, fmt.Sprint(v), err)
					}
				}
			}
		})
	}
}

// TestDirectExecutorNumberLiterals: constants print and compare with text/template's types
// (int, float64, complex128, rune).
func TestDirectExecutorNumberLiterals(t *testing.T) {
	t.Parallel()
	data := map[string]any{"list": []any{"a", "b"}, "s": "xyz"}
	for _, action := range []string{
		`{{0i}}`, `{{1i}}`, `{{0.0i}}`, `{{-0i}}`, `{{eq 0i 0}}`, `{{index .data.list 0i}}`, `{{default 0i .data.nope}}`,
		`{{truncate 0i .data.s}}`, `{{0x10}}`, `{{0o17}}`, `{{0b101}}`, `{{1_000}}`, `{{'a'}}`, `{{'\n'}}`, `{{1.0}}`,
		`{{1e3}}`, `{{0x1p4}}`, `{{-7}}`, `{{eq 'a' 97}}`, `{{index .data.list 1.0}}`, `{{truncate 2.0 .data.s}}`,
		`{{9223372036854775807}}`, `{{18446744073709551615}}`,
	} {
		for _, src := range []Source{{Name: "t", Text: action}, {Name: "h", HTML: "<p>" + action + "</p>"}} {
			tpl, err := Compile(src, nil)
			if err != nil {
				continue
			}
			checkSameOutput(t, tpl, Context{Data: data})
		}
	}
}
