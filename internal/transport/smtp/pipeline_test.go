package smtp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/transport"
)

// TestLockstep runs the transaction tests again with ?pipelining=off: one command at a time, as
// postie talks to a relay that does not offer PIPELINING. (testClient sets Config.Lockstep for
// every test under this one.)
func TestLockstep(t *testing.T) {
	t.Parallel()
	for name, test := range map[string]func(*testing.T){
		"SendDelivers":              TestSendDelivers,
		"ConnectionReuse":           TestConnectionReuse,
		"ResetAfterOpenTransaction": TestResetAfterOpenTransaction,
		"StalePooledConnection":     TestStalePooledConnectionRedials,
		"DeadRelayAtMail":           TestDeadRelayAtMailRedialsOnce,
		"TemporaryReply":            TestTemporaryReply,
		"RecipientRefusedOthers":    TestRecipientRefusedOthersSent,
		"AllRecipientsRefused":      TestAllRecipientsRefused,
		"ThrottleReplacesConn":      TestThrottleReplacesConnection,
		"StartTLSAndAuth":           TestStartTLSAndAuth,
		"HangupAfterData":           TestHangupAfterDataIsPossibleDuplicate,
		"StalledDataReply":          TestStalledDataReply,
	} {
		t.Run(name, test)
	}
}

// rawRelay is a hand-scripted relay on 127.0.0.1 that offers PIPELINING: it greets, answers
// EHLO, then runs script on each connection, which reads commands and writes replies itself.
// It returns the port and a count of connections accepted.
func rawRelay(t *testing.T, script func(t *testing.T, r *textproto.Reader, w io.Writer)) (int, *atomic.Int32) {
	t.Helper()
	s := startRaw(t, 0, script)
	return s.port, &s.conns
}

// rawServer is a running rawRelay.
type rawServer struct {
	port  int
	conns atomic.Int32  // accepted
	open  atomic.Int32  // not closed yet
	peak  atomic.Int32  // most open at once
	quits chan struct{} // a value for each QUIT read (dropped when nobody is waiting)
}

// startRaw starts a rawRelay that, after its 221 to a QUIT following script, waits linger before
// it closes the connection, counting it as open until then (as a relay limiting connections per
// client does).
func startRaw(t *testing.T, linger time.Duration, script func(t *testing.T, r *textproto.Reader, w io.Writer)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &rawServer{port: ln.Addr().(*net.TCPAddr).Port, quits: make(chan struct{}, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			n := s.open.Add(1)
			for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
			}
			go func() {
				defer c.Close()
				defer s.open.Add(-1)
				r := textproto.NewReader(bufio.NewReader(c))
				io.WriteString(c, "220 raw.test ESMTP\r\n")
				if line, _ := r.ReadLine(); !strings.HasPrefix(line, "EHLO ") {
					t.Errorf("first command %q, want EHLO", line)
					return
				}
				io.WriteString(c, "250-raw.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n")
				script(t, r, c)
				if line, _ := r.ReadLine(); line == "QUIT" {
					io.WriteString(c, "221 bye\r\n")
					select {
					case s.quits <- struct{}{}:
					default:
					}
					time.Sleep(linger)
				}
			}()
		}
	}()
	return s
}

// expectLines reads len(want) command lines before the script answers any of them, and checks
// each starts with its prefix: a client that waited for a reply between them would stall here.
func expectLines(t *testing.T, r *textproto.Reader, want ...string) bool {
	t.Helper()
	for _, w := range want {
		line, err := r.ReadLine()
		if err != nil {
			t.Errorf("reading %q: %v", w, err)
			return false
		}
		if !strings.HasPrefix(line, w) {
			t.Errorf("command %q, want %q…", line, w)
			return false
		}
	}
	return true
}

// acceptNext reads one pipelined message of one recipient, accepts its envelope and answers its
// body with final.
func acceptNext(t *testing.T, r *textproto.Reader, w io.Writer, final string) {
	t.Helper()
	if !expectLines(t, r, "MAIL FROM:", "RCPT TO:", "DATA") {
		return
	}
	io.WriteString(w, "250 Ok\r\n250 Ok\r\n354 go ahead\r\n")
	if _, err := r.ReadDotBytes(); err != nil {
		t.Error(err)
		return
	}
	io.WriteString(w, final)
}

// TestPipelinedCommandsGoTogether checks that MAIL, every RCPT and DATA reach the relay before it
// has answered any of them, with the same MAIL parameters go-smtp sends, and that the body and
// the relay's queue id come through.
func TestPipelinedCommandsGoTogether(t *testing.T) {
	t.Parallel()
	bodies := make(chan string, 1)
	port, conns := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		if !expectLines(t, r, "MAIL FROM:<bounce@example.com> BODY=8BITMIME SIZE=", "RCPT TO:<b@example.net>", "RCPT TO:<c@example.net>", "DATA") {
			return
		}
		io.WriteString(w, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
		body, err := r.ReadDotBytes()
		if err != nil {
			t.Error(err)
			return
		}
		bodies <- string(body)
		io.WriteString(w, "250 2.0.0 Ok: queued as PIPE1\r\n")
	})
	tr := testClient(t, port, nil, nil)
	res, err := tr.Send(context.Background(), env("b@example.net", "c@example.net"), []byte(testBody))
	if err != nil {
		t.Fatal(err)
	}
	if res.ProviderID != "PIPE1" || res.Response != "250 2.0.0 Ok: queued as PIPE1" {
		t.Errorf("result %+v", res)
	}
	if got := <-bodies; got != strings.ReplaceAll(testBody, "\r\n", "\n") {
		t.Errorf("body %q", got)
	}
	if conns.Load() != 1 {
		t.Errorf("%d connections", conns.Load())
	}
}

// TestPipelinedMailRefused checks that a refused MAIL fails the message at the mail stage with the
// relay's reply, and that the refusals of the RCPT and DATA pipelined behind it are read, so the
// same connection carries the next message.
func TestPipelinedMailRefused(t *testing.T) {
	t.Parallel()
	port, conns := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		if !expectLines(t, r, "MAIL FROM:", "RCPT TO:", "DATA") {
			return
		}
		io.WriteString(w, "550 5.7.1 Sender refused\r\n503 5.5.1 Error: need MAIL command\r\n503 5.5.1 Error: need RCPT command\r\n")
		acceptNext(t, r, w, "250 Ok: queued as SECOND\r\n")
	})
	tr := testClient(t, port, nil, nil)
	_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	te := wantErr(t, err, transport.Permanent, stageMail)
	if te.Code != 550 || te.Enhanced != "5.7.1" || te.Text != "Sender refused" {
		t.Errorf("error %+v", te)
	}
	res, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	if err != nil || res.ProviderID != "SECOND" {
		t.Fatalf("second message: %+v, %v", res, err)
	}
	if conns.Load() != 1 {
		t.Errorf("%d connections, want the first one reused", conns.Load())
	}
}

// TestPipelinedDataAcceptedWithoutRecipients checks the RFC 2920 §3.1 case of a relay that
// answers DATA with 354 although it refused every recipient: the client ends the empty message
// with a lone ".", reports the refusal, and keeps the connection in step.
func TestPipelinedDataAcceptedWithoutRecipients(t *testing.T) {
	t.Parallel()
	port, conns := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		if !expectLines(t, r, "MAIL FROM:", "RCPT TO:<gone@example.net>", "DATA") {
			return
		}
		io.WriteString(w, "250 Ok\r\n550 5.1.1 <gone@example.net>: Recipient address rejected\r\n354 go ahead\r\n")
		if !expectLines(t, r, ".") {
			return
		}
		io.WriteString(w, "554 5.5.1 Error: no valid recipients\r\n")
		acceptNext(t, r, w, "250 Ok: queued as NEXT\r\n")
	})
	tr := testClient(t, port, nil, nil)
	_, err := tr.Send(context.Background(), env("gone@example.net"), []byte(testBody))
	te := wantErr(t, err, transport.Permanent, stageRcpt)
	if te.Code != 550 || te.Enhanced != "5.1.1" || len(te.Rejected) != 1 {
		t.Errorf("error %+v", te)
	}
	res, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	if err != nil || res.ProviderID != "NEXT" {
		t.Fatalf("second message: %+v, %v", res, err)
	}
	if conns.Load() != 1 {
		t.Errorf("%d connections, want the first one reused", conns.Load())
	}
}

// TestLockstepWaitsForEachReply checks that ?pipelining=off sends one command at a time even to a
// relay that offers PIPELINING.
func TestLockstepWaitsForEachReply(t *testing.T) {
	t.Parallel()
	port, _ := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		for _, c := range []struct{ cmd, reply string }{
			{"MAIL FROM:", "250 Ok\r\n"}, {"RCPT TO:", "250 Ok\r\n"}, {"DATA", "354 go ahead\r\n"},
		} {
			if !expectLines(t, r, c.cmd) {
				return
			}
			// Nothing else may have arrived before this reply.
			if n := r.R.Buffered(); n != 0 {
				t.Errorf("%d bytes after %s before its reply: pipelined", n, c.cmd)
			}
			io.WriteString(w, c.reply)
		}
		if _, err := r.ReadDotBytes(); err != nil {
			t.Error(err)
			return
		}
		io.WriteString(w, "250 Ok: queued as STEP\r\n")
	})
	tr := testClient(t, port, nil, func(c *Config) { c.Lockstep = true })
	res, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	if err != nil || res.ProviderID != "STEP" {
		t.Fatalf("%+v, %v", res, err)
	}
}

// TestRepliesWithControlCharacters: replies carrying a NUL, other controls and invalid UTF-8 are
// parsed like any other and reported as the relay wrote them (the delivery engine cleans them
// before they reach the store: TestRelayTextIsCleaned).
func TestRepliesWithControlCharacters(t *testing.T) {
	t.Parallel()
	port, _ := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		if !expectLines(t, r, "MAIL FROM:", "RCPT TO:", "DATA") {
			return
		}
		io.WriteString(w, "550 5.1.1 no\x00such\x1buser\xff\r\n503 no MAIL\r\n503 no RCPT\r\n")
		acceptNext(t, r, w, "250 2.0.0 Ok: queued as A\x00B\r\n")
	})
	tr := testClient(t, port, nil, nil)
	_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	te := wantErr(t, err, transport.Permanent, stageMail)
	if te.Text != "no\x00such\x1buser\xff" || te.Enhanced != "5.1.1" {
		t.Errorf("refusal text %q (%s)", te.Text, te.Enhanced)
	}
	res, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	if err != nil {
		t.Fatal(err)
	}
	if res.Response != "250 2.0.0 Ok: queued as A\x00B" || res.ProviderID != "A\x00B" {
		t.Errorf("result %+v", res)
	}
}

// TestPipelinedMailRefusedThenDataAccepted: a relay that refused MAIL but still answers the
// pipelined DATA with 354 gets a lone "." (RFC 2920 §3.1), and the reply to it is read, so the
// connection carries the next message in step.
func TestPipelinedMailRefusedThenDataAccepted(t *testing.T) {
	t.Parallel()
	port, conns := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		if !expectLines(t, r, "MAIL FROM:", "RCPT TO:", "DATA") {
			return
		}
		io.WriteString(w, "550 5.7.1 Sender refused\r\n503 5.5.1 need MAIL\r\n354 go ahead\r\n")
		if !expectLines(t, r, ".") {
			return
		}
		io.WriteString(w, "554 5.5.1 no valid recipients\r\n")
		acceptNext(t, r, w, "250 Ok: queued as AFTER\r\n")
	})
	tr := testClient(t, port, nil, nil)
	_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	wantErr(t, err, transport.Permanent, stageMail)
	res, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	if err != nil || res.ProviderID != "AFTER" {
		t.Fatalf("second message: %+v, %v", res, err)
	}
	if conns.Load() != 1 {
		t.Errorf("%d connections, want the first one reused", conns.Load())
	}
}

// TestPipelinedRepliesHeldBack: a relay may hold its replies until it has read the whole group
// (RFC 2920 §3.2), so the first reply can take as long as all of the commands: the client waits a
// CommandTimeout for each command still unanswered, as it would one command at a time.
func TestPipelinedRepliesHeldBack(t *testing.T) {
	t.Parallel()
	const perCommand = 400 * time.Millisecond // under the CommandTimeout, 1.6 s for the four
	port, _ := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		if !expectLines(t, r, "MAIL FROM:", "RCPT TO:", "RCPT TO:", "DATA") {
			return
		}
		time.Sleep(4 * perCommand)
		io.WriteString(w, "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go ahead\r\n")
		if _, err := r.ReadDotBytes(); err != nil {
			t.Error(err)
			return
		}
		io.WriteString(w, "250 Ok: queued as SLOW\r\n")
	})
	tr := testClient(t, port, nil, func(c *Config) { c.CommandTimeout = time.Second })
	res, err := tr.Send(context.Background(), env("b@example.net", "c@example.net"), []byte(testBody))
	if err != nil || res.ProviderID != "SLOW" {
		t.Fatalf("%+v, %v; want sent although the replies came together after %v", res, err, 4*perCommand)
	}
}

// TestPipelinedThrottleAfterRefusals: a 421 to DATA after every recipient was refused ends the
// connection: the message fails on its refusals and the next one dials anew.
func TestPipelinedThrottleAfterRefusals(t *testing.T) {
	t.Parallel()
	var seen atomic.Int32
	port, conns := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		if seen.Add(1) > 1 {
			acceptNext(t, r, w, "250 Ok: queued as NEW\r\n")
			return
		}
		if !expectLines(t, r, "MAIL FROM:", "RCPT TO:", "DATA") {
			return
		}
		io.WriteString(w, "250 Ok\r\n550 5.1.1 unknown\r\n421 4.7.0 closing\r\n")
	})
	tr := testClient(t, port, nil, nil)
	_, err := tr.Send(context.Background(), env("gone@example.net"), []byte(testBody))
	wantErr(t, err, transport.Permanent, stageRcpt)
	res, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	if err != nil || res.ProviderID != "NEW" || conns.Load() != 2 {
		t.Fatalf("next message: %+v, %v over %d connections; want it sent over a new one", res, err, conns.Load())
	}
}

// TestPipelinedRepeatedRecipient: refusals are matched to recipients by position, so an address
// named twice, accepted once and refused once, does not make every recipient look refused.
func TestPipelinedRepeatedRecipient(t *testing.T) {
	t.Parallel()
	port, _ := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		if !expectLines(t, r, "MAIL FROM:", "RCPT TO:<a@example.net>", "RCPT TO:<a@example.net>", "RCPT TO:<b@example.net>", "DATA") {
			return
		}
		io.WriteString(w, "250 Ok\r\n250 Ok\r\n452 4.5.3 duplicate\r\n550 5.1.1 unknown\r\n354 go ahead\r\n")
		if _, err := r.ReadDotBytes(); err != nil {
			t.Error(err)
			return
		}
		io.WriteString(w, "250 Ok: queued as ONE\r\n")
	})
	tr := testClient(t, port, nil, nil)
	res, err := tr.Send(context.Background(), env("a@example.net", "a@example.net", "b@example.net"), []byte(testBody))
	if err != nil || res.ProviderID != "ONE" || len(res.Rejected) != 2 || res.Rejected[1].Recipient != "b@example.net" {
		t.Fatalf("%+v, %v; want sent to the first a, the second a and b refused", res, err)
	}
}

// TestPipelinedReplyLineTooLong: a reply line past 2,000 octets ends the connection at once
// instead of being buffered until the deadline.
func TestPipelinedReplyLineTooLong(t *testing.T) {
	t.Parallel()
	port, _ := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		if !expectLines(t, r, "MAIL FROM:", "RCPT TO:", "DATA") {
			return
		}
		io.WriteString(w, "250 "+strings.Repeat("x", 5000))
		time.Sleep(5 * time.Second) // never ends the line
	})
	tr := testClient(t, port, nil, func(c *Config) { c.CommandTimeout = 3 * time.Second })
	start := time.Now()
	_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	te := wantErr(t, err, transport.Unreachable, stageMail)
	if !strings.Contains(te.Text, "2000") || time.Since(start) > 2*time.Second {
		t.Errorf("error %q after %v; want the long line refused at once", te.Text, time.Since(start))
	}
}

// TestMultilineRefusalText: the enhanced code RFC 2034 repeats on each line of a multi-line reply
// is kept once, as go-smtp does one command at a time.
func TestMultilineRefusalText(t *testing.T) {
	t.Parallel()
	port, _ := rawRelay(t, func(t *testing.T, r *textproto.Reader, w io.Writer) {
		if !expectLines(t, r, "MAIL FROM:", "RCPT TO:", "DATA") {
			return
		}
		io.WriteString(w, "550-5.7.1 first line\r\n550 5.7.1 second line\r\n503 no MAIL\r\n503 no RCPT\r\n")
	})
	tr := testClient(t, port, nil, nil)
	_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
	te := wantErr(t, err, transport.Permanent, stageMail)
	if te.Text != "first line\nsecond line" || te.Enhanced != "5.7.1" {
		t.Errorf("refusal %q (%s), want %q (5.7.1)", te.Text, te.Enhanced, "first line\nsecond line")
	}
}

// TestReadResponseMatchesTextproto holds readResponse to net/textproto's ReadResponse on lines
// within the length limit.
func TestReadResponseMatchesTextproto(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"250 Ok\r\n", "250-first\r\n250 second\r\n", "550-5.1.1 a\r\n550 5.1.1 b\r\n",
		"250-a\r\n251 b\r\n250 c\r\n", "250-a\r\nnot a reply line\r\n250 end\r\n", "25\r\n", "250\r\n",
		"abc ok\r\n", "099 low\r\n", "354 go ahead\r\n", "421 bye\r\n", "250 no CR\n", "250 ok", "",
	} {
		for _, expect := range []int{0, 2, 25, 250, 354, 5} {
			wc, wm, werr := textproto.NewReader(bufio.NewReader(strings.NewReader(in))).ReadResponse(expect)
			gc, gm, gerr := readResponse(bufio.NewReaderSize(strings.NewReader(in), maxReplyLine+2), expect)
			var wpe, gpe textproto.ProtocolError
			sameErr := (werr == nil) == (gerr == nil) && errors.As(werr, &wpe) == errors.As(gerr, &gpe)
			if werr != nil && gerr != nil && !errors.As(werr, &wpe) {
				sameErr = werr.Error() == gerr.Error()
			}
			if !sameErr || werr == nil && (wc != gc || wm != gm) {
				t.Errorf("%q expect %d: textproto %d %q %v, readResponse %d %q %v", in, expect, wc, wm, werr, gc, gm, gerr)
			}
		}
	}
}

// TestPoolLimitAsTheRelayCounts: a connection retired after max_per_conn counts against ?pool=
// until the relay has closed it, so the relay never sees more than pool at once. Before, the
// next send dialed as soon as the 221 came.
func TestPoolLimitAsTheRelayCounts(t *testing.T) {
	t.Parallel()
	relay := startRaw(t, 50*time.Millisecond, acceptOne)
	tr := testClient(t, relay.port, nil, func(c *Config) { c.Pool = 1; c.MaxPerConn = 1 })
	for i := range 3 {
		if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if p := relay.peak.Load(); p != 1 {
		t.Errorf("the relay saw %d connections at once, more than pool=1", p)
	}
}

// acceptOne is a rawRelay script that accepts one message.
func acceptOne(t *testing.T, r *textproto.Reader, w io.Writer) {
	acceptNext(t, r, w, "250 Ok: queued as X\r\n")
}

// TestIdleExpiryHoldsASlot: a connection the idle timer is quitting counts against ?pool= too,
// so a send that comes meanwhile waits for the relay to close it before dialing.
func TestIdleExpiryHoldsASlot(t *testing.T) {
	t.Parallel()
	relay := startRaw(t, 50*time.Millisecond, acceptOne)
	tr := testClient(t, relay.port, nil, func(c *Config) { c.Pool = 1; c.IdleTimeout = 20 * time.Millisecond })
	if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	<-relay.quits // the idle timer is quitting the connection; the relay holds it 50 ms more
	if _, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	if p := relay.peak.Load(); p != 1 {
		t.Errorf("the relay saw %d connections at once, more than pool=1", p)
	}
}
