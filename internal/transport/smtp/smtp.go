package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/transport"
)

// Transport is a pooled SMTP relay client. It is safe for concurrent use; at most Config.Pool
// sends run at once, each on its own connection.
type Transport struct {
	cfg  Config
	addr string
	// slots holds one token per connection that may be open: taken by a send for its
	// connection, and by a connection being retired until the relay has closed it (quit).
	slots chan struct{}

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
	// timers counts the idle connections' expiry timers that are armed or running: Close
	// waits for it, so no expiry is still closing a connection after Close returns.
	timers sync.WaitGroup
	// retiring counts the used-up connections being quit in the background (retire).
	retiring sync.WaitGroup
}

var _ transport.Transport = (*Transport)(nil)

// New returns a transport for cfg after filling in its defaults. It does not connect: the first
// Send dials. It fails only on an invalid Config.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Transport{
		cfg:   cfg,
		addr:  net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		slots: make(chan struct{}, cfg.Pool),
	}, nil
}

// String describes the relay and its pool, without the password.
func (t *Transport) String() string { return t.cfg.String() }

// Name returns "smtp".
func (t *Transport) Name() string { return "smtp" }

// PoolStats reports the pool's connections: inUse counts the slots taken (a send on its
// connection, or a connection being dialled or closed), open adds the idle connections.
func (t *Transport) PoolStats() (inUse, open int) {
	t.mu.Lock()
	idle := len(t.idle)
	t.mu.Unlock()
	inUse = len(t.slots)
	return inUse, inUse + idle
}

// Close marks the transport closed and closes the idle connections with QUIT, all at once;
// connections in use are closed when their send finishes. Send fails after Close. Close returns
// once no idle connection's expiry and no retiring connection's QUIT is running; it always
// returns nil.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, pc := range idle {
		t.disarm(pc)
		wg.Go(func() { pc.quit(t.cfg.CommandTimeout) })
	}
	wg.Wait()
	t.timers.Wait()
	t.retiring.Wait()
	return nil
}

// Send relays raw (CRLF-terminated MIME) to env.To. On success the Result carries the final reply,
// the relay's queue id and the recipients refused at RCPT, if any. On failure the error is a
// *transport.Error classified as described in the package documentation. Send waits for a free
// pool slot and returns early when ctx ends.
func (t *Transport) Send(ctx context.Context, env transport.Envelope, raw []byte) (transport.Result, error) {
	if len(env.To) == 0 {
		return transport.Result{}, &transport.Error{Class: transport.Permanent, Stage: stageRcpt, Text: "no recipients"}
	}
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return transport.Result{}, &transport.Error{Class: transport.Unreachable, Stage: stageConnect,
			Text: "no free relay connection: " + ctx.Err().Error(), Err: ctx.Err()}
	}
	slotHeld := true // until checkin hands it to a retiring connection
	defer func() {
		if slotHeld {
			<-t.slots
		}
	}()

	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return transport.Result{}, &transport.Error{Class: transport.Unreachable, Stage: stageConnect, Text: "transport closed"}
	}

	pc, reused, terr := t.checkout(ctx)
	if terr != nil {
		return transport.Result{}, terr
	}
	res, keep, terr := t.transact(pc, env, raw)
	fired := pc.unwatch()
	if terr != nil && reused && !fired && stale(terr) {
		// The pooled connection died while it sat idle (or the relay closed it with a 421):
		// nothing of the message was accepted, so it goes over a new connection, once.
		pc.close()
		if pc, terr = t.dial(ctx); terr != nil {
			return transport.Result{}, terr
		}
		res, keep, terr = t.transact(pc, env, raw)
		fired = pc.unwatch()
	}
	if fired {
		// ctx ended and closed the connection under the command that failed.
		keep = false
		if terr != nil {
			cancelled(ctx, terr)
		}
	}
	slotHeld = !t.checkin(pc, keep)
	if terr != nil {
		return transport.Result{}, terr
	}
	return res, nil
}

// transact runs MAIL, RCPT and DATA on pc and says whether pc may be reused.
func (t *Transport) transact(pc *conn, env transport.Envelope, raw []byte) (transport.Result, bool, *transport.Error) {
	c := pc.c
	if ok, _ := c.Extension("8BITMIME"); !ok {
		// A relay without 8BITMIME takes 7-bit bodies only (RFC 6152): 8-bit parts (SMTP
		// submissions may have them) go re-encoded, text as quoted-printable.
		raw, _ = mail.SevenBit(raw)
	}
	// SIZE is sent when the relay advertises it; SMTPUTF8 only when an address needs it (a relay
	// without it then refuses locally, Permanent: the message cannot go through this relay).
	opts := &gosmtp.MailOptions{Size: int64(len(raw)), UTF8: !ascii(env.From)}
	for _, to := range env.To {
		opts.UTF8 = opts.UTF8 || !ascii(to)
	}
	if pc.pipelining && len(env.To) <= maxPipelined {
		return t.pipelined(pc, env, raw, opts.UTF8)
	}
	if err := c.Mail(env.From, opts); err != nil {
		te, keep := classify(stageMail, err)
		return transport.Result{}, keep, te
	}
	// From here until the reply to the final "." the relay holds an open transaction.
	pc.open = true

	var rejected []transport.RecipientError
	for _, to := range env.To {
		err := c.Rcpt(to, nil)
		if err == nil {
			continue
		}
		te, keep := classify(stageRcpt, err)
		if !keep {
			// 421 or a broken connection: nothing more can be said on this connection.
			return transport.Result{}, false, te
		}
		rejected = append(rejected, transport.RecipientError{Recipient: to, Err: te})
	}
	if len(rejected) == len(env.To) {
		return transport.Result{}, true, allRefused(rejected)
	}

	w, err := c.Data()
	if err != nil {
		te, keep := classify(stageData, err)
		return transport.Result{}, keep, te
	}
	// go-smtp sets no deadline while the body is written; the reply waits SubmissionTimeout.
	// Socket deadlines are wall-clock time, never the injected Config.Now.
	_ = pc.nc.SetDeadline(time.Now().Add(t.cfg.DataTimeout))
	// The body goes straight to the connection, dot-stuffed here in bulk: go-smtp's writer
	// (textproto's dot writer) handles it byte by byte. Closing w then writes the final
	// CRLF "." CRLF and reads the reply.
	if _, err := pc.wire.Write(pc.body(raw)); err != nil {
		te, _ := classify(stageData, err)
		return transport.Result{}, false, te
	}
	resp, err := w.CloseWithResponse()
	text := ""
	if err == nil {
		text = resp.StatusText
	}
	return finalReply(pc, text, err, rejected)
}

// finalReply turns the reply to the final "." (its text, or err) into transact's results.
func finalReply(pc *conn, text string, err error, rejected []transport.RecipientError) (transport.Result, bool, *transport.Error) {
	var se *gosmtp.SMTPError
	if err == nil || errors.As(err, &se) {
		pc.open = false // any reply to the final "." ends the transaction (RFC 5321 §4.1.1.4)
	}
	if err != nil {
		te, keep := classify(stageData, err)
		if isConnErr(err) && pc.nc.writeErr == nil {
			// Every byte up to the final "." was handed to the network: the relay may have
			// queued the message before the connection died (RFC 1047).
			te.Text = "connection lost after DATA: possible duplicate: " + te.Text
			te.MaybeDelivered = true
		}
		return transport.Result{}, keep, te
	}
	pc.sent++
	text = strings.ReplaceAll(text, "\n", " ")
	return transport.Result{
		ProviderID: providerID(text),
		Response:   "250 " + text,
		Rejected:   rejected,
	}, true, nil
}

// checkout returns a connection ready for MAIL, watched by ctx, and whether it was pooled: the
// most recently used idle one, or a new one. A pooled connection whose last transaction was
// left open (all recipients refused, DATA refused) is first reset with RSET and EHLO, and
// dropped for the next one if it does not answer. Idle connections past IdleTimeout are closed
// on the way.
func (t *Transport) checkout(ctx context.Context) (*conn, bool, *transport.Error) {
	for {
		pc := t.popIdle()
		if pc == nil {
			break
		}
		pc.watch(ctx)
		if !pc.open {
			return pc, true, nil
		}
		if err := pc.c.Reset(); err == nil {
			if err = pc.c.Hello(t.cfg.Helo); err == nil {
				pc.open = false
				return pc, true, nil
			}
		}
		// The relay dropped it while idle, or ctx ended: try the next one or dial.
		pc.unwatch()
		pc.close()
	}
	pc, te := t.dial(ctx)
	return pc, false, te
}

// stale reports whether te, from a pooled connection, says only that the connection is gone:
// MAIL met a closed or broken connection, or a 421 (which a relay sends when it closes a
// connection that was idle too long, RFC 5321 §4.2.2 and §3.8). Nothing of the message was
// accepted, so it may be sent again over a new connection.
func stale(te *transport.Error) bool {
	return te.Stage == stageMail && (te.Code == 421 || te.Code == 0 && te.Err != nil && isConnErr(te.Err))
}

// popIdle takes the most recently used idle connection, closing those idle for too long.
func (t *Transport) popIdle() *conn {
	now := t.cfg.Now()
	var stale []*conn
	var pc *conn
	t.mu.Lock()
	fresh := t.idle[:0]
	for _, c := range t.idle {
		if now.Sub(c.lastUsed) > t.cfg.IdleTimeout {
			stale = append(stale, c)
		} else {
			fresh = append(fresh, c)
		}
	}
	clear(t.idle[len(fresh):])
	t.idle = fresh
	if n := len(t.idle); n > 0 {
		pc = t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
	}
	t.mu.Unlock()
	for _, c := range stale {
		// Past IdleTimeout the relay has likely dropped it already (its expiry timer has not
		// run yet): closed without a word, so this send does not wait for a QUIT.
		t.disarm(c)
		c.close()
	}
	if pc != nil {
		t.disarm(pc)
	}
	return pc
}

// checkin returns pc to the pool, or closes it: with QUIT when it is healthy but used up or the
// transport is closed, without when it failed. It reports whether it took over the pool slot of
// the send that used pc (retire), which the send must then not give back.
func (t *Transport) checkin(pc *conn, keep bool) (tookSlot bool) {
	if !keep {
		pc.close()
		return false
	}
	t.mu.Lock()
	if t.closed || pc.sent >= t.cfg.MaxPerConn {
		t.mu.Unlock()
		t.retire(pc)
		return true
	}
	pc.lastUsed = t.cfg.Now()
	t.idle = append(t.idle, pc)
	pc.checkins++
	gen := pc.checkins
	t.timers.Add(1)
	pc.expiry = time.AfterFunc(t.cfg.IdleTimeout, func() { t.expire(pc, gen) })
	t.mu.Unlock()
	return false
}

// retire quits pc in the background and only then frees the pool slot its send held: the
// connection is the relay's until the relay has closed it (quit), and a send dialing the next
// one meanwhile would make one more than ?pool= as the relay counts. The send itself returns
// at once.
func (t *Transport) retire(pc *conn) {
	t.retiring.Go(func() {
		pc.quit(t.cfg.CommandTimeout)
		<-t.slots
	})
}

// expire closes pc with QUIT when it is still idle IdleTimeout after its checkin: relays drop
// idle clients themselves (Postfix after 300 s, many providers sooner), and a connection held
// open for nothing costs the relay a slot. A connection taken by a send meanwhile is left alone.
// It runs on the timer's goroutine; gen is the checkin that armed the timer, so a late expiry
// of an earlier stay in the pool does not close the connection checked in since.
func (t *Transport) expire(pc *conn, gen int) {
	defer t.timers.Done()
	// A connection being quit is still open: it takes a slot like one in use, before it leaves
	// the idle list, so that no send finds the list empty and dials past ?pool= meanwhile.
	t.slots <- struct{}{}
	defer func() { <-t.slots }()
	t.mu.Lock()
	i := slices.Index(t.idle, pc)
	if i >= 0 && pc.checkins != gen {
		i = -1
	}
	if i >= 0 {
		t.idle = slices.Delete(t.idle, i, i+1)
	}
	t.mu.Unlock()
	if i >= 0 {
		pc.quit(t.cfg.CommandTimeout)
	}
}

// disarm stops the expiry timer of pc, which the caller has taken out of t.idle. A timer that
// already fired finds pc gone from t.idle and only counts itself out of t.timers.
func (t *Transport) disarm(pc *conn) {
	if pc.expiry != nil && pc.expiry.Stop() {
		t.timers.Done()
	}
	pc.expiry = nil
}

// dial opens, secures, greets and authenticates a new connection.
func (t *Transport) dial(ctx context.Context) (*conn, *transport.Error) {
	dctx, cancel := context.WithTimeout(ctx, t.cfg.CommandTimeout)
	nc, err := t.cfg.Dial(dctx, "tcp", t.addr)
	cancel()
	if err != nil {
		te, _ := classify(stageConnect, err)
		return nil, te
	}
	pc := &conn{nc: &trackConn{Conn: nc}}
	pc.watch(ctx)
	if te := t.open(ctx, pc); te != nil {
		if pc.unwatch() {
			cancelled(ctx, te)
		}
		if pc.c != nil {
			pc.c.Close()
		} else {
			pc.nc.Close()
		}
		return nil, te
	}
	return pc, nil
}

// open runs everything between the TCP connect and MAIL on pc.
func (t *Transport) open(ctx context.Context, pc *conn) *transport.Error {
	tlsCfg := t.tlsConfig()
	handshake := func() (*tls.Conn, *transport.Error) {
		tc := tls.Client(pc.nc, tlsCfg)
		hctx, cancel := context.WithTimeout(ctx, t.cfg.CommandTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			te, _ := classify(stageTLS, err)
			return nil, te
		}
		return tc, nil
	}
	var wire net.Conn
	switch t.cfg.TLS {
	case TLSNone:
		wire = pc.nc
	case TLSImplicit:
		tc, te := handshake()
		if te != nil {
			return te
		}
		pc.tls, wire = tc, tc
	case TLSStartTLS:
		greeting, te := t.startTLS(pc.nc)
		if te != nil {
			return te
		}
		tc, te := handshake()
		if te != nil {
			return te
		}
		pc.tls, wire = tc, &greeted{Conn: tc, greeting: greeting}
	}
	pc.wire = &replyLimit{Conn: wire}
	pc.c = gosmtp.NewClient(pc.wire)
	pc.c.CommandTimeout = t.cfg.CommandTimeout
	pc.c.SubmissionTimeout = t.cfg.DataTimeout
	if err := pc.c.Hello(t.cfg.Helo); err != nil {
		stage := stageHelo
		if pc.nc.writes == 0 {
			stage = stageConnect // the greeting never came or was a refusal
		}
		te, _ := classify(stage, err)
		return te
	}
	ok, _ := pc.c.Extension("PIPELINING")
	pc.pipelining = ok && !t.cfg.Lockstep
	if t.cfg.Username == "" {
		return nil
	}
	var a sasl.Client
	switch {
	case pc.c.SupportsAuth(sasl.Plain):
		a = sasl.NewPlainClient("", t.cfg.Username, t.cfg.Password)
	case pc.c.SupportsAuth(sasl.Login):
		a = sasl.NewLoginClient(t.cfg.Username, t.cfg.Password)
	default:
		return &transport.Error{Class: transport.Unreachable, Stage: stageAuth, Text: "relay offers neither AUTH PLAIN nor AUTH LOGIN"}
	}
	if err := pc.c.Auth(a); err != nil {
		te, _ := classify(stageAuth, err)
		return te
	}
	return nil
}

// startTLS runs the plaintext part of STARTTLS (RFC 3207) on nc: the greeting, EHLO with
// Config.Helo, STARTTLS; each under Config.CommandTimeout. It returns the greeting, for the
// go-smtp client to read over the encrypted connection (see greeted). A relay that does not offer
// STARTTLS, refuses it, or sends anything after its 220 (which an attacker in the middle could
// have injected, RFC 3207 §6) is Unreachable: there is no plaintext fallback.
func (t *Transport) startTLS(nc *trackConn) ([]byte, *transport.Error) {
	_ = nc.SetDeadline(time.Now().Add(t.cfg.CommandTimeout))
	defer nc.SetDeadline(time.Time{})
	br := bufio.NewReader(&replyLimit{Conn: nc})
	r := textproto.NewReader(br)
	fail := func(stage string, err error) ([]byte, *transport.Error) {
		var re *textproto.Error
		if errors.As(err, &re) {
			err = replyError(re)
		}
		te, _ := classify(stage, err)
		return nil, te
	}
	code, greeting, err := r.ReadResponse(220)
	if err != nil {
		return fail(stageConnect, err)
	}
	if _, err := fmt.Fprintf(nc, "EHLO %s\r\n", t.cfg.Helo); err != nil {
		return fail(stageHelo, err)
	}
	_, ext, err := r.ReadResponse(250)
	if err != nil {
		return fail(stageHelo, err)
	}
	offered := false
	for _, line := range strings.Split(ext, "\n") {
		offered = offered || strings.EqualFold(strings.TrimSpace(line), "STARTTLS")
	}
	if !offered {
		return nil, &transport.Error{Class: transport.Unreachable, Stage: stageTLS,
			Text: "relay does not offer STARTTLS (tls=starttls requires it; no plaintext fallback)"}
	}
	if _, err := io.WriteString(nc, "STARTTLS\r\n"); err != nil {
		return fail(stageTLS, err)
	}
	if _, _, err := r.ReadResponse(220); err != nil {
		return fail(stageTLS, err)
	}
	if br.Buffered() > 0 {
		return nil, &transport.Error{Class: transport.Unreachable, Stage: stageTLS,
			Text: "relay sent data after its reply to STARTTLS"}
	}
	var b []byte
	lines := strings.Split(greeting, "\n")
	for i, line := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		b = fmt.Appendf(b, "%d%s%s\r\n", code, sep, line)
	}
	return b, nil
}

// replyError turns a reply textproto read into go-smtp's form, enhanced code included.
func replyError(re *textproto.Error) *gosmtp.SMTPError {
	se := &gosmtp.SMTPError{Code: re.Code, Message: re.Msg}
	if m := enhancedPrefix.FindString(re.Msg); m != "" {
		parts := strings.Split(strings.TrimSpace(m), ".")
		for i := range se.EnhancedCode {
			se.EnhancedCode[i], _ = strconv.Atoi(parts[i])
		}
		// RFC 2034 repeats the enhanced code on every line; go-smtp keeps it only once.
		se.Message = strings.ReplaceAll(re.Msg[len(m):], "\n"+strings.TrimSpace(m)+" ", "\n")
	}
	return se
}

// greeted is the encrypted connection after a STARTTLS done by hand. go-smtp's client begins by
// reading the relay's greeting, which came before TLS: greeted hands it the greeting again.
type greeted struct {
	net.Conn
	greeting []byte
}

func (g *greeted) Read(p []byte) (int, error) {
	if len(g.greeting) > 0 {
		n := copy(p, g.greeting)
		g.greeting = g.greeting[n:]
		return n, nil
	}
	return g.Conn.Read(p)
}

// cancelled notes on te that ctx ended and closed the connection under the failing command.
func cancelled(ctx context.Context, te *transport.Error) {
	te.Text = "cancelled (" + ctx.Err().Error() + "): " + te.Text
	if te.Err != nil {
		te.Err = fmt.Errorf("%w: %w", ctx.Err(), te.Err)
	} else {
		te.Err = ctx.Err()
	}
}

func (t *Transport) tlsConfig() *tls.Config {
	var c *tls.Config
	if t.cfg.TLSConfig != nil {
		c = t.cfg.TLSConfig.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.ServerName == "" {
		c.ServerName = t.cfg.Host
	}
	return c
}

// conn is one relay connection. It is used by one Send at a time.
type conn struct {
	c       *gosmtp.Client
	nc      *trackConn
	wire    net.Conn // what the client speaks over: nc, or TLS over nc, read through a replyLimit
	tls     *tls.Conn
	stuffed []byte // reused by dotStuff
	cmds    []byte // reused by pipelined for MAIL, RCPT and DATA

	pipelining bool          // the relay offers PIPELINING and Config.Lockstep is off
	r          *bufio.Reader // replies in pipelined transactions; see conn.reader

	lastUsed time.Time
	expiry   *time.Timer // closes the connection after IdleTimeout in the pool; nil when in use
	checkins int         // times it was put in the pool (guarded by Transport.mu)
	sent     int
	open     bool        // a transaction was begun (MAIL accepted) and not ended by a reply to "."
	stop     func() bool // from context.AfterFunc; nil when not watched
}

// watch closes the connection when ctx ends, so a blocked command returns at once.
func (pc *conn) watch(ctx context.Context) {
	pc.stop = context.AfterFunc(ctx, func() { pc.nc.Close() })
}

// unwatch stops watching and reports whether ctx already closed the connection.
func (pc *conn) unwatch() bool {
	if pc.stop == nil {
		return false
	}
	fired := !pc.stop()
	pc.stop = nil
	return fired
}

// closeWait is how long quit waits for the relay to close its end after the 221.
const closeWait = time.Second

// quit ends a healthy connection politely: QUIT, the 221, and then the relay closing its end
// (RFC 5321 §4.1.1.10: it closes the channel after replying), read to EOF before this side
// closes. Waiting for that close is what keeps the pool within ?pool= as the relay counts: a
// connection stays the relay's until it has closed it, so a send that retires a used-up
// connection and dials the next one must not dial before then, or a relay that limits
// connections per client sees one more (and may refuse it with a 421). close drops a broken
// connection without a word.
func (pc *conn) quit(timeout time.Duration) {
	defer pc.close()
	_ = pc.nc.SetDeadline(time.Now().Add(timeout))
	if _, err := pc.wire.Write([]byte("QUIT\r\n")); err != nil {
		return
	}
	if _, _, err := pc.readReply(2, timeout); err != nil {
		return
	}
	if pc.tls != nil {
		// TLS ends with a close_notify each way (RFC 8446 §6.1). trackConn holds writes back
		// until the next read: the one below sends it.
		_ = pc.tls.CloseWrite()
	}
	_ = pc.nc.SetReadDeadline(time.Now().Add(closeWait))
	_, _ = io.Copy(io.Discard, pc.reader()) // until EOF, the deadline, or a reset
}

func (pc *conn) close() { _ = pc.c.Close() }

// body is raw dot-stuffed for DATA, without its last line end (see dotStuff), in a buffer
// reused by the connection's next message.
func (pc *conn) body(raw []byte) []byte {
	pc.stuffed = dotStuff(pc.stuffed[:0], raw)
	if pc.stuffed == nil {
		return trimEnd(raw)
	}
	return pc.stuffed
}

// dotStuff prepares raw for DATA (RFC 5321 §4.5.2): a "." doubled at the start of each line
// and a CR put before each bare LF, as textproto's dot writer does, and without the line end at
// the very end, which closing the dot writer adds with the final ".": written before that close,
// the result makes the same bytes on the wire as the dot writer would. When raw needs no change
// but the trim, dotStuff returns nil (use trimEnd(raw)); otherwise it appends to buf.
func dotStuff(buf, raw []byte) []byte {
	clean := len(raw) == 0 || raw[0] != '.'
	for i := 0; clean; {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		clean = i > 0 && raw[i-1] == '\r' && (i+1 == len(raw) || raw[i+1] != '.')
		i++
	}
	if clean {
		return nil
	}
	for len(raw) > 0 {
		line := raw
		if j := bytes.IndexByte(raw, '\n'); j >= 0 {
			line = raw[:j+1]
		}
		raw = raw[len(line):]
		if line[0] == '.' {
			buf = append(buf, '.')
		}
		if n := len(line); line[n-1] == '\n' && (n == 1 || line[n-2] != '\r') {
			buf = append(append(buf, line[:n-1]...), '\r', '\n')
			continue
		}
		buf = append(buf, line...)
	}
	return trimEnd(buf)
}

// trimEnd drops the CRLF (or lone CR) that ends b: the dot writer's close writes CRLF "." CRLF.
func trimEnd(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// trackConn remembers how many writes were made and the first write error, so a failure after
// DATA can tell "the final dot was sent" from "the body never got out", and a setup failure can
// tell the greeting from the commands after it.
//
// It also holds writes back until the next Read (or until 64 KiB are pending): without
// PIPELINING every command waits for its reply, so nothing is delayed, and a message body that
// go-smtp hands over in 4 KiB pieces goes out in one write instead of several. A write error
// therefore shows up at the Read that follows; it is remembered all the same.
type trackConn struct {
	net.Conn
	writes   int
	writeErr error
	pending  []byte
}

// flushAt is how many pending bytes make Write send at once.
const flushAt = 64 << 10

func (c *trackConn) Write(p []byte) (int, error) {
	c.writes++
	if c.writeErr != nil {
		return 0, c.writeErr
	}
	if len(c.pending)+len(p) > flushAt {
		if err := c.flush(); err != nil {
			return 0, err
		}
		if len(p) > flushAt {
			n, err := c.Conn.Write(p)
			c.failed(err)
			return n, err
		}
	}
	c.pending = append(c.pending, p...)
	return len(p), nil
}

func (c *trackConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// flush sends the pending bytes.
func (c *trackConn) flush() error {
	if c.writeErr != nil {
		return c.writeErr
	}
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.pending)
	c.pending = c.pending[:0]
	c.failed(err)
	return err
}

func (c *trackConn) failed(err error) {
	if err != nil && c.writeErr == nil {
		c.writeErr = err
	}
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
