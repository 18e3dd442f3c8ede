package httpapi_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/postie/postie/internal/httpapi"
)

// openAPIDoc fetches a document the server serves and decodes it.
func openAPIDoc(t *testing.T, b *bundle, path string) map[string]any {
	t.Helper()
	r := b.do("GET", path, nil, "Authorization", "")
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	return r.json(t)
}

// TestOpenAPITyped: every operation's request body (JSON, or CSV for an upload) and every JSON success response has a
// real schema (a reference or a typed schema), not the binary string or the empty schema a
// generated client cannot use; the document names a server; and it uses no keyword that neither
// OpenAPI 3.1 nor JSON Schema 2020-12 defines, unless prefixed with x-.
func TestOpenAPITyped(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *httpapi.Config) { c.PublicURL = "https://mail.example.com/" })
	doc := openAPIDoc(t, b, "/v1/openapi.json")
	typed := func(where string, schema any) {
		t.Helper()
		sc, _ := schema.(map[string]any)
		switch {
		case sc["$ref"] != nil:
		case sc["type"] == nil:
			t.Errorf("%s: untyped schema %v", where, schema)
		case sc["format"] == "binary":
			t.Errorf("%s: a binary string for a JSON body", where)
		}
	}
	var ops int
	for path, item := range doc["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			op := o.(map[string]any)
			where := strings.ToUpper(method) + " " + path
			ops++
			if rb, ok := op["requestBody"].(map[string]any); ok {
				content := rb["content"].(map[string]any)
				if content["application/json"] == nil && content["text/csv"] == nil { // an upload is CSV
					t.Errorf("%s: request body is not JSON: %v", where, content)
				}
				for mt, m := range content {
					typed(where+" request "+mt, m.(map[string]any)["schema"])
				}
			}
			for status, r := range op["responses"].(map[string]any) {
				content, _ := r.(map[string]any)["content"].(map[string]any)
				if status[0] == '2' && status != "204" && len(content) == 0 {
					t.Errorf("%s: response %s has no content", where, status)
				}
				for mt, m := range content {
					if strings.Contains(mt, "json") {
						typed(where+" response "+status+" "+mt, m.(map[string]any)["schema"])
					}
				}
			}
		}
	}
	if ops < 17 {
		t.Errorf("only %d operations in the document", ops)
	}

	// The main calls reference the types their handlers decode and answer.
	paths := doc["paths"].(map[string]any)
	for _, tc := range []struct{ path, status, req, resp string }{
		{"/v1/messages", "202", "SendMessage", "Accepted"},
		{"/v1/messages/batch", "200", "BatchBody", "BatchAnswer"},
		{"/v1/events", "202", "EventBody", "EventAnswer"},
		{"/v1/events/batch", "200", "EventBatchBody", "EventBatchAnswer"},
	} {
		op := paths[tc.path].(map[string]any)["post"].(map[string]any)
		req := op["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
		resp := op["responses"].(map[string]any)[tc.status].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
		if ref, _ := req.(map[string]any)["$ref"].(string); ref != "#/components/schemas/"+tc.req {
			t.Errorf("POST %s request schema %v, want a reference to %s", tc.path, req, tc.req)
		}
		if ref, _ := resp.(map[string]any)["$ref"].(string); ref != "#/components/schemas/"+tc.resp {
			t.Errorf("POST %s response %s schema %v, want a reference to %s", tc.path, tc.status, resp, tc.resp)
		}
	}

	servers, _ := doc["servers"].([]any)
	if len(servers) != 1 || servers[0].(map[string]any)["url"] != "https://mail.example.com" {
		t.Errorf("servers = %v, want the public URL", doc["servers"])
	}

	var unknown []string
	var walk func(where string, v any, schema bool)
	walk = func(where string, v any, schema bool) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				switch {
				case schema && !schemaKeywords[k] && !strings.HasPrefix(k, "x-"):
					unknown = append(unknown, where+"/"+k)
				case schema && (k == "properties" || k == "$defs" || k == "patternProperties"):
					for name, sub := range c.(map[string]any) {
						walk(where+"/"+k+"/"+name, sub, true)
					}
					continue
				}
				walk(where+"/"+k, c, schema || k == "schema" || k == "schemas" && where == "/components")
			}
		case []any:
			for i, c := range x {
				walk(where+"/"+string(rune('0'+i%10)), c, schema)
			}
		}
	}
	comps := doc["components"].(map[string]any)
	for name, sc := range comps["schemas"].(map[string]any) {
		walk("/components/schemas/"+name, sc, true)
	}
	walk("/paths", doc["paths"], false)
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("keywords that are neither JSON Schema nor x- extensions:\n%s", strings.Join(unknown, "\n"))
	}
}

// schemaKeywords are the keywords of JSON Schema 2020-12 and the OpenAPI 3.1 additions to it.
var schemaKeywords = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range strings.Fields(`$schema $id $ref $anchor $dynamicRef $dynamicAnchor $defs $comment
		type enum const title description default examples deprecated readOnly writeOnly format
		multipleOf maximum exclusiveMaximum minimum exclusiveMinimum maxLength minLength pattern
		maxItems minItems uniqueItems maxContains minContains items prefixItems contains
		maxProperties minProperties required dependentRequired properties patternProperties
		additionalProperties propertyNames unevaluatedItems unevaluatedProperties dependentSchemas
		allOf anyOf oneOf not if then else contentEncoding contentMediaType contentSchema
		discriminator xml externalDocs example`) {
		m[k] = true
	}
	return m
}()

// TestOpenAPIValidationMessages: moving patternDescription to an extension keeps the validation
// message that names what the pattern means.
func TestOpenAPIValidationMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("GET", "/v1/messages?tag=a%00b", nil)
	if r.status != 422 || !strings.Contains(string(r.body), "free of U+0000 (NUL)") {
		t.Errorf("tag with NUL: %d %s", r.status, r.body)
	}
	sc := openAPIDoc(t, b, "/v1/openapi.json")["components"].(map[string]any)["schemas"].(map[string]any)["RetryFilter"].(map[string]any)
	tag := sc["properties"].(map[string]any)["tag"].(map[string]any)
	if tag["x-patternDescription"] != "free of U+0000 (NUL)" || tag["patternDescription"] != nil {
		t.Errorf("RetryFilter.tag = %v", tag)
	}
}

// TestOpenAPILint lints the served documents (3.1 and the 3.0 downgrade) with Redocly CLI's
// recommended rules, warnings included. scripts/test.sh installs the linter from npm and exports
// POSTIE_REDOCLY; run alone, the test installs it the same way, and is skipped only without npm.
func TestOpenAPILint(t *testing.T) {
	t.Parallel()
	redocly := os.Getenv("POSTIE_REDOCLY")
	if redocly == "" {
		if _, err := exec.LookPath("npm"); err != nil {
			t.Skip("npm not found: the OpenAPI document is not linted (install Node.js and npm, or set POSTIE_REDOCLY to a redocly binary)")
		}
		out, err := exec.Command("../../scripts/redocly.sh").Output()
		if err != nil {
			t.Fatalf("installing @redocly/cli: %v", err)
		}
		redocly = strings.TrimSpace(string(out))
	}
	b := setup(t, func(c *httpapi.Config) { c.PublicURL = "https://mail.shop.test" })
	dir := t.TempDir()
	// recommended-strict makes every warning an error. postie declares no license, so the
	// document has none to name. A description beside a $ref is valid in 3.1; the 3.0 downgrade
	// keeps it, and 3.0 readers ignore it (spec-ref-siblings checks only 3.0 documents).
	config := filepath.Join(dir, "redocly.yaml")
	if err := os.WriteFile(config, []byte("extends:\n  - recommended-strict\nrules:\n  info-license: off\n  spec-ref-siblings: off\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/openapi.json", "/v1/openapi-3.0.json"} {
		file := filepath.Join(dir, strings.TrimPrefix(path, "/v1/"))
		if err := os.WriteFile(file, b.do("GET", path, nil).body, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(redocly, "lint", "--config", config, "--format", "stylish", file)
		cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("redocly lint %s: %v\n%s", path, err, out)
		}
	}
}

// TestDocsPageOffline: /v1/docs is a page of its own that loads no script, style or font from
// any other site (it rendered nothing offline when it took its viewer from a CDN), and, run by
// Node.js when the machine has it, its script lists every operation and schema of the document.
func TestDocsPageOffline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("GET", "/v1/docs", nil, "Authorization", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /v1/docs: %d %s", r.status, r.header.Get("Content-Type"))
	}
	page := string(r.body)
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//|@import|url\(\s*["']?(https?:)?//|https?://`)
	if m := external.FindString(page); m != "" {
		t.Errorf("the page refers to another site (%q)", m)
	}
	if !strings.Contains(page, `fetch("openapi.json")`) {
		t.Errorf("the page does not load the document beside it")
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}

	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: the page's script is not run")
	}
	dir := t.TempDir()
	script := page[strings.Index(page, "<script>")+len("<script>") : strings.Index(page, "</script>")]
	doc := b.do("GET", "/v1/openapi.json", nil).body
	for name, content := range map[string][]byte{"docs.js": []byte(script), "openapi.json": doc} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(node, "-e", `const {renderDoc} = require("./docs.js"); process.stdout.write(renderDoc(require("./openapi.json")));`)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	html := string(out)
	for _, want := range []string{`id="op-send-message"`, `id="op-send-batch"`, `id="op-render-template"`, `id="schema-SendMessage"`,
		`<a href="#schema-SendMessage">SendMessage</a>`, `<a href="#schema-BatchAnswer">BatchAnswer</a>`, "free of U+0000 (NUL)"} {
		if !strings.Contains(html, want) {
			t.Errorf("the rendered page lacks %s", want)
		}
	}
}

// TestOpenAPIEventDetail: the timeline's event details are described field by field (typed
// clients and webhook consumers read them), not as a bare object.
func TestOpenAPIEventDetail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	doc := openAPIDoc(t, b, "/v1/openapi.json")
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	props := func(name string) map[string]any {
		t.Helper()
		s, ok := schemas[name].(map[string]any)
		if !ok {
			t.Fatalf("no schema %s among %d", name, len(schemas))
		}
		p, _ := s["properties"].(map[string]any)
		return p
	}
	detail, _ := props("EventResource")["detail"].(map[string]any)
	if ref, _ := detail["$ref"].(string); !strings.HasSuffix(ref, "/EventDetail") {
		t.Fatalf("events[].detail is %v, want a reference to EventDetail", detail)
	}
	for _, f := range []string{"recipients", "error", "attempt", "transport", "response", "class", "next_attempt_at", "owner", "attempts"} {
		if props("EventDetail")[f] == nil {
			t.Errorf("EventDetail does not describe %q", f)
		}
	}
	for _, f := range []string{"recipient", "error", "suppressed", "reason"} {
		if props("EventRecipient")[f] == nil {
			t.Errorf("EventRecipient does not describe %q", f)
		}
	}
}
