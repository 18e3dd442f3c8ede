package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/transport"
)

// relay is a scriptable in-process SMTP server (go-smtp's server). Replies are scripted per
// attempt: the n-th MAIL (or RCPT to an address, or DATA) gets the n-th entry, nil or past the
// end means accept.
type relay struct {
	mu        sync.Mutex
	conns     int          // connections accepted
	wire      bytes.Buffer // everything the server read, as seen on the socket
	msgs      []received
	mail      []error
	mailN     int
	rcpt      map[string][]error
	rcptN     map[string]int
	data      []error
	dataN     int
	hangup    bool          // close the connection instead of replying to the final "."
	stall     chan struct{} // when set, DATA blocks until it is closed
	user      string        // AUTH PLAIN required when set
	pass      string
	dataReply *gosmtp.SMTPError // reply to a successful DATA (default go-smtp's "OK: queued")
	no8bit    bool              // does not offer 8BITMIME
}

type received struct {
	From string
	To   []string
	Body []byte
	Conn int
}

func nth(list []error, n int) error {
	if n < len(list) {
		return list[n]
	}
	return nil
}

func (r *relay) count() (conns, msgs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, len(r.msgs)
}

func (r *relay) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &session{r: r, c: c, conn: r.conns}, nil
}

type session struct {
	r      *relay
	c      *gosmtp.Conn
	conn   int
	authed bool
	from   string
	to     []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.r.user || pass != s.r.pass {
			return gosmtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *gosmtp.MailOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.user != "" && !s.authed {
		return gosmtp.ErrAuthRequired
	}
	s.r.mailN++
	if err := nth(s.r.mail, s.r.mailN-1); err != nil {
		return err
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.rcptN == nil {
		s.r.rcptN = map[string]int{}
	}
	s.r.rcptN[to]++
	if err := nth(s.r.rcpt[to], s.r.rcptN[to]-1); err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(rd io.Reader) error {
	body, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.dataN++
	reply := nth(s.r.data, s.r.dataN-1)
	if reply == nil {
		s.r.msgs = append(s.r.msgs, received{From: s.from, To: s.to, Body: body, Conn: s.conn})
	}
	hangup, stall, ok := s.r.hangup, s.r.stall, s.r.dataReply
	s.r.mu.Unlock()
	if stall != nil {
		<-stall
	}
	if hangup {
		s.c.Close()
		return errors.New("hung up")
	}
	if reply == nil && ok != nil {
		return ok // go-smtp writes an *SMTPError's code as is, 250 included
	}
	return reply
}

// tapListener counts connections and records what the server reads.
type tapListener struct {
	net.Listener
	r *relay
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.r.mu.Lock()
	l.r.conns++
	l.r.mu.Unlock()
	return tapConn{Conn: c, r: l.r}, nil
}

type tapConn struct {
	net.Conn
	r *relay
}

// Write hides 8BITMIME from the EHLO reply of a relay set up without it (go-smtp always offers
// it; its EHLO reply is one write, 8BITMIME never its last line).
func (c tapConn) Write(p []byte) (int, error) {
	if !c.r.no8bit {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(bytes.ReplaceAll(p, []byte("250-8BITMIME\r\n"), nil)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.wire.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

type bundle struct {
	relay *relay
	port  int
	roots *x509.CertPool
}

type setupOpts struct {
	tls      bool // offer STARTTLS (or serve implicit TLS with implicit)
	implicit bool
	user     string
	pass     string
	no8bit   bool // do not offer 8BITMIME
}

// setup starts a relay on 127.0.0.1 and returns it with what a client needs to trust it.
func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	r := &relay{user: o.user, pass: o.pass, rcpt: map[string][]error{}, no8bit: o.no8bit}
	s := gosmtp.NewServer(r)
	s.Domain = "relay.test"
	s.AllowInsecureAuth = !o.tls
	s.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{relay: r, port: ln.Addr().(*net.TCPAddr).Port}
	var l net.Listener = tapListener{Listener: ln, r: r}
	if o.tls || o.implicit {
		cert, roots := sinktest.Cert(t)
		b.roots = roots
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
		if o.implicit {
			l = tls.NewListener(l, cfg)
		} else {
			s.TLSConfig = cfg
		}
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { s.Close() })
	return b
}

// client returns a transport for the relay with short timeouts, adjusted by mod.
func (b *bundle) client(t *testing.T, mod func(*Config)) *Transport {
	t.Helper()
	return testClient(t, b.port, b.roots, mod)
}

// sinkClient returns a plaintext transport for an smtpsink with short timeouts, adjusted by mod.
func sinkClient(t *testing.T, s *smtpsink.Sink, mod func(*Config)) *Transport {
	t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr())
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return testClient(t, n, nil, mod)
}

// testClient returns a transport to 127.0.0.1:port with short timeouts, adjusted by mod, closed
// when the test ends.
func testClient(t *testing.T, port int, roots *x509.CertPool, mod func(*Config)) *Transport {
	t.Helper()
	cfg := Config{
		Host: "127.0.0.1", Port: port, TLS: TLSNone, Helo: "client.test",
		CommandTimeout: 2 * time.Second, DataTimeout: 2 * time.Second,
		TLSConfig: &tls.Config{RootCAs: roots},
	}
	if strings.HasPrefix(t.Name(), "TestLockstep/") {
		cfg.Lockstep = true
	}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

const testBody = "From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\nend\r\n"

func env(to ...string) transport.Envelope {
	return transport.Envelope{MessageID: "m1", From: "bounce@example.com", To: to}
}

// wantErr checks err is a *transport.Error with the given class and stage and returns it.
func wantErr(t *testing.T, err error, class transport.Class, stage string) *transport.Error {
	t.Helper()
	var te *transport.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *transport.Error", err, err)
	}
	if te.Class != class || te.Stage != stage {
		t.Fatalf("error %q: class %v at %q, want %v at %q", te, te.Class, te.Stage, class, stage)
	}
	return te
}

func TestSendDelivers(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.relay.dataReply = &gosmtp.SMTPError{Code: 250, EnhancedCode: gosmtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as ABC123"}
	tr := b.client(t, nil)

	res, err := tr.Send(context.Background(), env("b@example.net", "c@example.net"), []byte(testBody))
	if err != nil {
		t.Fatal(err)
	}
	want := transport.Result{ProviderID: "ABC123", Response: "250 2.0.0 Ok: queued as ABC123"}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	b.relay.mu.Lock()
	defer b.relay.mu.Unlock()
	if len(b.relay.msgs) != 1 {
		t.Fatalf("relay got %d messages, want 1", len(b.relay.msgs))
	}
	got := b.relay.msgs[0]
	if got.From != "bounce@example.com" || !cmp.Equal(got.To, []string{"b@example.net", "c@example.net"}) {
		t.Errorf("envelope %q -> %q", got.From, got.To)
	}
	if !bytes.Equal(got.Body, []byte(testBody)) {
		t.Errorf("body differs (dot-stuffing?):\ngot  %q\nwant %q", got.Body, testBody)
	}
	if !bytes.Contains(b.relay.wire.Bytes(), []byte("EHLO client.test\r\n")) {
		t.Errorf("relay did not see EHLO client.test")
	}
}

func TestProviderID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ text, want string }{
		{"2.0.0 Ok: queued as 4Xh2Lq1bz3z9", "4Xh2Lq1bz3z9"},                // Postfix
		{"OK id=1tUvWx-000ABC-De", "1tUvWx-000ABC-De"},                      // Exim
		{"Ok 0100018c1a2b3c4d-aaaa-000000", "0100018c1a2b3c4d-aaaa-000000"}, // SES
		{"Ok: <20240101.abc@mx>", "20240101.abc@mx"},
		{"2.0.0 OK: queued", "OK: queued"}, // go-smtp's default: no id, whole text
		{"2.0.0 OK  1611234567 x12si123456qkj.12 - gsmtp", "OK  1611234567 x12si123456qkj.12 - gsmtp"},
	} {
		if got := providerID(tc.text); got != tc.want {
			t.Errorf("providerID(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

// wire counts what the relay read.
func (r *relay) wireCount(what string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Count(r.wire.Bytes(), []byte(what))
}

func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	tr := b.client(t, func(c *Config) { c.Pool = 1 })
	const n = 5
	for i := range n {
		if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	conns, msgs := b.relay.count()
	if conns != 1 || msgs != n {
		t.Errorf("relay saw %d connections and %d messages, want 1 and %d", conns, msgs, n)
	}
	// After a reply to the final "." the relay is ready for the next MAIL (RFC 5321 §4.1.1.4):
	// no RSET, no second EHLO.
	if rsets, ehlos := b.relay.wireCount("RSET\r\n"), b.relay.wireCount("EHLO "); rsets != 0 || ehlos != 1 {
		t.Errorf("relay saw %d RSET and %d EHLO, want 0 and 1", rsets, ehlos)
	}
}

// TestResetAfterOpenTransaction checks that a connection whose transaction was left open is
// reset before it carries the next message, and only then.
func TestResetAfterOpenTransaction(t *testing.T) {
	t.Parallel()
	e550 := &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	e451 := &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	for _, tc := range []struct {
		name   string
		script func(*relay)
		rsets  int
	}{
		{"every RCPT refused: MAIL left open", func(r *relay) { r.rcpt["b@example.net"] = []error{e550} }, 1},
		{"MAIL refused: no transaction", func(r *relay) { r.mail = []error{e451} }, 0},
		{"final dot refused: transaction ended", func(r *relay) { r.data = []error{e451} }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			tc.script(b.relay)
			tr := b.client(t, func(c *Config) { c.Pool = 1 })
			if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err == nil {
				t.Fatal("first send succeeded, want the scripted refusal")
			}
			if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
				t.Fatal(err)
			}
			if conns, msgs := b.relay.count(); conns != 1 || msgs != 1 {
				t.Errorf("relay saw %d connections and %d messages, want 1 and 1", conns, msgs)
			}
			if rsets, ehlos := b.relay.wireCount("RSET\r\n"), b.relay.wireCount("EHLO "); rsets != tc.rsets || ehlos != 1+tc.rsets {
				t.Errorf("relay saw %d RSET and %d EHLO, want %d and %d", rsets, ehlos, tc.rsets, 1+tc.rsets)
			}
		})
	}
}

// TestStalePooledConnectionRedials checks that a pooled connection found dead at MAIL is
// replaced once, transparently, and that nothing else is.
func TestStalePooledConnectionRedials(t *testing.T) {
	t.Parallel()
	idle := smtpsink.Action{Code: 421, Enhanced: "4.4.2", Text: "Idle timeout, closing connection"}
	for _, tc := range []struct {
		name  string
		later smtpsink.Action // the reply to every MAIL after the first on connection 1
		class transport.Class // of the second send; -1: delivered
		conns int
	}{
		{"closed while idle", smtpsink.Action{Hangup: true}, -1, 2},
		{"421 idle timeout", idle, -1, 2},
		{"451 is about the message", smtpsink.Action{Code: 451, Text: "try later"}, transport.Temporary, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mails atomic.Int32
			s := sinktest.Start(t, smtpsink.Options{Script: func(st smtpsink.Step) smtpsink.Action {
				if st.Stage == smtpsink.StageMail && st.Conn == 1 && mails.Add(1) > 1 {
					return tc.later
				}
				return smtpsink.Action{}
			}})
			tr := sinkClient(t, s, func(c *Config) { c.Pool = 1 })
			for i := range 2 {
				_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
				switch {
				case i == 0 || tc.class == -1:
					if err != nil {
						t.Fatalf("send %d: %v", i, err)
					}
				default:
					wantErr(t, err, tc.class, stageMail)
				}
			}
			if s.Conns() != tc.conns {
				t.Errorf("sink saw %d connections, want %d", s.Conns(), tc.conns)
			}
		})
	}
}

// TestDeadRelayAtMailRedialsOnce checks that the redial of a stale connection happens once: a
// relay that drops every connection at MAIL is unreachable, after one new connection.
func TestDeadRelayAtMailRedialsOnce(t *testing.T) {
	t.Parallel()
	var mails atomic.Int32
	s := sinktest.Start(t, smtpsink.Options{Script: func(st smtpsink.Step) smtpsink.Action {
		return smtpsink.Action{Hangup: st.Stage == smtpsink.StageMail && mails.Add(1) > 1}
	}})
	tr := sinkClient(t, s, func(c *Config) { c.Pool = 1 })
	if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	wantErr(t, err, transport.Unreachable, stageMail)
	if s.Conns() != 2 {
		t.Errorf("sink saw %d connections, want 2 (one redial)", s.Conns())
	}
	// A new connection that dies at MAIL is not redialled.
	_, err = tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	wantErr(t, err, transport.Unreachable, stageMail)
	if s.Conns() != 3 {
		t.Errorf("sink saw %d connections, want 3", s.Conns())
	}
}

// TestRelayRestarted checks that connections pooled before a relay restart are replaced.
func TestRelayRestarted(t *testing.T) {
	t.Parallel()
	s1 := sinktest.Start(t, smtpsink.Options{})
	tr := sinkClient(t, s1, func(c *Config) { c.Pool = 2 })
	var wg sync.WaitGroup
	for range 2 { // two pooled connections
		wg.Go(func() {
			if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s1.Close()
	s2 := sinktest.Start(t, smtpsink.Options{Addr: s1.Addr()})
	for i := range 3 {
		if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
			t.Fatalf("send %d after the restart: %v", i, err)
		}
	}
	if s2.Count() != 3 {
		t.Errorf("restarted relay got %d messages, want 3", s2.Count())
	}
}

func TestMaxPerConnReconnects(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	tr := b.client(t, func(c *Config) { c.Pool = 1; c.MaxPerConn = 2 })
	for i := range 5 {
		if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	conns, msgs := b.relay.count()
	if conns != 3 || msgs != 5 {
		t.Errorf("relay saw %d connections and %d messages, want 3 and 5", conns, msgs)
	}
	b.relay.mu.Lock()
	quits := bytes.Count(b.relay.wire.Bytes(), []byte("QUIT\r\n"))
	b.relay.mu.Unlock()
	if quits != 2 {
		t.Errorf("relay saw %d QUIT, want 2 (each used-up connection)", quits)
	}
}

func TestIdleTimeoutRedials(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := b.client(t, func(c *Config) {
		c.IdleTimeout = 30 * time.Second
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	send := func() {
		t.Helper()
		if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
			t.Fatal(err)
		}
	}
	send()
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	send() // still fresh: reused
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	send() // idle too long: closed, redialled
	if conns, _ := b.relay.count(); conns != 2 {
		t.Errorf("relay saw %d connections, want 2", conns)
	}
}

// countingDial dials like the default and counts the connections the transport has open.
func countingDial(open *atomic.Int32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		open.Add(1)
		return &countedConn{Conn: c, open: open}, nil
	}
}

type countedConn struct {
	net.Conn
	open *atomic.Int32
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// waitOpen waits until the transport has want connections open, up to 5 s.
func waitOpen(t *testing.T, open *atomic.Int32, want int32) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); open.Load() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open after 5s, want %d", open.Load(), want)
		}
	}
}

// TestIdleConnectionsClosed checks that a pooled connection is closed with QUIT once it has been
// idle for IdleTimeout, without a send to notice it; IdleTimeout is short here instead of the
// default 30 s.
func TestIdleConnectionsClosed(t *testing.T) {
	t.Parallel()
	s := sinktest.Start(t, smtpsink.Options{})
	var open atomic.Int32
	tr := sinkClient(t, s, func(c *Config) {
		c.Pool, c.IdleTimeout, c.Dial = 2, 50*time.Millisecond, countingDial(&open)
	})
	send := func() {
		t.Helper()
		if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
			t.Fatal(err)
		}
	}
	send()
	waitOpen(t, &open, 0)
	tr.mu.Lock()
	idle := len(tr.idle)
	tr.mu.Unlock()
	if idle != 0 {
		t.Errorf("%d idle connections left in the pool after their expiry", idle)
	}
	send() // a new connection
	if s.Conns() != 2 {
		t.Errorf("sink saw %d connections, want 2", s.Conns())
	}
	waitOpen(t, &open, 0)
}

// TestCloseStopsIdleTimers checks that Close closes the idle connections at once and leaves no
// expiry armed or running (no timer goroutine outlives the transport).
func TestCloseStopsIdleTimers(t *testing.T) {
	t.Parallel()
	s := sinktest.Start(t, smtpsink.Options{})
	var open atomic.Int32
	tr := sinkClient(t, s, func(c *Config) { c.Pool, c.IdleTimeout, c.Dial = 2, time.Hour, countingDial(&open) })
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if open.Load() == 0 {
		t.Fatal("no connection pooled")
	}
	// Close waits for the expiries it could not disarm, so one still armed would hang it.
	closed := make(chan struct{})
	go func() { tr.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(time.Second):
		t.Fatal("Close did not return: an idle expiry is still armed")
	}
	if n := open.Load(); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
	done := make(chan struct{})
	go func() { tr.timers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("an idle expiry is still armed after Close")
	}
}

func TestTemporaryReply(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{stageMail, stageRcpt, stageData} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			try := &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			switch stage {
			case stageMail:
				b.relay.mail = []error{try}
			case stageRcpt:
				b.relay.rcpt["b@example.net"] = []error{try}
			case stageData:
				b.relay.data = []error{try}
			}
			tr := b.client(t, func(c *Config) { c.Pool = 1 })
			_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
			te := wantErr(t, err, transport.Temporary, stage)
			if te.Code != 451 || te.Enhanced != "4.3.0" || te.Text != "try later" {
				t.Errorf("error %+v, want 451 4.3.0 try later", te)
			}
			// A 4xx leaves the connection usable: the retry goes over it.
			if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
				t.Fatal(err)
			}
			if conns, msgs := b.relay.count(); conns != 1 || msgs != 1 {
				t.Errorf("relay saw %d connections and %d messages, want 1 and 1", conns, msgs)
			}
		})
	}
}

func TestRecipientRefusedOthersSent(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.relay.rcpt["gone@example.net"] = []error{&gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}}
	tr := b.client(t, nil)
	res, err := tr.Send(context.Background(), env("gone@example.net", "ok@example.net"), []byte(testBody))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Recipient != "gone@example.net" {
		t.Fatalf("rejected %+v, want gone@example.net", res.Rejected)
	}
	re := res.Rejected[0].Err
	if re.Class != transport.Permanent || re.Stage != stageRcpt || re.Code != 550 || re.Enhanced != "5.1.1" {
		t.Errorf("rejection %+v", re)
	}
	b.relay.mu.Lock()
	defer b.relay.mu.Unlock()
	if len(b.relay.msgs) != 1 || !cmp.Equal(b.relay.msgs[0].To, []string{"ok@example.net"}) {
		t.Errorf("relay got %+v, want one message to ok@example.net", b.relay.msgs)
	}
}

func TestAllRecipientsRefused(t *testing.T) {
	t.Parallel()
	e550 := &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	e450 := &gosmtp.SMTPError{Code: 450, EnhancedCode: gosmtp.EnhancedCode{4, 2, 1}, Message: "slow down"}
	for _, tc := range []struct {
		name   string
		a, b   error
		class  transport.Class
		code   int
		status string
	}{
		{"all 5xx: permanent", e550, e550, transport.Permanent, 550, "5.1.1"},
		{"any 4xx: temporary", e550, e450, transport.Temporary, 550, "5.1.1"}, // RFC 5321 §4.2.1
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			b.relay.rcpt["a@example.net"] = []error{tc.a}
			b.relay.rcpt["b@example.net"] = []error{tc.b}
			tr := b.client(t, nil)
			_, err := tr.Send(context.Background(), env("a@example.net", "b@example.net"), []byte(testBody))
			te := wantErr(t, err, tc.class, stageRcpt)
			if te.Code != tc.code || te.Enhanced != tc.status {
				t.Errorf("error %q, want the first refusal", te)
			}
			if _, msgs := b.relay.count(); msgs != 0 {
				t.Errorf("relay got %d messages, want none (no DATA)", msgs)
			}
		})
	}
}

func TestThrottleReplacesConnection(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.relay.rcpt["b@example.net"] = []error{&gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: "Try again later, closing connection"}}
	tr := b.client(t, func(c *Config) { c.Pool = 1 })
	_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	te := wantErr(t, err, transport.Throttle, stageRcpt)
	if te.Code != 421 || te.Enhanced != "4.7.0" {
		t.Errorf("error %q", te)
	}
	if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	if conns, msgs := b.relay.count(); conns != 2 || msgs != 1 {
		t.Errorf("relay saw %d connections and %d messages, want 2 and 1", conns, msgs)
	}
}

func TestRelayNotListening(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tr, err := New(Config{Host: "127.0.0.1", Port: port, TLS: TLSNone, CommandTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	_, err = tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	wantErr(t, err, transport.Unreachable, stageConnect)
}

func TestStartTLSAndAuth(t *testing.T) {
	t.Parallel()
	const user, pass = "postie", "s3cr3t-Pa55word"
	b := setup(t, setupOpts{tls: true, user: user, pass: pass})
	tr := b.client(t, func(c *Config) { c.TLS = TLSStartTLS; c.Username = user; c.Password = pass })
	if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	b.relay.mu.Lock()
	wire := b.relay.wire.Bytes()
	if !bytes.Contains(wire, []byte("STARTTLS\r\n")) {
		t.Error("relay did not see STARTTLS")
	}
	if !bytes.HasPrefix(wire, []byte("EHLO client.test\r\nSTARTTLS\r\n")) {
		t.Errorf("plaintext part %.40q, want EHLO with the configured name, then STARTTLS", wire)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	if bytes.Contains(wire, []byte(plain)) || bytes.Contains(wire, []byte(pass)) {
		t.Error("credentials crossed the wire in plaintext")
	}
	b.relay.mu.Unlock()

	bad := b.client(t, func(c *Config) { c.TLS = TLSStartTLS; c.Username = user; c.Password = "wrong-" + pass })
	_, err := bad.Send(context.Background(), env("b@example.net"), []byte(testBody))
	te := wantErr(t, err, transport.Unreachable, stageAuth)
	if te.Code != 535 {
		t.Errorf("error %q, want 535", te)
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", bad.cfg), fmt.Sprintf("%+v", bad.cfg)} {
		if strings.Contains(s, pass) {
			t.Errorf("password in %q", s)
		}
	}
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{implicit: true, user: "u", pass: "p"})
	tr := b.client(t, func(c *Config) { c.TLS = TLSImplicit; c.Username = "u"; c.Password = "p" })
	if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
		t.Fatal(err)
	}
}

func TestTLSFailuresAreUnreachable(t *testing.T) {
	t.Parallel()
	t.Run("STARTTLS not offered", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		tr := b.client(t, func(c *Config) { c.TLS = TLSStartTLS })
		_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
		wantErr(t, err, transport.Unreachable, stageTLS)
		if _, msgs := b.relay.count(); msgs != 0 {
			t.Error("message sent in plaintext")
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{tls: true})
		tr := b.client(t, func(c *Config) { c.TLS = TLSStartTLS; c.TLSConfig = nil })
		_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
		wantErr(t, err, transport.Unreachable, stageTLS)
	})
	t.Run("implicit, untrusted certificate", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{implicit: true})
		tr := b.client(t, func(c *Config) { c.TLS = TLSImplicit; c.TLSConfig = nil })
		_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
		wantErr(t, err, transport.Unreachable, stageTLS)
	})
}

func TestHangupAfterDataIsPossibleDuplicate(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.relay.hangup = true
	tr := b.client(t, nil)
	_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	te := wantErr(t, err, transport.Temporary, stageData)
	if !strings.Contains(te.Text, "possible duplicate") {
		t.Errorf("error %q does not warn of a possible duplicate", te)
	}
}

// stalled accepts connections and never says a word.
func stalled(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func TestStalledRelayTimesOut(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{TLSNone, TLSStartTLS, TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			port := stalled(t)
			tr, err := New(Config{Host: "127.0.0.1", Port: port, TLS: mode, CommandTimeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			start := time.Now()
			_, err = tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
			te := wantErr(t, err, transport.Unreachable, map[string]string{TLSNone: stageConnect, TLSStartTLS: stageConnect, TLSImplicit: stageTLS}[mode])
			if !strings.Contains(te.Text, "timeout") && !strings.Contains(te.Text, "deadline") && !strings.Contains(te.Text, "closed") {
				t.Errorf("error %q does not look like a timeout", te)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v with a 100ms command timeout", d)
			}
		})
	}
}

func TestStalledDataReply(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	b.relay.stall = stall
	tr := b.client(t, func(c *Config) { c.DataTimeout = 200 * time.Millisecond })
	_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	te := wantErr(t, err, transport.Temporary, stageData)
	if !strings.Contains(te.Text, "possible duplicate") || !strings.Contains(te.Text, "timeout") {
		t.Errorf("error %q, want a timeout with a possible duplicate", te)
	}
}

func TestContextEndsSend(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	b.relay.stall = stall
	tr := b.client(t, func(c *Config) { c.DataTimeout = time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := tr.Send(ctx, env("b@example.net"), []byte(testBody))
	te := wantErr(t, err, transport.Temporary, stageData)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(te.Text, "possible duplicate") {
		t.Errorf("error %q, want the context's deadline and a possible duplicate", te)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v after a 200ms context", d)
	}
}

func TestConcurrentSendsStayWithinPool(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	tr := b.client(t, func(c *Config) { c.Pool = 4 })
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := tr.Send(context.Background(), env(fmt.Sprintf("r%d@example.net", i)), []byte(testBody))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	conns, msgs := b.relay.count()
	if conns > 4 || msgs != 20 {
		t.Errorf("relay saw %d connections and %d messages, want at most 4 and 20", conns, msgs)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  string
		want Config
	}{
		{"smtp://relay.example.com", Config{Host: "relay.example.com", Port: 587, TLS: TLSStartTLS}},
		{"smtp://user:p%40ss@relay.example.com:2525?pool=8&max_per_conn=50&helo=mx.example.com",
			Config{Host: "relay.example.com", Port: 2525, TLS: TLSStartTLS, Username: "user", Password: "p@ss",
				Pool: 8, MaxPerConn: 50, Helo: "mx.example.com"}},
		{"smtp://localhost?tls=none", Config{Host: "localhost", Port: 25, TLS: TLSNone}},
		{"smtp://localhost?tls=none&pipelining=off", Config{Host: "localhost", Port: 25, TLS: TLSNone, Lockstep: true}},
		{"smtp://localhost?tls=none&pipelining=on", Config{Host: "localhost", Port: 25, TLS: TLSNone}},
		{"smtps://u:p@smtp.example.com", Config{Host: "smtp.example.com", Port: 465, TLS: TLSImplicit, Username: "u", Password: "p"}},
		{"smtp://relay.example.com?ca=/etc/postie/relay-ca.pem", Config{Host: "relay.example.com", Port: 587, TLS: TLSStartTLS, CAFile: "/etc/postie/relay-ca.pem"}},
		{"smtp://relay.example.com?tls=insecure", Config{Host: "relay.example.com", Port: 587, TLS: TLSStartTLS, Insecure: true}},
		{"smtps://relay.example.com?tls=insecure", Config{Host: "relay.example.com", Port: 465, TLS: TLSImplicit, Insecure: true}},
		{"smtp://[::1]:25?tls=none&rate=12.5&daily=10000&idle_timeout=10s&command_timeout=5s&data_timeout=1m",
			Config{Host: "::1", Port: 25, TLS: TLSNone, Rate: 12.5, Daily: 10000, IdleTimeout: 10 * time.Second,
				CommandTimeout: 5 * time.Second, DataTimeout: time.Minute}},
	} {
		got, err := ParseURL(tc.raw)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.raw, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b *tls.Config) bool { return a == b })); diff != "" {
			t.Errorf("ParseURL(%q) (-want +got):\n%s", tc.raw, diff)
		}
	}
}

func TestParseURLErrorsHidePassword(t *testing.T) {
	t.Parallel()
	// Each password contains a character that makes the URL parser misread part of it as a
	// port, path, query or fragment; the secret fragments must not reach the error.
	for _, raw := range []string{
		"smtp://user:Secret99@relay.example.com:notaport",
		"smtp://user:Secret99@relay.example.com?pool=-1",
		"smtp://user:Secret99@relay.example.com?bogus=1",
		"smtp://user:Secret99@relay.example.com?tls=maybe",
		"smtp://user:Secret99@relay.example.com?pipelining=maybe",
		"smtps://user:Secret99@relay.example.com?tls=none",
		"ftp://user:Secret99@relay.example.com",
		"smtp://user:Secret99/x@relay.example.com",        // '/' in password: host "user", path "/x@…"
		"smtp://user:99999/Secret99@relay.example.com",    // '/' in password after digits: port 99999
		"smtp://user:123?Secret99=1@relay.example.com",    // '?' in password: query "Secret99=1@…"
		"smtp://user:123#Secret99@relay.example.com",      // '#' in password: fragment
		"smtp://user:Sec ret99@relay.example.com",         // space
		"smtp://user:Secret99%zz@relay.example.com",       // bad escape
		"smtp://:Secret99@relay.example.com",              // password without user
		"smtp://user:Secret99@relay.example.com/Secret99", // path
	} {
		_, err := ParseURL(raw)
		if err == nil {
			t.Errorf("ParseURL(%q): no error", raw)
			continue
		}
		for _, secret := range []string{"Secret99", "99999", "Sec ret", "123"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("ParseURL(%q) error %q contains %q", raw, err, secret)
			}
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{},
		{Host: "h", TLS: "sometimes"},
		{Host: "h", Port: 70000},
		{Host: "h", Password: "x"},
		{Host: "h", Pool: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%v): no error", cfg)
		}
	}
}

// BenchmarkSend measures the bare client against the loopback sink: ≈10 KB messages from 32
// goroutines over 8 pooled connections (the ceiling postie bench --mode delivery compares to).
func BenchmarkSend(b *testing.B) {
	s, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	_, port, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(port)
	tr, err := New(Config{Host: "127.0.0.1", Port: n, TLS: TLSNone, Helo: "bench.test", Pool: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	line := strings.Repeat("0123456789", 7) + "\r\n"
	raw := []byte("From: a@example.com\r\nTo: b@example.net\r\nMessage-ID: <x@example.com>\r\nSubject: hi\r\n\r\n" + strings.Repeat(line, 10<<10/len(line)))
	b.SetBytes(int64(len(raw)))
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tr.Send(context.Background(), env("b@example.net"), raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// recConn records each Write it gets and fails writes once failWrites is set.
type recConn struct {
	net.Conn
	writes     [][]byte
	failWrites error
}

func (c *recConn) Write(p []byte) (int, error) {
	if c.failWrites != nil {
		return 0, c.failWrites
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recConn) Read([]byte) (int, error) { return 0, io.EOF }

func TestTrackConnHoldsWritesUntilRead(t *testing.T) {
	t.Parallel()
	rc := &recConn{}
	tc := &trackConn{Conn: rc}
	for _, p := range []string{"DATA\r\n", "body part one ", "and two\r\n.\r\n"} {
		if n, err := tc.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if len(rc.writes) != 0 {
		t.Fatalf("%d writes reached the connection before a Read", len(rc.writes))
	}
	_, _ = tc.Read(make([]byte, 10))
	if len(rc.writes) != 1 || string(rc.writes[0]) != "DATA\r\nbody part one and two\r\n.\r\n" {
		t.Fatalf("connection got %q, want one write of everything", rc.writes)
	}
	big := bytes.Repeat([]byte("x"), flushAt+1)
	if _, err := tc.Write(big); err != nil || len(rc.writes) != 2 {
		t.Errorf("a write past %d bytes: %v, %d writes; want it sent at once", flushAt, err, len(rc.writes))
	}
	if tc.writes != 4 || tc.writeErr != nil {
		t.Errorf("writes %d, writeErr %v; want 4 and none", tc.writes, tc.writeErr)
	}

	rc.failWrites = net.ErrClosed
	if _, err := tc.Write([]byte("QUIT\r\n")); err != nil {
		t.Fatalf("held write failed early: %v", err)
	}
	if _, err := tc.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) || !errors.Is(tc.writeErr, net.ErrClosed) {
		t.Errorf("Read after a failed flush: %v, writeErr %v; want both net.ErrClosed", err, tc.writeErr)
	}
}

// TestDotStuffMatchesDotWriter checks that dotStuff followed by the dot writer's close puts the
// same bytes on the wire as writing the body through textproto's dot writer (RFC 5321 §4.5.2),
// for bodies made of lines with and without leading dots, CRLF and bare LF line ends.
func TestDotStuffMatchesDotWriter(t *testing.T) {
	t.Parallel()
	tokens := []string{"a", ".", "..", "x.y", "\r\n", "\n", "\r\n.", "\n.\r\n"}
	bodies := []string{"", ".", "\r\n", "\n", "a", "a\r", ".\r\n", "a\r\n.\r\n", "\r\n\r\n", testBody}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		var b strings.Builder
		for range rnd.IntN(12) {
			b.WriteString(tokens[rnd.IntN(len(tokens))])
		}
		bodies = append(bodies, b.String())
	}
	for _, body := range bodies {
		var want bytes.Buffer
		w := textproto.NewWriter(bufio.NewWriter(&want))
		dw := w.DotWriter()
		_, _ = dw.Write([]byte(body))
		_ = dw.Close()

		var got bytes.Buffer
		stuffed := dotStuff(nil, []byte(body))
		if stuffed == nil {
			stuffed = trimEnd([]byte(body))
		}
		got.Write(stuffed)
		w = textproto.NewWriter(bufio.NewWriter(&got))
		_ = w.DotWriter().Close() // what closing go-smtp's DATA writer adds to an untouched writer
		if got.String() != want.String() {
			t.Errorf("body %q: dotStuff gives %q, the dot writer %q", body, got.String(), want.String())
		}
	}
}

func BenchmarkDotStuff(b *testing.B) {
	line := strings.Repeat("0123456789", 7) + "\r\n"
	raw := []byte(strings.Repeat(line, 10<<10/len(line)))
	b.SetBytes(int64(len(raw)))
	var buf []byte
	for b.Loop() {
		buf = dotStuff(buf[:0], raw)
	}
}

// scripted is a relay that answers each line it reads with the next of replies, verbatim, then
// keeps the connection open until the test ends. It returns the port.
func scripted(t *testing.T, replies ...string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for i, reply := range replies {
			if i > 0 {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
			}
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestStartTLSByHand(t *testing.T) {
	t.Parallel()
	ehlo := "250-relay.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
	for _, tc := range []struct {
		name     string
		replies  []string
		greeting string // replayed to go-smtp after TLS; "" for an error
		stage    string
		class    transport.Class
	}{
		{"multi-line greeting is replayed", []string{"220-relay.test ESMTP\r\n220 welcome\r\n", ehlo, "220 2.0.0 go ahead\r\n"},
			"220-relay.test ESMTP\r\n220 welcome\r\n", "", 0},
		{"injected after 220 (RFC 3207 §6)", []string{"220 relay.test\r\n", ehlo, "220 go ahead\r\n250 injected\r\n"},
			"", stageTLS, transport.Unreachable},
		{"STARTTLS not offered", []string{"220 relay.test\r\n", "250-relay.test\r\n250 SIZE\r\n"}, "", stageTLS, transport.Unreachable},
		{"STARTTLS refused", []string{"220 relay.test\r\n", ehlo, "454 4.7.0 TLS not available\r\n"}, "", stageTLS, transport.Unreachable},
		{"greeting refused", []string{"554 5.3.2 go away\r\n"}, "", stageConnect, transport.Unreachable},
		{"EHLO refused", []string{"220 relay.test\r\n", "550 5.7.1 not you\r\n"}, "", stageHelo, transport.Unreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			port := scripted(t, tc.replies...)
			tr := testClient(t, port, nil, func(c *Config) { c.TLS = TLSStartTLS })
			nc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			greeting, te := tr.startTLS(&trackConn{Conn: nc})
			if tc.greeting != "" {
				if te != nil || string(greeting) != tc.greeting {
					t.Errorf("startTLS: %q, %v; want %q", greeting, te, tc.greeting)
				}
				return
			}
			wantErr(t, te, tc.class, tc.stage)
		})
	}
}
