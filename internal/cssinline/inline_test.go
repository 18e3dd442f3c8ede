package cssinline

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseStylesheet(t *testing.T) {
	t.Parallel()
	s := ParseStylesheet(`
		/* a comment */
		@import url("fonts.css");
		<!-- p { color: red } -->
		h1, .big > a:hover, td::before { color: #111 !important; font: 12px/1.5 "Helvetica Neue", Arial; }
		@media (max-width: 600px) { .col { width: 100% !important } }
		@font-face { font-family: X; src: url(x.woff2) }
		a { --brand: #f00; color: var(--brand) ; bogus }
		p:first-child + p { margin: 0 }
		x:unknown(3) { color: red }
	`)
	var sels []string
	for _, r := range s.rules {
		sels = append(sels, r.text)
	}
	if want := []string{"p", "h1", "a", "p:first-child + p"}; !reflect.DeepEqual(sels, want) {
		t.Errorf("inlinable rules %q, want %q", sels, want)
	}
	h1 := s.rules[1].decls
	wantDecls := []declaration{{"color", "#111", true}, {"font", `12px/1.5 "Helvetica Neue",Arial`, false}}
	if !reflect.DeepEqual(h1, wantDecls) {
		t.Errorf("h1 declarations %+v, want %+v", h1, wantDecls)
	}
	if a := s.rules[2].decls; len(a) != 2 || a[0].prop != "--brand" || a[0].value != "#f00" || a[1].value != "var(--brand)" {
		t.Errorf("a declarations %+v, want --brand and color (bogus dropped)", a)
	}
	if !s.rules[3].structural || s.rules[1].structural {
		t.Errorf("structural: %v %v, want true false", s.rules[3].structural, s.rules[1].structural)
	}
	wantKept := `@import url("fonts.css");
.big > a:hover, td::before { color: #111 !important; font: 12px/1.5 "Helvetica Neue", Arial; }
@media (max-width: 600px) { .col { width: 100% !important } }
@font-face { font-family: X; src: url(x.woff2) }
x:unknown(3) { color: red }`
	if s.kept != wantKept {
		t.Errorf("kept:\n%s\nwant:\n%s", s.kept, wantKept)
	}
	if len(s.notes) != 3 {
		t.Errorf("notes %q, want 3", s.notes)
	}
}

func TestScanSelector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sel        string
		kind       byte
		key        string
		structural bool
		attrs      []string
		keep       bool
	}{
		{"p", 't', "p", false, nil, false},
		{"TD.cell", '.', "cell", false, nil, false},
		{"div > .a#main", '#', "main", false, nil, false},
		{"table td", 't', "td", false, nil, false},
		{"a[href^='http']", 't', "a", false, []string{"href"}, false},
		{"[data-x] .y:not([lang])", '.', "y", true, []string{"data-x", "lang"}, false},
		{"h1 + p", 't', "p", true, nil, false},
		{"*", 0, "", false, nil, false},
		{".a\\:b", 0, "", false, nil, false},
		{"a:hover", 0, "", false, nil, true},
		{"p::first-line", 0, "", false, nil, true},
		{"p:before", 0, "", false, nil, true},
		{"p:not(.a .b)", 0, "", true, nil, true},
		{"> p", 0, "", false, nil, true},
		{"p +", 0, "", true, nil, true},
		{strings.Repeat("b ", maxCompounds) + "b", 0, "", false, nil, true},
	}
	for _, tt := range tests {
		got := scanSelector(tt.sel)
		if got.keyKind != tt.kind || got.key != tt.key || got.structural != tt.structural ||
			!reflect.DeepEqual(got.attrs, tt.attrs) || (got.keep != "") != tt.keep {
			t.Errorf("scanSelector(%q) = %+v", tt.sel, got)
		}
	}
}

func TestScanSelectorCompounds(t *testing.T) {
	t.Parallel()
	got := scanSelector("table.x  >  td p ~ span:first-child+a[href='a b']")
	if want := []string{"table.x", "td", "p", "span:first-child", "a[href='a b']"}; !reflect.DeepEqual(got.compounds, want) {
		t.Errorf("compounds %q, want %q", got.compounds, want)
	}
	if string(got.combs) != "> ~+" {
		t.Errorf("combinators %q, want \"> ~+\"", got.combs)
	}
}

// TestInlineDeepSelectors checks that matching stays fast where cascadia's own matching
// backtracks exponentially: a long descendant selector that fails on a deep document.
func TestInlineDeepSelectors(t *testing.T) {
	t.Parallel()
	doc := "<style>x b b b b b b b b b b b b { color: red } b b > b { margin: 0 }</style>" + strings.Repeat("<b>", 200)
	start := time.Now()
	out := Inline(doc)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("inlining took %v", d)
	}
	if strings.Contains(out, "color") || strings.Count(out, `style="margin:0"`) != 198 {
		t.Errorf("wrong result: %.300s", out)
	}
}

func TestInline(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"type selector",
			`<style>p { color: red }</style><p>x</p>`,
			`<p style="color:red">x</p>`},
		{"specificity: id over class over type, whatever the order",
			`<style>#a { color: red } .b { color: green } p { color: blue }</style><p id="a" class="b">x</p><p class="b">y</p><p>z</p>`,
			`<p id="a" class="b" style="color:red">x</p><p class="b" style="color:green">y</p><p style="color:blue">z</p>`},
		{"attribute and pseudo-class count as classes",
			`<style>p[title] { color: red } p { color: blue } li:first-child { color: green } li { color: black }</style><p title="t">x</p><ul><li>a</li><li>b</li></ul>`,
			`<p title="t" style="color:red">x</p><ul><li style="color:green">a</li><li style="color:black">b</li></ul>`},
		{"later rule wins at equal specificity",
			`<style>.a { color: red } .b { color: blue }</style><p class="b a">x</p>`,
			`<p class="b a" style="color:blue">x</p>`},
		{"existing inline style beats the stylesheet",
			`<style>#x { color: red; margin: 0 }</style><p id="x" style="color: black">x</p>`,
			`<p id="x" style="margin:0;color:black">x</p>`},
		{"!important beats inline style",
			`<style>p { color: red !important; margin: 0 }</style><p style="color: black; margin: 1px">x</p>`,
			`<p style="margin:1px;color:red!important">x</p>`},
		{"inline !important beats stylesheet !important",
			`<style>#x { color: red !important }</style><p id="x" style="color: black !important">x</p>`,
			`<p id="x" style="color:black!important">x</p>`},
		{"!important beats higher specificity",
			`<style>p { color: red !important } #x { color: blue }</style><p id="x">x</p>`,
			`<p id="x" style="color:red!important">x</p>`},
		{"shorthand after the longhands it overrides",
			`<style>.a { margin: 0 } p { margin-top: 5px }</style><p class="a">x</p>`,
			`<p class="a" style="margin-top:5px;margin:0">x</p>`},
		{"@media and @font-face stay, inlined rules leave",
			"<html><head><style>\n@font-face { font-family: X; src: url(x.woff) }\np { color: red }\n@media (max-width: 600px) { p { color: blue !important } }\n</style></head><body><p>x</p></body></html>",
			"<html><head><style>\n@font-face { font-family: X; src: url(x.woff) }\n@media (max-width: 600px) { p { color: blue !important } }\n</style></head><body><p style=\"color:red\">x</p></body></html>"},
		{"dynamic pseudo-classes and pseudo-elements stay",
			`<style>a { color: red } a:hover { color: blue } p::first-letter { font-size: 2em }</style><a href="/">x</a>`,
			"<style>\na:hover { color: blue }\np::first-letter { font-size: 2em }\n</style><a href=\"/\" style=\"color:red\">x</a>"},
		{"a group is split between inlined and kept",
			`<style>a, a:visited { color: red }</style><a href="/">x</a>`,
			"<style>\na:visited { color: red }\n</style><a href=\"/\" style=\"color:red\">x</a>"},
		{"a block with nothing to inline is left as written",
			`<style>/* keep */ a:hover { color: red }</style><a href="/">x</a>`,
			`<style>/* keep */ a:hover { color: red }</style><a href="/">x</a>`},
		{"print styles are not inlined",
			`<style media="print">p { color: red }</style><p>x</p>`,
			`<style media="print">p { color: red }</style><p>x</p>`},
		{"descendant and child combinators",
			`<style>table td p { color: red } td > span { color: blue }</style><table><tr><td><p>a</p><div><span>b</span></div><span>c</span></td></tr></table>`,
			`<table><tr><td><p style="color:red">a</p><div><span>b</span></div><span style="color:blue">c</span></td></tr></table>`},
		{"implied end tags: p, li, td",
			`<style>p p { color: red } li li { color: red } td td { color: red } td { padding: 0 }</style><p>a<p>b<ul><li>x<li>y</ul><table><tr><td>1<td>2</table>`,
			`<p>a<p>b<ul><li>x<li>y</ul><table><tr><td style="padding:0">1<td style="padding:0">2</table>`},
		{"attribute forms: unquoted, single-quoted, self-closing, void",
			`<style>p, img, br, td { color: red }</style><p style=margin:0>a</p><td style='font-family:"A"'>b</td><img src="x.png"/><br>`,
			`<p style="color:red;margin:0">a</p><td style='color:red;font-family:"A"'>b</td><img src="x.png" style="color:red"/><br style="color:red">`},
		{"quotes and ampersands are escaped",
			`<style>p { font-family: "A&B", 'C' }</style><p>x</p>`,
			`<p style="font-family:&quot;A&amp;B&quot;,'C'">x</p>`},
		{"entities in class and style attributes",
			`<style>.a-b { color: red }</style><p class="a&#45;b" style="margin:&#48;">x</p>`,
			`<p class="a&#45;b" style="color:red;margin:0">x</p>`},
		{"a style block in the body and several blocks in order",
			`<style>p { color: red }</style><p>x</p><style>p { color: blue } @media print { p { color: black } }</style>`,
			"<p style=\"color:blue\">x</p><style>\n@media print { p { color: black } }\n</style>"},
		{"head, title, meta and the style element itself are not styled",
			`<style>* { color: red }</style><head><title>T</title><meta charset="utf-8"></head><p>x</p>`,
			`<head><title>T</title><meta charset="utf-8"></head><p style="color:red">x</p>`},
		{"comments and conditional comments are left alone",
			`<style>p { color: red }</style><!--[if mso]><p>outlook</p><![endif]--><p>x</p>`,
			`<!--[if mso]><p>outlook</p><![endif]--><p style="color:red">x</p>`},
		{"no style block",
			`<p class="a">x</p>`,
			`<p class="a">x</p>`},
		{"unterminated style block is left alone",
			`<p>x</p><style>p { color: red }`,
			`<p>x</p><style>p { color: red }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Inline(tt.in); got != tt.want {
				t.Errorf("Inline(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzInline checks that inlining never panics, changes nothing but style attributes and
// <style> blocks (the start tags stay in order), and is idempotent once the rules are gone.
func FuzzInline(f *testing.F) {
	f.Add(`<style>p { color: red } .a > b { x: y !important }</style><p class="a"><b style='z:1'>x</b></p>`)
	f.Add(`<style>@media x { p { a: b } } a:hover { c: d }</style><a href=x>y</a><p/>`)
	f.Add(`<p style="a:b;;c">x<style>p{}</style><style media=print>p{x:y}</style>`)
	f.Add("<style>\"unterminated { p { color: red }</style><p>")
	f.Fuzz(func(t *testing.T, in string) {
		out := Inline(in)
		tags := func(s string) []string {
			var names []string
			d := ScanDocument([]byte(s), nil)
			for _, e := range d.Elements {
				if e.Node.Data != "style" {
					names = append(names, e.Node.Data)
				}
			}
			return names
		}
		if a, b := tags(in), tags(out); !reflect.DeepEqual(a, b) {
			t.Errorf("start tags changed:\n%q\n%q", a, b)
		}
		if again := Inline(out); again != out && !strings.Contains(out, "<style") {
			t.Errorf("not idempotent:\n%q\n%q", out, again)
		}
	})
}
