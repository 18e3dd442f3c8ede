package templates

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// countingStore is the real store, counting the template reads that reach it.
type countingStore struct {
	store.Store
	gets atomic.Int64
}

func (c *countingStore) TemplateGet(ctx context.Context, name string, version int) (store.Template, error) {
	c.gets.Add(1)
	return c.Store.TemplateGet(ctx, name, version)
}

type bundle struct {
	cat   *Catalog
	store *countingStore
	clock *atomic.Int64 // unix nanoseconds
}

func setup(t *testing.T, mutate ...func(*Config)) *bundle {
	t.Helper()
	st := sqlitetest.Open(t)
	b := &bundle{store: &countingStore{Store: st}, clock: &atomic.Int64{}}
	b.clock.Store(t0.UnixNano())
	cfg := Config{Store: b.store, Now: func() time.Time { return time.Unix(0, b.clock.Load()).UTC() }}
	for _, m := range mutate {
		m(&cfg)
	}
	b.cat = New(cfg)
	return b
}

func (b *bundle) put(t *testing.T, tpl store.Template) store.Template {
	t.Helper()
	if tpl.Origin == "" {
		tpl.Origin = store.TemplateOriginAPI
	}
	saved, _, err := b.cat.Put(t.Context(), tpl)
	if err != nil {
		t.Fatalf("Put(%s): %v", tpl.Name, err)
	}
	return saved
}

func (b *bundle) render(t *testing.T, p RenderParams) Rendered {
	t.Helper()
	r, err := b.cat.Render(t.Context(), p)
	if err != nil {
		t.Fatalf("Render(%+v): %v", p, err)
	}
	return r
}

// TestRenderNoQueryPerMessage: the latest version and the compiled template are cached, so a
// run of renders reads the store once, and again only after LatestTTL.
func TestRenderNoQueryPerMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, store.Template{Name: "welcome", Subject: "Hi {{.data.name}}", HTML: "<p>Hi</p>"})
	before := b.store.gets.Load()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				r, err := b.cat.Render(t.Context(), RenderParams{Name: "welcome", Data: json.RawMessage(`{"name":"Ada"}`)})
				if err != nil || r.Subject != "Hi Ada" || r.Version != 1 {
					t.Errorf("Render = %+v, %v", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := b.store.gets.Load() - before; n != 0 {
		t.Errorf("1600 renders right after a Put read the store %d times, want 0", n)
	}
	b.clock.Add(int64(DefaultLatestTTL))
	b.render(t, RenderParams{Name: "welcome", Data: json.RawMessage(`{"name":"Ada"}`)})
	b.render(t, RenderParams{Name: "welcome", Data: json.RawMessage(`{"name":"Ada"}`)})
	if n := b.store.gets.Load() - before; n != 1 {
		t.Errorf("after the TTL, two renders read the store %d times, want 1", n)
	}
	// Unknown names are cached too.
	before = b.store.gets.Load()
	for range 10 {
		if _, err := b.cat.Render(t.Context(), RenderParams{Name: "nope"}); !errors.Is(err, ErrUnknown) {
			t.Fatalf("Render(unknown) = %v, want ErrUnknown", err)
		}
	}
	if n := b.store.gets.Load() - before; n != 1 {
		t.Errorf("10 renders of an unknown template read the store %d times, want 1", n)
	}
}

// TestLayoutChangeRecompiles: a template compiled with a layout is compiled again once the
// layout has a new version: at once through this catalog, within LatestTTL from another node.
func TestLayoutChangeRecompiles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, store.Template{Name: "base", HTML: `<div>{{template "content" .}}</div><i>v1</i>`})
	b.put(t, store.Template{Name: "news", Subject: "News", HTML: "<p>n</p>", Layout: "base"})
	html := func() string { return b.render(t, RenderParams{Name: "news"}).HTML }
	if got := html(); !strings.Contains(got, "<i>v1</i>") {
		t.Fatalf("html = %s", got)
	}
	b.put(t, store.Template{Name: "base", HTML: `<div>{{template "content" .}}</div><i>v2</i>`})
	if got := html(); !strings.Contains(got, "<i>v2</i>") {
		t.Fatalf("after a Put of the layout, html = %s", got)
	}
	// Another node: straight into the store.
	if _, err := b.store.TemplatePut(t.Context(), store.TemplatePutParams{Now: t0, Template: store.Template{
		Name: "base", HTML: `<div>{{template "content" .}}</div><i>v3</i>`, Origin: store.TemplateOriginAPI}}); err != nil {
		t.Fatal(err)
	}
	if got := html(); !strings.Contains(got, "<i>v2</i>") {
		t.Fatalf("within the TTL, html = %s, want the cached v2", got)
	}
	b.clock.Add(int64(DefaultLatestTTL))
	if got := html(); !strings.Contains(got, "<i>v3</i>") {
		t.Fatalf("after the TTL, html = %s, want v3", got)
	}

	// A layout force-deleted under its user: the user no longer compiles, which is the
	// template's fault (422 on template), not a 500.
	if err := b.cat.Delete(t.Context(), "base", store.TemplateOriginAPI, true); err != nil {
		t.Fatal(err)
	}
	_, err := b.cat.Render(t.Context(), RenderParams{Name: "news"})
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Problems[0].Field != "name" || !strings.Contains(ie.Error(), `layout "base" does not exist`) {
		t.Fatalf("Render after the layout was deleted = %v", err)
	}
}

func TestCompiledCacheIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaxCompiled = 3 })
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		b.put(t, store.Template{Name: name, Subject: name, Text: name,
			Locales: map[string]store.TemplateVariant{"ko": {Subject: name + "-ko", Text: "x"}}})
		for _, loc := range []string{"", "ko", "ko-KR"} {
			b.render(t, RenderParams{Name: name, Locale: loc})
		}
	}
	b.cat.mu.Lock()
	n, l := len(b.cat.compiled), b.cat.lru.Len()
	b.cat.mu.Unlock()
	if n != 3 || l != 3 {
		t.Errorf("the cache holds %d entries (%d in the LRU list), want 3", n, l)
	}
	// Evicted entries compile again.
	if got := b.render(t, RenderParams{Name: "a", Locale: "ko"}); got.Subject != "a-ko" || got.Locale != "ko" {
		t.Errorf("render after eviction = %+v", got)
	}
}

func TestLocaleFallback(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, store.Template{Name: "w", Subject: "Hello", Text: "x", Locales: map[string]store.TemplateVariant{
		"pt": {Subject: "Olá", Text: "x"}, "pt-BR": {Subject: "Oi", Text: "x"}, "zh-Hant": {Subject: "你好", Text: "x"}}})
	b.put(t, store.Template{Name: "ko-only", Locales: map[string]store.TemplateVariant{"ko": {Subject: "안녕", Text: "x"}}})
	for _, tc := range []struct{ name, locale, subject, used string }{
		{"w", "", "Hello", ""},
		{"w", "pt-BR", "Oi", "pt-BR"},
		{"w", "PT-br", "Oi", "pt-BR"},
		{"w", "pt-PT", "Olá", "pt"},
		{"w", "zh-Hant-TW", "你好", "zh-Hant"},
		{"w", "fr", "Hello", ""},
		{"ko-only", "ko-KR", "안녕", "ko"},
	} {
		r := b.render(t, RenderParams{Name: tc.name, Locale: tc.locale})
		if r.Subject != tc.subject || r.Locale != tc.used {
			t.Errorf("%s in %q = %q (variant %q), want %q (%q)", tc.name, tc.locale, r.Subject, r.Locale, tc.subject, tc.used)
		}
	}
	_, err := b.cat.Render(t.Context(), RenderParams{Name: "ko-only", Locale: "fr"})
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Problems[0].Field != "locale" {
		t.Errorf("a locale with no variant and no default = %v, want a problem on locale", err)
	}
}

func TestManagedByDir(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.Dir = "/srv/templates" })
	b.put(t, store.Template{Name: "w", Subject: "s", Text: "x", Origin: store.TemplateOriginDir})
	_, _, err := b.cat.Put(t.Context(), store.Template{Name: "w", Subject: "s", Text: "y", Origin: store.TemplateOriginAPI})
	var me *ManagedError
	if !errors.As(err, &me) || !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "POSTIE_TEMPLATES_DIR") {
		t.Errorf("API Put of a directory template = %v", err)
	}
	if err := b.cat.Delete(t.Context(), "w", store.TemplateOriginAPI, true); !errors.As(err, &me) {
		t.Errorf("API Delete of a directory template = %v", err)
	}

	// Without a directory, the API takes the name over.
	free := New(Config{Store: b.store, Now: b.cat.cfg.Now})
	if saved, _, err := free.Put(t.Context(), store.Template{Name: "w", Subject: "s", Text: "y", Origin: store.TemplateOriginAPI}); err != nil || saved.Origin != store.TemplateOriginAPI {
		t.Errorf("API Put without a directory = %+v, %v", saved, err)
	}
}

// TestBatchLayoutFromBatch: a Batch compiles a template with the layout it stored before (from
// its own read, not the store), and still refuses one whose layout is in neither.
func TestBatchLayoutFromBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, store.Template{Name: "outer", HTML: `<main>{{template "content" .}}</main>`})
	batch, err := b.cat.Batch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := b.store.gets.Load()
	for _, tpl := range []store.Template{
		{Name: "base", HTML: `<div>{{template "content" .}}</div>`, Layout: "outer"},
		{Name: "news", Subject: "News", HTML: "<p>n</p>", Layout: "base"},
		{Name: "offers", Subject: "Offers", HTML: "<p>o</p>", Layout: "base"},
	} {
		tpl.Origin = store.TemplateOriginDir
		if _, _, err := batch.Put(t.Context(), tpl); err != nil {
			t.Fatalf("Batch.Put(%s): %v", tpl.Name, err)
		}
	}
	if n := b.store.gets.Load() - before; n != 0 {
		t.Errorf("a Batch read layouts it holds from the store %d times, want 0", n)
	}
	if got := b.render(t, RenderParams{Name: "news"}).HTML; !strings.Contains(got, "<main><div><p>n</p></div></main>") {
		t.Errorf("news renders %s", got)
	}

	_, _, err = batch.Put(t.Context(), store.Template{Name: "lost", Subject: "s", HTML: "<p>x</p>", Layout: "missing",
		Origin: store.TemplateOriginDir})
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Problems[0].Field != "layout" || !strings.Contains(ie.Error(), `layout "missing" does not exist`) {
		t.Errorf("Batch.Put of a template whose layout is nowhere = %v, want a problem on layout", err)
	}
}
