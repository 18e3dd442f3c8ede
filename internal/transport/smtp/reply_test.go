package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/transport"
)

// floodCap is where a flooding relay gives up when the client never closes the connection.
const floodCap = 4 << 20

// flood starts a relay that plays prelude (which may read commands and write replies) and then
// writes stream over and over until the client closes the connection, or until floodCap octets.
// Both ends keep small socket buffers, so what the relay managed to write is close to what the
// client read. It returns the port and a channel with the octets written in all.
func flood(t *testing.T, srvTLS *tls.Config, prelude func(r *textproto.Reader, w io.Writer) bool, stream string) (int, <-chan int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	written := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*net.TCPConn).SetWriteBuffer(16 << 10)
		var nc net.Conn = c
		if srvTLS != nil {
			nc = tls.Server(c, srvTLS)
		}
		defer nc.Close()
		if !prelude(textproto.NewReader(bufio.NewReader(nc)), nc) {
			written <- -1
			return
		}
		block := []byte(strings.Repeat(stream, max(1, 8<<10/len(stream))))
		total := 0
		for total < floodCap {
			n, err := nc.Write(block)
			total += n
			if err != nil {
				break
			}
		}
		written <- total
	}()
	return ln.Addr().(*net.TCPAddr).Port, written
}

// smallReadBuffer dials with a small receive buffer, so the kernel holds little of a flood.
func smallReadBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		_ = c.(*net.TCPConn).SetReadBuffer(16 << 10)
	}
	return c, err
}

// TestEndlessReplyIsCutOff: a relay (or anyone on the path before STARTTLS) that sends a reply
// without end, as endless continuation lines or as one line that never ends, fails the send
// with a protocol error of the connection once a reply passes the bounds of reply.go (RFC 5321
// §4.5.3.1.5 for the line), having read a bounded amount: before, the client buffered all of it
// until the command timeout. Failures before MAIL are Unreachable, so the message keeps its
// attempts; after the envelope is accepted the connection failure is Temporary.
func TestEndlessReplyIsCutOff(t *testing.T) {
	t.Parallel()
	serverTLS, clientTLS := sinktest.TLS(t)
	greet := func(ehlo string) func(r *textproto.Reader, w io.Writer) bool {
		return func(r *textproto.Reader, w io.Writer) bool {
			io.WriteString(w, "220 flood.test ESMTP\r\n")
			line, err := r.ReadLine()
			if err != nil || !strings.HasPrefix(line, "EHLO ") {
				return false
			}
			io.WriteString(w, ehlo)
			return true
		}
	}
	nothing := func(*textproto.Reader, io.Writer) bool { return true }
	for _, tc := range []struct {
		name    string
		mode    string
		tls     bool // the relay speaks TLS from the first byte
		lock    bool // one command at a time
		prelude func(r *textproto.Reader, w io.Writer) bool
		stream  string
		stage   string
		class   transport.Class
		bound   string // in the error
	}{
		{"endless 220- greeting", TLSNone, false, false, nothing,
			"220-flood.test still greeting you, and still, and still, and still\r\n", stageConnect, transport.Unreachable, "lines"},
		{"endless 250- EHLO continuation", TLSNone, false, false, greet("250-flood.test\r\n"),
			"250-X-EXTENSION-WITHOUT-END AND SOME PARAMETERS TO MAKE IT LONGER\r\n", stageHelo, transport.Unreachable, "lines"},
		{"EHLO reply line without end", TLSNone, false, false, greet("250-flood.test\r\n250-"),
			"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", stageHelo, transport.Unreachable, "line longer"},
		{"lines of another code keep the reply open", TLSNone, false, false, greet("250-flood.test\r\n"),
			"251 not the end of a 250 reply, as net/textproto reads it\r\n", stageHelo, transport.Unreachable, "lines"},
		{"long continuation lines", TLSNone, false, false, greet("250-flood.test\r\n"),
			"250-" + strings.Repeat("y", 1990) + "\r\n", stageHelo, transport.Unreachable, "octets"},
		{"endless 220- greeting before STARTTLS", TLSStartTLS, false, false, nothing,
			"220-flood.test still greeting you, and still, and still, and still\r\n", stageConnect, transport.Unreachable, "lines"},
		{"endless EHLO continuation before STARTTLS", TLSStartTLS, false, false, greet("250-flood.test\r\n"),
			"250-STARTTLS\r\n", stageHelo, transport.Unreachable, "lines"},
		{"EHLO line without end before STARTTLS", TLSStartTLS, false, false, greet("250-"),
			"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", stageHelo, transport.Unreachable, "line longer"},
		{"endless EHLO continuation over TLS", TLSImplicit, true, false, greet("250-flood.test\r\n"),
			"250-X-EXTENSION-WITHOUT-END\r\n", stageHelo, transport.Unreachable, "lines"},
		{"endless reply to a pipelined MAIL", TLSNone, false, false, func(r *textproto.Reader, w io.Writer) bool {
			if !greet("250-flood.test\r\n250 PIPELINING\r\n")(r, w) {
				return false
			}
			for range 3 { // MAIL, RCPT, DATA
				if _, err := r.ReadLine(); err != nil {
					return false
				}
			}
			return true
		}, "250-still accepting the sender\r\n", stageMail, transport.Unreachable, "lines"},
		{"endless reply to RCPT", TLSNone, false, true, func(r *textproto.Reader, w io.Writer) bool {
			if !greet("250 flood.test\r\n")(r, w) {
				return false
			}
			if _, err := r.ReadLine(); err != nil { // MAIL
				return false
			}
			io.WriteString(w, "250 ok\r\n")
			_, err := r.ReadLine() // RCPT
			return err == nil
		}, "250-still accepting the recipient\r\n", stageRcpt, transport.Temporary, "lines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var srv *tls.Config
			if tc.tls {
				srv = serverTLS
			}
			port, written := flood(t, srv, tc.prelude, tc.stream)
			tr := testClient(t, port, clientTLS.RootCAs, func(c *Config) {
				c.TLS, c.Lockstep, c.Dial = tc.mode, tc.lock, smallReadBuffer
				// Long enough that only the bounds can end the reply in time.
				c.CommandTimeout = 10 * time.Second
			})
			_, err := tr.Send(context.Background(), env("b@example.net"), []byte(testBody))
			te := wantErr(t, err, tc.class, tc.stage)
			var pe textproto.ProtocolError
			if !errors.As(te.Err, &pe) || !strings.Contains(te.Text, tc.bound) {
				t.Errorf("error %q (%T), want a protocol error about the reply's %s", te.Text, te.Err, tc.bound)
			}
			// What the relay wrote is what the client took in, plus the two small socket
			// buffers: a reply's bounds and little more, where an unbounded read takes floodCap.
			if n := <-written; n < 0 || n > 512<<10 {
				t.Errorf("the relay wrote %d octets before the client closed; want at most 512 KiB", n)
			}
		})
	}
}

// TestReplyLimitFollowsReplies: replies within the bounds pass unchanged, however many come
// back to back, and a reply ends where net/textproto's ReadResponse ends it.
func TestReplyLimitFollowsReplies(t *testing.T) {
	t.Parallel()
	long := "250-" + strings.Repeat("a", maxReplyLine-6) + "\r\n"
	many := strings.Repeat("250-ext\r\n", maxReplyLines-1) + "250 end\r\n"
	for _, tc := range []struct {
		name, in string
		fail     bool
	}{
		{"single lines", strings.Repeat("250 ok\r\n", 10000), false},
		{"a line of the longest length", long + "250 end\r\n", false},
		{"a line one octet longer", "250-" + strings.Repeat("a", maxReplyLine-5) + "\r\n250 end\r\n", true},
		{"the most lines, repeated", strings.Repeat(many, 20), false},
		{"one line too many", "250-first\r\n" + many, true},
		{"another code continues the reply", "250-a\r\n" + strings.Repeat("251 b\r\n", maxReplyLines), true},
		{"bad first lines end each reply", strings.Repeat("bad\r\n", 2*maxReplyLines), false},
		{"a bare LF ends a line", strings.Repeat("250-a\n", maxReplyLines-1) + "250 b\n", false},
		{"too many octets", strings.Repeat("250-"+strings.Repeat("c", 1000)+"\r\n", 70) + "250 end\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, server := net.Pipe()
			go func() {
				// In odd pieces, so the state crosses reads.
				for in := tc.in; in != ""; {
					n := min(len(in), 777)
					if _, err := io.WriteString(server, in[:n]); err != nil {
						break
					}
					in = in[n:]
				}
				server.Close()
			}()
			var got bytes.Buffer
			_, err := io.Copy(&got, &replyLimit{Conn: client})
			client.Close()
			var pe textproto.ProtocolError
			if tc.fail != errors.As(err, &pe) || !tc.fail && (err != nil || got.String() != tc.in) {
				t.Errorf("read %d of %d octets, error %v; want failure %v", got.Len(), len(tc.in), err, tc.fail)
			}
		})
	}
}
