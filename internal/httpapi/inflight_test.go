package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/httpapi"
)

// withAttachment is a message with an attachment of n random octets.
func withAttachment(n int) map[string]any {
	content := make([]byte, n)
	_, _ = rand.Read(content)
	return map[string]any{"to": []string{"a@example.com"}, "subject": "large", "text": "see the file",
		"attachments": []map[string]string{{"filename": "f.bin", "content": base64.StdEncoding.EncodeToString(content)}}}
}

// Requests of the sending routes take their body's bytes from the in-flight budget before the
// body is read; when the budget is spent they wait briefly, then get a 503 with Retry-After and
// nothing is stored. Bodies under 64 KiB do not count.
func TestInflightBudget(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *httpapi.Config) {
		c.MaxInflightBytes = 1 << 20
		c.InflightWait = time.Millisecond
	})
	api := b.srv.Config.Handler.(*httpapi.Server)
	large := withAttachment(100 << 10)
	largeBatch := map[string]any{"messages": []any{large}}
	small := map[string]any{"to": []string{"a@example.com"}, "subject": "small", "text": "hi"}

	release := api.HoldInflight(1 << 20)
	for _, tc := range []struct {
		name, path string
		body       any
		chunked    bool
	}{
		{"message", "/v1/messages", large, false},
		{"batch", "/v1/messages/batch", largeBatch, false},
		{"chunked message", "/v1/messages", large, true},
	} {
		body, _ := json.Marshal(tc.body)
		var r response
		if tc.chunked {
			r = b.doChunked(tc.path, body)
		} else {
			r = b.do("POST", tc.path, body)
		}
		b.wantProblem(tc.name+" while the budget is spent", r, http.StatusServiceUnavailable, "")
		if ra := r.header.Get("Retry-After"); ra != "2" {
			t.Errorf("%s: Retry-After %q, want 2", tc.name, ra)
		}
		if !strings.Contains(string(r.body), "POSTIE_MAX_INFLIGHT_BYTES") {
			t.Errorf("%s: the problem does not name the setting: %s", tc.name, r.body)
		}
	}
	if n := b.count(); n != 0 {
		t.Fatalf("%d messages stored from refused requests", n)
	}
	if r := b.do("POST", "/v1/messages", small); r.status != http.StatusAccepted {
		t.Errorf("a small message while the budget is spent: %d %s, want 202", r.status, r.body)
	}
	release()
	if r := b.do("POST", "/v1/messages", large); r.status != http.StatusAccepted {
		t.Errorf("a large message once the budget is free: %d %s, want 202", r.status, r.body)
	}
	if r := b.do("POST", "/v1/messages/batch", largeBatch); r.status != http.StatusOK {
		t.Errorf("a large batch once the budget is free: %d %s, want 200", r.status, r.body)
	}
	// Every request gave back what it took.
	api.HoldInflight(1 << 20)()
}

// doChunked posts body with Transfer-Encoding: chunked (no Content-Length).
func (b *bundle) doChunked(path string, body []byte) response {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.srv.URL+path, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: out}
}

// The body limit of the sending routes: a declared Content-Length over it is refused before
// the body is read; a chunked body is refused as soon as it passes it; bodies within it, sized
// or chunked, are stored intact.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *httpapi.Config) { c.MaxMessageSize = 64 << 10 }) // body limit 1 MiB + 64 KiB
	over, _ := json.Marshal(withAttachment(900 << 10))
	within := withAttachment(30 << 10)
	withinBody, _ := json.Marshal(within)

	// Headers only: the server must answer without waiting for a body that never comes.
	c, err := net.Dial("tcp", b.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST /v1/messages HTTP/1.1\r\nHost: postie\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n", testKey)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a declared 1 GB body: %v", err)
	}
	out, _ := io.ReadAll(resp.Body)
	b.wantProblem("declared 1 GB", response{status: resp.StatusCode, header: resp.Header, body: out}, http.StatusRequestEntityTooLarge, "")

	b.wantProblem("chunked, over the limit", b.doChunked("/v1/messages", over), http.StatusRequestEntityTooLarge, "")
	b.wantProblem("chunked batch, over twice the limit", b.doChunked("/v1/messages/batch",
		fmt.Appendf(nil, `{"messages":[%s,%s,%s]}`, over, over, over)), http.StatusRequestEntityTooLarge, "")
	if n := b.count(); n != 0 {
		t.Fatalf("%d messages stored from refused requests", n)
	}

	want, _ := base64.StdEncoding.DecodeString(within["attachments"].([]map[string]string)[0]["content"])
	for _, chunked := range []bool{false, true} {
		var r response
		if chunked {
			r = b.doChunked("/v1/messages", withinBody)
		} else {
			r = b.do("POST", "/v1/messages", withinBody)
		}
		if r.status != http.StatusAccepted {
			t.Fatalf("chunked=%v: %d %s", chunked, r.status, r.body)
		}
		raw, err := b.store.MessageRaw(context.Background(), r.json(t)["id"].(string))
		if err != nil {
			t.Fatal(err)
		}
		enc := base64.StdEncoding.EncodeToString(want)
		if !bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte(enc)) {
			t.Errorf("chunked=%v: the stored MIME does not carry the attachment", chunked)
		}
	}
}

// A send decodes its attachment once, straight from the body: the server allocates a few times
// the body (the body, the decoded file, the MIME), not the eight or more of a body copied into
// decoders and strings. Not parallel: it counts the process's allocations.
func TestSendAllocations(t *testing.T) {
	b := setup(t)
	html := withAttachment(4 << 20)
	html["html"] = "<p>hi</p>"
	for _, tc := range []struct {
		name, path string
		body       any
	}{
		{"text", "/v1/messages", withAttachment(4 << 20)},
		{"html", "/v1/messages", html},
		{"batch of one", "/v1/messages/batch", map[string]any{"messages": []any{withAttachment(4 << 20)}}},
	} {
		body, _ := json.Marshal(tc.body)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := b.do("POST", tc.path, body)
		runtime.ReadMemStats(&after)
		if r.status/100 != 2 {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %.1f MB allocated for a %.1f MB body (%.1f×)", tc.name, float64(alloc)/1e6, float64(len(body))/1e6, float64(alloc)/float64(len(body)))
		if alloc > 4*uint64(len(body)) {
			t.Errorf("%s: %d bytes allocated for a %d-byte body, want under 4×", tc.name, alloc, len(body))
		}
	}
}

// /raw streams the stored MIME exactly, with its length.
func TestRawStreams(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("POST", "/v1/messages", withAttachment(3<<20))
	if r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	want, err := b.store.MessageRaw(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	g := b.do("GET", "/v1/messages/"+id+"/raw", nil)
	if g.status != 200 || !bytes.Equal(g.body, want) {
		t.Fatalf("raw: %d, %d bytes, want the %d stored", g.status, len(g.body), len(want))
	}
	if ct, cl := g.header.Get("Content-Type"), g.header.Get("Content-Length"); ct != "message/rfc822" || cl != fmt.Sprint(len(want)) {
		t.Errorf("raw: Content-Type %q, Content-Length %q; want message/rfc822, %d", ct, cl, len(want))
	}
	b.wantProblem("raw of an unknown message", b.do("GET", "/v1/messages/msg_01jd8x2k3m4n5p6q7r8s9t0v1w/raw", nil), 404, "")
}

// A client that asks for a large /raw and does not read it is disconnected once the write
// timeout has passed, which releases what its response held.
func TestRawSlowReader(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *httpapi.Config) { c.WriteTimeout = 100 * time.Millisecond })
	r := b.do("POST", "/v1/messages", withAttachment(8<<20)) // more than the kernel buffers
	if r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)

	closed := make(chan struct{})
	srv := httptest.NewUnstartedServer(b.srv.Config.Handler)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			close(closed)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /v1/messages/%s/raw HTTP/1.1\r\nHost: postie\r\nAuthorization: Bearer %s\r\n\r\n", id, testKey)
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the server still holds the connection of a client that does not read, 20 s after its write timeout")
	}
}
