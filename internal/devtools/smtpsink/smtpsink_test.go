package smtpsink_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/transport"
	"github.com/postie/postie/internal/transport/smtp"
)

const body = "From: a@example.com\r\nTo: b@example.net\r\nMessage-ID: <m1@example.com>\r\nSubject: hi\r\n\r\nline one\r\n.leading dot\r\nend\r\n"

// dial opens a go-smtp client to s and says EHLO.
func dial(t *testing.T, s *smtpsink.Sink) *gosmtp.Client {
	t.Helper()
	c, err := gosmtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// send runs one transaction on c and returns the first error with the stage it happened at.
func send(c *gosmtp.Client, from string, to []string, msg string) (string, *gosmtp.DataResponse, error) {
	if err := c.Mail(from, nil); err != nil {
		return smtpsink.StageMail, nil, err
	}
	var accepted int
	var rcptErr error
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			rcptErr = err
			continue
		}
		accepted++
	}
	if accepted == 0 {
		return smtpsink.StageRcpt, nil, rcptErr
	}
	w, err := c.Data()
	if err != nil {
		return smtpsink.StageData, nil, err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return smtpsink.StageData, nil, err
	}
	resp, err := w.CloseWithResponse()
	return smtpsink.StageData, resp, err
}

// wantReply checks that err is an SMTP reply with code and enhanced code.
func wantReply(t *testing.T, err error, code int, enh gosmtp.EnhancedCode, text string) {
	t.Helper()
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want an SMTP reply %d", err, err, code)
	}
	if se.Code != code || se.EnhancedCode != enh || (text != "" && se.Message != text) {
		t.Errorf("reply %d %v %q, want %d %v %q", se.Code, se.EnhancedCode, se.Message, code, enh, text)
	}
}

func TestKeep(t *testing.T) {
	t.Parallel()
	var seen []smtpsink.Message
	var mu sync.Mutex
	s := sinktest.Start(t, smtpsink.Options{Keep: true, OnMessage: func(m smtpsink.Message) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m)
	}})
	c := dial(t, s)
	for i := range 2 {
		if _, _, err := send(c, "bounce@example.com", []string{"b@example.net", "c@example.net"}, body); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if s.Count() != 2 || s.Conns() != 1 || s.PeakConns() != 1 {
		t.Errorf("Count %d, Conns %d, PeakConns %d, want 2, 1 and 1", s.Count(), s.Conns(), s.PeakConns())
	}
	want := smtpsink.Message{From: "bounce@example.com", To: []string{"b@example.net", "c@example.net"},
		Body: []byte(body), Size: len(body), MessageID: "m1@example.com", Conn: 1, Helo: "client.test"}
	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("Messages: %d, want 2", len(msgs))
	}
	for _, m := range msgs {
		if diff := cmp.Diff(want, m, cmpopts.IgnoreFields(smtpsink.Message{}, "At")); diff != "" {
			t.Errorf("message (-want +got):\n%s", diff)
		}
		if m.At.IsZero() {
			t.Error("message without At")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(msgs, seen); diff != "" {
		t.Errorf("OnMessage saw other messages than Messages (-Messages +OnMessage):\n%s", diff)
	}
}

func TestCountOnly(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	s := sinktest.Start(t, smtpsink.Options{OnMessage: func(m smtpsink.Message) { got.Store(m) }})
	c := dial(t, s)
	if _, _, err := send(c, "bounce@example.com", []string{"b@example.net"}, body); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 1 || s.Messages() != nil {
		t.Errorf("Count %d, Messages %v, want 1 and nil", s.Count(), s.Messages())
	}
	m := got.Load().(smtpsink.Message)
	if m.Body != nil || m.Size != len(body) || m.MessageID != "m1@example.com" || m.Conn != 1 {
		t.Errorf("OnMessage got %+v, want no body, size %d, Message-ID m1@example.com", m, len(body))
	}
}

func TestScript(t *testing.T) {
	t.Parallel()
	var steps []smtpsink.Step
	var mu sync.Mutex
	s := sinktest.Start(t, smtpsink.Options{Keep: true, Script: func(st smtpsink.Step) smtpsink.Action {
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, st)
		switch {
		case st.Stage == smtpsink.StageMail && st.From == "deferred@example.com":
			return smtpsink.Action{Code: 451, Enhanced: "4.3.0", Text: "try later"}
		case st.Stage == smtpsink.StageRcpt && st.To == "gone@example.net":
			return smtpsink.Action{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
		case st.Stage == smtpsink.StageRcpt && st.To == "bare@example.net":
			return smtpsink.Action{Code: 550, Enhanced: "-", Text: "user unknown"}
		case st.Stage == smtpsink.StageData && st.From == "spam@example.com":
			return smtpsink.Action{Code: 554}
		case st.Stage == smtpsink.StageData:
			return smtpsink.Action{Code: 250, Enhanced: "2.0.0", Text: "Ok: queued as Q1"}
		}
		return smtpsink.Action{}
	}})
	c := dial(t, s)

	stage, _, err := send(c, "deferred@example.com", []string{"b@example.net"}, body)
	if stage != smtpsink.StageMail {
		t.Fatalf("failed at %s: %v", stage, err)
	}
	wantReply(t, err, 451, gosmtp.EnhancedCode{4, 3, 0}, "try later")
	_ = c.Reset()

	stage, _, err = send(c, "bounce@example.com", []string{"bare@example.net"}, body)
	if stage != smtpsink.StageRcpt {
		t.Fatalf("failed at %s: %v", stage, err)
	}
	wantReply(t, err, 550, gosmtp.EnhancedCodeNotSet, "user unknown") // "550 user unknown" on the wire
	_ = c.Reset()

	stage, _, err = send(c, "spam@example.com", []string{"b@example.net"}, body)
	if stage != smtpsink.StageData {
		t.Fatalf("failed at %s: %v", stage, err)
	}
	wantReply(t, err, 554, gosmtp.EnhancedCode{5, 0, 0}, "")

	_, resp, err := send(c, "bounce@example.com", []string{"gone@example.net", "b@example.net"}, body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusText != "2.0.0 Ok: queued as Q1" {
		t.Errorf("DATA reply %q, want the scripted text", resp.StatusText)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || !cmp.Equal(msgs[0].To, []string{"b@example.net"}) {
		t.Errorf("accepted %+v, want one message to b@example.net", msgs)
	}
	mu.Lock()
	defer mu.Unlock()
	last := steps[len(steps)-1]
	if last.Stage != smtpsink.StageData || !cmp.Equal(last.Recipients, []string{"b@example.net"}) || string(last.Body) != body || last.Conn != 1 {
		t.Errorf("last step %+v, want DATA to the accepted recipient with the body", last)
	}
}

func TestHangup(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{smtpsink.StageMail, smtpsink.StageRcpt, smtpsink.StageData} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			s := sinktest.Start(t, smtpsink.Options{Script: func(st smtpsink.Step) smtpsink.Action {
				return smtpsink.Action{Hangup: st.Stage == stage && st.Conn == 1}
			}})
			c := dial(t, s)
			got, _, err := send(c, "bounce@example.com", []string{"b@example.net"}, body)
			var se *gosmtp.SMTPError
			if err == nil || errors.As(err, &se) || got != stage {
				t.Fatalf("error %v at %s, want a lost connection at %s", err, got, stage)
			}
			// The next connection is not scripted to hang up.
			if _, _, err := send(dial(t, s), "bounce@example.com", []string{"b@example.net"}, body); err != nil {
				t.Fatal(err)
			}
			if s.Count() != 1 || s.Conns() != 2 {
				t.Errorf("Count %d, Conns %d, want 1 and 2", s.Count(), s.Conns())
			}
			if s.PeakConns() != 1 {
				t.Errorf("PeakConns %d, want 1 (the sink closed the first before the second came)", s.PeakConns())
			}
		})
	}
}

func TestCloseEndsDelay(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	s := sinktest.Start(t, smtpsink.Options{Script: func(st smtpsink.Step) smtpsink.Action {
		if st.Stage == smtpsink.StageData {
			close(started)
			return smtpsink.Action{Delay: time.Hour}
		}
		return smtpsink.Action{}
	}})
	c := dial(t, s)
	errc := make(chan error, 1)
	go func() {
		_, _, err := send(c, "bounce@example.com", []string{"b@example.net"}, body)
		errc <- err
	}()
	<-started
	s.Close() // returns although a reply is delayed by an hour
	if err := <-errc; err == nil {
		t.Error("delayed DATA succeeded after Close")
	}
	if s.Count() != 0 {
		t.Errorf("Count %d after Close cut the delay, want 0", s.Count())
	}
}

func TestRestartOnSameAddress(t *testing.T) {
	t.Parallel()
	s1, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := client(t, s1.URL(), nil)
	if err := relay(tr); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	s2 := sinktest.Start(t, smtpsink.Options{Addr: s1.Addr()})
	if s2.Addr() != s1.Addr() {
		t.Fatalf("restarted on %s, want %s", s2.Addr(), s1.Addr())
	}
	// The pooled connection died with the first sink; the transport finds out and redials.
	if err := relay(tr); err != nil {
		t.Fatal(err)
	}
	if s1.Count() != 1 || s2.Count() != 1 {
		t.Errorf("counts %d and %d, want 1 and 1", s1.Count(), s2.Count())
	}
}

func TestWaitCount(t *testing.T) {
	t.Parallel()
	s := sinktest.Start(t, smtpsink.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.WaitCount(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitCount with nothing sent: %v, want the context's deadline", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.WaitCount(context.Background(), 3) }()
	c := dial(t, s)
	for range 3 {
		if _, _, err := send(c, "bounce@example.com", []string{"b@example.net"}, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.WaitCount(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
}

// client returns a transport to a sink's URL with short timeouts, adjusted by mod, closed when
// the test ends.
func client(t *testing.T, url string, mod func(*smtp.Config)) *smtp.Transport {
	t.Helper()
	cfg, err := smtp.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", url, err)
	}
	cfg.Helo = "client.test"
	cfg.CommandTimeout, cfg.DataTimeout = 5*time.Second, 5*time.Second
	if mod != nil {
		mod(&cfg)
	}
	tr, err := smtp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// relay sends body to b@example.net through tr.
func relay(tr *smtp.Transport) error {
	env := transport.Envelope{From: "bounce@example.com", To: []string{"b@example.net"}}
	_, err := tr.Send(context.Background(), env, []byte(body))
	return err
}

func TestTLSAndAuthThroughURL(t *testing.T) {
	t.Parallel()
	srv, cli := sinktest.TLS(t)
	for _, tc := range []struct {
		name string
		o    smtpsink.Options
		url  string
	}{
		{"plain", smtpsink.Options{Username: "u", Password: "p w"}, "smtp://u:p%20w@ADDR?tls=none"},
		{"starttls", smtpsink.Options{TLSConfig: srv, Username: "u", Password: "p"}, "smtp://u:p@ADDR?tls=starttls"},
		{"implicit", smtpsink.Options{TLSConfig: srv, Implicit: true}, "smtps://ADDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.o.Keep = true
			s := sinktest.Start(t, tc.o)
			if want := strings.Replace(tc.url, "ADDR", s.Addr(), 1); s.URL() != want {
				t.Errorf("URL %q, want %q", s.URL(), want)
			}
			if err := relay(client(t, s.URL(), func(c *smtp.Config) { c.TLSConfig = cli })); err != nil {
				t.Fatal(err)
			}
			if msgs := s.Messages(); len(msgs) != 1 || string(msgs[0].Body) != body {
				t.Errorf("sink kept %+v, want the message", msgs)
			}
		})
	}
}

func TestAuthRequired(t *testing.T) {
	t.Parallel()
	s := sinktest.Start(t, smtpsink.Options{Username: "u", Password: "p"})
	_, _, err := send(dial(t, s), "bounce@example.com", []string{"b@example.net"}, body)
	wantReply(t, err, 502, gosmtp.EnhancedCode{5, 7, 0}, "")

	err = relay(client(t, s.URL(), func(c *smtp.Config) { c.Password = "wrong" }))
	if te := transport.Classify(err); te.Code != 535 {
		t.Errorf("wrong password: %v, want 535", err)
	}
	if s.Count() != 0 {
		t.Errorf("Count %d, want 0", s.Count())
	}
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, msg, want string }{
		{"plain", "From: a@b\r\nMessage-ID: <abc@example.com>\r\n\r\nbody", "abc@example.com"},
		{"case and spacing", "message-id:\t <abc@example.com> \r\n\r\n", "abc@example.com"},
		{"folded (RFC 5322 §2.2.3)", "Subject: x\r\nMessage-Id:\r\n <abc@example.com>\r\nTo: c@d\r\n\r\n", "abc@example.com"},
		{"LF line ends", "Subject: x\nMessage-ID: <abc@example.com>\n\nbody", "abc@example.com"},
		{"no brackets", "Message-ID: abc@example.com\r\n\r\n", "abc@example.com"},
		{"comment after", "Message-ID: <abc@example.com> (postie)\r\n\r\n", "abc@example.com"},
		{"only in the body", "Subject: x\r\n\r\nMessage-ID: <abc@example.com>\r\n", ""},
		{"similar name", "Message-IDs: <abc@example.com>\r\nX-Message-ID: <x@y>\r\n\r\n", ""},
		{"none", "Subject: x\r\n\r\n", ""},
		{"empty", "", ""},
		{"headers only, no final line end", "Message-ID: <abc@example.com>", "abc@example.com"},
	} {
		if got := smtpsink.MessageID([]byte(tc.msg)); got != tc.want {
			t.Errorf("%s: MessageID(%q) = %q, want %q", tc.name, tc.msg, got, tc.want)
		}
	}
}

func BenchmarkMessageID(b *testing.B) {
	msg := []byte("Return-Path: <x@y>\r\nFrom: Shop <orders@shop.example>\r\nTo: customer@example.com\r\nSubject: Your order\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <0123456789abcdef0123456789abcdef@shop.example>\r\nMIME-Version: 1.0\r\n\r\n" + strings.Repeat("x", 10000))
	b.ReportAllocs()
	for b.Loop() {
		smtpsink.MessageID(msg)
	}
}

// rawConn is a client that writes exactly the bytes it is given and reads replies.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	text *textproto.Reader
}

func dialRaw(t *testing.T, s *smtpsink.Sink, tlsConfig *tls.Config) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawConn{t: t, conn: conn, text: textproto.NewReader(bufio.NewReader(conn))}
	c.reply() // greeting
	c.cmd("EHLO client.test")
	if tlsConfig != nil {
		if got := c.cmd("STARTTLS"); !strings.HasPrefix(got, "220") {
			t.Fatalf("STARTTLS: %s", got)
		}
		tc := tls.Client(conn, tlsConfig)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		c.conn, c.text = tc, textproto.NewReader(bufio.NewReader(tc))
		c.cmd("EHLO client.test")
	}
	return c
}

// reply reads one reply, "" when the connection has ended.
func (c *rawConn) reply() string {
	code, msg, err := c.text.ReadResponse(0)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d %s", code, msg)
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) cmd(line string) string {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.reply()
}

// TestDataAsGoSMTPReadsIt sends DATA written in pieces (a dot, a CR or the end-of-data line
// split across writes, dot-stuffed lines, bare CR and LF, lines at the length limit) to a
// plaintext sink, which reads messages itself, and through STARTTLS, where go-smtp's reader
// does: replies and bodies must be the same, and the connection must go on after each message.
func TestDataAsGoSMTPReadsIt(t *testing.T) {
	t.Parallel()
	srv, cli := sinktest.TLS(t)
	long := strings.Repeat("x", 1998)
	cases := [][]string{
		{"Message-ID: <a@b>\r\n\r\nbody\r\n.\r\n"},
		{"Message-ID: <a@b>\r\n\r\n.", ".leading dot\r", "\n.", "\r", "\n"},
		{"Subject: dots\r\n\r\n..\r\n...\r\n", "..", "x\r\n", ".\r\n"},
		{"a\r\n", "b\r", "\n", ".", "\r\n"},
		{"bare\n.\nlf and\r.\rcr\r\n.\r\n"},
		{".\rquirk\r\n.\r\n"},
		{long + "\r\n", long[:1000], long[1000:] + "\r", "\n.\r\n"}, // 1999 octets before LF: taken
		// 2000: a line too long, the connection closes. One write, so that the sink has read
		// everything when it closes (unread data would reset the connection, replies lost).
		{"a\r\n" + long + "y\r\n.\r\n"},
	}
	for i, pieces := range cases {
		var got [2][]string
		var bodies [2][]smtpsink.Message
		for k, o := range []smtpsink.Options{{Keep: true}, {Keep: true, TLSConfig: srv}} {
			s := sinktest.Start(t, o)
			var clientTLS *tls.Config
			if o.TLSConfig != nil {
				clientTLS = cli.Clone()
				clientTLS.ServerName = "127.0.0.1"
			}
			c := dialRaw(t, s, clientTLS)
			for range 2 { // the connection goes on after a message
				r := []string{c.cmd("MAIL FROM:<a@example.com>"), c.cmd("RCPT TO:<b@example.net>"), c.cmd("DATA")}
				for _, p := range pieces {
					c.write(p)
				}
				r = append(r, c.reply())
				if !strings.HasPrefix(r[3], "250") {
					r = append(r, c.reply()) // the reason the connection closes
					got[k] = append(got[k], r...)
					break
				}
				got[k] = append(got[k], r...)
			}
			bodies[k] = s.Messages()
		}
		if diff := cmp.Diff(got[1], got[0]); diff != "" {
			t.Errorf("case %d: replies (-go-smtp +sink):\n%s", i, diff)
		}
		if diff := cmp.Diff(bodies[1], bodies[0], cmpopts.IgnoreFields(smtpsink.Message{}, "At")); diff != "" {
			t.Errorf("case %d: messages (-go-smtp +sink):\n%s", i, diff)
		}
	}
}

// BenchmarkData sends 10 KB messages to a plaintext sink over one connection, each transaction
// in one write, so that the sink's reading is most of what is measured.
func BenchmarkData(b *testing.B) {
	s := sinktest.Start(b, smtpsink.Options{})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	text := textproto.NewReader(bufio.NewReader(conn))
	expect := func(code int) {
		if _, _, err := text.ReadResponse(code); err != nil {
			b.Fatal(err)
		}
	}
	expect(220)
	fmt.Fprintf(conn, "EHLO client.test\r\n")
	expect(250)
	var msg strings.Builder
	msg.WriteString("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
	msg.WriteString("Message-ID: <m@example.com>\r\nSubject: bench\r\n\r\n")
	for msg.Len() < 10300 {
		msg.WriteString("shipping order parcel tracking delivery customer thanks update account=\r\n")
		msg.WriteString("..a dot-stuffed line\r\n")
	}
	msg.WriteString(".\r\n")
	tx := []byte(msg.String())
	b.SetBytes(int64(len(tx)))
	for b.Loop() {
		if _, err := conn.Write(tx); err != nil {
			b.Fatal(err)
		}
		expect(250)
		expect(250)
		expect(354)
		expect(250)
	}
}

// TestPipelinedRepliesTogether checks that the replies to commands a client pipelined (RFC 2920)
// leave in one write, once the sink has read all it was sent, and that a client sending one
// command at a time gets each reply at once.
func TestPipelinedRepliesTogether(t *testing.T) {
	t.Parallel()
	c := dialRaw(t, sinktest.Start(t, smtpsink.Options{}), nil)
	c.write("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n")
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.conn.Read(buf) // one read: the four replies came in one write
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(buf[:n]), "\r\n"); got != 4 || !strings.HasPrefix(string(buf[:n]), "250 ") ||
		!strings.Contains(string(buf[:n]), "\r\n354 ") {
		t.Fatalf("first read after the pipelined commands: %q, want the 250, 250, 250 and 354 together", buf[:n])
	}
	c.write("Subject: hi\r\n\r\nbody\r\n.\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("reply to the message: %q", got)
	}
	if got := c.cmd("MAIL FROM:<a@example.com>"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("MAIL alone: %q", got)
	}
	if got := c.cmd("RSET"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("RSET alone: %q", got)
	}
}

// TestClientInputIsBounded: what a client sends is held only within bounds, over plaintext
// (where the sink reads DATA itself) and through STARTTLS (go-smtp's reader) alike. A message of
// MaxMessageBytes or more is read to its end, dropped and refused with 552 5.3.4, and the
// connection goes on; RCPTs past 1,000 get 452 4.5.3. Before, both grew without end.
func TestClientInputIsBounded(t *testing.T) {
	t.Parallel()
	srv, cli := sinktest.TLS(t)
	const limit = 64 << 10
	line := strings.Repeat("x", 98) + "\r\n"
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			t.Parallel()
			o := smtpsink.Options{Keep: true, MaxMessageBytes: limit}
			var clientTLS *tls.Config
			if useTLS {
				o.TLSConfig = srv
				clientTLS = cli.Clone()
				clientTLS.ServerName = "127.0.0.1"
			}
			s := sinktest.Start(t, o)
			c := dialRaw(t, s, clientTLS)
			send := func(body string) string {
				for _, cmd := range []string{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.net>", "DATA"} {
					if got := c.cmd(cmd); got == "" || got[0] != '2' && got[0] != '3' {
						t.Fatalf("%s: %q", cmd, got)
					}
				}
				c.write(body + ".\r\n")
				return c.reply()
			}
			fits := strings.Repeat(line, limit/len(line)) // limit-64 octets
			if got := send(strings.Repeat(line, 20*limit/len(line))); !strings.HasPrefix(got, "552 ") || !strings.Contains(got, "5.3.4") {
				t.Errorf("message of 20 × the limit: %q, want 552 5.3.4", got)
			}
			if got := send(fits); !strings.HasPrefix(got, "250 ") {
				t.Errorf("message within the limit after a refused one: %q, want 250", got)
			}
			if msgs := s.Messages(); len(msgs) != 1 || msgs[0].Size != len(fits) {
				t.Errorf("kept %d messages, want only the one within the limit", len(msgs))
			}

			if got := c.cmd("MAIL FROM:<a@example.com>"); !strings.HasPrefix(got, "250 ") {
				t.Fatalf("MAIL: %q", got)
			}
			var rcpts strings.Builder
			for i := range 1001 {
				fmt.Fprintf(&rcpts, "RCPT TO:<r%d@example.net>\r\n", i)
			}
			c.write(rcpts.String())
			for i := range 1001 {
				got := c.reply()
				if want := "250 "; i == 1000 {
					if !strings.HasPrefix(got, "452 ") || !strings.Contains(got, "4.5.3") {
						t.Errorf("RCPT 1001: %q, want 452 4.5.3", got)
					}
				} else if !strings.HasPrefix(got, want) {
					t.Fatalf("RCPT %d: %q, want 250", i+1, got)
				}
			}
		})
	}
}
