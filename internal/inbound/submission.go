package inbound

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/inflight"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// SubmissionConfig configures a Submission server.
type SubmissionConfig struct {
	Messages *message.Service // creates the messages submitted
	Keys     *apikey.Checker  // checks the AUTH password, an API key
	// TLS, when set, is offered by STARTTLS. A listener that is not loopback-only requires it
	// before AUTH; New refuses to serve one without it.
	TLS      *tls.Config
	Hostname string // the name in the greeting ("" for localhost)

	MaxMessageSize int64 // SIZE: the largest message accepted, in octets
	MaxRecipients  int   // RCPT TO per message

	// SenderAllowed says whether key may send a message whose envelope sender is mailFrom and
	// whose From field is from; an error is the refusal (550 5.7.1, its text the reply). nil:
	// the From domain must be the MAIL FROM domain.
	SenderAllowed func(key store.APIKey, mailFrom, from mail.Address) error

	// Failed AUTH attempts of one client address are answered after a delay that doubles with
	// each, from ThrottleBase up to ThrottleMax; one failure is forgiven per ThrottleForgive
	// without failure. Zero values take the defaults (250 ms, 30 s, 1 min).
	ThrottleBase, ThrottleMax, ThrottleForgive time.Duration
	// Sleep waits d (or until ctx ends) before a failed AUTH is answered; nil waits on a timer.
	// Tests record the delays instead.
	Sleep func(ctx context.Context, d time.Duration)

	// Inflight bounds the octets of the messages being received at once (those over 64 KiB
	// count; nil: a budget of 2 × MaxMessageSize waiting up to 2 s). A message that finds it
	// spent for its wait is refused with 452 4.3.1.
	Inflight *inflight.Budget

	// ReadTimeout and WriteTimeout bound each command line and reply (0: 5 and 1 minutes).
	ReadTimeout, WriteTimeout time.Duration

	Now    func() time.Time
	Logger *slog.Logger
	// Errors takes the panics go-smtp recovers in sessions (it answers 421 and closes the
	// connection); nil logs them.
	Errors errtrack.Reporter
}

// Submission is the SMTP submission server (RFC 6409): applications authenticate with an API
// key (AUTH PLAIN or LOGIN, the key as password, any user name), over STARTTLS unless the
// listener is loopback-only, and each message they send is accepted through message.Service
// like a POST /v1/messages. The 250 comes only after the message is committed; a store failure
// is a 451, so the client sends it again, and a repeat of a message (same Message-ID and
// envelope, within 24 hours) answers the first message's id without storing another.
//
// It offers SIZE, PIPELINING, 8BITMIME, CHUNKING and ENHANCEDSTATUSCODES (go-smtp), and refuses
// data with a bare CR or LF (SMTP smuggling). Safe for concurrent use; one Serve per Submission.
type Submission struct {
	cfg      SubmissionConfig
	srv      *smtp.Server
	log      *slog.Logger
	throttle *authThrottle

	ctx    context.Context // ends when the server is closed: in-flight commits are abandoned
	cancel context.CancelFunc

	loopback atomic.Bool // the listener is loopback-only: AUTH without TLS is allowed

	mu       sync.Mutex
	closing  bool
	listener net.Listener // of Serve
	sessions map[*session]struct{}
}

// NewSubmission returns a Submission server.
func NewSubmission(cfg SubmissionConfig) *Submission {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SenderAllowed == nil {
		cfg.SenderAllowed = sameDomain
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Inflight == nil {
		cfg.Inflight = inflight.New(2*max(cfg.MaxMessageSize, smallMessage), 2*time.Second)
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Minute
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = time.Minute
	}
	s := &Submission{cfg: cfg, log: cfg.Logger.With("component", "submission"), sessions: map[*session]struct{}{},
		throttle: newAuthThrottle(cmp.Or(cfg.ThrottleBase, defaultThrottleBase), cmp.Or(cfg.ThrottleMax, defaultThrottleMax),
			cmp.Or(cfg.ThrottleForgive, defaultThrottleForgive), defaultThrottleEntries)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = cmp.Or(cfg.Hostname, "localhost")
	srv.TLSConfig = cfg.TLS
	srv.MaxMessageBytes = cfg.MaxMessageSize
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout, srv.WriteTimeout = cfg.ReadTimeout, cfg.WriteTimeout
	// AUTH is allowed by the sessions (AuthMechanisms, Auth): they require TLS on a listener
	// that is not loopback-only, and answer AUTH before it with 530 (RFC 3207 §4).
	srv.AllowInsecureAuth = true
	srv.ErrorLog = smtpLogger{log: s.log, errors: errtrack.OrLog(cfg.Errors, s.log), where: "smtp submission"}
	s.srv = srv
	return s
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Serve serves the connections of l until Shutdown or Close; it then returns nil. A listener
// that is not loopback-only needs SubmissionConfig.TLS.
func (s *Submission) Serve(l net.Listener) error {
	loopback := LoopbackOnly(l.Addr().String())
	if !loopback && s.cfg.TLS == nil {
		return fmt.Errorf("submission on %s: a listener beyond loopback needs a TLS certificate (POSTIE_TLS_CERT, POSTIE_TLS_KEY): API keys would cross the network in clear", l.Addr())
	}
	s.loopback.Store(loopback)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return l.Close()
	}
	s.listener = l
	s.mu.Unlock()
	err := s.srv.Serve(l)
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// LoopbackOnly reports whether a listen address (host:port) accepts connections from this
// machine only: a loopback IP or "localhost".
func LoopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Shutdown stops accepting connections and new transactions, closes the connections outside a
// transaction and lets each transaction begun (MAIL given) finish: its message received,
// committed and answered, then its connection closed. When ctx ends first, it closes the rest
// (Close); an answer lost that way is a message the client sends again, which its Message-ID
// makes a repeat. A connection that has not said EHLO yet is closed by its read timeout or by
// ctx's end.
func (s *Submission) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.closeListener()
	for ss := range s.sessions {
		if !ss.busy {
			_ = ss.conn.Close()
		}
	}
	s.mu.Unlock()
	err := s.srv.Shutdown(ctx)
	if ctx.Err() != nil {
		return errors.Join(err, s.Close())
	}
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil // closed before, or the listener by closeListener
	}
	return err
}

// Close closes the listener and every connection at once, abandoning the messages being
// received (nothing of them is kept unless already committed).
func (s *Submission) Close() error {
	s.mu.Lock()
	s.closing = true
	s.closeListener()
	s.mu.Unlock()
	s.cancel()
	err := s.srv.Close()
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil // closed before, or the listener by closeListener
	}
	return err
}

// closeListener closes the listener of Serve, if it has one (under s.mu): go-smtp closes only
// the listeners its Serve has registered, which a Serve just starting may not have done yet.
func (s *Submission) closeListener() {
	if s.listener != nil {
		_ = s.listener.Close()
	}
}

// errShuttingDown answers a client greeting a server that is shutting down.
var errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "shutting down: try again later"}

func (s *Submission) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	ss := &session{s: s, conn: c.Conn(), remote: c.Conn().RemoteAddr().String(), helo: c.Hostname(), tls: isTLS}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, errShuttingDown
	}
	s.sessions[ss] = struct{}{}
	return ss, nil
}

// session is one client connection from its EHLO (a STARTTLS starts a new one).
type session struct {
	s      *Submission
	conn   net.Conn
	remote string
	helo   string // the name the client gave in EHLO
	tls    bool

	secret string       // the API key the client authenticated with ("" before AUTH)
	key    store.APIKey // its stored key
	from   mail.Address // MAIL FROM
	size   int64        // its SIZE= (0: none given)
	rcpts  []string     // RCPT TO
	busy   bool         // in a transaction: from MAIL to its end (under s.mu)
}

// Replies of the submission server.
var (
	errTLSFirst     = reply(530, 5, 7, 0, "Must issue a STARTTLS command first")
	errAuthRequired = reply(530, 5, 7, 0, "Authentication required: AUTH PLAIN or LOGIN with an API key as the password")
	errAuthFailed   = reply(535, 5, 7, 8, "Authentication failed: the password is not a valid API key")
	errAuthTemp     = reply(454, 4, 7, 0, "Temporary authentication failure: try again later")
	errNullSender   = reply(550, 5, 1, 7, "A null sender <> cannot submit mail: give the sender's address")
	errUnavailable  = reply(451, 4, 3, 0, "The message could not be stored; nothing was kept: try again later")
)

func reply(code, class, subject, detail int, text string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{class, subject, detail}, Message: text}
}

// authAllowed: AUTH is allowed over TLS, or on a loopback-only listener.
func (ss *session) authAllowed() bool { return ss.tls || ss.s.loopback.Load() }

// AuthMechanisms implements smtp.AuthSession: none is advertised before TLS where TLS is required.
func (ss *session) AuthMechanisms() []string {
	if !ss.authAllowed() {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth implements smtp.AuthSession.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if !ss.authAllowed() {
		return nil, errTLSFirst
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, _, password string) error { return ss.authenticate(password) }), nil
	case sasl.Login:
		return &loginServer{authenticate: func(_, password string) error { return ss.authenticate(password) }}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// authenticate checks the password, an API key; a wrong one is answered after the client
// address's throttle delay.
func (ss *session) authenticate(password string) error {
	k, err := ss.s.cfg.Keys.Check(ss.s.ctx, password)
	switch {
	case errors.Is(err, apikey.ErrUnauthorized):
		d := ss.s.throttle.fail(ss.remote, ss.s.cfg.Now())
		ss.s.log.Info("submission AUTH failed", "remote", ss.remote, "delay", d)
		ss.s.cfg.Sleep(ss.s.ctx, d)
		return errAuthFailed
	case err != nil:
		ss.s.log.Error("submission AUTH: the API key could not be checked", "err", err)
		return errAuthTemp
	}
	ss.s.throttle.succeed(ss.remote)
	ss.secret, ss.key = password, k
	return nil
}

// Mail implements smtp.Session.
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	switch {
	case !ss.authAllowed():
		return errTLSFirst
	case ss.secret == "":
		return errAuthRequired
	case from == "":
		return errNullSender
	}
	a, err := mail.ParseAddress(from)
	if err != nil {
		return reply(553, 5, 1, 7, "Bad sender address: "+err.Error())
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.closing {
		return errShuttingDown
	}
	ss.from, ss.busy = a, true
	if opts != nil {
		ss.size = opts.Size
	}
	return nil
}

// Rcpt implements smtp.Session.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if _, err := mail.ParseAddress(to); err != nil {
		return reply(553, 5, 1, 3, "Bad recipient address: "+err.Error())
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

// Reset implements smtp.Session: the transaction is over (its answer written). A server
// shutting down then closes the connection.
func (ss *session) Reset() {
	ss.from, ss.rcpts, ss.size = mail.Address{}, nil, 0
	ss.s.mu.Lock()
	ss.busy = false
	closing := ss.s.closing
	ss.s.mu.Unlock()
	if closing {
		_ = ss.conn.Close()
	}
}

// Logout implements smtp.Session.
func (ss *session) Logout() error {
	ss.s.mu.Lock()
	delete(ss.s.sessions, ss)
	ss.s.mu.Unlock()
	return nil
}

// Data implements smtp.Session: it reads the message and accepts it, answering 250 with its id
// once committed.
func (ss *session) Data(r io.Reader) error {
	data, taken, err := readMessage(ss.s.ctx, ss.s.cfg.Inflight, r, ss.size)
	if err != nil {
		return err // the budget (452 4.3.1), the size limit (552 5.3.4) or the connection
	}
	defer ss.s.cfg.Inflight.Release(taken)
	// A revoked key stops working here too, within the key cache's few seconds.
	if _, err := ss.s.cfg.Keys.Check(ss.s.ctx, ss.secret); errors.Is(err, apikey.ErrUnauthorized) {
		return reply(530, 5, 7, 0, "The API key was revoked: authenticate again with a valid one")
	} else if err != nil {
		ss.s.log.Error("submission: the API key could not be checked", "err", err)
		return errUnavailable
	}
	id, err := ss.s.accept(ss.s.ctx, submission{key: ss.key, mailFrom: ss.from, rcptTo: ss.rcpts, data: data,
		helo: ss.helo, remote: ss.remote, tls: ss.tls})
	if err != nil {
		return err
	}
	return reply(250, 2, 0, 0, "Ok: queued as "+id)
}

// submission is one message handed in over SMTP.
type submission struct {
	key      store.APIKey
	mailFrom mail.Address
	rcptTo   []string
	data     []byte // as received, dot-stuffing undone

	helo, remote string // the client's EHLO name and address
	tls          bool
}

// accept checks a submitted message and stores it: the id of the stored message (or of the
// first one with its Message-ID and envelope, within 24 hours), or an *smtp.SMTPError.
func (s *Submission) accept(ctx context.Context, sub submission) (string, error) {
	if i := BareLineEnd(sub.data); i >= 0 {
		return "", reply(550, 5, 6, 0, fmt.Sprintf("Bare CR or LF at octet %d: every line must end with CRLF (RFC 5321 §2.3.8); nothing was stored", i))
	}
	h, data, err := readSubmitted(sub.data)
	if err != nil {
		return "", reply(550, 5, 6, 0, smtpText(err.Error()))
	}
	from, err := mail.ParseAddress(h.from[0])
	if err != nil {
		return "", reply(550, 5, 6, 0, smtpText("From: "+err.Error()))
	}
	if err := s.cfg.SenderAllowed(sub.key, sub.mailFrom, from); err != nil {
		return "", reply(550, 5, 7, 1, smtpText(err.Error()))
	}
	now := s.cfg.Now().UTC()
	req := message.Request{Raw: &message.Raw{MailFrom: sub.mailFrom.Email, RcptTo: sub.rcptTo, Data: data},
		Stream: h.stream, Tags: h.tags, Metadata: h.metadata}
	c, err := s.cfg.Messages.Compose(ctx, &req, message.ComposeParams{Now: now, APIKeyID: sub.key.ID})
	if err != nil {
		return "", s.refusal(err)
	}
	// The trace field goes on top of the message, above any field Compose added (RFC 5321 §4.4).
	trace := receivedField(sub.helo, sub.remote, s.srv.Domain, sub.tls, now)
	c.Raw = append(append(make([]byte, 0, len(trace)+len(c.Raw)), trace...), c.Raw...)
	c.Message.Size = len(c.Raw)
	sp := message.StoreParams{Messages: []store.NewMessage{c.NewMessage}, APIKeyID: sub.key.ID, Now: now,
		Status: 250, Body: []byte(c.Message.ID)}
	if h.messageID != "" {
		// The Message-ID is the idempotency key, bound to the envelope: a relay that splits
		// one message over several transactions (by recipient) sends several messages.
		sp.Idempotency = message.Idempotency{Key: idempotencyKey(h.messageID, sub.mailFrom.Email, sub.rcptTo),
			Scope: "smtp", Request: sub.data}
	}
	res, err := s.cfg.Messages.Store(ctx, sp)
	if err != nil {
		return "", s.refusal(err)
	}
	if res.Replayed {
		return string(res.Response), nil
	}
	return c.Message.ID, nil
}

// idempotencyKey is the idempotency key of a message with Message-ID msgID and that envelope.
func idempotencyKey(msgID, mailFrom string, rcptTo []string) string {
	h := sha256.New()
	h.Write([]byte(msgID))
	h.Write([]byte{0})
	h.Write([]byte(mailFrom))
	for _, r := range rcptTo {
		h.Write([]byte{0})
		h.Write([]byte(r))
	}
	return "smtp:" + hex.EncodeToString(h.Sum(nil)[:20])
}

// refusal words an error of message.Service as an SMTP reply.
func (s *Submission) refusal(err error) error {
	var me *message.Error
	if !errors.As(err, &me) {
		s.log.Error("submission: the message could not be stored", "err", err)
		return errUnavailable
	}
	switch me.Kind {
	case message.KindInvalid, message.KindMalformed:
		code := smtp.EnhancedCode{5, 6, 0}
		parts := make([]string, len(me.Problems))
		for i, p := range me.Problems {
			field := smtpField(p.Field)
			if strings.HasPrefix(field, "RCPT TO") && len(me.Problems) == 1 {
				code = smtp.EnhancedCode{5, 1, 3}
			}
			if field == "" {
				parts[i] = p.Message
			} else {
				parts[i] = field + ": " + p.Message
			}
		}
		return &smtp.SMTPError{Code: 550, EnhancedCode: code, Message: smtpText(strings.Join(parts, "; "))}
	case message.KindTooLarge:
		return reply(552, 5, 3, 4, smtpText(me.Error()))
	case message.KindConflict:
		return reply(554, 5, 6, 0, "This Message-ID was used within 24 hours for another message with the same envelope: "+
			"give each message its own Message-ID")
	}
	s.log.Error("submission: the message could not be stored", "err", err)
	return errUnavailable
}

// smtpField names a field of a message.Request as the SMTP client gave it.
func smtpField(f string) string {
	switch {
	case f == "raw":
		return ""
	case f == "mail_from":
		return "MAIL FROM"
	case strings.HasPrefix(f, "rcpt_to"):
		return "RCPT TO" + strings.TrimPrefix(f, "rcpt_to")
	case f == "stream":
		return hdrStream
	case strings.HasPrefix(f, "tags"):
		return hdrTag + strings.TrimPrefix(f, "tags")
	case strings.HasPrefix(f, "metadata."):
		return hdrMetadata + strings.TrimPrefix(f, "metadata.")
	case f == "metadata":
		return hdrMetadata + "*"
	}
	return f
}

// smtpText makes s fit in one reply line: control characters become spaces, and it is cut to
// leave the line within RFC 5321's 512 octets.
func smtpText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	const maxText = 480
	if len(b) > maxText {
		b = append(bytes.ToValidUTF8(b[:maxText-3], nil), "..."...)
	}
	return string(b)
}

// sameDomain is the default SenderAllowed: the From domain is the MAIL FROM domain.
func sameDomain(_ store.APIKey, mailFrom, from mail.Address) error {
	if !strings.EqualFold(domainOf(mailFrom.Email), domainOf(from.Email)) {
		return fmt.Errorf("the From address %s is not at the MAIL FROM domain %s", from.Email, domainOf(mailFrom.Email))
	}
	return nil
}

func domainOf(email string) string {
	return email[strings.LastIndexByte(email, '@')+1:]
}

// loginServer is the server side of the LOGIN mechanism (draft-murchison-sasl-login): the
// user name and the password, each asked for by a challenge unless sent as the initial
// response.
type loginServer struct {
	authenticate func(username, password string) error
	step         int
	username     string
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		if response == nil {
			l.step = 1
			return []byte("Username:"), false, nil
		}
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 1:
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.authenticate(l.username, string(response))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}
