package httpapi_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/render"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// strictCase is one request that must be refused with status, naming field ("" for none).
type strictCase struct {
	name, method, path string
	body               any
	status             int
	field              string
}

// TestStrictJSON: text that is not UTF-8 (or a lone surrogate, RFC 8259 §8.2) and a member given
// twice (case-insensitively where encoding/json matches names so) are refused with a 422 naming
// the field in every body the API decodes, not replaced with U+FFFD or decided by the last one.
func TestStrictJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mustPut("hello", map[string]any{"subject": "Hi {{.data.name}}", "text": "x"})
	const msg = `"to": ["a@example.com"], "subject": "Hi", "text": "Hello"`
	cases := []strictCase{
		{"invalid UTF-8 in subject", "POST", "/v1/messages", `{"to": ["a@example.com"], "subject": "Hi` + "\xff" + `", "text": "x"}`, 422, "body.subject"},
		{"invalid UTF-8 in text", "POST", "/v1/messages", `{"to": ["a@example.com"], "subject": "Hi", "text": "x` + "\xc3" + `"}`, 422, "body.text"},
		{"lone surrogate in text", "POST", "/v1/messages", `{"to": ["a@example.com"], "subject": "Hi", "text": "x\ud800"}`, 422, "body.text"},
		{"lone low surrogate in subject", "POST", "/v1/messages", `{"to": ["a@example.com"], "subject": "\udc00", "text": "x"}`, 422, "body.subject"},
		{"high surrogate before a letter", "POST", "/v1/messages", `{"to": ["a@example.com"], "subject": "Hi", "html": "\ud800\u0041"}`, 422, "body.html"},
		{"lone surrogate in a tag", "POST", "/v1/messages", `{` + msg + `, "tags": ["\ud83d"]}`, 422, "body.tags[0]"},
		{"lone surrogate in a metadata key", "POST", "/v1/messages", `{` + msg + `, "metadata": {"\udfff": "v"}}`, 422, `body.metadata.\udfff`},
		{"invalid UTF-8 in data", "POST", "/v1/messages", `{"to": ["a@example.com"], "template": "hello", "data": {"name": "` + "\xed\xa0\x80" + `"}}`, 422, "body.data.name"},
		{"to twice", "POST", "/v1/messages", `{"to": ["a@example.com"], ` + msg + `}`, 422, "body.to"},
		{"Subject beside subject", "POST", "/v1/messages", `{` + msg + `, "Subject": "Other"}`, 422, "body.Subject"},
		{"text twice", "POST", "/v1/messages", `{` + msg + `, "text": "Other"}`, 422, "body.text"},
		{"TEXT beside text", "POST", "/v1/messages", `{` + msg + `, "TEXT": "Other"}`, 422, "body.TEXT"},
		{"escaped name twice", "POST", "/v1/messages", `{` + msg + `, "\u0074o": ["b@example.com"]}`, 422, "body.to"},
		{"attachment filename twice", "POST", "/v1/messages", `{` + msg + `, "attachments": [{"filename": "a.txt", "content": "aGk=", "FileName": "b.txt"}]}`, 422, "body.attachments[0].FileName"},
		{"header twice", "POST", "/v1/messages", `{` + msg + `, "headers": {"X-A": "1", "X-A": "2"}}`, 422, "body.headers.X-A"},
		{"data key twice", "POST", "/v1/messages", `{"to": ["a@example.com"], "template": "hello", "data": {"name": "a", "name": "b"}}`, 422, "body.data.name"},
		{"batch envelope twice", "POST", "/v1/messages/batch", `{"messages": [{` + msg + `}], "Messages": []}`, 422, "body.Messages"},
		{"template subject twice", "PUT", "/v1/templates/t1", `{"subject": "a", "text": "x", "subject": "b"}`, 422, "body.subject"},
		{"template Text beside text", "PUT", "/v1/templates/t1", `{"subject": "a", "text": "x", "Text": "y"}`, 422, "body.Text"},
		{"template locale subject twice", "PUT", "/v1/templates/t1", `{"subject": "a", "text": "x", "locales": {"ko": {"subject": "b", "SUBJECT": "c"}}}`, 422, "body.locales.ko.SUBJECT"},
		{"template invalid UTF-8", "PUT", "/v1/templates/t1", `{"subject": "a", "html": "` + "\xff" + `"}`, 422, "body.html"},
		{"template lone surrogate", "PUT", "/v1/templates/t1", `{"subject": "\ud800", "text": "x"}`, 422, "body.subject"},
		{"template schema key twice", "PUT", "/v1/templates/t1", `{"subject": "a", "text": "x", "schema": {"type": "object", "type": "string"}}`, 422, "body.schema.type"},
		{"render data twice", "POST", "/v1/templates/hello/render", `{"data": {"name": "a"}, "data": {"name": "b"}}`, 422, "body.data"},
		{"render data key twice", "POST", "/v1/templates/hello/render", `{"data": {"name": "a", "name": "b"}}`, 422, "body.data.name"},
		{"render lone surrogate", "POST", "/v1/templates/hello/render", `{"data": {"name": "\udc00"}}`, 422, "body.data.name"},
		{"suppression email twice", "POST", "/v1/suppressions", `{"email": "a@example.com", "Email": "b@example.com"}`, 422, "body.Email"},
		{"suppression invalid UTF-8", "POST", "/v1/suppressions", `{"email": "a@example.com", "detail": "` + "\x80" + `"}`, 422, "body.detail"},
		{"retry filter tag twice", "POST", "/v1/messages/retry", `{"tag": "a", "tag": "b"}`, 422, "body.tag"},
		{"retry filter lone surrogate", "POST", "/v1/messages/retry", `{"recipient": "\ud800@example.com"}`, 422, "body.recipient"},
	}
	for _, tc := range cases {
		b.wantProblem(tc.name, b.do(tc.method, tc.path, tc.body), tc.status, tc.field)
	}
	if n := b.count(); n != 0 {
		t.Errorf("refused requests stored %d messages", n)
	}
	if n := b.templateCount(); n != 1 {
		t.Errorf("%d templates, want only hello", n)
	}
	page, _, err := b.store.SuppressionList(context.Background(), store.SuppressionListParams{Limit: 10})
	if err != nil || len(page) != 0 {
		t.Errorf("refused requests stored %d suppressions (%v)", len(page), err)
	}

	// In a batch, the bad item alone is refused.
	r := b.do("POST", "/v1/messages/batch", `{"messages": [{`+msg+`}, {`+msg+`, "to": ["b@example.com"]}, {`+msg+`, "text": "\ud800"}]}`)
	if r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	results := r.json(t)["results"].([]any)
	if _, ok := results[0].(map[string]any)["id"]; !ok {
		t.Errorf("batch item 0 was refused: %v", results[0])
	}
	for i, loc := range map[int]string{1: "body.messages[1].to", 2: "body.messages[2].text"} {
		e, _ := results[i].(map[string]any)["error"].(map[string]any)
		if e == nil || !hasLocation(e, loc) || e["status"] != float64(422) {
			t.Errorf("batch item %d: %v, want a 422 naming %s", i, results[i], loc)
		}
	}

	// What is not refused: the same name in different objects, a surrogate pair, keys of data
	// that differ only in case (data is a map), UTF-8 text.
	for _, body := range []string{
		`{` + msg + `, "attachments": [{"filename": "a.txt", "content": "aGk="}, {"filename": "b.txt", "content": "aGk="}]}`,
		`{"to": ["a@example.com"], "subject": "\ud83d\ude00 Hi", "text": "caf\u00e9 ` + "\u00e9\U0001F600" + `"}`,
		`{"to": ["a@example.com"], "template": "hello", "data": {"name": "a", "Name": "b", "x": {"name": 1}}}`,
	} {
		if r := b.do("POST", "/v1/messages", body); r.status != 202 {
			t.Errorf("%s: %d %s, want 202", body, r.status, r.body)
		}
	}
	if r := b.do("GET", "/v1/messages", nil); !strings.Contains(string(r.body), "\U0001F600 Hi") {
		t.Errorf("the surrogate pair was not decoded: %.300s", r.body)
	}
}

// TestSmallGaps: each row is a request refused as documented (a 4xx naming the field, nothing
// stored) that was once accepted, or answered with the wrong status or field.
func TestSmallGaps(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *httpapi.Config) { c.MaxMessageSize = 64 << 10 })
	b.mustPut("big", map[string]any{"subject": "s", "text": "{{.data.x}}"})
	atts := make([]map[string]string, 101)
	for i := range atts {
		atts[i] = map[string]string{"filename": fmt.Sprintf("f%d.txt", i), "content": "aGk="}
	}
	huge := strings.Repeat("x", 100<<10)
	cursor := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	cases := []strictCase{
		{"text over the size limit", "POST", "/v1/messages", with("text", huge), 413, "body.text"},
		{"html over the size limit", "POST", "/v1/messages", with("text", nil, "html", "<p>"+huge), 413, "body.html"},
		{"rendered over the size limit", "POST", "/v1/messages", map[string]any{"to": []string{"a@example.com"}, "template": "big", "data": map[string]any{"x": huge}}, 413, "body.template"},
		{"101 attachments", "POST", "/v1/messages", with("attachments", atts), 422, "body.attachments"},
		{"header given twice in two cases", "POST", "/v1/messages", with("headers", map[string]string{"X-A": "1", "x-a": "2"}), 422, "body.headers.x-a"},
		{"malformed message cursor", "GET", "/v1/messages?cursor=garbage", nil, 422, "query.cursor"},
		{"truncated message cursor", "GET", "/v1/messages?cursor=msg_01jd8x2k3m", nil, 422, "query.cursor"},
		{"message cursor of another listing", "GET", "/v1/messages?cursor=" + cursor("hello"), nil, 422, "query.cursor"},
		{"template cursor not a name", "GET", "/v1/templates?cursor=" + cursor("\x00../x"), nil, 422, "query.cursor"},
		{"template cursor not base64", "GET", "/v1/templates?cursor=%25%25", nil, 422, "query.cursor"},
		{"suppression cursor without an address", "GET", "/v1/suppressions?cursor=" + cursor("123|x"), nil, 422, "query.cursor"},
		{"suppression cursor not lowercase", "GET", "/v1/suppressions?cursor=" + cursor("123|A@example.com"), nil, 422, "query.cursor"},
	}
	for _, h := range []string{"Authentication-Results", "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results",
		"Received-SPF", "Delivered-To", "X-Original-To", "Resent-From", "Resent-Message-ID", "Return-Receipt-To", "TLS-Required"} {
		cases = append(cases, strictCase{"forged " + h, "POST", "/v1/messages", with("headers", map[string]string{h: "No"}), 422, "body.headers." + h})
	}
	for _, tc := range cases {
		b.wantProblem(tc.name, b.do(tc.method, tc.path, tc.body), tc.status, tc.field)
	}
	if n := b.count(); n != 0 {
		t.Fatalf("refused requests stored %d messages", n)
	}

	// A bad value is echoed as an excerpt, not whole.
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"1 MB subject", "POST", "/v1/messages", with("subject", strings.Repeat("s", 1<<20)), 422},
		{"1 MB address", "POST", "/v1/messages", with("to", []string{strings.Repeat("a", 1<<20)}), 422},
		{"1 MB metadata key", "POST", "/v1/messages", with("metadata", map[string]string{strings.Repeat("k", 1<<20): "v"}), 422},
		{"1 MB header name", "POST", "/v1/messages", with("headers", map[string]string{strings.Repeat("H", 1<<20): "v"}), 422},
		{"1 MB malformed template", "PUT", "/v1/templates/t", `{"subject": "` + strings.Repeat("s", 1<<20), 400},
		{"512 KB suppression email", "POST", "/v1/suppressions", map[string]any{"email": strings.Repeat("e", 512<<10)}, 422},
		{"1 MB in a batch item", "POST", "/v1/messages/batch", map[string]any{"messages": []any{with("subject", strings.Repeat("s", 1<<20))}}, 200},
	} {
		r := b.do(tc.method, tc.path, tc.body)
		if r.status != tc.status || len(r.body) > 4<<10 {
			t.Errorf("%s: %d with %d bytes, want %d with an excerpt: %.300s", tc.name, r.status, len(r.body), tc.status, r.body)
		} else if !strings.Contains(string(r.body), "bytes)") {
			t.Errorf("%s: the excerpt does not say how long the value was: %s", tc.name, r.body)
		}
	}

	// The zero time is a bound like any other: nothing was created before it.
	if r := b.do("POST", "/v1/messages", valid()); r.status != 202 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	for q, want := range map[string]int{
		"created_before=0001-01-01T00:00:00Z": 0, "created_after=0001-01-01T00:00:00Z": 1,
		"created_before=0001-01-01T00:00:00Z&created_after=0001-01-01T00:00:00Z": 0,
	} {
		r := b.do("GET", "/v1/messages?"+q, nil)
		if got := len(r.json(t)["data"].([]any)); r.status != 200 || got != want {
			t.Errorf("%s: %d, %d messages, want %d", q, r.status, got, want)
		}
	}
}

// TestRetryZeroTime: a bulk retry bounded by the zero time retries what that bound selects
// (nothing before it), never every failed message.
func TestRetryZeroTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fail(valid(), &store.DeliveryError{Code: 550, Enhanced: "5.1.1", Text: "user unknown"})
	r := b.do("POST", "/v1/messages/retry", map[string]any{"created_before": "0001-01-01T00:00:00Z"})
	if r.status != 200 || r.json(t)["retried"] != float64(0) {
		t.Errorf("retry created_before the zero time: %d %s, want none retried", r.status, r.body)
	}
	r = b.do("POST", "/v1/messages/retry", map[string]any{"created_after": "0001-01-01T00:00:00Z"})
	if r.status != 200 || r.json(t)["retried"] != float64(1) {
		t.Errorf("retry created_after the zero time: %d %s, want the one retried", r.status, r.body)
	}
}

// TestPreviewLimits: the preview refuses what a send of the same template and data refuses: a
// message over POSTIE_MAX_MESSAGE_SIZE (413) and a rendered subject no header can hold (422).
func TestPreviewLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *httpapi.Config) { c.MaxMessageSize = 64 << 10 })
	b.mustPut("echo", map[string]any{"subject": "{{.data.s}}", "html": "<p>{{.data.x}}</p>"})
	for _, tc := range []struct {
		name   string
		data   map[string]any
		status int
	}{
		{"output over the message size", map[string]any{"s": "hi", "x": strings.Repeat("x", 100<<10)}, 413},
		{"subject over 998 octets", map[string]any{"s": strings.Repeat("s", 1000), "x": "x"}, 422},
	} {
		b.wantProblem("preview: "+tc.name, b.do("POST", "/v1/templates/echo/render", map[string]any{"data": tc.data}), tc.status, "")
		b.wantProblem("send: "+tc.name, b.do("POST", "/v1/messages", map[string]any{"to": []string{"a@example.com"}, "template": "echo", "data": tc.data}), tc.status, "")
	}
	if r := b.do("POST", "/v1/templates/echo/render", map[string]any{"data": map[string]any{"s": "hi", "x": "x"}}); r.status != 200 {
		t.Errorf("a preview within the limits: %d %s", r.status, r.body)
	}
}

// TestBatchRenderBudget: the items of a batch share one time budget for rendering; the items
// not rendered when it is used up are refused alone with a 503 saying so, the others stored.
// Each slow item would run for its own render timeout (10 s) without the shared budget.
func TestBatchRenderBudget(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *httpapi.Config) {
		c.BatchRenderBudget = time.Second
		c.Templates = templates.New(templates.Config{Store: c.Store, Now: c.Now, Limits: render.Limits{Timeout: 10 * time.Second}})
	})
	b.mustPut("slow", map[string]any{"subject": "s", "text": `{{range .data.i}}{{range $.data.i}}{{range $.data.i}}{{end}}{{end}}{{end}}`})
	slow := map[string]any{"to": []string{"a@example.com"}, "template": "slow", "data": map[string]any{"i": make([]int, 5000)}}
	r := b.do("POST", "/v1/messages/batch", map[string]any{"messages": []any{valid(), slow, slow, slow}})
	if r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	results := r.json(t)["results"].([]any)
	if _, ok := results[0].(map[string]any)["id"]; !ok {
		t.Errorf("item 0 (no template) was refused: %v", results[0])
	}
	for i := 1; i < len(results); i++ {
		e, _ := results[i].(map[string]any)["error"].(map[string]any)
		if e == nil || e["status"] != float64(503) || !strings.Contains(e["detail"].(string), "send it again") {
			t.Errorf("item %d: %v, want a 503 about the batch's budget", i, results[i])
		}
	}
	if n := b.count(); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}
