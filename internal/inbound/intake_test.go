package inbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/store"
)

// intakeBundle is an Intake listening on a loopback port over a real SQLite store.
type intakeBundle struct {
	*procBundle
	in   *Intake
	addr string
}

func setupIntake(t *testing.T, maxSize int64) *intakeBundle {
	t.Helper()
	return setupIntakeOn(t, "sqlite", maxSize, nil)
}

// setupIntakeOn is setupIntake on a store of driver, offering STARTTLS with tc when set.
func setupIntakeOn(t *testing.T, driver string, maxSize int64, tc *tls.Config) *intakeBundle {
	t.Helper()
	return setupIntakeWith(t, driver, func(c *IntakeConfig) { c.MaxSize, c.TLS = maxSize, tc })
}

// setupIntakeWith is setupIntake on a store of driver, its configuration changed by set.
func setupIntakeWith(t *testing.T, driver string, set func(*IntakeConfig)) *intakeBundle {
	t.Helper()
	b := &intakeBundle{procBundle: setupProcessorOn(t, driver)}
	cfg := IntakeConfig{Hostname: "mx.postie.test", BounceDomains: []string{testBounceDomain, "bounce.other.example"},
		Processor: b.proc, Timeout: 5 * time.Minute}
	set(&cfg)
	b.in = NewIntake(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- b.in.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.in.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return b
}

// send delivers data from the null sender to rcpt as an MTA does and returns the SMTP error of
// RCPT or DATA (nil for 250).
func (b *intakeBundle) send(t *testing.T, rcpt string, data []byte) error {
	t.Helper()
	c, err := smtp.Dial(b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("mx.example.net"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// dsn is a Postfix-style delivery status notification (RFC 3464 in RFC 6522) about rcpt of the
// message whose Message-ID was msgID.
func dsn(reportID, rcpt, action, status, diag, msgID string) []byte {
	return crlf(fmt.Sprintf(`From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: bounces@shop.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <%s>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; %s
Action: %s
Status: %s
Remote-MTA: dns; mx2.example.net
Diagnostic-Code: smtp; %s

--b1
Content-Type: text/rfc822-headers

From: Shop <orders@shop.example>
To: %s
Subject: Your order
Message-ID: <%s>

--b1--
`, reportID, rcpt, action, status, diag, rcpt, msgID))
}

// arf is an RFC 5965 feedback report about the message whose Message-ID was msgID.
func arf(reportID, feedbackType, mailFrom, msgID string) []byte {
	return crlf(fmt.Sprintf(`From: <feedback@arf.mail.yahoo.com>
To: fbl@bounce.shop.example
Subject: FW: Your order
Message-ID: <%s>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="p"

--p
Content-Type: text/plain

This is an email abuse report.

--p
Content-Type: message/feedback-report

Feedback-Type: %s
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <%s>
Arrival-Date: Mon, 01 Jun 2026 10:00:00 +0000

--p
Content-Type: text/rfc822-headers

From: Shop <orders@shop.example>
Subject: Your order
Message-ID: <%s>

--p--
`, reportID, feedbackType, mailFrom, msgID))
}

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func smtpCode(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d %d.%d.%d", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	if err != nil {
		return err.Error()
	}
	return "250"
}

// TestIntake sends reports over SMTP, good ones and every kind of bad input, to one listener:
// each is applied, recorded only, or refused, nothing bad is suppressed, and the listener keeps
// serving.
func TestIntake(t *testing.T) {
	t.Parallel()
	onDrivers(t, func(t *testing.T, driver string) { testIntake(t, setupIntakeOn(t, driver, 1<<20, nil)) })
}

func testIntake(t *testing.T, b *intakeBundle) {

	hard := b.sent(t, store.StreamTransactional, "ann@example.com")
	soft := b.sent(t, store.StreamTransactional, "bob@example.com")
	compl := b.sent(t, store.StreamBroadcast, "cat@example.com")
	safe := b.sent(t, store.StreamTransactional, "dan@example.com")
	verpOf := func(m store.Message, rcpt string) string { return b.verp.Address(m.ID, rcpt, testBounceDomain) }
	forged := "b-" + strings.TrimPrefix(safe.ID, "msg_") + "aaaa-" + strings.Repeat("a", 16) + "@" + testBounceDomain

	for _, tc := range []struct {
		name string
		rcpt string
		data []byte
		code string // the reply to RCPT or DATA
		// outcome and kind of the entry recorded, "" when nothing is recorded
		outcome, kind string
	}{
		{"hard bounce", verpOf(hard, "ann@example.com"), dsn("r1@mx", "ann@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", hard.MessageID),
			"250", store.InboundApplied, "dsn"},
		{"the same DSN again", verpOf(hard, "ann@example.com"), dsn("r1@mx", "ann@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", hard.MessageID),
			"250", store.InboundDuplicate, "dsn"},
		{"mailbox full (soft)", verpOf(soft, "bob@example.com"), dsn("r2@mx", "bob@example.com", "failed", "5.2.2", "552 5.2.2 Mailbox full", soft.MessageID),
			"250", store.InboundApplied, "dsn"},
		{"complaint to the feedback address", "fbl@" + testBounceDomain, arf("r3@yahoo", "abuse", verpOf(compl, "cat@example.com"), compl.MessageID),
			"250", store.InboundApplied, "arf"},
		{"forged bounce address", forged, dsn("r4@mx", "dan@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", safe.MessageID),
			"250", store.InboundUnmatched, "forged"},
		{"unknown message id", "postmaster@" + testBounceDomain,
			dsn("r5@mx", "dan@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", "00000000000000000000000000.abcd2345@shop.example"),
			"250", store.InboundUnmatched, "dsn"},
		{"malformed DSN", verpOf(safe, "dan@example.com"),
			crlf("From: x@mx.example.net\nSubject: broken\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"zz\"\n\n--zz\nContent-Type: message/delivery-status\n\nReporting-MTA dns mx\n\n"),
			"250", "", ""},
		{"malformed ARF", "fbl@" + testBounceDomain,
			crlf("From: x@mx.example.net\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"p\"\n\n--p\nContent-Type: message/feedback-report\n\n\x00\x01garbage\n--p--\n"),
			"250", "", ""},
		{"not a message at all", verpOf(safe, "dan@example.com"), []byte("\x00\x01\x02 no header\r\n"), "250", "", ""},
		{"another domain", "dan@example.com", dsn("r6@mx", "dan@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", safe.MessageID),
			"550 5.7.1", "", ""},
		{"a sending domain is not a bounce domain", "bounces@shop.example", dsn("r7@mx", "dan@example.com", "failed", "5.1.1", "x", safe.MessageID),
			"550 5.7.1", "", ""},
	} {
		before := b.entries(t)
		err := b.send(t, tc.rcpt, tc.data)
		if got := smtpCode(err); !strings.HasPrefix(got, tc.code) {
			t.Errorf("%s: reply %s (%v), want %s", tc.name, got, err, tc.code)
			continue
		}
		after := b.entries(t)
		switch {
		case tc.outcome == "" && tc.code != "250":
			if len(after) != len(before) {
				t.Errorf("%s: refused, yet an entry was recorded: %+v", tc.name, after[0])
			}
		case len(after) != len(before)+1:
			t.Errorf("%s: %d entries recorded, want 1", tc.name, len(after)-len(before))
		case tc.outcome != "" && (after[0].Outcome != tc.outcome || after[0].Kind != tc.kind):
			t.Errorf("%s: entry %s/%s (%s), want %s/%s", tc.name, after[0].Kind, after[0].Outcome, after[0].Detail, tc.outcome, tc.kind)
		case tc.outcome == "" && after[0].Outcome == store.InboundApplied:
			t.Errorf("%s: applied: %+v", tc.name, after[0])
		}
	}

	for _, c := range []struct {
		m      store.Message
		rcpt   string
		state  store.RecipientStatus
		scopes string
	}{
		{hard, "ann@example.com", store.RecipientBounced, store.ScopeGlobal},
		{soft, "bob@example.com", store.RecipientBounced, ""},
		{compl, "cat@example.com", store.RecipientComplained, store.ScopeBroadcast},
		{safe, "dan@example.com", store.RecipientSent, ""},
	} {
		if got := b.state(t, c.m.ID, c.rcpt); got != c.state {
			t.Errorf("%s is %s, want %s", c.rcpt, got, c.state)
		}
		if got := strings.Join(b.suppressed(t, c.rcpt), ","); got != c.scopes {
			t.Errorf("%s suppressed in %q, want %q", c.rcpt, got, c.scopes)
		}
	}
}

func (b *intakeBundle) entries(t *testing.T) []store.InboundEntry {
	t.Helper()
	e, _, err := b.st.InboundList(context.Background(), store.InboundListParams{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// rawSession speaks SMTP over a plain TCP connection, so a test can send what no client library
// would (bare line ends).
type rawSession struct {
	t *testing.T
	c *textproto.Conn
}

func (b *intakeBundle) raw(t *testing.T) *rawSession {
	t.Helper()
	conn, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &rawSession{t: t, c: textproto.NewConn(conn)}
	t.Cleanup(func() { _ = s.c.Close() })
	s.expect(220)
	return s
}

// cmd sends text as is (no line end added) and reads one reply.
func (s *rawSession) cmd(text string, code int) string {
	s.t.Helper()
	if _, err := s.c.W.WriteString(text); err != nil {
		s.t.Fatal(err)
	}
	if err := s.c.W.Flush(); err != nil {
		s.t.Fatal(err)
	}
	return s.expect(code)
}

func (s *rawSession) expect(code int) string {
	s.t.Helper()
	got, msg, err := s.c.ReadResponse(0)
	if got != code {
		s.t.Fatalf("reply %d %s (%v), want %d", got, msg, err, code)
	}
	return msg
}

// TestIntakeSmuggling sends the SMTP smuggling sequences (email-rules §5.2): a bare LF or CR
// line end is refused, the message and what it tried to smuggle are not recorded, and the
// session goes on.
func TestIntakeSmuggling(t *testing.T) {
	t.Parallel()
	b := setupIntake(t, 1<<20)
	m := b.sent(t, store.StreamTransactional, "ann@example.com")
	verp := b.verp.Address(m.ID, "ann@example.com", testBounceDomain)
	smuggled := string(dsn("s1@mx", "ann@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", m.MessageID))
	for _, tc := range []struct{ name, end string }{
		{"LF.LF", "\n.\n"},
		{"CR.LF", "\r.\n"},
		{"CRLF.LF", "\r\n.\n"},
		{"LF.CRLF", "\n.\r\n"},
		{"bare LF in a header", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := b.raw(t)
			s.cmd("EHLO mx.example.net\r\n", 250)
			s.cmd("MAIL FROM:<>\r\n", 250)
			s.cmd("RCPT TO:<"+verp+">\r\n", 250)
			s.cmd("DATA\r\n", 354)
			data := "Subject: hello\r\nX-Bare: a\nb\r\n\r\nhi\r\n"
			if tc.end != "" {
				data = "Subject: hello\r\n\r\nhi" + tc.end + "MAIL FROM:<>\r\nRCPT TO:<" + verp + ">\r\nDATA\r\n" + smuggled
			}
			msg := s.cmd(data+"\r\n.\r\n", 550)
			if !strings.Contains(msg, "5.6.0") {
				t.Errorf("reply %q, want 5.6.0", msg)
			}
			// The session goes on.
			s.cmd("RSET\r\n", 250)
			s.cmd("NOOP\r\n", 250)
			s.cmd("QUIT\r\n", 221)
		})
	}
	t.Cleanup(func() {
		if got := b.entries(t); len(got) != 0 {
			t.Errorf("entries recorded: %+v", got)
		}
		if got := b.state(t, m.ID, "ann@example.com"); got != store.RecipientSent {
			t.Errorf("recipient is %s, want sent", got)
		}
	})
}

// TestIntakeStoreFailure: when the report cannot be recorded the sender is told to try again
// (451), not that it was taken.
func TestIntakeStoreFailure(t *testing.T) {
	t.Parallel()
	b := setupIntake(t, 1<<20)
	m := b.sent(t, store.StreamTransactional, "ann@example.com")
	if err := b.st.Close(); err != nil {
		t.Fatal(err)
	}
	err := b.send(t, b.verp.Address(m.ID, "ann@example.com", testBounceDomain),
		dsn("f1@mx", "ann@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", m.MessageID))
	if got := smtpCode(err); got != "451 4.3.0" {
		t.Errorf("reply %s, want 451 4.3.0", got)
	}
}

// TestIntakeTooLarge: a 30 MB report, beyond POSTIE_INBOUND_MAX_SIZE, is read to its end,
// dropped and refused, and the listener goes on.
func TestIntakeTooLarge(t *testing.T) {
	t.Parallel()
	b := setupIntake(t, 64<<10)
	m := b.sent(t, store.StreamTransactional, "ann@example.com")
	verp := b.verp.Address(m.ID, "ann@example.com", testBounceDomain)
	line := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n")
	big := append(dsn("big@mx", "ann@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", m.MessageID), bytes.Repeat(line, 30<<20/len(line))...)
	if got := smtpCode(b.send(t, verp, big)); got != "552 5.3.4" {
		t.Errorf("30 MB: reply %s, want 552 5.3.4", got)
	}
	if got := b.entries(t); len(got) != 0 {
		t.Errorf("entries recorded: %+v", got)
	}
	// The listener still takes reports.
	if got := smtpCode(b.send(t, verp, dsn("small@mx", "ann@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", m.MessageID))); got != "250" {
		t.Errorf("then a report: reply %s, want 250", got)
	}
	if got := b.suppressed(t, "ann@example.com"); len(got) != 1 {
		t.Errorf("after the small report: suppressed in %v", got)
	}
}

// TestIntakeSize: a SIZE above the limit is refused at MAIL, before any data.
func TestIntakeSize(t *testing.T) {
	t.Parallel()
	b := setupIntake(t, 64<<10)
	s := b.raw(t)
	s.cmd("EHLO mx.example.net\r\n", 250)
	if msg := s.cmd("MAIL FROM:<> SIZE=31457280\r\n", 552); !strings.Contains(msg, "5.3.4") {
		t.Errorf("reply %q, want 5.3.4", msg)
	}
	s.cmd("MAIL FROM:<> SIZE=1000\r\n", 250)
}

// TestIntakeSTARTTLS: with a certificate STARTTLS is offered, a report sent over TLS is applied,
// and a sender that does not use it is served all the same (MTAs send bounces in clear too).
func TestIntakeSTARTTLS(t *testing.T) {
	t.Parallel()
	cert, roots := sinktest.Cert(t)
	b := setupIntakeOn(t, "sqlite", 1<<20, &tls.Config{Certificates: []tls.Certificate{cert}})
	one := b.sent(t, store.StreamTransactional, "ann@example.com")
	two := b.sent(t, store.StreamTransactional, "bob@example.com")

	s := b.raw(t)
	ehlo := s.cmd("EHLO mx.example.net\r\n", 250)
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO %q: want STARTTLS offered and no AUTH (the intake takes no logins)", ehlo)
	}
	c, err := smtp.DialStartTLS(b.addr, &tls.Config{ServerName: "localhost", RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.TLSConnectionState(); !ok {
		t.Fatal("not over TLS")
	}
	if err := c.SendMail("", []string{b.verp.Address(one.ID, "ann@example.com", testBounceDomain)},
		bytes.NewReader(dsn("t1@mx", "ann@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", one.MessageID))); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	// In clear.
	if err := b.send(t, b.verp.Address(two.ID, "bob@example.com", testBounceDomain),
		dsn("t2@mx", "bob@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", two.MessageID)); err != nil {
		t.Fatalf("in clear: %v", err)
	}
	for _, m := range []store.Message{one, two} {
		if got := b.state(t, m.ID, m.Recipients[0]); got != store.RecipientBounced {
			t.Errorf("%s is %s, want bounced", m.Recipients[0], got)
		}
	}
}

// TestIntakeShutdown: a shutdown closes idle connections at once, lets a transaction begun
// finish (its report recorded and answered 250), then closes that connection too.
func TestIntakeShutdown(t *testing.T) {
	t.Parallel()
	b := setupIntake(t, 1<<20)
	m := b.sent(t, store.StreamTransactional, "ann@example.com")
	idle := b.raw(t)
	idle.cmd("EHLO mx.example.net\r\n", 250)
	busy := b.raw(t)
	busy.cmd("EHLO mx.example.net\r\n", 250)
	busy.cmd("MAIL FROM:<>\r\n", 250)
	busy.cmd("RCPT TO:<"+b.verp.Address(m.ID, "ann@example.com", testBounceDomain)+">\r\n", 250)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shut <- b.in.Shutdown(ctx)
	}()
	if code, msg, err := idle.c.ReadResponse(0); err == nil {
		t.Errorf("the idle connection got %d %s, want it closed", code, msg)
	}
	busy.cmd("DATA\r\n", 354)
	busy.cmd(string(dsn("s@mx", "ann@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", m.MessageID))+".\r\n", 250)
	if code, msg, err := busy.c.ReadResponse(0); err == nil {
		t.Errorf("after its transaction the connection got %d %s, want it closed", code, msg)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if c, err := net.Dial("tcp", b.addr); err == nil {
		c.Close()
		t.Error("the listener still accepts connections")
	}
	if got := b.state(t, m.ID, "ann@example.com"); got != store.RecipientBounced {
		t.Errorf("recipient is %s, want bounced (the report received during the shutdown)", got)
	}
}

// TestIntakeDeliveryInProgress: a DSN can arrive before postie has recorded the message sent
// (a relay that bounces at once). It is answered 451 4.3.0, so the reporting MTA sends it again,
// and applied once the message is recorded sent.
func TestIntakeDeliveryInProgress(t *testing.T) {
	t.Parallel()
	onDrivers(t, func(t *testing.T, driver string) {
		b := setupIntakeOn(t, driver, 1<<20, nil)
		m, finish := b.sending(t, store.StreamTransactional, "ann@example.com")
		verp := b.verp.Address(m.ID, "ann@example.com", testBounceDomain)
		report := dsn("busy@mx", "ann@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", m.MessageID)
		if got := smtpCode(b.send(t, verp, report)); got != "451 4.3.0" {
			t.Fatalf("while the message is being delivered: reply %s, want 451 4.3.0", got)
		}
		if got := b.suppressed(t, "ann@example.com"); len(got) != 0 {
			t.Errorf("suppressed in %v while the message was being delivered", got)
		}
		if e := b.entries(t); len(e) != 1 || e[0].Outcome != store.InboundIgnored || !strings.Contains(e[0].Detail, "delivery in progress") {
			t.Errorf("entries %+v, want one ignored: delivery in progress", e)
		}
		finish()
		if got := smtpCode(b.send(t, verp, report)); got != "250" {
			t.Fatalf("once sent: reply %s, want 250", got)
		}
		if got := b.state(t, m.ID, "ann@example.com"); got != store.RecipientBounced {
			t.Errorf("recipient is %s, want bounced", got)
		}
		if got := b.suppressed(t, "ann@example.com"); len(got) != 1 || got[0] != store.ScopeGlobal {
			t.Errorf("suppressed in %v, want global", got)
		}
	})
}
