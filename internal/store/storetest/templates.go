package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

// orderShipped is a realistic template with every field set.
func orderShipped() store.Template {
	return store.Template{
		Name:        "order-shipped",
		Subject:     "Your order {{.order.id}} has shipped",
		HTML:        `<p>Hello {{.name}},</p><p>order <b>{{.order.id}}</b> is on its way.</p>`,
		Text:        "Hello {{.name}},\n\norder {{.order.id}} is on its way.\n",
		Layout:      "base",
		Schema:      json.RawMessage(`{"type":"object","required":["order"],"properties":{"order":{"type":"object","required":["id"]}}}`),
		Description: "Sent when an order leaves the warehouse — ✓",
		Locales: map[string]store.TemplateVariant{
			"ko":    {Subject: "주문 {{.order.id}} 발송", HTML: "<p>주문이 발송되었습니다.</p>", Text: "주문이 발송되었습니다."},
			"pt-BR": {Subject: "Pedido {{.order.id}} enviado", Text: "Seu pedido foi enviado."},
		},
		Origin: store.TemplateOriginAPI,
	}
}

func putTemplate(t *testing.T, s store.Store, now time.Time, tpl store.Template) store.Template {
	t.Helper()
	got, err := s.TemplatePut(t.Context(), store.TemplatePutParams{Template: tpl, Now: now})
	if err != nil {
		t.Fatalf("TemplatePut(%s): %v", tpl.Name, err)
	}
	return got
}

func getTemplate(t *testing.T, s store.Store, name string, version int) store.Template {
	t.Helper()
	got, err := s.TemplateGet(t.Context(), name, version)
	if err != nil {
		t.Fatalf("TemplateGet(%s, %d): %v", name, version, err)
	}
	return got
}

func testTemplatePutGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	v1 := orderShipped()
	got := putTemplate(t, s, t0, v1)
	v1.Version, v1.CreatedAt = 1, t0
	if diff := cmp.Diff(v1, got, cmpOpts); diff != "" {
		t.Errorf("TemplatePut result (-want +got):\n%s", diff)
	}
	for _, version := range []int{0, 1} {
		if diff := cmp.Diff(v1, getTemplate(t, s, "order-shipped", version), cmpOpts); diff != "" {
			t.Errorf("TemplateGet(v%d) (-want +got):\n%s", version, diff)
		}
	}

	// Each put is a new version; the old ones stay as they were. Empty optional fields read back
	// empty.
	v2 := store.Template{Name: "order-shipped", Subject: "Shipped", Text: "On its way.", Origin: store.TemplateOriginAPI}
	if got := putTemplate(t, s, t0.Add(time.Minute), v2); got.Version != 2 || !got.CreatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("second TemplatePut = v%d at %v, want v2 at now", got.Version, got.CreatedAt)
	}
	latest := getTemplate(t, s, "order-shipped", 0)
	v2.Version, v2.CreatedAt = 2, t0.Add(time.Minute)
	if diff := cmp.Diff(v2, latest, cmpOpts); diff != "" {
		t.Errorf("latest after the second put (-want +got):\n%s", diff)
	}
	if latest.Schema != nil || latest.Locales != nil || latest.Layout != "" || latest.HTML != "" {
		t.Errorf("empty fields did not read back empty: %+v", latest)
	}
	if diff := cmp.Diff(v1, getTemplate(t, s, "order-shipped", 1), cmpOpts); diff != "" {
		t.Errorf("version 1 changed after the second put (-want +got):\n%s", diff)
	}

	// Versions are per name.
	if got := putTemplate(t, s, t0, store.Template{Name: "welcome", Subject: "Hi", Text: "x", Origin: store.TemplateOriginAPI}); got.Version != 1 {
		t.Errorf("first version of another name = %d, want 1", got.Version)
	}

	for _, tc := range []struct {
		name    string
		version int
	}{{"nope", 0}, {"nope", 1}, {"order-shipped", 3}} {
		_, err := s.TemplateGet(ctx, tc.name, tc.version)
		wantErr(t, fmt.Sprintf("TemplateGet(%s, %d)", tc.name, tc.version), err, store.ErrNotFound)
	}
	if _, err := s.TemplatePut(ctx, store.TemplatePutParams{Template: store.Template{Name: "x"}, Now: t0}); err == nil {
		t.Error("TemplatePut without an origin succeeded")
	}
}

func testTemplatePutConcurrent(t *testing.T, s store.Store) {
	const n = 10
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := s.TemplatePut(t.Context(), store.TemplatePutParams{Template: orderShipped(), Now: t0})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent TemplatePut: %v", err)
		}
	}
	// Every put got its own version: 1..n.
	for v := 1; v <= n; v++ {
		getTemplate(t, s, "order-shipped", v)
	}
	if got := getTemplate(t, s, "order-shipped", 0); got.Version != n {
		t.Errorf("latest version = %d, want %d", got.Version, n)
	}
}

func testTemplateList(t *testing.T, s store.Store) {
	ctx := t.Context()
	names := []string{"b.welcome", "a-reset", "c_news", "digest", "zeta"}
	for i, name := range names {
		origin := store.TemplateOriginAPI
		if i%2 == 1 {
			origin = store.TemplateOriginDir
		}
		putTemplate(t, s, t0, store.Template{Name: name, Subject: "v1", Text: "x", Origin: origin})
	}
	if _, err := s.TemplatePut(ctx, store.TemplatePutParams{Now: t0.Add(time.Minute), AnyOrigin: true,
		Template: store.Template{Name: "digest", Subject: "v2", Text: "x", Origin: store.TemplateOriginAPI}}); err != nil {
		t.Fatalf("TemplatePut: %v", err)
	}
	if err := s.TemplateDelete(ctx, store.TemplateDeleteParams{Name: "zeta", Origin: store.TemplateOriginAPI, Now: t0}); err != nil {
		t.Fatalf("TemplateDelete: %v", err)
	}

	list := func(p store.TemplateListParams) ([]string, string) {
		t.Helper()
		page, next, err := s.TemplateList(ctx, p)
		if err != nil {
			t.Fatalf("TemplateList(%+v): %v", p, err)
		}
		var got []string
		for _, tpl := range page {
			got = append(got, fmt.Sprintf("%s/%d/%s", tpl.Name, tpl.Version, tpl.Subject))
		}
		return got, next
	}
	// By name, the latest version of each live template.
	want := []string{"a-reset/1/v1", "b.welcome/1/v1", "c_news/1/v1", "digest/2/v2"}
	if got, next := list(store.TemplateListParams{}); !slices.Equal(got, want) || next != "" {
		t.Errorf("TemplateList = %v (next %q), want %v and no next page", got, next, want)
	}

	// Pages of 3 visit every template once.
	var all []string
	p := store.TemplateListParams{Limit: 3}
	for pages := 0; ; pages++ {
		got, next := list(p)
		all = append(all, got...)
		if next == "" {
			break
		}
		if pages > 3 {
			t.Fatal("TemplateList pagination does not end")
		}
		p.Cursor = next
	}
	if !slices.Equal(all, want) {
		t.Errorf("paged TemplateList = %v, want %v", all, want)
	}

	// The origin is the latest version's: digest moved from dir to the API.
	if got, _ := list(store.TemplateListParams{Origin: store.TemplateOriginDir}); !slices.Equal(got, []string{"a-reset/1/v1"}) {
		t.Errorf("TemplateList(origin dir) = %v, want a-reset only", got)
	}

	_, _, err := s.TemplateList(ctx, store.TemplateListParams{Cursor: "%%%"})
	wantErr(t, "TemplateList(bad cursor)", err, store.ErrBadCursor)
}

func testTemplateOrigin(t *testing.T, s store.Store) {
	ctx := t.Context()
	dir := store.Template{Name: "welcome", Subject: "Hi", Text: "x", Origin: store.TemplateOriginDir}
	putTemplate(t, s, t0, dir)

	api := dir
	api.Origin = store.TemplateOriginAPI
	_, err := s.TemplatePut(ctx, store.TemplatePutParams{Template: api, Now: t0})
	wantErr(t, "TemplatePut over another origin", err, store.ErrConflict)
	err = s.TemplateDelete(ctx, store.TemplateDeleteParams{Name: "welcome", Origin: store.TemplateOriginAPI, Now: t0})
	wantErr(t, "TemplateDelete of another origin", err, store.ErrConflict)
	if got := getTemplate(t, s, "welcome", 0); got.Version != 1 || got.Origin != store.TemplateOriginDir {
		t.Fatalf("refused put or delete changed the template: %+v", got)
	}

	// AnyOrigin takes the name over.
	got, err := s.TemplatePut(ctx, store.TemplatePutParams{Template: api, Now: t0, AnyOrigin: true})
	if err != nil || got.Version != 2 || got.Origin != store.TemplateOriginAPI {
		t.Fatalf("TemplatePut(AnyOrigin) = %+v, %v; want v2 from the API", got, err)
	}
	if err := s.TemplateDelete(ctx, store.TemplateDeleteParams{Name: "welcome", Origin: store.TemplateOriginDir, AnyOrigin: true, Now: t0}); err != nil {
		t.Fatalf("TemplateDelete(AnyOrigin): %v", err)
	}

	// Once deleted, the name is free for any origin.
	if got := putTemplate(t, s, t0, dir); got.Version != 3 {
		t.Errorf("put after delete = v%d, want v3", got.Version)
	}
}

func testTemplateDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	del := func(name string, force bool) error {
		return s.TemplateDelete(ctx, store.TemplateDeleteParams{Name: name, Origin: store.TemplateOriginAPI, Force: force, Now: t0.Add(time.Hour)})
	}
	wantErr(t, "TemplateDelete(unknown)", del("nope", false), store.ErrNotFound)

	base := store.Template{Name: "base", HTML: `<html>{{template "content" .}}</html>`, Origin: store.TemplateOriginAPI}
	putTemplate(t, s, t0, base)
	news := store.Template{Name: "news", Subject: "News", HTML: "<p>hi</p>", Layout: "base", Origin: store.TemplateOriginAPI}
	putTemplate(t, s, t0, news)

	// A layout in use cannot go; neither can a template with messages waiting to be sent.
	wantErr(t, "TemplateDelete(layout in use)", del("base", false), store.ErrConflict)
	scheduled := Message(t0, func(m *store.Message) {
		m.Template, m.TemplateVersion = "news", 1
		m.Status, m.SendAt, m.NextAttemptAt = store.StatusScheduled, t0.Add(24*time.Hour), t0.Add(24*time.Hour)
	})
	accept(t, s, t0, scheduled)
	wantErr(t, "TemplateDelete(used by a scheduled message)", del("news", false), store.ErrConflict)
	getTemplate(t, s, "news", 0)

	// Messages that are done (sent, failed, cancelled, …) do not hold a template.
	if _, err := s.MessageCancel(ctx, scheduled.Message.ID, t0); err != nil {
		t.Fatalf("MessageCancel: %v", err)
	}
	if err := del("news", false); err != nil {
		t.Fatalf("TemplateDelete after the message was cancelled: %v", err)
	}
	_, err := s.TemplateGet(ctx, "news", 0)
	wantErr(t, "TemplateGet(deleted)", err, store.ErrNotFound)
	wantErr(t, "TemplateDelete(deleted)", del("news", false), store.ErrNotFound)
	// The version a message recorded can still be read.
	if got := getTemplate(t, s, "news", 1); !got.DeletedAt.Equal(t0.Add(time.Hour)) || got.Subject != "News" {
		t.Errorf("TemplateGet(deleted, v1) = %+v, want the version with DeletedAt set", got)
	}

	// With its user gone, the layout may go too.
	if err := del("base", false); err != nil {
		t.Fatalf("TemplateDelete(unused layout): %v", err)
	}

	// Force deletes whatever waits.
	putTemplate(t, s, t0, base)
	putTemplate(t, s, t0, news)
	queued := Message(t0, func(m *store.Message) { m.Template, m.TemplateVersion = "news", 2 })
	accept(t, s, t0, queued)
	if err := del("base", true); err != nil {
		t.Fatalf("TemplateDelete(layout, force): %v", err)
	}
	if err := del("news", true); err != nil {
		t.Fatalf("TemplateDelete(used, force): %v", err)
	}

	// A deleted name comes back with the next version number, never a reused one.
	if got := putTemplate(t, s, t0.Add(2*time.Hour), news); got.Version != 3 || !got.DeletedAt.IsZero() {
		t.Errorf("put after delete = %+v, want v3, live", got)
	}
	if got := getTemplate(t, s, "news", 0); got.Version != 3 {
		t.Errorf("latest after revival = v%d, want v3", got.Version)
	}
}
