package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

const (
	testKey  = "test-key-0123456789abcdef"
	otherKey = "other-key-0123456789abcdef"
)

var testNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type bundle struct {
	t     *testing.T
	srv   *httptest.Server
	store store.Store
}

func setup(t *testing.T, mutate ...func(*httpapi.Config)) *bundle {
	t.Helper()
	return setupOn(t, sqlitetest.Open(t), mutate...)
}

// setupOn is setup on the store st (of either driver).
func setupOn(t *testing.T, st store.Store, mutate ...func(*httpapi.Config)) *bundle {
	t.Helper()
	ctx := context.Background()
	for i, k := range []string{testKey, otherKey} {
		sum := sha256.Sum256([]byte(k))
		if err := st.APIKeyCreate(ctx, store.APIKey{ID: fmt.Sprintf("key_%d", i), Name: "test", Hash: sum[:], CreatedAt: testNow, Scopes: []string{"admin"}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := httpapi.Config{
		Store: st, Now: func() time.Time { return testNow }, Version: "test",
		DefaultFrom: "Postie Test <sender@postie.example>", MaxRecipients: 50, MaxBatch: 500,
		MaxMessageSize: 25 << 20, MaxScheduleAhead: 30 * 24 * time.Hour, MessageTTL: 24 * time.Hour, MaxAttempts: 4,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	srv := httptest.NewServer(httpapi.New(cfg))
	t.Cleanup(srv.Close)
	return &bundle{t: t, srv: srv, store: st}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (b *bundle) do(method, path string, body any, headers ...string) response {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		j, err := json.Marshal(v)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: out}
}

func (b *bundle) count() int {
	b.t.Helper()
	ms, err := b.store.MessageList(context.Background(), store.MessageListParams{Limit: 1000})
	if err != nil {
		b.t.Fatal(err)
	}
	return len(ms)
}

func valid() map[string]any {
	return map[string]any{
		"to": []string{"Alice <alice@example.com>"}, "subject": "Hello", "text": "Hi Alice",
	}
}

// with returns valid() with the fields of kv (name, value, …) set, or removed when the value is nil.
func with(kv ...any) map[string]any { return modify(valid(), kv...) }

// modify sets the fields of kv (name, value, …) in m, or removes those whose value is nil.
func modify(m map[string]any, kv ...any) map[string]any {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

func TestSendAndReadBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("POST", "/v1/messages", map[string]any{
		"from": "Shop <news@shop.example>", "to": []string{"a@example.com", "Bo <b@example.com>"},
		"cc": []string{"c@example.com"}, "bcc": []string{"secret@example.com"}, "reply_to": "help@shop.example",
		"subject": "Your order", "html": "<p>Shipped!</p>", "text": "Shipped!",
		"headers": map[string]string{"X-Order": "A-1"}, "tags": []string{"orders"},
		"metadata": map[string]string{"order_id": "A-1"},
		"attachments": []map[string]string{{"filename": "invoice.pdf", "content_type": "application/pdf",
			"content": base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 fake"))}},
	})
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	acc := r.json(t)
	id, _ := acc["id"].(string)
	if !strings.HasPrefix(id, "msg_") || acc["status"] != "queued" {
		t.Fatalf("unexpected answer %s", r.body)
	}

	g := b.do("GET", "/v1/messages/"+id, nil)
	if g.status != 200 {
		t.Fatalf("get: %d %s", g.status, g.body)
	}
	m := g.json(t)
	for k, want := range map[string]any{"status": "queued", "stream": "transactional", "subject": "Your order",
		"from": "Shop <news@shop.example>", "attempts": float64(0)} {
		if m[k] != want {
			t.Errorf("%s = %#v, want %#v", k, m[k], want)
		}
	}
	if evs, _ := m["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["type"] != "queued" {
		t.Errorf("events = %v, want one queued event", m["events"])
	}

	raw := b.do("GET", "/v1/messages/"+id+"/raw", nil)
	if raw.status != 200 || raw.header.Get("Content-Type") != "message/rfc822" {
		t.Fatalf("raw: %d %q", raw.status, raw.header.Get("Content-Type"))
	}
	for _, want := range []string{"Subject: Your order\r\n", "X-Order: A-1\r\n", "multipart/mixed", "invoice.pdf", "Reply-To:"} {
		if !bytes.Contains(raw.body, []byte(want)) {
			t.Errorf("raw MIME lacks %q", want)
		}
	}
	if bytes.Contains(bytes.ToLower(raw.body), []byte("secret@example.com")) {
		t.Error("the Bcc recipient appears in the message")
	}
}

// TestBadInput covers every rejection of bad input (DESIGN §5): a 4xx naming the field, and
// nothing stored.
func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *httpapi.Config) { c.MaxMessageSize = 64 << 10 })
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("r%d@example.com", i)
	}
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + ".com"
	big := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xAB}, 80<<10))
	att := func(content string) []map[string]string {
		return []map[string]string{{"filename": "f.bin", "content": content}}
	}
	cases := []struct {
		name   string
		path   string
		body   any
		status int
		field  string // expected errors[].location
	}{
		{"malformed JSON", "/v1/messages", `{"to": [`, 400, ""},
		{"unknown field", "/v1/messages", with("bogus", 1), 422, "body.bogus"},
		{"no recipient", "/v1/messages", with("to", nil), 422, "body.to"},
		{"empty recipient list", "/v1/messages", with("to", []string{}), 422, "body.to"},
		{"over 50 recipients", "/v1/messages", with("to", many), 422, "body.to"},
		{"address without domain", "/v1/messages", with("to", []string{"a@"}), 422, "body.to[0]"},
		{"address with space", "/v1/messages", with("to", []string{"a b@x.com"}), 422, "body.to[0]"},
		{"domain label starts with hyphen", "/v1/messages", with("to", []string{"a@-x.com"}), 422, "body.to[0]"},
		{"address over 254 octets", "/v1/messages", with("to", []string{long}), 422, "body.to[0]"},
		{"bad cc", "/v1/messages", with("cc", []string{"nope"}), 422, "body.cc[0]"},
		{"bad bcc", "/v1/messages", with("bcc", []string{"x@"}), 422, "body.bcc[0]"},
		{"bad from", "/v1/messages", with("from", "not an address"), 422, "body.from"},
		{"bad reply_to", "/v1/messages", with("reply_to", "@x.com"), 422, "body.reply_to"},
		{"CR LF in subject", "/v1/messages", with("subject", "hi\r\nBcc: x@evil.com"), 422, "body.subject"},
		{"LF in subject", "/v1/messages", with("subject", "hi\nthere"), 422, "body.subject"},
		{"NUL in subject", "/v1/messages", with("subject", "hi\x00"), 422, "body.subject"},
		{"CR LF in display name", "/v1/messages", with("to", []string{"\"Al\r\nBcc: x@evil.com\" <a@example.com>"}), 422, "body.to[0]"},
		{"CR LF in from name", "/v1/messages", with("from", "Evil\r\n <e@example.com>"), 422, "body.from"},
		{"header name with colon", "/v1/messages", with("headers", map[string]string{"X-A:b": "1"}), 422, "body.headers.X-A:b"},
		{"header name with space", "/v1/messages", with("headers", map[string]string{"X A": "1"}), 422, "body.headers.X A"},
		{"header value with LF", "/v1/messages", with("headers", map[string]string{"X-A": "1\nBcc: x@evil.com"}), 422, "body.headers.X-A"},
		{"header value with NUL", "/v1/messages", with("headers", map[string]string{"X-A": "1\x00"}), 422, "body.headers.X-A"},
		{"neither template nor content", "/v1/messages", with("subject", nil, "text", nil), 422, "body.subject"},
		{"subject without body", "/v1/messages", with("text", nil), 422, "body.html"},
		{"body without subject", "/v1/messages", with("subject", nil), 422, "body.subject"},
		{"unknown template", "/v1/messages", with("subject", nil, "text", nil, "template", "nope"), 422, "body.template"},
		{"invalid base64", "/v1/messages", with("attachments", att("%%% not base64")), 422, "body.attachments[0].content"},
		{"attachment without filename", "/v1/messages", with("attachments", []map[string]string{{"content": "aGk="}}), 422, "body.attachments[0].filename"},
		{"multipart attachment", "/v1/messages", with("attachments", []map[string]string{{"filename": "a.eml", "content_type": "multipart/mixed", "content": "aGk="}}), 422, "body.attachments[0]"},
		{"bad content_id", "/v1/messages", with("html", "<img src=cid:a>", "attachments", []map[string]string{{"filename": "a.png", "content_id": "a(b)", "content": "aGk="}}), 422, "body.attachments[0]"},
		{"message over the size limit", "/v1/messages", with("attachments", att(big)), 413, "body.attachments"},
		{"body over the request limit", "/v1/messages", with("text", strings.Repeat("x", (64<<10)+(1<<20)+10)), 413, ""},
		{"send_at in the past", "/v1/messages", with("send_at", testNow.Add(-2*time.Minute)), 422, "body.send_at"},
		{"send_at too far ahead", "/v1/messages", with("send_at", testNow.Add(31*24*time.Hour)), 422, "body.send_at"},
		{"send_at not a time", "/v1/messages", with("send_at", "tomorrow"), 422, "body.send_at"},
		{"send_at a number", "/v1/messages", with("send_at", 1764000000), 422, "body.send_at"},
		{"send_at an object", "/v1/messages", with("send_at", map[string]any{}), 422, "body.send_at"},
		{"wrong type", "/v1/messages", with("to", "a@example.com"), 422, "body.to"},
		{"empty body", "/v1/messages", "", 400, ""},
		{"unknown stream", "/v1/messages", with("stream", "marketing"), 422, "body.stream"},
		{"bad tag", "/v1/messages", with("tags", []string{strings.Repeat("t", 65)}), 422, "body.tags[0]"},
		{"NUL in a metadata value", "/v1/messages", with("metadata", map[string]string{"k": "a\x00b"}), 422, "body.metadata.k"},
		{"NUL in a metadata key", "/v1/messages", with("metadata", map[string]string{"k\x00": "v"}), 422, "body.metadata.k\x00"},
		{"NUL in the retry filter's tag", "/v1/messages/retry", map[string]any{"tag": "a\x00"}, 422, "body.tag"},
		{"batch over 500", "/v1/messages/batch", map[string]any{"messages": repeat(valid(), 501)}, 422, "body.messages"},
		{"batch empty", "/v1/messages/batch", map[string]any{"messages": []any{}}, 422, "body.messages"},
		{"batch malformed", "/v1/messages/batch", `{"messages": [`, 400, ""},
		// Split by the fast path, then refused as a whole, as encoding/json would.
		{"batch item malformed", "/v1/messages/batch", `{"messages": [{"to": ["a@example.com"], "text": "hi", "subject": }]}`, 400, ""},
		{"batch unknown field", "/v1/messages/batch", `{"messages": [], "extra": 1}`, 422, "body"},
	}
	for _, h := range []string{"From", "To", "Cc", "Bcc", "Date", "Message-ID", "Sender", "Return-Path",
		"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "DKIM-Signature", "List-Unsubscribe",
		"List-Unsubscribe-Post", "message-id"} {
		cases = append(cases, struct {
			name, path string
			body       any
			status     int
			field      string
		}{"forbidden header " + h, "/v1/messages", with("headers", map[string]string{h: "x"}), 422, "body.headers." + h})
	}
	for _, tc := range cases {
		b.wantProblem(tc.name, b.do("POST", tc.path, tc.body), tc.status, tc.field)
	}
	if n := b.count(); n != 0 {
		t.Fatalf("bad input stored %d messages", n)
	}
}

func repeat(m map[string]any, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = m
	}
	return out
}

// wantProblem checks that r is a problem document with status whose errors name field (unless
// field is "").
func (b *bundle) wantProblem(name string, r response, status int, field string) {
	b.t.Helper()
	if r.status != status {
		b.t.Errorf("%s: status %d, want %d: %.300s", name, r.status, status, r.body)
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		b.t.Errorf("%s: Content-Type %q, want application/problem+json", name, ct)
	}
	if field != "" && !hasLocation(r.json(b.t), field) {
		b.t.Errorf("%s: no error names %q: %.300s", name, field, r.body)
	}
}

func hasLocation(problem map[string]any, loc string) bool {
	errs, _ := problem["errors"].([]any)
	for _, e := range errs {
		if e.(map[string]any)["location"] == loc {
			return true
		}
	}
	return false
}

// templateReads is the store, counting the template reads that reach it: the catalog reads a
// template it has not cached when it first renders it, which shows that a render was tried.
type templateReads struct {
	store.Store
	n atomic.Int64
}

func (s *templateReads) TemplateGet(ctx context.Context, name string, version int) (store.Template, error) {
	s.n.Add(1)
	return s.Store.TemplateGet(ctx, name, version)
}

// TestBatchMalformedRendersNothing: a batch refused as a whole for a malformed item (the fast
// path splits it, so only decoding the item finds out) renders none of the other items.
func TestBatchMalformedRendersNothing(t *testing.T) {
	t.Parallel()
	reads := &templateReads{}
	b := setup(t, func(c *httpapi.Config) { reads.Store, c.Store = c.Store, reads })
	// Stored straight into the store (as by another node): no catalog has it cached.
	if _, err := b.store.TemplatePut(t.Context(), store.TemplatePutParams{Now: testNow, Template: store.Template{
		Name: "welcome", Subject: "Hi {{.data.name}}", Text: "Welcome", Origin: store.TemplateOriginAPI}}); err != nil {
		t.Fatal(err)
	}
	item, _ := json.Marshal(map[string]any{"to": []string{"a@example.com"}, "template": "welcome", "data": map[string]any{"name": "Ada"}})
	items := strings.Repeat(string(item)+",", 8)
	b.wantProblem("malformed last item", b.do("POST", "/v1/messages/batch", `{"messages": [`+items+`{"subject": }]}`), 400, "")
	if n := reads.n.Load(); n != 0 {
		t.Errorf("a batch refused for its malformed last item read the template %d times: its other items were rendered", n)
	}
	// The probe works: without the malformed item, the items are rendered and stored.
	if r := b.do("POST", "/v1/messages/batch", `{"messages": [`+strings.TrimSuffix(items, ",")+`]}`); r.status != 200 || b.count() != 8 {
		t.Fatalf("the batch without its malformed item: %d, %d stored: %.300s", r.status, b.count(), r.body)
	}
	if reads.n.Load() == 0 {
		t.Error("rendering the batch did not read the template: the test shows nothing")
	}
}

func TestBatchPartial(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("POST", "/v1/messages/batch", map[string]any{"messages": []any{
		valid(),
		with("to", []string{"a b@x.com"}),
		with("bogus", true),
		with("to", "not-a-list"),
		with("stream", "broadcast"),
	}})
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	results := r.json(t)["results"].([]any)
	if len(results) != 5 {
		t.Fatalf("%d results, want 5", len(results))
	}
	wantErr := []string{"", "body.messages[1].to[0]", "body.messages[2].bogus", "body.messages[3].to", ""}
	for i, res := range results {
		item := res.(map[string]any)
		if wantErr[i] == "" {
			if item["status"] != "queued" || item["id"] == nil {
				t.Errorf("item %d: %v, want queued", i, item)
			}
			continue
		}
		prob, _ := item["error"].(map[string]any)
		if prob == nil || !hasLocation(prob, wantErr[i]) {
			t.Errorf("item %d: %v, want an error at %s", i, item, wantErr[i])
		}
	}
	if n := b.count(); n != 2 {
		t.Fatalf("%d messages stored, want the 2 good ones", n)
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.do("POST", "/v1/messages", valid(), "Idempotency-Key", "order-1")
	again := b.do("POST", "/v1/messages", valid(), "Idempotency-Key", "order-1")
	if first.status != 202 || again.status != 202 || !bytes.Equal(first.body, again.body) {
		t.Fatalf("repeat answered %d %s, first %d %s", again.status, again.body, first.status, first.body)
	}
	other := b.do("POST", "/v1/messages", with("subject", "Different"), "Idempotency-Key", "order-1")
	if other.status != 409 {
		t.Fatalf("different body with the same key: %d %s, want 409", other.status, other.body)
	}
	// Scoped per API key: another key may use the same Idempotency-Key.
	scoped := b.do("POST", "/v1/messages", valid(), "Idempotency-Key", "order-1", "Authorization", "Bearer "+otherKey)
	if scoped.status != 202 || bytes.Equal(scoped.body, first.body) {
		t.Fatalf("other API key: %d %s", scoped.status, scoped.body)
	}
	// Batches replay too.
	batch := map[string]any{"messages": []any{valid(), valid()}}
	b1 := b.do("POST", "/v1/messages/batch", batch, "Idempotency-Key", "batch-1")
	b2 := b.do("POST", "/v1/messages/batch", batch, "Idempotency-Key", "batch-1")
	if b1.status != 200 || !bytes.Equal(b1.body, b2.body) {
		t.Fatalf("batch replay differs: %s vs %s", b1.body, b2.body)
	}
	if n := b.count(); n != 4 {
		t.Fatalf("%d messages stored, want 4", n)
	}
	if r := b.do("POST", "/v1/messages", valid(), "Idempotency-Key", strings.Repeat("k", 256)); r.status != 422 {
		t.Fatalf("over-long key: %d", r.status)
	}
}

func TestIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 20
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := b.do("POST", "/v1/messages", valid(), "Idempotency-Key", "same")
			if r.status == 202 {
				ids[i] = r.json(t)["id"].(string)
			}
		}()
	}
	wg.Wait()
	for i := range ids {
		if ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("request %d got id %q, want all %q", i, ids[i], ids[0])
		}
	}
	if c := b.count(); c != 1 {
		t.Fatalf("%d messages stored, want 1", c)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, h := range []string{"", "Bearer wrong-key-0123456789", "Basic " + testKey, "Bearer "} {
		r := b.do("POST", "/v1/messages", valid(), "Authorization", h)
		if r.status != 401 || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("Authorization %q: %d %s", h, r.status, r.header.Get("Content-Type"))
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/v1/openapi.json"} {
		if r := b.do("GET", p, nil, "Authorization", ""); r.status != 200 {
			t.Errorf("%s without a key: %d", p, r.status)
		}
	}
	if n := b.count(); n != 0 {
		t.Fatalf("unauthenticated requests stored %d messages", n)
	}
}

func TestScheduleAndCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("POST", "/v1/messages", with("send_at", testNow.Add(48*time.Hour)))
	acc := r.json(t)
	if r.status != 202 || acc["status"] != "scheduled" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	id := acc["id"].(string)
	c := b.do("POST", "/v1/messages/"+id+"/cancel", nil)
	if c.status != 200 || c.json(t)["status"] != "cancelled" {
		t.Fatalf("cancel: %d %s", c.status, c.body)
	}
	if c := b.do("POST", "/v1/messages/"+id+"/cancel", nil); c.status != 409 {
		t.Fatalf("second cancel: %d, want 409", c.status)
	}
	if c := b.do("POST", "/v1/messages/msg_nope/cancel", nil); c.status != 404 {
		t.Fatalf("cancel unknown: %d, want 404", c.status)
	}
	if g := b.do("GET", "/v1/messages/msg_nope", nil); g.status != 404 {
		t.Fatalf("get unknown: %d", g.status)
	}
	if g := b.do("GET", "/v1/messages/msg_nope/raw", nil); g.status != 404 {
		t.Fatalf("raw unknown: %d", g.status)
	}
	// Within the one-minute slack, a slightly past send_at means "now".
	if r := b.do("POST", "/v1/messages", with("send_at", testNow.Add(-30*time.Second))); r.json(t)["status"] != "queued" {
		t.Fatalf("send_at 30s ago: %s", r.body)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for i := range 7 {
		m := with("to", []string{fmt.Sprintf("User%d@Example.com", i%2)}, "tags", []string{fmt.Sprintf("t%d", i%3)})
		if i == 6 {
			m["stream"] = "broadcast"
		}
		ids = append(ids, b.do("POST", "/v1/messages", m).json(t)["id"].(string))
	}
	get := func(q string) []string {
		r := b.do("GET", "/v1/messages?"+q, nil)
		if r.status != 200 {
			t.Fatalf("list %s: %d %s", q, r.status, r.body)
		}
		var out []string
		for _, m := range r.json(t)["data"].([]any) {
			out = append(out, m.(map[string]any)["id"].(string))
		}
		return out
	}
	if got := get("limit=100"); len(got) != 7 || got[0] != ids[6] {
		t.Fatalf("all: %v, want newest first", got)
	}
	if got := get("tag=t0"); len(got) != 3 {
		t.Errorf("tag t0: %d, want 3", len(got))
	}
	if got := get("recipient=user1@example.com"); len(got) != 3 {
		t.Errorf("recipient: %d, want 3", len(got))
	}
	if got := get("stream=broadcast"); len(got) != 1 || got[0] != ids[6] {
		t.Errorf("stream: %v", got)
	}
	if got := get("status=sent"); len(got) != 0 {
		t.Errorf("status sent: %v", got)
	}
	if got := get("status=queued,sent"); len(got) != 7 {
		t.Errorf("status queued,sent: %d", len(got))
	}
	if got := get("created_after=" + testNow.Add(time.Second).Format(time.RFC3339)); len(got) != 0 {
		t.Errorf("created_after: %v", got)
	}
	// Cursor pagination visits every message once.
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		r := b.do("GET", "/v1/messages?limit=3&cursor="+cursor, nil).json(t)
		for _, m := range r["data"].([]any) {
			id := m.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("%s seen twice", id)
			}
			seen[id] = true
		}
		next, _ := r["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 7 {
		t.Fatalf("pagination saw %d messages, want 7", len(seen))
	}
	if r := b.do("GET", "/v1/messages?status=bogus", nil); r.status != 422 {
		t.Errorf("bad status filter: %d", r.status)
	}
	if r := b.do("GET", "/v1/messages?limit=5000", nil); r.status != 422 {
		t.Errorf("limit 5000: %d", r.status)
	}
	for _, q := range []string{"tag=a%00b", "campaign_id=%00", "recipient=a%00@example.com"} {
		if r := b.do("GET", "/v1/messages?"+q, nil); r.status != 422 || !strings.Contains(string(r.body), "NUL") {
			t.Errorf("filter %s: %d %s, want 422 about NUL", q, r.status, r.body)
		}
	}
}

// TestOpenAPIHasEveryRoute fails when a route is missing from the OpenAPI document.
func TestOpenAPIHasEveryRoute(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("GET", "/v1/openapi.json", nil)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1", doc.OpenAPI)
	}
	for _, route := range []string{
		"post /v1/messages", "post /v1/messages/batch", "get /v1/messages", "get /v1/messages/{id}",
		"get /v1/messages/{id}/raw", "post /v1/messages/{id}/cancel", "post /v1/messages/{id}/retry",
		"post /v1/messages/retry", "get /v1/suppressions", "post /v1/suppressions",
		"get /v1/suppressions/{email}", "delete /v1/suppressions/{email}",
		"put /v1/templates/{name}", "get /v1/templates/{name}", "delete /v1/templates/{name}",
		"get /v1/templates", "post /v1/templates/{name}/render",
		"post /v1/webhooks", "get /v1/webhooks", "get /v1/webhooks/{id}", "patch /v1/webhooks/{id}",
		"delete /v1/webhooks/{id}", "post /v1/webhooks/{id}/rotate-secret", "get /v1/webhooks/{id}/deliveries",
		"get /v1/webhooks/{id}/deliveries/{delivery}", "post /v1/webhooks/{id}/deliveries/{delivery}/retry",
		"post /v1/webhooks/{id}/replay", "get /v1/inbound",
	} {
		method, path, _ := strings.Cut(route, " ")
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("OpenAPI document lacks %s", route)
		}
	}
}
