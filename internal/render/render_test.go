package render

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRenderConcurrent renders one Template from many goroutines with different links, zones
// and data: each render must see only its own (instances carry per-render state).
func TestRenderConcurrent(t *testing.T) {
	t.Parallel()
	tpl, err := Compile(Source{Name: "t",
		Subject: "#{{.data.n}}",
		HTML:    `<style>a { color: red }</style><a href="{{unsubscribe_url}}">{{.data.n}}</a> {{date "15:04" .data.at}}`,
		Text:    `{{.data.n}} {{unsubscribe_url}} {{date "15:04" .data.at}}`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	zones := []*time.Location{time.UTC, time.FixedZone("A", 3600), time.FixedZone("B", 7200)}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := g*1000 + i
				zone := zones[n%len(zones)]
				c := Context{
					Data:     map[string]any{"n": n, "at": "2026-01-01T10:00:00Z"},
					Links:    Links{UnsubscribeURL: fmt.Sprintf("https://u.example/%d", n)},
					TimeZone: zone,
				}
				if err := tpl.Validate(json.RawMessage(fmt.Sprintf(`{"n": %d}`, n))); err != nil {
					t.Error(err)
					return
				}
				out, err := tpl.Render(context.Background(), c, Limits{})
				if err != nil {
					t.Error(err)
					return
				}
				hour := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC).In(zone).Format("15:04")
				wantText := fmt.Sprintf("%d https://u.example/%d %s", n, n, hour)
				if out.Subject != fmt.Sprintf("#%d", n) || out.Text != wantText ||
					!strings.Contains(out.HTML, fmt.Sprintf(`href="https://u.example/%d" style="color:red">%d</a> %s`, n, n, hour)) {
					t.Errorf("render %d got %+v", n, out)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(tpl.free); n > 8 {
		t.Errorf("%d instances for 8 goroutines", n)
	}
}

// TestRenderKeepsNoState checks that a render after a failed one is clean: the budget, the
// links and the buffers start afresh.
func TestRenderKeepsNoState(t *testing.T) {
	t.Parallel()
	tpl, err := Compile(Source{Name: "t", HTML: `{{range .data.items}}{{.}}{{end}} {{unsubscribe_url}}`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	many := make([]any, 5000)
	for i := range many {
		many[i] = "x"
	}
	_, err = tpl.Render(context.Background(), Context{Data: map[string]any{"items": many}, Links: Links{UnsubscribeURL: "https://u.example/1"}}, Limits{MaxOutput: 100})
	if err == nil {
		t.Fatal("no error past MaxOutput")
	}
	out, err := tpl.Render(context.Background(), Context{Data: map[string]any{"items": []any{"a"}}}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if out.HTML != "a "+PlaceholderUnsubscribeURL {
		t.Errorf("html %q", out.HTML)
	}
}

// {{.campaign}} is the campaign's map, or an empty object for other messages, and a render
// keeps no campaign for the next one.
func TestCampaignDot(t *testing.T) {
	t.Parallel()
	tpl, err := Compile(Source{Name: "t", Subject: `{{if .campaign}}{{.campaign.name}}{{else}}none{{end}}`, Text: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		campaign map[string]any
		want     string
	}{{map[string]any{"name": "May news"}, "May news"}, {nil, "none"}} {
		out, err := tpl.Render(context.Background(), Context{Campaign: tt.campaign}, Limits{})
		if err != nil || out.Subject != tt.want {
			t.Errorf("subject %q, %v; want %q", out.Subject, err, tt.want)
		}
	}
}

func TestPlainNumbers(t *testing.T) {
	t.Parallel()
	in := map[string]any{"a": 1e6, "b": []any{"x", 2.5}, "c": map[string]any{"d": "e"}}
	got, changed := plainNumbers(in)
	if !changed {
		t.Fatal("not changed")
	}
	if fmt.Sprint(got) != "map[a:1000000 b:[x 2.5] c:map[d:e]]" {
		t.Errorf("got %v", got)
	}
	if in["a"] != 1e6 {
		t.Error("the caller's data was modified")
	}
	same := map[string]any{"c": map[string]any{"d": "e"}}
	if _, changed := plainNumbers(same); changed {
		t.Error("changed data without numbers")
	}
}

func TestLayoutOnItsOwn(t *testing.T) {
	t.Parallel()
	tpl, err := Compile(Source{Name: "base", Subject: `{{template "content" .}} · Shop`, HTML: `<main>{{template "content" .}}</main>`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Render(context.Background(), Context{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != "· Shop" || out.HTML != "<main></main>" {
		t.Errorf("got %+v", out)
	}
}

func TestLayoutChain(t *testing.T) {
	t.Parallel()
	layouts := layoutsOf(map[string]Source{
		"outer": {Subject: `[{{template "content" .}}]`, HTML: `<body>{{define "x"}}outer-x{{end}}{{template "x"}}{{template "content" .}}</body>`},
		"inner": {HTML: `<main>{{define "x"}}inner-x{{end}}{{template "x"}}{{template "content" .}}</main>`, Text: `== {{template "content" .}} ==`, Layout: "outer"},
	})
	tpl, err := Compile(Source{Name: "t", Subject: "Hi", HTML: `<p>{{.data.n}}</p>`, Text: "text {{.data.n}}", Layout: "inner"}, layouts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Render(context.Background(), Context{Data: map[string]any{"n": 1}}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := Output{Subject: "[Hi]", HTML: "<body>outer-x<main>inner-x<p>1</p></main></body>", Text: "== text 1 =="}
	if out.Subject != want.Subject || out.HTML != want.HTML || out.Text != want.Text {
		t.Errorf("got  %+v\nwant %+v", out, want)
	}
}

// TestEscaping: data is escaped for its HTML context (element text, attribute, URL), and not
// in the subject and text, which are plain text.
func TestEscaping(t *testing.T) {
	t.Parallel()
	tpl, err := Compile(Source{Name: "esc", Subject: "{{.data.x}}", Text: "{{.data.x}}",
		HTML: `<p title="{{.data.x}}">{{.data.x}}</p><a href="{{.data.u}}">go</a><a href="https://e.example/?q={{.data.x}}">q</a>`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Render(context.Background(), Context{Data: map[string]any{"x": `<b>"Tom" & 'Jerry'</b>`, "u": "javascript:alert(1)"}}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `<b>"Tom" & 'Jerry'</b>`; out.Subject != want || out.Text != want {
		t.Errorf("subject %q, text %q: want the data as it is", out.Subject, out.Text)
	}
	for _, want := range []string{
		`<p title="&lt;b&gt;&#34;Tom&#34; &amp; &#39;Jerry&#39;&lt;/b&gt;">&lt;b&gt;&#34;Tom&#34; &amp; &#39;Jerry&#39;&lt;/b&gt;</p>`,
		`<a href="#ZgotmplZ">go</a>`, // an unsafe URL scheme is replaced
		`?q=%3cb%3e%22Tom%22%20%26%20%27Jerry%27%3c%2fb%3e`,
	} {
		if !strings.Contains(out.HTML, want) {
			t.Errorf("html lacks %s:\n%s", want, out.HTML)
		}
	}
}
