package httpapi_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/render"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// orderShipped is a transactional template with a schema, a layout-free HTML part and a Korean
// variant.
func orderShipped() map[string]any {
	return map[string]any{
		"subject":     "Order {{.data.order.id}} has shipped",
		"html":        `<p>Hello {{.data.name}},</p><p>order <b>{{.data.order.id}}</b> is on its way.</p>`,
		"text":        "Hello {{.data.name}},\norder {{.data.order.id}} is on its way.\n",
		"description": "Sent when an order leaves the warehouse",
		"schema": map[string]any{
			"type": "object", "required": []string{"name", "order"},
			"properties": map[string]any{
				"name":  map[string]any{"type": "string"},
				"order": map[string]any{"type": "object", "required": []string{"id"}, "properties": map[string]any{"id": map[string]any{"type": "string"}}},
			},
		},
		"locales": map[string]any{
			"ko": map[string]any{"subject": "주문 {{.data.order.id}} 발송", "html": "<p>{{.data.name}}님, 주문이 발송되었습니다.</p>"},
		},
	}
}

func shipData() map[string]any {
	return map[string]any{"name": "Ada", "order": map[string]any{"id": "A-1"}}
}

func (b *bundle) put(name string, body any) response {
	b.t.Helper()
	return b.do("PUT", "/v1/templates/"+name, body)
}

// mustPut stores a template and returns its version.
func (b *bundle) mustPut(name string, body any) int {
	b.t.Helper()
	r := b.put(name, body)
	if r.status != 200 && r.status != 201 {
		b.t.Fatalf("PUT %s: %d %s", name, r.status, r.body)
	}
	return int(r.json(b.t)["version"].(float64))
}

func (b *bundle) templateCount() int {
	b.t.Helper()
	page, _, err := b.store.TemplateList(context.Background(), store.TemplateListParams{Limit: 1000})
	if err != nil {
		b.t.Fatal(err)
	}
	return len(page)
}

func TestTemplateLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.put("order-shipped", orderShipped())
	if r.status != 201 {
		t.Fatalf("first PUT: %d %s", r.status, r.body)
	}
	v1 := r.json(t)
	if v1["version"] != float64(1) || v1["origin"] != "api" || v1["name"] != "order-shipped" {
		t.Fatalf("first PUT answered %s", r.body)
	}
	changed := orderShipped()
	changed["subject"] = "Shipped: {{.data.order.id}}"
	if r := b.put("order-shipped", changed); r.status != 200 || r.json(t)["version"] != float64(2) {
		t.Fatalf("second PUT: %d %s", r.status, r.body)
	}

	g := b.do("GET", "/v1/templates/order-shipped", nil).json(t)
	if g["version"] != float64(2) || g["subject"] != "Shipped: {{.data.order.id}}" || g["schema"] == nil ||
		g["locales"].(map[string]any)["ko"] == nil || g["description"] != "Sent when an order leaves the warehouse" {
		t.Errorf("GET latest = %v", g)
	}
	if g := b.do("GET", "/v1/templates/order-shipped?version=1", nil).json(t); g["subject"] != "Order {{.data.order.id}} has shipped" {
		t.Errorf("GET ?version=1 = %v", g)
	}
	for _, path := range []string{"/v1/templates/nope", "/v1/templates/order-shipped?version=3"} {
		if r := b.do("GET", path, nil); r.status != 404 {
			t.Errorf("GET %s: %d, want 404", path, r.status)
		}
	}

	// Preview: the latest version, a pinned one, a locale (with fallback from ko-KR to ko).
	for _, tc := range []struct {
		body        map[string]any
		subject     string
		version     float64
		locale      string
		htmlContain string
	}{
		{map[string]any{"data": shipData()}, "Shipped: A-1", 2, "", "order <b>A-1</b>"},
		{map[string]any{"data": shipData(), "version": 1}, "Order A-1 has shipped", 1, "", "<b>A-1</b>"},
		{map[string]any{"data": shipData(), "locale": "ko-KR"}, "주문 A-1 발송", 2, "ko", "Ada님"},
		{map[string]any{"data": shipData(), "locale": "fr"}, "Shipped: A-1", 2, "", "Hello Ada"},
	} {
		r := b.do("POST", "/v1/templates/order-shipped/render", tc.body)
		if r.status != 200 {
			t.Errorf("render %v: %d %s", tc.body, r.status, r.body)
			continue
		}
		got := r.json(t)
		loc, _ := got["locale"].(string)
		if got["subject"] != tc.subject || got["version"] != tc.version || loc != tc.locale ||
			!strings.Contains(got["html"].(string), tc.htmlContain) || got["text"] == "" {
			t.Errorf("render %v = %s", tc.body, r.body)
		}
	}
	if r := b.do("POST", "/v1/templates/nope/render", map[string]any{}); r.status != 404 {
		t.Errorf("render of an unknown template: %d", r.status)
	}
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"bad data", map[string]any{"data": map[string]any{"name": "Ada", "order": map[string]any{"id": 1}}}, "body.data/order/id"},
		{"no data", map[string]any{}, "body.data/name"},
		{"unknown version", map[string]any{"data": shipData(), "version": 7}, "body.version"},
		{"bad locale", map[string]any{"data": shipData(), "locale": "Korean please"}, "body.locale"},
	} {
		b.wantProblem("render: "+tc.name, b.do("POST", "/v1/templates/order-shipped/render", tc.body), 422, tc.field)
	}

	// Send with it: rendered before the 202, name, version and locale recorded.
	r = b.do("POST", "/v1/messages", map[string]any{"to": []string{"ada@example.com"}, "template": "order-shipped",
		"data": shipData(), "locale": "ko"})
	if r.status != 202 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	msgID := r.json(t)["id"].(string)
	m := b.do("GET", "/v1/messages/"+msgID, nil).json(t)
	if m["subject"] != "주문 A-1 발송" || m["template"] != "order-shipped" || m["template_version"] != float64(2) || m["locale"] != "ko" {
		t.Errorf("message = %v", m)
	}
	raw := string(b.do("GET", "/v1/messages/"+msgID+"/raw", nil).body)
	if !strings.Contains(raw, "text/html") || !strings.Contains(raw, "text/plain") {
		t.Errorf("raw MIME lacks the rendered parts:\n%s", raw)
	}
	stored, err := b.store.MessageGet(context.Background(), msgID)
	if err != nil || !strings.Contains(string(stored.Data), `"A-1"`) {
		t.Errorf("stored data = %s, %v", stored.Data, err)
	}
	// A pinned version.
	r = b.do("POST", "/v1/messages", map[string]any{"to": []string{"ada@example.com"}, "template": "order-shipped",
		"template_version": 1, "data": shipData()})
	if m := b.do("GET", "/v1/messages/"+r.json(t)["id"].(string), nil).json(t); m["subject"] != "Order A-1 has shipped" || m["template_version"] != float64(1) {
		t.Errorf("pinned version: %v", m)
	}

	// List.
	b.mustPut("welcome", map[string]any{"subject": "Hi", "text": "Welcome"})
	l := b.do("GET", "/v1/templates?limit=1", nil).json(t)
	if data := l["data"].([]any); len(data) != 1 || data[0].(map[string]any)["name"] != "order-shipped" || l["next_cursor"] == nil {
		t.Fatalf("list page 1 = %v", l)
	}
	l = b.do("GET", "/v1/templates?limit=1&cursor="+l["next_cursor"].(string), nil).json(t)
	if data := l["data"].([]any); len(data) != 1 || data[0].(map[string]any)["name"] != "welcome" || l["next_cursor"] != nil {
		t.Fatalf("list page 2 = %v", l)
	}
	if r := b.do("GET", "/v1/templates?cursor=%25%25", nil); r.status != 422 {
		t.Errorf("bad cursor: %d", r.status)
	}

	// Delete: refused while a scheduled message was made from it, unless forced.
	r = b.do("POST", "/v1/messages", map[string]any{"to": []string{"ada@example.com"}, "template": "welcome",
		"send_at": testNow.Add(time.Hour)})
	if r.status != 202 {
		t.Fatalf("schedule: %d %s", r.status, r.body)
	}
	b.wantProblem("delete while scheduled", b.do("DELETE", "/v1/templates/welcome", nil), 409, "")
	if r := b.do("DELETE", "/v1/templates/welcome?force=true", nil); r.status != 204 {
		t.Fatalf("forced delete: %d %s", r.status, r.body)
	}
	if r := b.do("GET", "/v1/templates/welcome", nil); r.status != 404 {
		t.Errorf("GET after delete: %d", r.status)
	}
	if g := b.do("GET", "/v1/templates/welcome?version=1", nil).json(t); g["version"] != float64(1) || g["deleted_at"] == nil {
		t.Errorf("GET ?version=1 of a deleted template = %v, want it with deleted_at", g)
	}
	if r := b.do("DELETE", "/v1/templates/welcome", nil); r.status != 404 {
		t.Errorf("second delete: %d", r.status)
	}
	b.wantProblem("send with a deleted template", b.do("POST", "/v1/messages",
		map[string]any{"to": []string{"a@example.com"}, "template": "welcome"}), 422, "body.template")
	// The name comes back with the next version.
	if v := b.mustPut("welcome", map[string]any{"subject": "Hi", "text": "Welcome back"}); v != 2 {
		t.Errorf("PUT after delete: version %d, want 2", v)
	}
}

func TestTemplateLayouts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mustPut("base", map[string]any{
		"html": `<html><body><h1>Shop</h1>{{template "content" .}}<footer>f1</footer></body></html>`})
	b.mustPut("news", map[string]any{"subject": "News: {{.data.title}}", "html": "<p>{{.data.title}}</p>", "layout": "base"})
	send := func() string {
		t.Helper()
		r := b.do("POST", "/v1/templates/news/render", map[string]any{"data": map[string]any{"title": "Spring"}})
		if r.status != 200 {
			t.Fatalf("render: %d %s", r.status, r.body)
		}
		return r.json(t)["html"].(string)
	}
	if html := send(); !strings.Contains(html, "<h1>Shop</h1><p>Spring</p><footer>f1</footer>") {
		t.Fatalf("html = %s", html)
	}
	// A layout change reaches its users at once in this process.
	b.mustPut("base", map[string]any{"html": `<html><body>{{template "content" .}}<footer>f2</footer></body></html>`})
	if html := send(); !strings.Contains(html, "<footer>f2</footer>") {
		t.Fatalf("after the layout change, html = %s", html)
	}
	// A layout change that would break a user is refused, naming the user.
	r := b.put("base", map[string]any{"html": `<html>{{template "content" .}}{{.data.title | nosuchfunc}}</html>`})
	b.wantProblem("layout change that breaks itself", r, 422, "body.html")
	// … or one that breaks a template using it: news has a subject, the layout then must place it.
	r = b.put("base", map[string]any{"subject": "Shop", "html": `<html>{{template "content" .}}</html>`})
	b.wantProblem("layout change that breaks a user", r, 422, "body")
	if !strings.Contains(string(r.body), "template news uses this template as its layout") {
		t.Errorf("the problem does not name the user: %s", r.body)
	}
	// The layout cannot be deleted while used.
	b.wantProblem("delete a layout in use", b.do("DELETE", "/v1/templates/base", nil), 409, "")
	// Cycles: base → news → base.
	r = b.put("base", map[string]any{"html": `{{template "content" .}}`, "layout": "news"})
	b.wantProblem("layout cycle", r, 422, "body.layout")
	if v := b.do("GET", "/v1/templates/base", nil).json(t)["version"]; v != float64(2) {
		t.Errorf("refused changes stored a version: latest is %v", v)
	}
}

// TestTemplateBadInput covers the bad input of the templates issue: a 4xx naming the problem
// (with line and column or the schema path), and nothing stored.
func TestTemplateBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mustPut("self", map[string]any{"subject": "s", "text": "t"})
	good := func(kv ...any) map[string]any {
		return modify(map[string]any{"subject": "Hi {{.data.name}}", "html": "<p>Hi</p>"}, kv...)
	}
	cases := []struct {
		name, tpl string
		body      any
		status    int
		field     string
		detail    string // in the problem's detail or an error message
	}{
		{"syntax error", "t1", good("html", "<p>\n{{if .data.x}}</p>"), 422, "body.html", "line "},
		{"unclosed action", "t1", good("subject", "Hi {{.data.name"), 422, "body.subject", "line 1"},
		{"unknown function", "t1", good("html", "<p>{{nosuchfunc .data.x}}</p>"), 422, "body.html", "nosuchfunc"},
		{"unknown function in text", "t1", good("text", "x\n\n{{shout .data.x}}"), 422, "body.text", "line 3"},
		{"html escaping context error", "t1", good("html", `<a href="{{.data.x}}`), 422, "body.html", ""},
		{"schema not JSON Schema", "t1", good("schema", map[string]any{"type": "objekt"}), 422, "body.schema/type", ""},
		{"schema bad pattern", "t1", good("schema", map[string]any{"properties": map[string]any{"a": map[string]any{"pattern": "("}}}), 422, "body.schema/properties/a/pattern", ""},
		{"schema external ref", "t1", good("schema", map[string]any{"$ref": "https://example.com/s.json"}), 422, "body.schema", ""},
		{"layout does not exist", "t1", good("layout", "nope"), 422, "body.layout", "nope"},
		{"NUL in text", "t1", good("text", "a\x00b"), 422, "body.text", "NUL"},
		{"NUL in description", "t1", good("description", "\x00"), 422, "body.description", "NUL"},
		{"NUL in a locale", "t1", good("locales", map[string]any{"ko": map[string]any{"subject": "\x00"}}), 422, "body.locales.ko.subject", "NUL"},
		{"layout includes itself", "self", good("layout", "self"), 422, "body.layout", "itself"},
		{"layout not a name", "t1", good("layout", "Not A Name"), 422, "body.layout", ""},
		{"no body", "t1", good("html", nil), 422, "body.html", ""},
		{"bad locale tag", "t1", good("locales", map[string]any{"k o": map[string]any{"subject": "s", "text": "t"}}), 422, "body.locales.k o", ""},
		{"variant without body", "t1", good("locales", map[string]any{"ko": map[string]any{"subject": "s"}}), 422, "body.locales.ko.html", ""},
		{"variant syntax error", "t1", good("locales", map[string]any{"ko": map[string]any{"subject": "s", "html": "{{end}}"}}), 422, "body.locales.ko.html", ""},
		{"bad name", "Bad_Name", good(), 422, "path.name", ""},
		{"name too long", strings.Repeat("a", 101), good(), 422, "path.name", ""},
		{"unknown field", "t1", good("bogus", 1), 422, "", ""},
		{"malformed JSON", "t1", `{"subject": `, 400, "", ""},
		{"source over 1 MB", "t1", good("html", strings.Repeat("x", 1<<20+1)), 422, "body.html", ""},
	}
	for _, tc := range cases {
		r := b.put(tc.tpl, tc.body)
		b.wantProblem(tc.name, r, tc.status, tc.field)
		if tc.detail != "" && !strings.Contains(string(r.body), tc.detail) {
			t.Errorf("%s: the problem does not say %q: %s", tc.name, tc.detail, r.body)
		}
	}
	if n := b.templateCount(); n != 1 {
		t.Fatalf("bad templates stored: %d templates, want only self", n)
	}
	if v := b.do("GET", "/v1/templates/self", nil).json(t)["version"]; v != float64(1) {
		t.Errorf("self changed to version %v", v)
	}
}

// TestSendTemplateBadInput: data failing the schema, unknown template, version or locale, a
// render error, data too large, output too large: a 422 naming the JSON path, nothing stored.
func TestSendTemplateBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mustPut("order-shipped", orderShipped())
	b.mustPut("ko-only", map[string]any{"locales": map[string]any{"ko": map[string]any{"subject": "안녕", "text": "x"}}})
	b.mustPut("loop", map[string]any{"subject": "s", "html": `{{range .data.items}}{{range $.data.items}}{{range $.data.items}}<p>{{$.data.pad}}</p>{{end}}{{end}}{{end}}`})
	b.mustPut("chain", map[string]any{"text": "{{.data.a.b.c}}"})
	msg := func(kv ...any) map[string]any {
		return modify(map[string]any{"to": []string{"ada@example.com"}, "template": "order-shipped", "data": shipData()}, kv...)
	}
	items := make([]int, 200)
	huge := map[string]any{"blob": strings.Repeat("x", 1<<20)}
	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"unknown template", msg("template", "nope"), 422, "body.template"},
		{"missing required field", msg("data", map[string]any{"name": "Ada", "order": map[string]any{}}), 422, "body.data/order/id"},
		{"missing data", msg("data", nil), 422, "body.data/name"},
		{"wrong type", msg("data", map[string]any{"name": 5, "order": map[string]any{"id": "A-1"}}), 422, "body.data/name"},
		{"data not an object", msg("data", []int{1}), 422, "body.data"},
		{"data over 1 MB", msg("data", huge, "template", "chain"), 422, "body.data"},
		{"render error on a missing key", msg("template", "chain", "data", map[string]any{"a": map[string]any{}}), 422, "body.data/a/b/c"},
		{"output over the limit", msg("template", "loop", "data", map[string]any{"items": items, "pad": strings.Repeat("y", 100)}), 422, "body.template"},
		{"unknown version", msg("template_version", 9), 422, "body.template_version"},
		{"negative version", msg("template_version", -1), 422, "body.template_version"},
		{"bad locale", msg("locale", "not a tag"), 422, "body.locale"},
		{"layout sent on its own", msg("template", "chain", "data", map[string]any{"a": map[string]any{"b": map[string]any{"c": 1}}}), 422, "body.template"},
		{"locale with no variant and no default", msg("template", "ko-only", "locale", "fr", "data", map[string]any{}), 422, "body.locale"},
		{"template and subject", msg("subject", "Hi"), 422, "body.subject"},
		{"template and html", msg("html", "<p>x</p>"), 422, "body.html"},
		{"data without template", msg("template", nil, "subject", "s", "text", "t"), 422, "body.data"},
		{"locale without template", msg("template", nil, "data", nil, "subject", "s", "text", "t", "locale", "ko"), 422, "body.locale"},
		{"batch item", map[string]any{"messages": []any{msg(), msg("data", map[string]any{"name": "Bo", "order": map[string]any{}})}}, 200, ""},
	}
	for _, tc := range cases {
		path := "/v1/messages"
		if strings.HasPrefix(tc.name, "batch") {
			path = "/v1/messages/batch"
		}
		r := b.do("POST", path, tc.body)
		if tc.status == 200 {
			results := r.json(t)["results"].([]any)
			prob, _ := results[1].(map[string]any)["error"].(map[string]any)
			if r.status != 200 || results[0].(map[string]any)["id"] == nil || prob == nil || !hasLocation(prob, "body.messages[1].data/order/id") {
				t.Errorf("%s: %d %s", tc.name, r.status, r.body)
			}
			continue
		}
		b.wantProblem(tc.name, r, tc.status, tc.field)
	}
	if n := b.count(); n != 1 {
		t.Fatalf("%d messages stored, want only the good batch item", n)
	}
}

// TestTemplateRenderTimeout: a template that runs too long is a 422, not a hung request.
func TestTemplateRenderTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *httpapi.Config) {
		c.Templates = templates.New(templates.Config{Store: c.Store, Now: c.Now, Limits: render.Limits{Timeout: 50 * time.Millisecond}})
	})
	items := make([]int, 2000)
	b.mustPut("slow", map[string]any{"subject": "s", "text": `{{range .data.i}}{{range $.data.i}}{{range $.data.i}}{{end}}{{end}}{{end}}`})
	r := b.do("POST", "/v1/templates/slow/render", map[string]any{"data": map[string]any{"i": items}})
	b.wantProblem("slow render", r, 422, "body")
	if !strings.Contains(string(r.body), "longer than") {
		t.Errorf("the problem does not say it ran too long: %s", r.body)
	}
	r = b.do("POST", "/v1/messages", map[string]any{"to": []string{"a@example.com"}, "template": "slow", "data": map[string]any{"i": items}})
	b.wantProblem("slow message", r, 422, "body.template")
	if n := b.count(); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// TestTemplateCacheSeesOtherNodes: a change made by another node (straight into the store,
// behind this node's cache) is used once the latest-version TTL has passed.
func TestTemplateCacheSeesOtherNodes(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(testNow.UnixNano())
	b := setup(t, func(c *httpapi.Config) { c.Now = func() time.Time { return time.Unix(0, clock.Load()).UTC() } })
	b.mustPut("welcome", map[string]any{"subject": "v1", "text": "x"})
	send := func() string {
		t.Helper()
		r := b.do("POST", "/v1/messages", map[string]any{"to": []string{"a@example.com"}, "template": "welcome"})
		if r.status != 202 {
			t.Fatalf("send: %d %s", r.status, r.body)
		}
		return b.do("GET", "/v1/messages/"+r.json(t)["id"].(string), nil).json(t)["subject"].(string)
	}
	if got := send(); got != "v1" {
		t.Fatalf("subject %q", got)
	}
	if _, err := b.store.TemplatePut(context.Background(), store.TemplatePutParams{Now: testNow,
		Template: store.Template{Name: "welcome", Subject: "v2", Text: "x", Origin: store.TemplateOriginAPI}}); err != nil {
		t.Fatal(err)
	}
	if got := send(); got != "v1" {
		t.Fatalf("within the TTL: subject %q, want the cached v1", got)
	}
	clock.Add(int64(templates.DefaultLatestTTL))
	if got := send(); got != "v2" {
		t.Fatalf("after the TTL: subject %q, want v2", got)
	}
}

// TestTemplateLoadErrors: the load errors of POSTIE_TEMPLATES_DIR show on their template and in
// the listing.
func TestTemplateLoadErrors(t *testing.T) {
	t.Parallel()
	errs := []templates.LoadError{
		{Name: "welcome", File: "welcome.tmpl", Message: `welcome.tmpl:3: html: function "shout" not defined`},
		{Name: "fresh", File: "fresh.tmpl", Message: "fresh.tmpl:1:1: text outside a {{define}} block"},
	}
	b := setup(t, func(c *httpapi.Config) { c.TemplateLoadErrors = func() []templates.LoadError { return errs } })
	b.mustPut("welcome", map[string]any{"subject": "Hi", "text": "x"})
	if g := b.do("GET", "/v1/templates/welcome", nil).json(t); g["load_error"] != errs[0].Message {
		t.Errorf("GET = %v", g)
	}
	l := b.do("GET", "/v1/templates", nil).json(t)
	if item := l["data"].([]any)[0].(map[string]any); !strings.Contains(item["load_error"].(string), "welcome.tmpl:3") {
		t.Errorf("list item = %v", item)
	}
	if le := l["load_errors"].([]any); len(le) != 2 || le[1].(map[string]any)["file"] != "fresh.tmpl" {
		t.Errorf("load_errors = %v", le)
	}
}

// TestTemplateClipWarning: an HTML part over 100 KB (Gmail clips it), rendered or sent as it is,
// is sent, with a warning in
// the 202, in each batch item's result, and in the preview.
func TestTemplateClipWarning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mustPut("big", map[string]any{"subject": "Big {{.data.n}}",
		"html": "<p>{{.data.n}}</p><p>" + strings.Repeat("lorem ipsum ", 10<<10) + "</p>"})
	b.mustPut("small", map[string]any{"subject": "Small", "html": "<p>hi</p>"})
	clipped := func(name string, warnings any) {
		t.Helper()
		ws, _ := warnings.([]any)
		if len(ws) != 1 || !strings.Contains(ws[0].(string), "Gmail clips") {
			t.Errorf("%s: warnings = %v, want the Gmail clipping warning", name, warnings)
		}
	}
	data := map[string]any{"n": 1}

	r := b.do("POST", "/v1/templates/big/render", map[string]any{"data": data})
	if r.status != 200 {
		t.Fatalf("preview: %d %.300s", r.status, r.body)
	}
	clipped("preview", r.json(t)["warnings"])

	r = b.do("POST", "/v1/messages", map[string]any{"to": []string{"a@example.com"}, "template": "big", "data": data})
	if r.status != 202 {
		t.Fatalf("send: %d %.300s", r.status, r.body)
	}
	clipped("send", r.json(t)["warnings"])

	r = b.do("POST", "/v1/messages/batch", map[string]any{"messages": []any{
		map[string]any{"to": []string{"a@example.com"}, "template": "small"},
		map[string]any{"to": []string{"a@example.com"}, "template": "big", "data": data},
	}})
	if r.status != 200 {
		t.Fatalf("batch: %d %.300s", r.status, r.body)
	}
	results := r.json(t)["results"].([]any)
	if w := results[0].(map[string]any)["warnings"]; w != nil {
		t.Errorf("small item: warnings = %v, want none", w)
	}
	clipped("batch item", results[1].(map[string]any)["warnings"])

	// HTML sent as it is gets the same warning.
	r = b.do("POST", "/v1/messages", map[string]any{"to": []string{"a@example.com"}, "subject": "Raw",
		"html": "<p>" + strings.Repeat("lorem ipsum ", 10<<10) + "</p>"})
	if r.status != 202 {
		t.Fatalf("raw send: %d %.300s", r.status, r.body)
	}
	clipped("raw html", r.json(t)["warnings"])
	if n := b.count(); n != 4 {
		t.Errorf("%d messages stored, want 4: a warning does not refuse a message", n)
	}
}

// TestTemplatePreviewBadInput: the preview refuses what a send refuses, with a 4xx naming the
// problem: data over 1 MB, a locale with no variant and no default, output over the size limit.
func TestTemplatePreviewBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mustPut("ko-only", map[string]any{"locales": map[string]any{"ko": map[string]any{"subject": "안녕", "text": "x"}}})
	b.mustPut("loop", map[string]any{"subject": "s", "html": `{{range .data.items}}{{range $.data.items}}{{range $.data.items}}<p>{{$.data.pad}}</p>{{end}}{{end}}{{end}}`})
	b.mustPut("chain", map[string]any{"subject": "s", "text": "{{.data.a}}"})
	render := func(name string, body map[string]any) response {
		t.Helper()
		return b.do("POST", "/v1/templates/"+name+"/render", body)
	}

	r := render("chain", map[string]any{"data": map[string]any{"a": strings.Repeat("x", 1<<20)}})
	b.wantProblem("data over 1 MB", r, 422, "body.data")
	if !strings.Contains(string(r.body), "1 MB") {
		t.Errorf("data over 1 MB: the problem does not name the limit: %.300s", r.body)
	}

	r = render("ko-only", map[string]any{"locale": "fr"})
	b.wantProblem("locale with no variant and no default", r, 422, "body.locale")
	if r := render("ko-only", map[string]any{"locale": "ko"}); r.status != 200 || r.json(t)["subject"] != "안녕" {
		t.Errorf("the ko variant: %d %.300s", r.status, r.body)
	}

	r = render("loop", map[string]any{"data": map[string]any{"items": make([]int, 200), "pad": strings.Repeat("y", 100)}})
	b.wantProblem("output over the limit", r, 422, "body")
	if !strings.Contains(string(r.body), "larger than") && !strings.Contains(string(r.body), "limit") {
		t.Errorf("output over the limit: the problem does not name the limit: %.300s", r.body)
	}
}

// TestTemplateDeleteWhileQueued: a queued message (accepted, not yet delivered) holds its
// template like a scheduled one: DELETE is 409 naming the message, unless forced.
func TestTemplateDeleteWhileQueued(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mustPut("welcome", map[string]any{"subject": "Hi", "text": "Welcome"})
	r := b.do("POST", "/v1/messages", map[string]any{"to": []string{"ada@example.com"}, "template": "welcome"})
	if r.status != 202 || r.json(t)["status"] != "queued" {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	r = b.do("DELETE", "/v1/templates/welcome", nil)
	b.wantProblem("delete while queued", r, 409, "")
	if !strings.Contains(string(r.body), id) {
		t.Errorf("the conflict does not name the queued message %s: %s", id, r.body)
	}
	if r := b.do("DELETE", "/v1/templates/welcome?force=true", nil); r.status != 204 {
		t.Fatalf("forced delete: %d %s", r.status, r.body)
	}
}
