package inbound

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/inflight"
	"github.com/postie/postie/internal/mail"
)

// IntakeConfig configures the bounce and complaint listener.
type IntakeConfig struct {
	// Hostname is the name the listener greets with.
	Hostname string
	// TLS, when set, is offered by STARTTLS; never required (MTAs send bounces in clear too).
	TLS *tls.Config
	// BounceDomains are the only domains mail is accepted for (any local part: bounce addresses
	// and the feedback loop address).
	BounceDomains []string
	// MaxSize is the largest report accepted, in octets; larger ones are refused (552 5.3.4).
	MaxSize   int64
	Processor *Processor
	Logger    *slog.Logger
	// Errors takes the panics go-smtp recovers in sessions (it answers 421 and closes the
	// connection); nil logs them.
	Errors errtrack.Reporter
	// Timeout bounds each command and the DATA of one report; 0: two minutes.
	Timeout time.Duration
	// Inflight bounds the octets of the reports being read at once (those over 64 KiB count),
	// the node's budget shared with the API and submission; nil: a budget of 2 × MaxSize
	// waiting up to 2 s. A report that finds it spent is refused with 452 4.3.1.
	Inflight *inflight.Budget
	// MaxConns and MaxConnsPerClient bound the connections open at once, in all and from one
	// client (an IPv4 address, an IPv6 /64); 0: 256 and 32. One more is answered 421 4.7.0 and
	// closed.
	MaxConns, MaxConnsPerClient int
}

// The default connection bounds of the intake: an MTA sends its bounces over a few connections
// (Postfix opens at most 20 to one destination by default).
const (
	intakeMaxConns          = 256
	intakeMaxConnsPerClient = 32
)

// Intake is the SMTP listener for the bounce domains (email-rules §4.1): it accepts mail from
// any sender (DSNs come from the null sender) for the bounce domains only, parses each message
// as a report (mail.ParseReport) and hands it to the Processor. The 250 is sent after the report
// is recorded; a store failure answers 451 so the sender tries again. It never sends mail: no
// reply, no bounce.
type Intake struct {
	srv     *smtp.Server
	proc    *Processor
	log     *slog.Logger
	domains []string
	timeout time.Duration
	budget  *inflight.Budget

	maxConns, maxPerClient int

	mu        sync.Mutex
	conns     map[string]*intakeConn // by remote address
	perClient map[string]int         // open connections by clientKey
	closing   bool
}

// intakeConn is an open connection, tracked so Shutdown can close the idle ones.
type intakeConn struct {
	net.Conn
	in     *Intake
	client string // clientKey of the remote address
	once   sync.Once
	busy   bool // in a transaction (MAIL given): Shutdown lets it finish
}

// Close closes the connection and, the first time, gives back its place in the bounds.
func (c *intakeConn) Close() error {
	c.once.Do(func() {
		c.in.mu.Lock()
		delete(c.in.conns, c.RemoteAddr().String())
		if c.in.perClient[c.client]--; c.in.perClient[c.client] <= 0 {
			delete(c.in.perClient, c.client)
		}
		c.in.mu.Unlock()
	})
	return c.Conn.Close()
}

// errTooManyConns is the reply to a connection past the bounds, written before closing it.
const errTooManyConns = "421 4.7.0 too many connections, try again later\r\n"

// clientKey is what the per-client bound counts by: the IP address of addr, its /64 for IPv6
// (a host commonly has a whole /64), addr itself when it is no IP address.
func clientKey(addr net.Addr) string {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return addr.String()
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}

type intakeListener struct {
	net.Listener
	in *Intake
}

// Accept returns the next connection within the bounds; one past them is answered 421 and
// closed here, never seen by the SMTP server.
func (l intakeListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ic := &intakeConn{Conn: c, in: l.in, client: clientKey(c.RemoteAddr())}
		in := l.in
		in.mu.Lock()
		if open, fromClient := len(in.conns), in.perClient[ic.client]; open >= in.maxConns || fromClient >= in.maxPerClient {
			in.mu.Unlock()
			in.log.Debug("inbound connection refused: too many connections", "remote", c.RemoteAddr().String(),
				"open", open, "from_client", fromClient)
			// The reply fits any socket buffer; the deadline only guards against the odd case.
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, errTooManyConns)
			_ = c.Close()
			continue
		}
		in.conns[c.RemoteAddr().String()] = ic
		in.perClient[ic.client]++
		closing := in.closing
		in.mu.Unlock()
		if closing {
			_ = ic.Close()
		}
		return ic, nil
	}
}

// NewIntake returns an Intake; Serve starts it.
func NewIntake(cfg IntakeConfig) *Intake {
	in := &Intake{proc: cfg.Processor, log: cfg.Logger, timeout: cfg.Timeout, budget: cfg.Inflight,
		maxConns: cfg.MaxConns, maxPerClient: cfg.MaxConnsPerClient,
		conns: map[string]*intakeConn{}, perClient: map[string]int{}}
	if in.budget == nil {
		in.budget = inflight.New(2*max(cfg.MaxSize, smallMessage), 2*time.Second)
	}
	if in.maxConns <= 0 {
		in.maxConns = intakeMaxConns
	}
	if in.maxPerClient <= 0 {
		in.maxPerClient = intakeMaxConnsPerClient
	}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	if in.timeout <= 0 {
		in.timeout = 2 * time.Minute
	}
	for _, d := range cfg.BounceDomains {
		in.domains = append(in.domains, strings.ToLower(d))
	}
	srv := smtp.NewServer(smtp.BackendFunc(in.newSession))
	srv.Domain = cfg.Hostname
	srv.TLSConfig = cfg.TLS
	srv.MaxMessageBytes = cfg.MaxSize
	srv.MaxRecipients = intakeMaxRecipients
	srv.ReadTimeout = in.timeout
	srv.WriteTimeout = in.timeout
	srv.ErrorLog = smtpLogger{log: in.log, errors: errtrack.OrLog(cfg.Errors, in.log), where: "smtp intake"}
	in.srv = srv
	return in
}

// intakeMaxRecipients bounds the recipients of one report: a DSN goes to one bounce address.
const intakeMaxRecipients = 10

// Serve accepts connections on l until Shutdown; it returns nil after Shutdown.
func (in *Intake) Serve(l net.Listener) error {
	err := in.srv.Serve(intakeListener{Listener: l, in: in})
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, closes idle ones, lets each transaction begun (MAIL
// given) finish and then closes its connection, and when ctx ends first closes what is left. A
// report cut off this way got no 250, so its sender sends it again.
func (in *Intake) Shutdown(ctx context.Context) error {
	in.mu.Lock()
	in.closing = true
	var idle, all []net.Conn
	for _, c := range in.conns {
		all = append(all, c.Conn)
		if !c.busy {
			idle = append(idle, c.Conn)
		}
	}
	in.mu.Unlock()
	// Closing the raw connection makes go-smtp's read fail, which ends its session.
	for _, c := range idle {
		_ = c.Close()
	}
	err := in.srv.Shutdown(ctx)
	if err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		for _, c := range all {
			_ = c.Close()
		}
	}
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (in *Intake) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &intakeSession{in: in, remote: c.Conn().RemoteAddr().String()}, nil
}

var (
	errRelayDenied = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Relaying denied: this server accepts mail only for its bounce domains"}
	errBareLineEnd = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Bare CR or LF in the message: every line must end with CRLF"}
	errStore = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Could not record the report, try again later"}
	errDelivering = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "The message reported on is being delivered right now, try again shortly"}
)

// intakeSession is one SMTP connection to the intake.
type intakeSession struct {
	in     *Intake
	remote string
	from   string
	rcpts  []string
}

// Reset ends a transaction (after DATA, RSET, a new EHLO); during a shutdown it closes the
// connection, the reply to DATA written.
func (s *intakeSession) Reset() {
	s.from, s.rcpts = "", nil
	s.in.mu.Lock()
	defer s.in.mu.Unlock()
	if c := s.in.conns[s.remote]; c != nil {
		c.busy = false
		if s.in.closing {
			_ = c.Conn.Close()
		}
	}
}

func (s *intakeSession) Logout() error { return nil }

// Mail accepts any sender, the null sender of DSNs included.
func (s *intakeSession) Mail(from string, _ *smtp.MailOptions) error {
	s.in.mu.Lock()
	defer s.in.mu.Unlock()
	if s.in.closing {
		return errShuttingDown
	}
	if c := s.in.conns[s.remote]; c != nil {
		c.busy = true
	}
	s.from = from
	return nil
}

// Rcpt accepts any local part at a bounce domain and nothing else.
func (s *intakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	at := strings.LastIndexByte(to, '@')
	if at < 0 || !slices.Contains(s.in.domains, strings.ToLower(to[at+1:])) {
		return errRelayDenied
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// Data reads one report (at most MaxSize octets: go-smtp's reader ends it with ErrDataTooLarge,
// 552 5.3.4) within the in-flight budget (452 4.3.1 when it stays spent), refuses bare line
// ends, and records it once per recipient.
func (s *intakeSession) Data(r io.Reader) error {
	// Reading is bounded by the read timeout of each line; waiting for the budget by its wait.
	data, taken, err := readMessage(context.Background(), s.in.budget, r, 0)
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			s.in.log.Info("inbound report refused", "remote", s.remote, "mail_from", s.from, "why", se.Message)
		}
		return err
	}
	if BareLineEnd(data) >= 0 {
		s.in.log.Info("inbound report refused", "remote", s.remote, "mail_from", s.from, "why", "bare line end")
		s.in.budget.Release(taken)
		return errBareLineEnd
	}
	// The parsed report and its copies are made while the octets are still charged.
	defer s.in.budget.Release(taken)
	ctx, cancel := context.WithTimeout(context.Background(), s.in.timeout)
	defer cancel()
	return s.in.receive(ctx, s.from, s.rcpts, data)
}

// receive parses data and records it for each envelope recipient. A message that is no report
// at all is recorded as unparseable and accepted: refusing it would only make its sender bounce
// it back here.
func (in *Intake) receive(ctx context.Context, from string, rcpts []string, data []byte) error {
	report, perr := mail.ParseReport(bytes.NewReader(data))
	if perr != nil {
		report = &mail.Report{Kind: mail.ReportUnknown}
	}
	id := reportID(data)
	for _, rcpt := range rcpts {
		e, out, err := in.proc.Report(ctx, Envelope{MailFrom: from, RcptTo: rcpt, ReportID: id}, report, len(data))
		if err != nil {
			in.log.Error("could not record an inbound report; the sender is told to try again", "rcpt_to", rcpt, "err", err)
			return errStore
		}
		in.log.Debug("inbound report", "mail_from", from, "rcpt_to", rcpt, "kind", e.Kind, "outcome", e.Outcome,
			"reports", len(out), "parse_error", perr)
		if Busy(out) {
			// The report overtook the outcome of the send it follows: the sender sends it again
			// (what was applied of it is a duplicate then).
			in.log.Info("inbound report about a message being delivered; the sender is told to try again", "rcpt_to", rcpt)
			return errDelivering
		}
	}
	return nil
}

// reportID identifies a report: its Message-ID, else a hash of its content.
func reportID(data []byte) string {
	if m, err := netmail.ReadMessage(bytes.NewReader(data)); err == nil {
		if id := strings.TrimSpace(m.Header.Get("Message-Id")); id != "" {
			return "message-id:" + clip(id)
		}
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// smtpLogger sends go-smtp's connection errors to slog, and the panics it recovers (logged as
// "panic serving ADDR: VALUE\nSTACK") to errors.
type smtpLogger struct {
	log    *slog.Logger
	errors errtrack.Reporter
	where  string
}

func (l smtpLogger) Printf(format string, v ...any) {
	if strings.HasPrefix(format, "panic serving ") && len(v) == 3 {
		stack, _ := v[2].([]byte)
		l.errors.Panic(context.Background(), l.where, v[1], stack)
		return
	}
	l.log.Debug("inbound smtp", "msg", fmt.Sprintf(format, v...))
}

func (l smtpLogger) Println(v ...any) {
	l.log.Debug("inbound smtp", "msg", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
