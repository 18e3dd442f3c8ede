package inbound_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/inbound"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// bundle is a submission server on a real SQLite store.
type bundle struct {
	store  *sqlite.Store
	sub    *inbound.Submission
	addr   string // where it listens
	secret string // a valid API key
	key    store.APIKey
	clock  *clock
	roots  *x509.CertPool // trusts the server's certificate (for "localhost")

	mu     sync.Mutex
	delays []time.Duration // the AUTH failure delays asked for
}

type options struct {
	listen string // "" for 127.0.0.1:0 (loopback-only)
	noTLS  bool
	mod    func(*inbound.SubmissionConfig)
}

func setup(t *testing.T, o options) *bundle {
	t.Helper()
	st := sqlitetest.Open(t)
	b := &bundle{store: st, clock: &clock{t: t0}}
	var err error
	b.secret = "pk_test_0123456789"
	sum := sha256.Sum256([]byte(b.secret))
	b.key = store.APIKey{ID: "key_test", Name: "test", Hash: sum[:], Prefix: "pk_test_", CreatedAt: t0}
	if err := st.APIKeyCreate(t.Context(), b.key); err != nil {
		t.Fatal(err)
	}
	msgs := message.New(message.Config{Store: st, MaxRecipients: 3, MaxMessageSize: 16 << 10,
		MaxScheduleAhead: 24 * time.Hour, MessageTTL: 24 * time.Hour, MaxAttempts: 4})
	cfg := inbound.SubmissionConfig{Messages: msgs, Keys: apikey.New(st, b.clock.now), Hostname: "postie.test",
		MaxMessageSize: 16 << 10, MaxRecipients: 3, Now: b.clock.now, ThrottleBase: time.Second,
		Sleep: func(_ context.Context, d time.Duration) { b.mu.Lock(); b.delays = append(b.delays, d); b.mu.Unlock() }}
	if !o.noTLS {
		var cert tls.Certificate
		cert, b.roots = sinktest.Cert(t)
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	if o.mod != nil {
		o.mod(&cfg)
	}
	b.sub = inbound.NewSubmission(cfg)
	l, err := net.Listen("tcp", cmpOr(o.listen, "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	done := make(chan error, 1)
	go func() { done <- b.sub.Serve(l) }()
	t.Cleanup(func() {
		if err := b.sub.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return b
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// client is a raw SMTP client: each command's reply is read as the server wrote it.
type client struct {
	t    *testing.T
	conn net.Conn
	text *textproto.Conn
}

func (b *bundle) dial(t *testing.T) *client {
	t.Helper()
	conn, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := &client{t: t, conn: conn, text: textproto.NewConn(conn)}
	if code, msg := c.read(); code != 220 {
		t.Fatalf("greeting %d %s", code, msg)
	}
	return c
}

func (c *client) read() (int, string) {
	c.t.Helper()
	code, msg, err := c.text.ReadResponse(0)
	if err != nil && code == 0 {
		c.t.Fatalf("reading a reply: %v", err)
	}
	return code, msg
}

// cmd sends one command line and returns its reply as "code text".
func (c *client) cmd(line string) string {
	c.t.Helper()
	if err := c.text.PrintfLine("%s", line); err != nil {
		c.t.Fatal(err)
	}
	code, msg := c.read()
	return fmt.Sprintf("%d %s", code, msg)
}

// want sends a command and fails unless the reply starts with prefix.
func (c *client) want(line, prefix string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("%s: %q, want %q…", line, r, prefix)
	}
	return r
}

// data sends DATA and the message (raw: dot-stuffing and line ends as given; a CRLF is added
// when it does not end with one), then the end of data, and returns the final reply.
func (c *client) data(raw string) string {
	c.t.Helper()
	c.want("DATA", "354")
	if !strings.HasSuffix(raw, "\r\n") {
		raw += "\r\n"
	}
	if _, err := c.conn.Write([]byte(raw + ".\r\n")); err != nil {
		c.t.Fatal(err)
	}
	code, msg := c.read()
	return fmt.Sprintf("%d %s", code, msg)
}

func plain(secret string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00api\x00"+secret))
}

// login greets and authenticates with the bundle's key.
func (b *bundle) login(t *testing.T) *client {
	t.Helper()
	c := b.dial(t)
	c.want("EHLO app.test", "250")
	c.want(plain(b.secret), "235 2.0.0")
	return c
}

// send submits one message as envelope from → to and returns the DATA reply.
func (c *client) send(from string, to []string, raw string) string {
	c.t.Helper()
	c.want("MAIL FROM:<"+from+">", "250")
	for _, r := range to {
		c.want("RCPT TO:<"+r+">", "250")
	}
	return c.data(raw)
}

// messages is every stored message, oldest first.
func (b *bundle) messages(t *testing.T) []store.Message {
	t.Helper()
	ms, err := b.store.MessageList(t.Context(), store.MessageListParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ms)
	return ms
}

const goodMsg = "From: Shop <orders@shop.example>\r\nTo: ann@example.com\r\nSubject: Your order\r\n" +
	"Message-ID: <order-1@shop.example>\r\n\r\nIt has shipped.\r\n"

// TestSubmissionAccepts: a submitted message is stored as submitted, except for postie's
// X-Postie-* fields and Bcc (read, then removed) and the trace field added (RFC 5321 §4.4),
// with the envelope's recipients (Bcc honoured), and the 250 names its id.
func TestSubmissionAccepts(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.login(t)
	raw := "From: Shop <orders@shop.example>\r\nTo: ann@example.com\r\nBcc: audit@shop.example\r\n" +
		"X-Postie-Stream: broadcast\r\nX-Postie-Tag: orders, shipping\r\nX-Postie-Tag: eu\r\n" +
		"X-Postie-Metadata-order_id: A-1\r\nx-postie-metadata-Region:\r\n =?utf-8?q?K=C3=B6ln?=\r\n" +
		"Subject: Your order\r\nMessage-ID: <order-1@shop.example>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		"Grüße: it has shipped.\r\n..a line starting with a dot\r\n"
	r := c.send("bounce@shop.example", []string{"ann@example.com", "audit@shop.example"}, raw)
	id, ok := strings.CutPrefix(r, "250 2.0.0 Ok: queued as ")
	if !ok {
		t.Fatalf("DATA: %q", r)
	}
	m, err := b.store.MessageGet(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Message{Stream: store.StreamBroadcast, Tags: []string{"orders", "shipping", "eu"},
		Metadata: map[string]string{"order_id": "A-1", "Region": "Köln"}, EnvelopeFrom: "bounce@shop.example",
		Recipients: []string{"ann@example.com", "audit@shop.example"}, MessageID: "order-1@shop.example", Subject: "Your order"}
	got := store.Message{Stream: m.Stream, Tags: m.Tags, Metadata: m.Metadata, EnvelopeFrom: m.EnvelopeFrom,
		Recipients: m.Recipients, MessageID: m.MessageID, Subject: m.Subject}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored message (-want +got):\n%s", d)
	}
	stored, err := b.store.MessageRaw(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	wantRaw := "Received: from app.test ([127.0.0.1])\r\n\tby postie.test (postie) with ESMTPA;\r\n\tSun, 06 Dec 2026 10:00:00 +0000\r\n" +
		"From: Shop <orders@shop.example>\r\nTo: ann@example.com\r\n" +
		"Subject: Your order\r\nMessage-ID: <order-1@shop.example>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		"Grüße: it has shipped.\r\n.a line starting with a dot\r\n"
	if d := cmp.Diff(wantRaw, string(stored)); d != "" {
		t.Errorf("stored MIME (-want +got):\n%s", d)
	}

	// The connection serves the next message (the transaction was reset).
	if r := c.send("orders@shop.example", []string{"bo@example.com"}, strings.Replace(goodMsg, "order-1", "order-2", 1)); !strings.HasPrefix(r, "250 2.0.0 Ok: queued as msg_") {
		t.Errorf("second message: %q", r)
	}
	c.want("QUIT", "221")
}

// TestSubmissionMessageIDIdempotent: a message sent again with the same Message-ID and envelope
// (a client that lost the 250) answers the first id and stores nothing; another envelope is
// another message; another content with the same Message-ID and envelope is refused.
func TestSubmissionMessageIDIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.login(t)
	to := []string{"ann@example.com"}
	first := c.send("orders@shop.example", to, goodMsg)
	if !strings.HasPrefix(first, "250 2.0.0 Ok: queued as msg_") {
		t.Fatalf("first: %q", first)
	}
	if again := b.login(t).send("orders@shop.example", to, goodMsg); again != first {
		t.Errorf("repeat: %q, want %q", again, first)
	}
	other := c.send("orders@shop.example", []string{"bo@example.com"}, goodMsg)
	if !strings.HasPrefix(other, "250 2.0.0 Ok: queued as msg_") || other == first {
		t.Errorf("another envelope: %q (first %q)", other, first)
	}
	if r := c.send("orders@shop.example", to, goodMsg+"P.S.\r\n"); !strings.HasPrefix(r, "554 5.6.0 This Message-ID was used") {
		t.Errorf("another content: %q", r)
	}
	if n := len(b.messages(t)); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
}

// TestSubmissionRefusesBadMessages: each bad message is refused with the reply naming what is
// wrong, nothing is stored, and the connection keeps serving.
func TestSubmissionRefusesBadMessages(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.login(t)
	hdr := "To: ann@example.com\r\nSubject: s\r\n"
	from := "From: orders@shop.example\r\n"
	for _, tc := range []struct {
		name string
		from string   // MAIL FROM ("" for orders@shop.example)
		to   []string // RCPT TO (nil for ann@example.com)
		raw  string
		want string // the DATA reply's start
	}{
		// RFC 5322 §3.6: exactly one From.
		{"no From", "", nil, hdr + "\r\nbody\r\n", "550 5.6.0 From: required"},
		{"two From", "", nil, from + from + hdr + "\r\nbody\r\n", "550 5.6.0 From: given more than once"},
		{"From not an address", "", nil, "From: orders@\r\n" + hdr + "\r\nbody\r\n", `550 5.6.0 From: invalid address "orders@"`},
		{"From at another domain", "", nil, "From: ceo@bank.example\r\n" + hdr + "\r\nbody\r\n",
			"550 5.7.1 the From address ceo@bank.example is not at the MAIL FROM domain shop.example"},
		{"not a header", "", nil, "just some text\r\n", "550 5.6.0 line 1 of the header is not a header field"},
		{"header line without colon", "", nil, from + "To ann@example.com\r\n\r\nbody\r\n", "550 5.6.0 line 2 of the header"},
		{"unknown X-Postie field", "", nil, from + "X-Postie-Priority: high\r\n" + hdr + "\r\nbody\r\n",
			"550 5.6.0 X-Postie-Priority: unknown"},
		{"unknown stream", "", nil, from + "X-Postie-Stream: bulk\r\n" + hdr + "\r\nbody\r\n",
			`550 5.6.0 X-Postie-Stream: unknown stream "bulk"`},
		{"stream twice", "", nil, from + "X-Postie-Stream: broadcast\r\nX-Postie-Stream: broadcast\r\n" + hdr + "\r\nb\r\n",
			"550 5.6.0 X-Postie-Stream: given more than once"},
		{"tag too long", "", nil, from + "X-Postie-Tag: " + strings.Repeat("t", 65) + "\r\n" + hdr + "\r\nbody\r\n",
			"550 5.6.0 X-Postie-Tag[0]: a tag is 1–64 characters"},
		{"metadata twice", "", nil, from + "X-Postie-Metadata-a: 1\r\nX-Postie-Metadata-A: 2\r\n" + hdr + "\r\nbody\r\n",
			"550 5.6.0 X-Postie-Metadata-A: given more than once"},
		{"metadata without a key", "", nil, from + "X-Postie-Metadata-: 1\r\n" + hdr + "\r\nbody\r\n",
			"550 5.6.0 X-Postie-Metadata-: name the metadata key"},
		// SMTP smuggling (email-rules §5.2): a receiver taking "\n.\n" or "\r.\n" for the end
		// of data would see the MAIL FROM after it as a second message.
		{"smuggled after LF.LF", "", nil, from + hdr + "\r\nbody\n.\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:<v@example.com>\r\nDATA\r\nFrom: ceo@bank.example\r\n\r\npay\r\n",
			"550 5.6.0 Bare CR or LF at octet"},
		{"smuggled after CR.LF", "", nil, from + hdr + "\r\nbody\r.\nMAIL FROM:<ceo@bank.example>\r\n", "550 5.6.0 Bare CR or LF at octet"},
		{"bare LF in the header", "", nil, from + "Subject: s\nBcc: x@example.com\r\n\r\nbody\r\n", "550 5.6.0 Bare CR or LF at octet"},
		{"too large", "", nil, from + hdr + "\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 17), "552 5.3.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			r := c.send(cmpOr(tc.from, "orders@shop.example"), cmpOrList(tc.to, []string{"ann@example.com"}), tc.raw)
			if !strings.HasPrefix(r, tc.want) {
				t.Errorf("DATA: %q, want %q…", r, tc.want)
			}
			c.want("NOOP", "250")
		})
	}
	c.t = t
	if ms := b.messages(t); len(ms) != 0 {
		t.Errorf("%d messages stored, want none", len(ms))
	}
	// The same connection still accepts a good message.
	if r := c.send("orders@shop.example", []string{"ann@example.com"}, goodMsg); !strings.HasPrefix(r, "250 2.0.0 Ok: queued as msg_") {
		t.Errorf("good message after the bad ones: %q", r)
	}
}

func cmpOrList(a, b []string) []string {
	if a != nil {
		return a
	}
	return b
}

// TestSubmissionRefusesBadCommands: the envelope and session rules, each answered with its
// code (RFC 4954, RFC 3207, RFC 1870), the connection serving on.
func TestSubmissionRefusesBadCommands(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	t.Run("MAIL before AUTH", func(t *testing.T) {
		c := b.dial(t)
		c.want("EHLO app.test", "250")
		c.want("MAIL FROM:<orders@shop.example>", "530 5.7.0 Authentication required")
		c.want("RCPT TO:<ann@example.com>", "502")
		c.want("DATA", "502")
	})
	t.Run("envelope", func(t *testing.T) {
		c := b.login(t)
		for _, tc := range []struct{ cmd, want string }{
			{"MAIL FROM:<>", "550 5.1.7 A null sender"},
			{"MAIL FROM:<orders@>", "501"},
			{"MAIL FROM:<orders@shop_example>", "553 5.1.7 Bad sender address"},
			{"MAIL FROM:<orders@shop.example> SIZE=99999999", "552 5.3.4"},
			{"MAIL FROM:<orders@shop.example> SMTPUTF8", "504"},
			{"MAIL FROM:<orders@shop.example>", "250"},
			{"RCPT TO:<ann@example_com>", "553 5.1.3 Bad recipient address"},
			{"RCPT TO:<a@example.com>", "250"},
			{"RCPT TO:<b@example.com>", "250"},
			{"RCPT TO:<c@example.com>", "250"},
			{"RCPT TO:<d@example.com>", "452 4.5.3"},
			{"RSET", "250"},
			{"AUTH PLAIN", "503"},
		} {
			c.want(tc.cmd, tc.want)
		}
	})
	t.Run("store failure", func(t *testing.T) {
		b := setup(t, options{})
		c := b.login(t)
		if err := b.store.Close(); err != nil {
			t.Fatal(err)
		}
		if r := c.send("orders@shop.example", []string{"ann@example.com"}, goodMsg); !strings.HasPrefix(r, "451 4.3.0") {
			t.Errorf("DATA with the store down: %q, want 451 4.3.0", r)
		}
	})
	t.Run("revoked key", func(t *testing.T) {
		b := setup(t, options{})
		c := b.login(t)
		if err := b.store.APIKeyDelete(t.Context(), b.key.ID); err != nil {
			t.Fatal(err)
		}
		b.clock.add(apikey.CacheTTL)
		if r := c.send("orders@shop.example", []string{"ann@example.com"}, goodMsg); !strings.HasPrefix(r, "530 5.7.0 The API key was revoked") {
			t.Errorf("DATA with a revoked key: %q", r)
		}
		if ms := b.messages(t); len(ms) != 0 {
			t.Errorf("%d messages stored, want none", len(ms))
		}
	})
}

// TestSubmissionAuthThrottled: a wrong key is 535 5.7.8, answered after a delay that doubles
// with each failure of the client address; a right one is accepted at once and forgets them.
// LOGIN works like PLAIN.
func TestSubmissionAuthThrottled(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.dial(t)
	c.want("EHLO app.test", "250")
	c.want(plain("pk_wrong"), "535 5.7.8")
	c.want(plain(""), "535 5.7.8")
	c.want("AUTH LOGIN", "334 "+base64.StdEncoding.EncodeToString([]byte("Username:")))
	c.want(base64.StdEncoding.EncodeToString([]byte("api")), "334 "+base64.StdEncoding.EncodeToString([]byte("Password:")))
	c.want(base64.StdEncoding.EncodeToString([]byte("pk_still_wrong")), "535 5.7.8")
	// Another connection from the same address waits longer still.
	c2 := b.dial(t)
	c2.want("EHLO app.test", "250")
	c2.want(plain("pk_wrong"), "535 5.7.8")
	c2.want("AUTH CRAM-MD5", "504 5.7.4")
	c2.want("AUTH LOGIN "+base64.StdEncoding.EncodeToString([]byte("api")), "334")
	c2.want(base64.StdEncoding.EncodeToString([]byte(b.secret)), "235 2.0.0")
	c.want(plain(b.secret), "235 2.0.0")
	c.want(plain(b.secret), "503") // already authenticated
	b.mu.Lock()
	got := b.delays
	b.mu.Unlock()
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
}

// TestSubmissionTLSRequired: on a listener beyond loopback AUTH is neither offered nor
// accepted before STARTTLS (530), nor is MAIL; after it, it works.
func TestSubmissionTLSRequired(t *testing.T) {
	t.Parallel()
	b := setup(t, options{listen: "0.0.0.0:0"})
	_, port, _ := net.SplitHostPort(b.addr)
	b.addr = "127.0.0.1:" + port
	c := b.dial(t)
	ehlo := c.want("EHLO app.test", "250")
	if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO before TLS: %q, want STARTTLS and no AUTH", ehlo)
	}
	for _, want := range []string{"PIPELINING", "8BITMIME", "SIZE 16384", "ENHANCEDSTATUSCODES"} {
		if !strings.Contains(ehlo, want) {
			t.Errorf("EHLO: %q, want %s", ehlo, want)
		}
	}
	c.want(plain(b.secret), "530 5.7.0 Must issue a STARTTLS command first")
	c.want("MAIL FROM:<orders@shop.example>", "530 5.7.0 Must issue a STARTTLS command first")
	c.want("STARTTLS", "220")
	tc := tls.Client(c.conn, &tls.Config{RootCAs: b.roots, ServerName: "localhost"})
	c.conn, c.text = tc, textproto.NewConn(tc)
	ehlo = c.want("EHLO app.test", "250")
	if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO after TLS: %q, want AUTH PLAIN LOGIN", ehlo)
	}
	c.want(plain(b.secret), "235")
	if r := c.send("orders@shop.example", []string{"ann@example.com"}, goodMsg); !strings.HasPrefix(r, "250 2.0.0 Ok: queued as msg_") {
		t.Errorf("DATA over TLS: %q", r)
	}
}

// TestSubmissionNeedsTLSBeyondLoopback: without a certificate, only a loopback listener serves.
func TestSubmissionNeedsTLSBeyondLoopback(t *testing.T) {
	t.Parallel()
	sub := inbound.NewSubmission(inbound.SubmissionConfig{})
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := sub.Serve(l); err == nil || !strings.Contains(err.Error(), "needs a TLS certificate") {
		t.Errorf("Serve: %v", err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:2587": true, "[::1]:2587": true, "localhost:2587": true,
		":2587": false, "0.0.0.0:2587": false, "192.0.2.1:2587": false, "bad": false} {
		if got := inbound.LoopbackOnly(addr); got != want {
			t.Errorf("LoopbackOnly(%q) = %v", addr, got)
		}
	}
}

// TestSubmissionPipelining: a client may send the envelope commands and DATA without waiting
// (RFC 2920); the replies come in order.
func TestSubmissionPipelining(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.login(t)
	if _, err := c.conn.Write([]byte("MAIL FROM:<orders@shop.example>\r\nRCPT TO:<ann@example.com>\r\nRCPT TO:<bo@example.com>\r\nDATA\r\n")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{250, 250, 250, 354} {
		if code, msg := c.read(); code != want {
			t.Fatalf("reply %d %s, want %d", code, msg, want)
		}
	}
	if _, err := c.conn.Write([]byte(goodMsg + ".\r\n")); err != nil {
		t.Fatal(err)
	}
	if code, msg := c.read(); code != 250 {
		t.Errorf("DATA: %d %s", code, msg)
	}
	if ms := b.messages(t); len(ms) != 1 || !slices.Equal(ms[0].Recipients, []string{"ann@example.com", "bo@example.com"}) {
		t.Errorf("stored %+v", ms)
	}
}

// TestSubmissionShutdown: Shutdown closes the connections outside a transaction at once, lets a
// transaction begun finish (its message committed and answered, then its connection closed),
// and returns.
func TestSubmissionShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	idle, busy := b.login(t), b.login(t)
	busy.want("MAIL FROM:<orders@shop.example>", "250")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.sub.Shutdown(ctx) }()
	if _, _, err := idle.text.ReadResponse(0); err == nil {
		t.Error("the idle connection is still open after Shutdown")
	}
	busy.want("RCPT TO:<ann@example.com>", "250")
	if r := busy.data(goodMsg); !strings.HasPrefix(r, "250 2.0.0 Ok: queued as msg_") {
		t.Errorf("the message begun before Shutdown: %q", r)
	}
	if _, _, err := busy.text.ReadResponse(0); err == nil {
		t.Error("the connection is still open after its message")
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := len(b.messages(t)); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

func TestBareLineEnd(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"": -1, "a\r\nb\r\n": -1, "a\nb": 1, "a\r": 1, "a\rb": 1, "\r\n\r\n.\n": 5, "a\r\n\rb": 3} {
		if got := inbound.BareLineEnd([]byte(in)); got != want {
			t.Errorf("BareLineEnd(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestSubmissionChunking: a message sent with BDAT (RFC 3030) is accepted like one sent with
// DATA, and refused alike for a bare LF.
func TestSubmissionChunking(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.login(t)
	for _, tc := range []struct{ msg, want string }{
		{goodMsg, "250 2.0.0 Ok: queued as msg_"},
		{strings.Replace(goodMsg, "order-1", "order-2", 1) + "bare\nLF\r\n", "550 5.6.0 Bare CR or LF"},
	} {
		c.want("MAIL FROM:<orders@shop.example>", "250")
		c.want("RCPT TO:<ann@example.com>", "250")
		half := len(tc.msg) / 2
		if _, err := fmt.Fprintf(c.conn, "BDAT %d\r\n%s", half, tc.msg[:half]); err != nil {
			t.Fatal(err)
		}
		if code, msg := c.read(); code != 250 {
			t.Fatalf("first chunk: %d %s", code, msg)
		}
		if _, err := fmt.Fprintf(c.conn, "BDAT %d LAST\r\n%s", len(tc.msg)-half, tc.msg[half:]); err != nil {
			t.Fatal(err)
		}
		if code, msg := c.read(); !strings.HasPrefix(fmt.Sprintf("%d %s", code, msg), tc.want) {
			t.Errorf("last chunk: %d %s, want %q…", code, msg, tc.want)
		}
	}
	if n := len(b.messages(t)); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}
