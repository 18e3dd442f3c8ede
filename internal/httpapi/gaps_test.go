package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/postie/postie/internal/store"
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
