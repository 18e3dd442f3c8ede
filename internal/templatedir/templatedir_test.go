package templatedir_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/templatedir"
	"github.com/postie/postie/internal/templates"
)

type bundle struct {
	t      *testing.T
	dir    string
	store  store.Store
	cat    *templates.Catalog
	loader *templatedir.Loader
	mtime  atomic.Int64 // each write gets a later modification time than the one before
}

func setup(t *testing.T, files map[string]string) *bundle {
	t.Helper()
	st := sqlitetest.Open(t)
	b := &bundle{t: t, dir: t.TempDir(), store: st}
	b.mtime.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	for name, content := range files {
		b.write(name, content)
	}
	b.cat = templates.New(templates.Config{Store: st, Dir: b.dir})
	b.loader = templatedir.New(templatedir.Config{Dir: b.dir, Catalog: b.cat, Interval: 5 * time.Millisecond})
	return b
}

// write replaces a file as git and most editors do (a new file renamed into place, so the
// reloader never reads half a file), with a modification time of its own, so that a rewrite of
// the same size within the file system's time granularity is still a change.
func (b *bundle) write(name, content string) {
	b.t.Helper()
	tmp := filepath.Join(b.dir, ".tmp-"+name)
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		b.t.Fatal(err)
	}
	mt := time.Unix(b.mtime.Add(1), 0)
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(b.dir, name)); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bundle) latest(name string) store.Template {
	b.t.Helper()
	tpl, err := b.store.TemplateGet(context.Background(), name, 0)
	if err != nil {
		b.t.Fatalf("TemplateGet(%s): %v", name, err)
	}
	return tpl
}

// run starts the reloader for the rest of the test.
func (b *bundle) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.loader.Run(ctx) }()
	b.t.Cleanup(func() { cancel(); <-done })
}

// eventually waits (polling, at most 10 s) until cond holds.
func (b *bundle) eventually(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

const orderShipped = `{{/* description: Sent when an order ships */}}
{{define "subject"}}Order {{.data.order.id}} shipped{{end}}
{{define "html"}}<p>Hi {{.data.name}}, order {{.data.order.id}} is on its way.</p>{{end}}
{{define "text" -}}
Hi {{.data.name}}, order {{.data.order.id}} is on its way.
{{- end}}
`

const schema = `{"type": "object", "required": ["order"],
  "properties": {"order": {"type": "object", "required": ["id"]}}}`

func TestLoad(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{
		"order-shipped.tmpl":        orderShipped,
		"order-shipped.ko.tmpl":     `{{define "subject"}}주문 {{.data.order.id}} 발송{{end}}{{define "text"}}발송{{end}}`,
		"order-shipped.schema.json": schema,
		"news.tmpl":                 "{{/* layout: base */}}\n{{define \"subject\"}}News{{end}}{{define \"html\"}}<p>n</p>{{end}}",
		"base.tmpl":                 `{{define "html"}}<div>{{template "content" .}}</div>{{end}}`,
		"README.md":                 "not a template",
		".order-shipped.tmpl.swp":   "an editor's swap file",
	})
	if err := b.loader.Load(t.Context()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := b.latest("order-shipped")
	if got.Version != 1 || got.Origin != store.TemplateOriginDir || got.Subject != "Order {{.data.order.id}} shipped" ||
		got.Text != "Hi {{.data.name}}, order {{.data.order.id}} is on its way." || got.Description != "Sent when an order ships" ||
		got.Locales["ko"].Subject != "주문 {{.data.order.id}} 발송" || !strings.Contains(string(got.Schema), `"required": ["id"]`) {
		t.Errorf("order-shipped = %+v", got)
	}
	if got := b.latest("news"); got.Layout != "base" {
		t.Errorf("news = %+v", got)
	}
	if errs := b.loader.Errors(); len(errs) != 0 {
		t.Errorf("Errors = %v", errs)
	}
	// The data is validated against the file's schema.
	_, err := b.cat.Render(t.Context(), templates.RenderParams{Name: "order-shipped", Data: []byte(`{"order": {}}`)})
	var ie *templates.InvalidError
	if !errors.As(err, &ie) || ie.Problems[0].Field != "data/order/id" {
		t.Errorf("Render with bad data = %v", err)
	}

	// Loading the same files again (a restart) stores nothing new.
	again := templatedir.New(templatedir.Config{Dir: b.dir, Catalog: b.cat})
	if err := again.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := b.latest("order-shipped").Version; v != 1 {
		t.Errorf("a second load stored version %d", v)
	}
}

func TestLoadBrokenFileStopsStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"syntax error", map[string]string{"w.tmpl": "{{define \"subject\"}}Hi{{end}}\n{{define \"html\"}}\n<p>\n  {{if .data.x}}</p>{{end}}"},
			"w.tmpl:"},
		{"unknown function", map[string]string{"w.tmpl": "{{define \"subject\"}}Hi{{end}}\n{{define \"html\"}}\n<p>\n  {{shout .data.x}}</p>{{end}}"},
			"w.tmpl:4: html: function \"shout\" not defined"},
		{"unknown function on the define line", map[string]string{"w.tmpl": "\n{{define \"text\"}}Hi {{shout .data.x}}{{end}}"},
			"w.tmpl:2: text:"},
		{"not a file format", map[string]string{"w.tmpl": "<p>plain html</p>"}, "w.tmpl:1:1: text outside"},
		{"bad schema", map[string]string{"w.tmpl": `{{define "text"}}x{{end}}`, "w.schema.json": `{"type": "objekt"}`},
			"w.schema.json: schema/type:"},
		{"schema not JSON", map[string]string{"w.tmpl": `{{define "text"}}x{{end}}`, "w.schema.json": "{\n  \"type\": }"},
			"w.schema.json:2:11: not JSON"},
		{"missing layout", map[string]string{"w.tmpl": "\n{{/* layout: nope */}}\n{{define \"html\"}}x{{end}}"},
			`w.tmpl:2: layout: layout "nope" does not exist`},
		{"layout cycle", map[string]string{"a.tmpl": "{{/* layout: b */}}{{define \"html\"}}{{template \"content\" .}}{{end}}",
			"b.tmpl": "{{/* layout: a */}}{{define \"html\"}}{{template \"content\" .}}{{end}}"}, "includes itself"},
		{"variant without base", map[string]string{"w.ko.tmpl": `{{define "text"}}x{{end}}`}, "w.ko.tmpl: there is no w.tmpl"},
		{"bad name", map[string]string{"Welcome.tmpl": `{{define "text"}}x{{end}}`}, "Welcome.tmpl: not a template name"},
		{"broken variant", map[string]string{"w.tmpl": `{{define "text"}}x{{end}}`, "w.ko.tmpl": "{{define \"subject\"}}s{{end}}\n{{define \"text\"}}{{nope}}{{end}}"},
			`w.ko.tmpl:2: text: function "nope" not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.files)
			err := b.loader.Load(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{"w.tmpl": `{{define "subject"}}v1{{end}}{{define "text"}}x{{end}}`})
	if err := b.loader.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.run()
	subject := func() string {
		r, err := b.cat.Render(t.Context(), templates.RenderParams{Name: "w"})
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		return r.Subject
	}

	// A change is a new version, served at once.
	b.write("w.tmpl", `{{define "subject"}}v2{{end}}{{define "text"}}x{{end}}`)
	b.eventually("v2 served", func() bool { return subject() == "v2" })
	if got := b.latest("w"); got.Version != 2 {
		t.Errorf("after the reload the latest version is %d, want 2", got.Version)
	}

	// A broken change: logged, reported with file:line, and version 2 keeps serving.
	b.write("w.tmpl", "{{define \"subject\"}}v3{{end}}\n{{define \"text\"}}\n{{nope}}{{end}}")
	b.eventually("a load error", func() bool { return len(b.loader.Errors()) == 1 })
	e := b.loader.Errors()[0]
	if e.Name != "w" || e.File != "w.tmpl" || !strings.Contains(e.Message, `w.tmpl:3: text: function "nope" not defined`) {
		t.Errorf("load error = %+v", e)
	}
	if got := b.latest("w"); got.Version != 2 || subject() != "v2" {
		t.Errorf("after a broken change the latest is v%d, subject %q; want v2 serving", got.Version, subject())
	}

	// Fixed: a new version, and the error is gone.
	b.write("w.tmpl", `{{define "subject"}}v4{{end}}{{define "text"}}x{{end}}`)
	b.eventually("v4 served", func() bool { return subject() == "v4" })
	b.eventually("no load error", func() bool { return len(b.loader.Errors()) == 0 })
	if got := b.latest("w"); got.Version != 3 {
		t.Errorf("after the fix the latest version is %d, want 3", got.Version)
	}

	// A new template that needs a new layout, both added at once.
	b.write("news.tmpl", "{{/* layout: base */}}{{define \"subject\"}}N{{end}}{{define \"html\"}}<p>n</p>{{end}}")
	b.write("base.tmpl", `{{define "html"}}<div>{{template "content" .}}</div>{{end}}`)
	b.eventually("news", func() bool {
		_, err := b.store.TemplateGet(context.Background(), "news", 0)
		return err == nil
	})

	// A removed file deletes its template.
	if err := os.Remove(filepath.Join(b.dir, "w.tmpl")); err != nil {
		t.Fatal(err)
	}
	b.eventually("w deleted", func() bool {
		_, err := b.store.TemplateGet(context.Background(), "w", 0)
		return errors.Is(err, store.ErrNotFound)
	})
	// A layout still in use stays, and says why.
	if err := os.Remove(filepath.Join(b.dir, "base.tmpl")); err != nil {
		t.Fatal(err)
	}
	b.eventually("a load error for base", func() bool { return len(b.loader.Errors()) == 1 })
	if e := b.loader.Errors()[0]; e.Name != "base" || !strings.Contains(e.Message, "is the layout of template news") {
		t.Errorf("load error = %+v", e)
	}
	if got := b.latest("base"); got.Version != 1 {
		t.Errorf("base = %+v", got)
	}
}

// TestNameConflict: a file whose name is an API template is not loaded and is reported, and does
// not stop the start; API changes to a directory template are refused.
func TestNameConflict(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{
		"promo.tmpl": `{{define "subject"}}from the file{{end}}{{define "text"}}x{{end}}`,
		"w.tmpl":     `{{define "subject"}}w{{end}}{{define "text"}}x{{end}}`,
	})
	api := templates.New(templates.Config{Store: b.store})
	if _, _, err := api.Put(t.Context(), store.Template{Name: "promo", Subject: "from the API", Text: "x", Origin: store.TemplateOriginAPI}); err != nil {
		t.Fatal(err)
	}
	if err := b.loader.Load(t.Context()); err != nil {
		t.Fatalf("Load with a name conflict: %v", err)
	}
	errs := b.loader.Errors()
	if len(errs) != 1 || errs[0].Name != "promo" || errs[0].File != "promo.tmpl" ||
		!strings.Contains(errs[0].Message, "exists as an API template") {
		t.Errorf("Errors = %+v", errs)
	}
	if got := b.latest("promo"); got.Subject != "from the API" || got.Origin != store.TemplateOriginAPI {
		t.Errorf("promo = %+v", got)
	}
	_, _, err := b.cat.Put(t.Context(), store.Template{Name: "w", Subject: "api", Text: "x", Origin: store.TemplateOriginAPI})
	var me *templates.ManagedError
	if !errors.As(err, &me) {
		t.Errorf("API Put of a directory template = %v", err)
	}
}

// countingStore counts the listings of templates made through it.
type countingStore struct {
	store.Store
	lists atomic.Int32
}

func (s *countingStore) TemplateList(ctx context.Context, p store.TemplateListParams) ([]store.Template, string, error) {
	s.lists.Add(1)
	return s.Store.TemplateList(ctx, p)
}

// TestLoadManyWithLayouts: a directory whose templates use layouts that sort after them (page-*
// → base → root) loads in one pass, layouts first, and reads the list of live templates a fixed
// number of times, not once a template (which made a load quadratic in the templates).
func TestLoadManyWithLayouts(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"base.tmpl": "{{/* layout: root */}}\n" + `{{define "html"}}<main>{{template "content" .}}</main>{{end}}`,
		"root.tmpl": `{{define "html"}}<html><body>{{template "content" .}}</body></html>{{end}}`,
	}
	const pages = 60
	for i := range pages {
		files[fmt.Sprintf("page-%02d.tmpl", i)] = "{{/* layout: base */}}\n" +
			fmt.Sprintf(`{{define "subject"}}Page %d{{end}}{{define "html"}}<p>{{.data.x}}</p>{{end}}`, i)
	}
	b := setup(t, files)
	cs := &countingStore{Store: b.store}
	cat := templates.New(templates.Config{Store: cs, Dir: b.dir})
	loader := templatedir.New(templatedir.Config{Dir: b.dir, Catalog: cat})
	if err := loader.Load(t.Context()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if n := cs.lists.Load(); n > 3 {
		t.Errorf("Load listed the templates %d times for %d templates, want a fixed number", n, pages+2)
	}
	r, err := cat.Render(t.Context(), templates.RenderParams{Name: "page-07", Data: []byte(`{"x": "seven"}`)})
	if err != nil || r.HTML != "<html><body><main><p>seven</p></main></body></html>" {
		t.Errorf("Render(page-07) = %q, %v", r.HTML, err)
	}
	for _, name := range []string{"root", "base", "page-00", "page-59"} {
		if v := b.latest(name).Version; v != 1 {
			t.Errorf("%s: version %d, want 1", name, v)
		}
	}
}
