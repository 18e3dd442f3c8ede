package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTourTemplates follows the README tour's templates part with the real binary and the
// example templates of examples/templates: list, preview, send (with a locale), refused data, an
// API template using the directory's layout, and a live edit of a file, good then broken.
func TestTourTemplates(t *testing.T) {
	t.Parallel()
	// A copy of examples/templates, so that the test can edit it as the tour suggests.
	dir := filepath.Join(t.TempDir(), "templates")
	if err := os.CopyFS(dir, os.DirFS("../../examples/templates")); err != nil {
		t.Fatal(err)
	}
	const key = "pk_tour_0123456789abcdef"
	p := start(t, t.TempDir(), "POSTIE_API_KEY="+key, "POSTIE_FROM=Shop <news@shop.example>",
		"POSTIE_TEMPLATES_DIR="+dir)
	decode := func(what string, code int, body []byte, wantCode int) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil || code != wantCode {
			t.Fatalf("%s: %d %s, want %d", what, code, body, wantCode)
		}
		return m
	}

	code, body := p.request("GET", "/v1/templates", key, nil)
	var names []string
	for _, tpl := range decode("list", code, body, 200)["data"].([]any) {
		tpl := tpl.(map[string]any)
		if tpl["origin"] != "dir" || tpl["version"] != float64(1) {
			t.Errorf("template %v", tpl)
		}
		names = append(names, tpl["name"].(string))
	}
	if strings.Join(names, " ") != "newsletter newsletter-layout order-shipped" {
		t.Errorf("templates %v", names)
	}

	order := map[string]any{"name": "Ada", "order": map[string]any{"id": "A-1", "currency": "EUR", "total": "59.80",
		"items": []any{map[string]any{"name": "Teapot", "quantity": 2, "price": "29.90"}}}}
	code, body = p.request("POST", "/v1/templates/order-shipped/render", key, map[string]any{"data": order})
	preview := decode("preview", code, body, 200)
	if preview["subject"] != "Your order A-1 has shipped" || !strings.Contains(preview["html"].(string), "€59.80") ||
		!strings.Contains(preview["text"].(string), "Hello Ada,") {
		t.Errorf("preview = %s", body)
	}

	send := func(msg map[string]any) map[string]any {
		t.Helper()
		msg["to"] = []string{"Ada <ada@example.com>"}
		code, body := p.request("POST", "/v1/messages", key, msg)
		return p.waitStatus(key, decode("send", code, body, 202)["id"].(string), "sent")
	}
	m := send(map[string]any{"template": "order-shipped", "locale": "ko", "data": order})
	if m["subject"] != "주문 A-1이(가) 발송되었습니다" || m["template"] != "order-shipped" || m["template_version"] != float64(1) || m["locale"] != "ko" {
		t.Errorf("sent message %v", m)
	}

	code, body = p.request("POST", "/v1/messages", key, map[string]any{"to": []string{"ada@example.com"},
		"template": "order-shipped", "data": map[string]any{"name": "Ada", "order": map[string]any{"currency": "EUR"}}})
	if code != 422 || !strings.Contains(string(body), `"location":"body.data/order/id"`) {
		t.Errorf("bad data: %d %s", code, body)
	}

	// An API template wrapped in the directory's layout.
	code, body = p.request("PUT", "/v1/templates/welcome", key, map[string]any{"layout": "newsletter-layout",
		"subject": "Welcome, {{.data.name}}", "html": "<p>Glad you are here, {{.data.name}}.</p>"})
	if w := decode("PUT welcome", code, body, 201); w["origin"] != "api" {
		t.Errorf("welcome = %v", w)
	}
	m = send(map[string]any{"template": "welcome", "data": map[string]any{"name": "Ada"}})
	_, raw := p.request("GET", "/v1/messages/"+m["id"].(string)+"/raw", key, nil)
	if !strings.Contains(string(raw), "Glad you are here, Ada.") || !strings.Contains(string(raw), "Shop News") {
		t.Errorf("welcome MIME lacks its content or its layout:\n%s", raw)
	}
	// The directory's templates are not the API's to change.
	code, body = p.request("PUT", "/v1/templates/order-shipped", key, map[string]any{"subject": "x", "text": "y"})
	if code != 409 || !strings.Contains(string(body), "POSTIE_TEMPLATES_DIR") {
		t.Errorf("PUT of a directory template: %d %s", code, body)
	}

	// Edit the file: within a second the next message uses version 2.
	path := filepath.Join(dir, "order-shipped.tmpl")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "Your order {{.data.order.id}} has shipped", "Order {{.data.order.id}} is on its way", 1)
	replace(t, path, edited)
	waitFor(t, 20*time.Second, func() error {
		if _, body := p.request("GET", "/v1/templates/order-shipped", key, nil); !strings.Contains(string(body), `"version":2`) {
			return fmt.Errorf("order-shipped not at version 2: %s", body)
		}
		return nil
	})
	if m := send(map[string]any{"template": "order-shipped", "data": order}); m["subject"] != "Order A-1 is on its way" || m["template_version"] != float64(2) {
		t.Errorf("after the edit: %v", m)
	}

	// Break it: version 2 keeps serving, and the listing names the file and the line.
	lines := strings.Split(edited, "\n")
	for i, l := range lines {
		if strings.Contains(l, "<p>Hello {{.data.name}},</p>") {
			lines[i] = "<p>Hello {{.data.name | shout}},</p>"
			replace(t, path, strings.Join(lines, "\n"))
			want := "order-shipped.tmpl:" + itoa(i+1) + ": html: function \\\"shout\\\" not defined"
			waitFor(t, 20*time.Second, func() error {
				if _, body := p.request("GET", "/v1/templates", key, nil); !strings.Contains(string(body), want) {
					return fmt.Errorf("the listing does not report the load error %s: %s", want, body)
				}
				return nil
			})
			break
		}
	}
	if m := send(map[string]any{"template": "order-shipped", "data": order}); m["template_version"] != float64(2) {
		t.Errorf("with a broken file: %v", m)
	}
	if !strings.Contains(p.errOut(), "template file not loaded") {
		t.Errorf("the broken file was not logged:\n%s", p.errOut())
	}
}

// replace writes a file by renaming a new one into place, as git and editors do.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".new-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
