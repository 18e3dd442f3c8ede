package render

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/cssinline"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testSource is a template from testdata/src/NAME.tmpl, a file of sections
// "-- subject --", "-- html --", "-- text --", "-- layout --", "-- schema --" and "-- data --"
// (test data for the template).
type testSource struct {
	Source
	Data json.RawMessage
}

var sectionRE = regexp.MustCompile(`(?m)^-- (\w+) --\n`)

func loadSource(tb testing.TB, name string) testSource {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "src", name+".tmpl"))
	if err != nil {
		tb.Fatal(err)
	}
	s := testSource{Source: Source{Name: name}}
	text := string(b)
	locs := sectionRE.FindAllStringSubmatchIndex(text, -1)
	for i, loc := range locs {
		end := len(text)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		body := strings.TrimSuffix(text[loc[1]:end], "\n")
		switch key := text[loc[2]:loc[3]]; key {
		case "subject":
			s.Subject = body
		case "html":
			s.HTML = body
		case "text":
			s.Text = body
		case "layout":
			s.Layout = strings.TrimSpace(body)
		case "schema":
			s.Schema = json.RawMessage(body)
		case "data":
			s.Data = json.RawMessage(body)
		default:
			tb.Fatalf("%s.tmpl: unknown section %q", name, key)
		}
	}
	return s
}

// testLayouts resolves layouts from testdata/src.
func testLayouts(tb testing.TB) Layouts {
	return func(name string) (Source, error) {
		if _, err := os.Stat(filepath.Join("testdata", "src", name+".tmpl")); err != nil {
			return Source{}, fmt.Errorf("%s: %w", name, ErrNotFound)
		}
		return loadSource(tb, name).Source, nil
	}
}

// goldenOutput formats a render for a golden file.
func goldenOutput(out Output, notes []string) string {
	var b strings.Builder
	section := func(name, body string) {
		fmt.Fprintf(&b, "-- %s --\n%s\n", name, body)
	}
	section("subject", out.Subject)
	section("html", out.HTML)
	section("text", out.Text)
	section("warnings", strings.Join(out.Warnings, "\n"))
	section("notes", strings.Join(notes, "\n"))
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, diffLines(string(want), got))
	}
}

// diffLines shows the first differing line with some context.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\nwant %q\n got %q", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}

// renderGolden compiles testdata/src/NAME.tmpl, renders it with its data and c, and checks
// both ways of inlining CSS give the same HTML.
func renderGolden(t *testing.T, name string, c Context) (Output, *Template) {
	t.Helper()
	src := loadSource(t, name)
	tpl, err := Compile(src.Source, testLayouts(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Data, err = tpl.DecodeData(src.Data); err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Render(context.Background(), c, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := compile(src.Source, testLayouts(t), true)
	if err != nil {
		t.Fatal(err)
	}
	if slowOut, err := slow.Render(context.Background(), c, Limits{}); err != nil || slowOut.HTML != out.HTML {
		t.Errorf("inlining per render gives another HTML (err %v):\n%s", err, diffLines(out.HTML, slowOut.HTML))
	}
	return out, tpl
}

func TestGoldenTransactional(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	out, tpl := renderGolden(t, "order-shipped", Context{
		Contact:  map[string]any{"first_name": "Ada"},
		Message:  MessageInfo{ID: "msg_01HZX3", Stream: "transactional"},
		TimeZone: paris,
	})
	checkGolden(t, "order-shipped", goldenOutput(out, tpl.Notes()))
}

func TestGoldenNewsletter(t *testing.T) {
	t.Parallel()
	out, tpl := renderGolden(t, "newsletter", Context{
		Contact: map[string]any{"first_name": "Bo"},
		Message: MessageInfo{ID: "msg_01HZX4", Stream: "broadcast"},
		Links:   Links{UnsubscribeURL: "https://news.example/u/2f9c", PreferencesURL: "https://news.example/p/2f9c"},
	})
	if tpl.css != nil {
		t.Errorf("the newsletter's CSS is inlined per render: %q", tpl.Notes())
	}
	checkGolden(t, "newsletter", goldenOutput(out, tpl.Notes()))
}

func TestGoldenGeneratedText(t *testing.T) {
	t.Parallel()
	out, tpl := renderGolden(t, "welcome", Context{})
	if tpl.HasText() {
		t.Fatal("welcome has a text part; this golden is about generating one")
	}
	checkGolden(t, "welcome", goldenOutput(out, tpl.Notes()))
}

func TestGoldenInlineCSS(t *testing.T) {
	t.Parallel()
	in, err := os.ReadFile(filepath.Join("testdata", "cascade.html"))
	if err != nil {
		t.Fatal(err)
	}
	got := cssinline.Inline(string(in))
	checkGolden(t, "cascade", got)
	// The same document as a template (static, so inlined at Compile) gives the same.
	tpl, err := Compile(Source{Name: "cascade", HTML: string(in)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tpl.css != nil {
		t.Errorf("a static document is inlined per render: %q", tpl.Notes())
	}
	out, err := tpl.Render(context.Background(), Context{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if out.HTML != got {
		t.Errorf("Compile inlined otherwise than cssinline.Inline:\n%s", diffLines(got, out.HTML))
	}
}

func TestGoldenClipWarning(t *testing.T) {
	t.Parallel()
	rows := make([]any, 1200)
	for i := range rows {
		rows[i] = map[string]any{"sku": fmt.Sprintf("SKU-%05d", i), "name": "Replacement buckle, stainless", "qty": i%3 + 1}
	}
	tpl, err := Compile(Source{Name: "invoice", Subject: "Your invoice",
		HTML: `<style>td { padding: 4px }</style><table>{{range .data.rows}}<tr><td>{{.sku}}</td><td>{{.name}}</td><td>{{.qty}}</td></tr>{{end}}</table>`,
		Text: `{{range .data.rows}}{{.sku}} {{.name}} × {{.qty}}` + "\n" + `{{end}}`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Render(context.Background(), Context{Data: map[string]any{"rows": rows}}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("html bytes: %d\ntext bytes: %d\n-- warnings --\n%s\n", len(out.HTML), len(out.Text), strings.Join(out.Warnings, "\n"))
	checkGolden(t, "clip-warning", got)
	small, err := tpl.Render(context.Background(), Context{Data: map[string]any{"rows": rows[:10]}}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(small.Warnings) != 0 {
		t.Errorf("warnings for a small message: %q", small.Warnings)
	}
}
