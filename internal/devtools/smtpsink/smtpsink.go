// Package smtpsink is a loopback SMTP server that receives what postie sends: the sink of the
// delivery tests and of `postie bench`. It is built on github.com/emersion/go-smtp's server.
//
// A Sink accepts every message unless Options.Script says otherwise. Script is asked at each
// MAIL, RCPT and DATA and can answer with any reply code, pause, or hang up, so a test can play a
// relay that answers 451, refuses one recipient with 550 5.1.1, stalls after DATA or drops the
// connection. By default the sink only counts: each body is read into a buffer reused by its
// connection and dropped, so a benchmark measures the sender, not the sink. Options.Keep keeps
// every accepted message for inspection. On plaintext connections the sink reads DATA itself,
// in blocks rather than go-smtp's byte at a time, with the same results (data.go).
//
// Counting happens when the sink has decided to answer 250 to the final ".", just before the
// reply is written: Count, WaitCount and Options.OnMessage see a message a moment before the
// sender has its answer.
//
// Everything on a Sink is safe for concurrent use. Script and OnMessage run on the connection's
// goroutine, one call at a time per connection but concurrently across connections.
package smtpsink

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Stages of a Step.
const (
	StageMail = "mail"
	StageRcpt = "rcpt"
	StageData = "data"
)

// Options configures a Sink. The zero value is a plaintext sink on a free loopback port that
// accepts everything and keeps nothing.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0". A fixed address lets a test stop a sink and
	// start another on the same port.
	Addr string
	// TLSConfig, when set, is offered through STARTTLS, or spoken from the first byte when
	// Implicit is set.
	TLSConfig *tls.Config
	Implicit  bool
	// Username and Password, when set, make AUTH PLAIN required before MAIL. AUTH is offered in
	// plaintext only when TLSConfig is nil.
	Username, Password string
	// Keep every accepted message, body included, for Messages. Without it the sink counts
	// and drops bodies.
	Keep bool
	// Script decides the reply to each MAIL, RCPT and DATA; nil accepts everything. Tests count
	// attempts themselves in closures.
	Script func(Step) Action
	// OnMessage is called for each accepted message after its 250 is decided and before it is
	// written (e.g. to measure latency).
	OnMessage func(Message)
	// MaxMessageBytes bounds what the sink holds of one message: a larger one is read to its end,
	// dropped and refused with 552 5.3.4, as go-smtp's Server.MaxMessageBytes does (it is not
	// advertised with SIZE). Default 64 MiB, above postie's largest message.
	MaxMessageBytes int
}

// Bounds on what a client may make the sink hold.
const (
	defaultMaxMessage = 64 << 20
	// maxRecipients is the most RCPTs accepted in one transaction (RFC 5321 §4.5.3.1.8 asks for
	// at least 100); the others get 452 4.5.3, as from go-smtp's Server.MaxRecipients.
	maxRecipients = 1000
)

// Step is a command Script is asked about.
type Step struct {
	Stage      string   // StageMail, StageRcpt or StageData
	From       string   // the MAIL FROM address
	To         string   // StageRcpt: the RCPT TO address
	Recipients []string // StageData: the recipients accepted so far
	Body       []byte   // StageData: the message as received, dot-unstuffed, CRLF line ends
	Conn       int      // the connection's number, counted from 1 in order of arrival
}

// Action is Script's answer. The zero Action accepts.
type Action struct {
	// Code is the reply code; 0 accepts with the default reply. A 2xx code also accepts; its
	// Text replaces the default reply text at DATA only (go-smtp writes its own reply to an
	// accepted MAIL or RCPT).
	Code int
	// Enhanced is the RFC 3463 code, e.g. "5.1.1"; "" lets go-smtp write class.0.0, "-" writes
	// none.
	Enhanced string
	Text     string
	// Hangup closes the connection instead of replying.
	Hangup bool
	// Delay waits this long before replying (or hanging up); Close cuts it short.
	Delay time.Duration
}

// Message is an accepted message.
type Message struct {
	From      string
	To        []string
	Body      []byte // nil unless Options.Keep
	Size      int    // bytes of the body as received (dot-unstuffed)
	MessageID string // the Message-ID header without angle brackets, "" when there is none
	Conn      int    // the connection's number, counted from 1
	Helo      string // the name the client gave in EHLO/HELO
	At        time.Time
}

// Sink is a running SMTP server. Close stops it.
type Sink struct {
	opts   Options
	srv    *gosmtp.Server
	ln     *listener
	addr   string
	done   chan struct{} // closed by Close: ends Delays
	served chan struct{}

	mu      sync.Mutex
	count   int
	msgs    []Message
	waiters []waiter

	closeOnce sync.Once
}

type waiter struct {
	n  int
	ch chan struct{}
}

// Start listens on o.Addr and serves until Close. It fails only when it cannot listen.
func Start(o Options) (*Sink, error) {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtpsink: %w", err)
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = defaultMaxMessage
	}
	s := &Sink{
		opts:   o,
		ln:     &listener{Listener: nl, conns: map[*tcpConn]struct{}{}, tls: o.TLSConfig != nil && o.Implicit},
		addr:   nl.Addr().String(),
		done:   make(chan struct{}),
		served: make(chan struct{}),
	}
	s.srv = gosmtp.NewServer(gosmtp.BackendFunc(s.newSession))
	s.srv.Domain = "sink.test"
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.AllowInsecureAuth = o.TLSConfig == nil
	s.srv.EnableSMTPUTF8 = true
	var l net.Listener = s.ln
	switch {
	case o.TLSConfig != nil && o.Implicit:
		l = tls.NewListener(l, o.TLSConfig)
	case o.TLSConfig != nil:
		s.srv.TLSConfig = o.TLSConfig
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(l)
	}()
	return s, nil
}

// Addr is the host:port the sink listens on.
func (s *Sink) Addr() string { return s.addr }

// URL is a relay URL for POSTIE_SMTP_URL and smtp.ParseURL: smtp://127.0.0.1:PORT?tls=none
// without TLS, ?tls=starttls with STARTTLS, smtps://… with implicit TLS, credentials included.
func (s *Sink) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr}
	switch {
	case s.opts.TLSConfig == nil:
		u.RawQuery = "tls=none"
	case s.opts.Implicit:
		u.Scheme = "smtps"
	default:
		u.RawQuery = "tls=starttls"
	}
	if s.opts.Username != "" {
		u.User = url.UserPassword(s.opts.Username, s.opts.Password)
	}
	return u.String()
}

// Close stops listening, drops every connection, cuts Delays short and waits (up to 10s, for
// a Script or OnMessage that does not return) for the connections' goroutines to end, so the
// address is free again when it returns. Close is idempotent and returns nil.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.ln.closeAll()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx)
		<-s.served
	})
	return nil
}

// Count is the number of messages accepted so far.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Conns is the number of connections accepted so far.
func (s *Sink) Conns() int { return int(s.ln.n.Load()) }

// PeakConns is the largest number of connections that were open at once. A connection counts
// until the sink has closed it, as a relay limiting connections per client counts them, so a
// client that opens the next connection as soon as the 221 to its QUIT came may be seen with one
// more than it ever had open (transport/smtp waits for the sink to close first).
func (s *Sink) PeakConns() int {
	s.ln.mu.Lock()
	defer s.ln.mu.Unlock()
	return s.ln.peak
}

// Messages returns a copy of the accepted messages in order of acceptance; nil unless
// Options.Keep.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitCount waits until at least n messages were accepted and returns nil, or returns ctx's error
// when ctx ends first.
func (s *Sink) WaitCount(ctx context.Context, n int) error {
	s.mu.Lock()
	if s.count >= n {
		s.mu.Unlock()
		return nil
	}
	w := waiter{n: n, ch: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, o := range s.waiters {
			if o.ch == w.ch {
				s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
				break
			}
		}
		if s.count >= n {
			return nil
		}
		return ctx.Err()
	}
}

// accepted records m and wakes the waiters it satisfies.
func (s *Sink) accepted(m Message) {
	s.mu.Lock()
	s.count++
	if s.opts.Keep {
		s.msgs = append(s.msgs, m)
	}
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if w.n <= s.count {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	clear(s.waiters[len(kept):])
	s.waiters = kept
	s.mu.Unlock()
	if s.opts.OnMessage != nil {
		s.opts.OnMessage(m)
	}
}

func (s *Sink) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	nc := c.Conn()
	tlsConn, isTLS := nc.(*tls.Conn)
	if isTLS {
		nc = tlsConn.NetConn()
	}
	ss := &session{sink: s, c: c}
	if tc, ok := nc.(*tcpConn); ok {
		ss.conn = tc.n
		tc.lines = !isTLS // after STARTTLS (a session starts at each EHLO)
		if !isTLS {
			ss.tc = tc // the sink reads the messages itself (data.go)
		}
	}
	return ss, nil
}

// session is one SMTP session; go-smtp calls it from the connection's goroutine only.
type session struct {
	sink   *Sink
	c      *gosmtp.Conn
	conn   int
	authed bool
	from   string
	to     []string
	tc     *tcpConn // set when the sink reads DATA itself (readData), nil over TLS
	body   []byte   // the body being read, reused across the connection's messages
}

var errHangup = errors.New("smtpsink: hung up")

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// AuthMechanisms offers PLAIN when the sink has credentials, nothing otherwise.
func (ss *session) AuthMechanisms() []string {
	if ss.sink.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	o := ss.sink.opts
	if o.Username == "" || mech != sasl.Plain {
		return nil, gosmtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != o.Username || pass != o.Password {
			return gosmtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if ss.sink.opts.Username != "" && !ss.authed {
		return gosmtp.ErrAuthRequired
	}
	if _, err := ss.ask(Step{Stage: StageMail, From: from, Conn: ss.conn}); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if len(ss.to) >= maxRecipients {
		return &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 5, 3},
			Message: fmt.Sprintf("Maximum limit of %d recipients reached", maxRecipients)}
	}
	if _, err := ss.ask(Step{Stage: StageRcpt, From: ss.from, To: to, Conn: ss.conn}); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	body, err := ss.readBody(r)
	if err != nil {
		return err
	}
	o := ss.sink.opts
	if o.Keep || o.Script != nil {
		body = bytes.Clone(body) // the caller may keep it; the buffer is reused
	}
	reply, err := ss.ask(Step{Stage: StageData, From: ss.from, Recipients: ss.to, Body: body, Conn: ss.conn})
	if err != nil {
		return err
	}
	m := Message{From: ss.from, To: ss.to, Size: len(body), MessageID: MessageID(body), Conn: ss.conn, Helo: ss.c.Hostname(), At: time.Now()}
	if o.Keep {
		m.Body = body
	}
	ss.to = nil // m owns the slice now
	ss.sink.accepted(m)
	if reply != nil {
		return reply // go-smtp writes an *SMTPError's code as is, 250 included
	}
	return nil
}

// readBody reads the message into ss.body: from the connection's buffer on a plaintext
// connection (readData), through go-smtp's reader r otherwise. A message of
// Options.MaxMessageBytes or more is read to its end and dropped, and fails with
// gosmtp.ErrDataTooLarge (the bound go-smtp's Server.MaxMessageBytes sets).
func (ss *session) readBody(r io.Reader) ([]byte, error) {
	var err error
	limit := ss.sink.opts.MaxMessageBytes
	if ss.tc != nil {
		ss.body, err = ss.tc.readData(ss.body[:0], ss.sink.srv.MaxLineLength, limit)
		return ss.body, err
	}
	b := bytes.NewBuffer(ss.body[:0])
	n, err := b.ReadFrom(io.LimitReader(r, int64(limit)))
	ss.body = b.Bytes()
	if err == nil && n == int64(limit) {
		ss.body = ss.body[:0]
		return ss.body, gosmtp.ErrDataTooLarge // go-smtp reads the rest and drops it
	}
	return ss.body, err
}

// ask runs the Script for st and returns the error go-smtp should answer with (nil: accept),
// or a custom 2xx reply.
func (ss *session) ask(st Step) (ok *gosmtp.SMTPError, err error) {
	if ss.sink.opts.Script == nil {
		return nil, nil
	}
	a := ss.sink.opts.Script(st)
	if a.Delay > 0 {
		t := time.NewTimer(a.Delay)
		select {
		case <-t.C:
		case <-ss.sink.done:
			t.Stop()
		}
	}
	select {
	case <-ss.sink.done:
		a.Hangup = true // closed while waiting: accept nothing more
	default:
	}
	if a.Hangup {
		ss.c.Close()
		return nil, errHangup
	}
	if a.Code == 0 {
		return nil, nil
	}
	reply := &gosmtp.SMTPError{Code: a.Code, EnhancedCode: enhanced(a.Enhanced), Message: a.Text}
	if a.Code/100 == 2 {
		if reply.Message == "" {
			return nil, nil
		}
		return reply, nil
	}
	if reply.Message == "" {
		reply.Message = "refused by the sink's script"
	}
	return nil, reply
}

// enhanced parses "5.1.1"; "" (or anything unparseable) is go-smtp's "not set", "-" is none.
func enhanced(s string) gosmtp.EnhancedCode {
	if s == "-" {
		return gosmtp.NoEnhancedCode
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return gosmtp.EnhancedCodeNotSet
	}
	var ec gosmtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return gosmtp.EnhancedCodeNotSet
		}
		ec[i] = n
	}
	return ec
}

// MessageID returns the value of the Message-ID header field of msg without angle brackets and
// surrounding white space, unfolded, or "" when the header section has none. It reads only the
// header section and allocates only the result.
func MessageID(msg []byte) string {
	const name = "message-id:"
	for len(msg) > 0 {
		line, rest := cutLine(msg)
		if len(bytes.TrimRight(line, "\r")) == 0 {
			return "" // end of the header section
		}
		msg = rest
		if len(line) < len(name) || !bytes.EqualFold(line[:len(name)], []byte(name)) {
			continue
		}
		v := bytes.TrimSpace(line[len(name):])
		for len(msg) > 0 && (msg[0] == ' ' || msg[0] == '\t') { // folded (RFC 5322 §2.2.3)
			line, msg = cutLine(msg)
			v = append(append(bytes.Clone(v), ' '), bytes.TrimSpace(line)...)
		}
		v = bytes.TrimSpace(v)
		v = bytes.TrimPrefix(v, []byte("<"))
		if i := bytes.IndexByte(v, '>'); i >= 0 {
			v = v[:i]
		}
		return string(bytes.TrimSpace(v))
	}
	return ""
}

// cutLine splits msg after its first LF.
func cutLine(msg []byte) (line, rest []byte) {
	if i := bytes.IndexByte(msg, '\n'); i >= 0 {
		return msg[:i], msg[i+1:]
	}
	return msg, nil
}

// listener numbers and tracks connections, so Close can drop them all.
type listener struct {
	net.Listener
	n      atomic.Int64
	mu     sync.Mutex
	conns  map[*tcpConn]struct{}
	peak   int
	closed bool
	tls    bool // implicit TLS: the connections carry ciphertext from the first byte
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &tcpConn{Conn: c, l: l, n: int(l.n.Add(1)), r: bufio.NewReaderSize(c, readAhead), lines: !l.tls}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	l.peak = max(l.peak, len(l.conns))
	return tc, nil
}

// closeAll closes the listener and every connection, and any that is accepted later.
func (l *listener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.Listener.Close()
	for c := range l.conns {
		c.Conn.Close()
	}
	clear(l.conns)
}

// readAhead is how much a connection reads from the socket at once. go-smtp reads through a
// 4 KiB buffer, which would cost three reads for a 10 KB message that arrived in one piece.
const readAhead = 64 << 10

// tcpConn is an accepted connection: numbered, tracked, and read ahead. Its reading fields are
// used by the connection's goroutine only.
type tcpConn struct {
	net.Conn
	l *listener
	n int
	r *bufio.Reader
	// lines: Read hands out at most one line (plaintext, see data.go); off once the connection
	// carries TLS.
	lines bool
	// pending is handed out by Read before anything else: what readData leaves go-smtp to read.
	pending string
	// err, once set, is what every Read returns (a line too long in DATA, as go-smtp's
	// lineLimitReader does).
	err error
	// held are replies written while more commands were already received (a pipelining client,
	// RFC 2920): they go out together before the next read that has to wait for the client, as
	// §3.2 asks of a server, instead of one write each.
	held []byte
}

// Write sends p, or holds it while commands the client pipelined are still to be read.
func (c *tcpConn) Write(p []byte) (int, error) {
	if c.lines && (c.pending != "" || c.r.Buffered() > 0) {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if len(c.held) == 0 {
		return c.Conn.Write(p)
	}
	c.held = append(c.held, p...)
	return len(p), c.flush()
}

// flush sends the held replies.
func (c *tcpConn) flush() error {
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	return err
}

// Read hands out what the connection has received, in plaintext never past the first LF.
func (c *tcpConn) Read(p []byte) (int, error) {
	switch {
	case c.err != nil:
		return 0, c.err
	case c.pending != "":
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	case !c.lines || len(p) == 0:
		return c.r.Read(p)
	}
	if c.r.Buffered() == 0 {
		// The next read waits for the client, which may be waiting for these.
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	if _, err := c.r.Peek(1); err != nil {
		return 0, err
	}
	buf, _ := c.r.Peek(min(len(p), c.r.Buffered()))
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
	}
	n := copy(p, buf)
	_, _ = c.r.Discard(n)
	return n, nil
}

func (c *tcpConn) Close() error {
	_ = c.flush()
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
