package smtp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"regexp"
	"strings"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/postie/postie/internal/transport"
)

// Stages reported in transport.Error.Stage.
const (
	stageConnect = "connect"
	stageTLS     = "tls"
	stageHelo    = "helo"
	stageAuth    = "auth"
	stageMail    = "mail"
	stageRcpt    = "rcpt"
	stageData    = "data"
)

// setupStage reports whether stage belongs to setting up the connection, where every failure means
// the relay is unusable rather than that the message is.
func setupStage(stage string) bool {
	switch stage {
	case stageConnect, stageTLS, stageHelo, stageAuth:
		return true
	}
	return false
}

// classify turns err, returned by go-smtp or the network at stage, into a *transport.Error, and
// says whether the connection can still carry another transaction.
//
// Reply codes are read by first digit only (RFC 5321 §4.2), except 421, which is Throttle
// anywhere and always ends the connection. Every failure while setting up the connection is
// Unreachable; so is a lost connection while MAIL is pending (nothing of the message was
// accepted yet), but a 4xx/5xx reply to MAIL is about this message and is Temporary/Permanent.
func classify(stage string, err error) (*transport.Error, bool) {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		te := &transport.Error{Code: se.Code, Text: se.Message, Stage: stage, Err: err}
		if se.EnhancedCode != gosmtp.NoEnhancedCode && se.EnhancedCode != (gosmtp.EnhancedCode{}) {
			te.Enhanced = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		switch {
		case se.Code == 421:
			te.Class = transport.Throttle
			return te, false
		case setupStage(stage):
			te.Class = transport.Unreachable
			return te, false
		case se.Code >= 400 && se.Code < 500:
			te.Class = transport.Temporary
			return te, true
		case se.Code >= 500 && se.Code < 600:
			te.Class = transport.Permanent
			return te, true
		}
		// A reply of the wrong kind (a 250 where 354 belongs): the dialogue is out of step.
		te.Class = transport.Temporary
		if setupStage(stage) {
			te.Class = transport.Unreachable
		}
		return te, false
	}
	te := &transport.Error{Text: err.Error(), Stage: stage, Err: err}
	if !isConnErr(err) {
		// go-smtp refused locally before sending anything: a CR or LF in an address, SMTPUTF8 or
		// REQUIRETLS not offered. The connection is untouched; this message cannot go as built.
		te.Class = transport.Permanent
		if setupStage(stage) {
			te.Class = transport.Unreachable
			return te, false
		}
		return te, true
	}
	te.Class = transport.Temporary
	if setupStage(stage) || stage == stageMail {
		te.Class = transport.Unreachable
	}
	return te, false
}

// isConnErr reports whether err is a failure of the connection itself (reset, closed, timeout,
// garbled reply) rather than a local refusal by go-smtp.
func isConnErr(err error) bool {
	var ne net.Error
	var pe textproto.ProtocolError
	return errors.As(err, &ne) || errors.As(err, &pe) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

var (
	enhancedPrefix = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}\s+`)
	queuedAs       = regexp.MustCompile(`(?i)\bqueued as\s+<?([^\s;,<>]+)`)
	idEquals       = regexp.MustCompile(`(?i)\bid=<?([^\s;,<>]+)`)
	okID           = regexp.MustCompile(`(?i)^ok:?\s+<?([^\s<>]+)>?$`)
)

// providerID extracts the relay's queue id from the text of the reply to the final ".":
// Postfix "Ok: queued as 1A2B3C", Exim "OK id=1abcDE-000123-AB", SES "Ok 0100018c-…-000000",
// "Ok: <id>". Without a known form it returns the whole text.
func providerID(text string) string {
	s := strings.TrimSpace(enhancedPrefix.ReplaceAllString(strings.ReplaceAll(text, "\n", " "), ""))
	if m := queuedAs.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	if m := idEquals.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	if m := okID.FindStringSubmatch(s); m != nil && !strings.EqualFold(m[1], "queued") {
		return m[1]
	}
	return s
}
