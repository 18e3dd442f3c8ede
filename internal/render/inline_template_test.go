package render

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/cssinline"
)

// TestInlineIntoSource checks which templates Compile inlines into the source, and that the
// result is what inlining each rendered message gives.
func TestInlineIntoSource(t *testing.T) {
	t.Parallel()
	const head = `<html><head><style>p { color: red } .c { font-weight: bold } td p { margin: 0 } img[alt] { border: 0 } @media screen { p { color: blue } }</style></head><body>`
	const tail = `</body></html>`
	data := map[string]any{"items": []any{"a", "b"}, "url": "https://example.com/x?a=1&b=2", "on": true, "cls": "c", "n": 3}
	layouts := layoutsOf(map[string]Source{
		"frame":   {HTML: head + `<table><tr><td>{{template "content" .}}</td></tr></table>` + tail},
		"twice":   {HTML: head + `{{template "content" .}}{{template "content" .}}` + tail},
		"styled":  {HTML: `<html><head><style>.{{.data.cls}} { color: red }</style></head><body>{{template "content" .}}</body></html>`},
		"nostyle": {HTML: `<main>{{template "content" .}}</main>`},
	})
	tests := []struct {
		name, html, layout string
		why                string // "" when Compile inlines into the source
	}{
		{name: "static", html: head + `<p class="c">x</p>` + tail},
		{name: "actions in text and attribute values", html: head + `<p class="c" title="{{.data.url}}">{{.data.url}}</p><a href="{{.data.url}}">x</a>` + tail},
		{name: "range and if with balanced branches", html: head + `{{range .data.items}}<p class="c">{{.}}</p>{{end}}{{if .data.on}}<p>on</p>{{else}}<div><p>off</p></div>{{end}}` + tail},
		{name: "with and else", html: head + `{{with .data.url}}<p>{{.}}</p>{{else}}<p>none</p>{{end}}` + tail},
		{name: "layout around the content", html: `<p class="c">{{.data.url}}</p>`, layout: "frame"},
		{name: "defined templates", html: head + `{{define "row"}}<p class="c">{{.}}</p>{{end}}{{range .data.items}}{{template "row" .}}{{end}}` + tail},
		{name: "no style at all", html: `<p class="c">{{.data.url}}</p>`, layout: "nostyle", why: "-"},
		{name: "action in a class", html: head + `<p class="{{.data.cls}}">x</p>` + tail, why: "sets the class attribute of <p>"},
		{name: "action in a tested attribute", html: head + `<a href="{{.data.url}}">x</a>` + tail + `<style>a[href^="https"] { color: green }</style>`, why: "sets the href attribute"},
		{name: "action in the style attribute", html: head + `<p style="color: {{.data.cls}}">x</p>` + tail, why: "sets the style attribute"},
		{name: "action in a tag", html: head + `<p {{if .data.on}}hidden{{end}}>x</p>` + tail, why: "outside a quoted attribute value"},
		{name: "unbalanced branch", html: head + `{{if .data.on}}<div class="c">{{else}}<div>{{end}}<p>x</p></div>` + tail, why: "opens or closes elements"},
		{name: "structural selector with actions", html: head + `<style>p:first-child { color: green }</style>{{range .data.items}}<p>{{.}}</p>{{end}}` + tail, why: "p:first-child depends on the position"},
		{name: "style with an action", html: `x`, layout: "styled", why: "a <style> block contains an action"},
		{name: "style inside if", html: `{{if .data.on}}<style>p { color: red }</style>{{end}}<p>x</p>`, why: "a <style> block is inside"},
		{name: "content twice", html: `<p class="c">x</p>`, layout: "twice", why: `template "t" is called twice`},
		{name: "break", html: head + `{{range .data.items}}<p>{{.}}</p>{{break}}{{end}}` + tail, why: "{{break}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := Source{Name: "t", HTML: tt.html, Layout: tt.layout}
			tpl, err := Compile(src, layouts)
			if err != nil {
				t.Fatal(err)
			}
			slow, err := compile(src, layouts, true)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.why == "" && tpl.css != nil:
				t.Errorf("inlined per render, want at Compile; notes %q", tpl.Notes())
			case tt.why == "-" && (tpl.css != nil || slow.css != nil):
				t.Errorf("a plan for a template without <style>: %v %v", tpl.css, slow.css)
			case tt.why != "" && tt.why != "-" && (tpl.css == nil || !strings.Contains(strings.Join(tpl.Notes(), "\n"), tt.why)):
				t.Errorf("inlined at Compile or for another reason (notes %q), want per render because %q", tpl.Notes(), tt.why)
			}
			c := Context{Data: data}
			got, err := tpl.Render(context.Background(), c, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := slow.Render(context.Background(), c, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got.HTML != want.HTML {
				t.Errorf("inlined into the source:\n%s\ninlined per render:\n%s", got.HTML, want.HTML)
			}
		})
	}
}

func TestConditionalComments(t *testing.T) {
	t.Parallel()
	src := `<html><head><style>td { padding: 0 } .btn { color: red }</style>
<!--[if mso]><style>td { font-family: Arial }</style><![endif]-->
</head><body>
<!--[if mso]><table role="presentation" width="600"><tr><td><![endif]-->
<div class="wrap"><a class="btn" href="{{.data.url}}">{{.data.label}}</a></div>
<!--[if mso]></td></tr></table><![endif]-->
<!--[if !mso]><!--><p>Not Outlook</p><!--<![endif]-->
<!-- an ordinary comment {{.data.label}} -->
</body></html>`
	want := `<html><head>
<!--[if mso]><style>td { font-family: Arial }</style><![endif]-->
</head><body>
<!--[if mso]><table role="presentation" width="600"><tr><td><![endif]-->
<div class="wrap"><a class="btn" href="https://example.com/?a=1&amp;b=2" style="color:red">Go &lt;now&gt;</a></div>
<!--[if mso]></td></tr></table><![endif]-->
<!--[if !mso]><!--><p>Not Outlook</p><!--<![endif]-->

</body></html>`
	for _, perRender := range []bool{false, true} {
		tpl, err := compile(Source{Name: "t", HTML: src}, nil, perRender)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tpl.Render(context.Background(), Context{Data: map[string]any{"url": "https://example.com/?a=1&b=2", "label": "Go <now>"}}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if out.HTML != want {
			t.Errorf("per render %v:\n%s\nwant\n%s", perRender, out.HTML, want)
		}
		if strings.Contains(out.Text, "Not Outlook") == false || strings.Contains(out.Text, "<!--") {
			t.Errorf("text %q", out.Text)
		}
	}
}

// FuzzInlineIntoSource checks that inlining into a template's source gives the HTML that
// inlining each rendered message gives, whatever the template.
func FuzzInlineIntoSource(f *testing.F) {
	f.Add(`<style>p { color: red } .a b { x: y }</style>{{range .data.items}}<p class="a"><b title="{{.}}">{{.}}</b></p>{{end}}`)
	f.Add(`<style>td { a: b } tr > td { c: d }</style><table>{{if .data.on}}<tr><td>{{.data.s}}</td></tr>{{else}}<tr><td>no</td></tr>{{end}}</table>`)
	f.Add(`<style>li:first-child { a: b } li + li { c: d }</style><ul>{{range .data.items}}<li>{{.}}</li>{{end}}</ul>`)
	f.Add(`<style>p { a: b }</style>{{with .data.s}}<p>{{.}}{{end}}</p>`)
	f.Add(`<style>[data-x] { a: b }</style><p data-x="{{.data.s}}">x</p><p>{{if .data.on}}<br>{{end}}</p>`)
	data := map[string]any{"items": []any{"a", "<b>", ""}, "on": true, "s": `x" onclick="y`}
	f.Fuzz(func(t *testing.T, src string) {
		fast, err := Compile(Source{Name: "t", HTML: src}, nil)
		if err != nil {
			return
		}
		slow, err := compile(Source{Name: "t", HTML: src}, nil, true)
		if err != nil {
			t.Fatalf("compiles one way only: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		got, err1 := fast.Render(ctx, Context{Data: data}, Limits{MaxOutput: 1 << 16})
		want, err2 := slow.Render(ctx, Context{Data: data}, Limits{MaxOutput: 1 << 16})
		if err1 != nil || err2 != nil {
			return
		}
		if got.HTML != want.HTML {
			t.Errorf("template %q\ninlined into the source:\n%s\ninlined per render:\n%s\nnotes %q", src, got.HTML, want.HTML, fast.Notes())
		}
	})
}

// TestPerRenderReusesStylesheets checks that a static <style> block is parsed at Compile and
// found again in rendered output, CSS comments (which html/template removes) and all.
func TestPerRenderReusesStylesheets(t *testing.T) {
	t.Parallel()
	tpl, err := Compile(Source{Name: "t", HTML: `<style>/* brand */ p { color: red } /* more */</style><p class="{{.data.c}}">x</p>`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tpl.css == nil {
		t.Fatal("inlined at Compile; the test needs per render")
	}
	out, err := tpl.Render(context.Background(), Context{Data: map[string]any{"c": "a"}}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// What a render hands the inliner: the html as executed, before inlining.
	inst, err := tpl.acquire()
	if err != nil {
		t.Fatal(err)
	}
	inst.st.reset(context.Background(), time.Time{})
	inst.out.reset(1 << 20)
	if err := inst.html.Execute(&inst.out, rootData(Context{Data: map[string]any{"c": "a"}}, nil, nil)); err != nil {
		t.Fatal(err)
	}
	d := cssinline.ScanDocument(inst.out.buf, nil)
	content := string(inst.out.buf[d.Styles[0].ContentStart:d.Styles[0].ContentEnd])
	if _, ok := tpl.css.sheets[content]; !ok {
		t.Errorf("the rendered block %q is not among the stylesheets parsed at Compile", content)
	}
	tpl.release(inst)
	if out.HTML != `<p class="a" style="color:red">x</p>` {
		t.Errorf("html %q", out.HTML)
	}
}
