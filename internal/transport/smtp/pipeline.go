package smtp

import (
	"bufio"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/postie/postie/internal/transport"
)

// pipelined runs one transaction with PIPELINING (RFC 2920): MAIL, every RCPT and DATA leave in
// one write and their replies are read in order; after the 354 the dot-stuffed body and the final
// "." leave in a second write. Two round trips per message, against three plus one per recipient
// one command at a time, where the relay is far away or busy that is most of a message's time.
//
// It speaks the same commands go-smtp's Mail, Rcpt and Data would (same MAIL parameters, same
// address checks) and classifies every reply as transact does, over the connection go-smtp set up:
// both sides of the dialogue are in step between transactions (nothing is buffered on either), so
// go-smtp can take the connection back for RSET, EHLO or QUIT.
func (t *Transport) pipelined(pc *conn, env transport.Envelope, raw []byte, utf8 bool) (transport.Result, bool, *transport.Error) {
	mail, err := mailCommand(pc.c, env.From, int64(len(raw)), utf8)
	if err != nil {
		te, keep := classify(stageMail, err)
		return transport.Result{}, keep, te
	}
	// An address go-smtp's Rcpt would refuse locally is a refused recipient, as in lockstep.
	var rejected []transport.RecipientError
	to := make([]string, 0, len(env.To))
	cmds := append(append(pc.cmds[:0], mail...), "\r\n"...)
	for _, rcpt := range env.To {
		if err := validateLine(rcpt); err != nil {
			te, _ := classify(stageRcpt, err)
			rejected = append(rejected, transport.RecipientError{Recipient: rcpt, Err: te})
			continue
		}
		to = append(to, rcpt)
		cmds = append(append(append(cmds, "RCPT TO:<"...), rcpt...), ">\r\n"...)
	}
	cmds = append(cmds, "DATA\r\n"...)
	pc.cmds = cmds
	if len(to) == 0 {
		return transport.Result{}, true, allRefused(rejected)
	}

	// Socket deadlines are wall-clock time, never the injected Config.Now. Each reply gets its
	// own CommandTimeout (RFC 5321 §4.5.3.2: per command, as if sent one at a time).
	cmdTimeout := t.cfg.CommandTimeout
	_ = pc.nc.SetDeadline(time.Now().Add(cmdTimeout))
	defer pc.nc.SetDeadline(time.Time{})
	if _, err := pc.wire.Write(cmds); err != nil {
		te, _ := classify(stageMail, err)
		return transport.Result{}, false, te
	}

	// MAIL. Refused, the RCPT and DATA replies that follow are refusals too ("503 bad sequence"),
	// read to keep the dialogue in step; the connection stays usable.
	if _, _, err := pc.readReply(250, cmdTimeout); err != nil {
		te, keep := classify(stageMail, err)
		if keep {
			keep = pc.skipReplies(len(to)+1, cmdTimeout)
		}
		return transport.Result{}, keep, te
	}
	// From here until the reply to the final "." the relay holds an open transaction.
	pc.open = true

	for _, rcpt := range to {
		_, _, err := pc.readReply(25, cmdTimeout)
		if err == nil {
			continue
		}
		te, keep := classify(stageRcpt, err)
		if !keep {
			// 421 or a broken connection: nothing more can be said on this connection.
			return transport.Result{}, false, te
		}
		rejected = append(rejected, transport.RecipientError{Recipient: rcpt, Err: te})
	}
	rejected = inOrder(env.To, rejected)

	_, _, err = pc.readReply(354, cmdTimeout)
	if len(rejected) == len(env.To) {
		// Every recipient was refused, so DATA should have been too. A relay that still answered
		// 354 gets a lone "." (RFC 2920 §3.1), which ends the transaction with nothing in it.
		if err == nil {
			if !pc.endEmpty(cmdTimeout) {
				return transport.Result{}, false, allRefused(rejected)
			}
			pc.open = false
			return transport.Result{}, true, allRefused(rejected)
		}
		if isConnErr(err) {
			return transport.Result{}, false, allRefused(rejected)
		}
		return transport.Result{}, true, allRefused(rejected)
	}
	if err != nil {
		te, keep := classify(stageData, err)
		return transport.Result{}, keep, te
	}

	_ = pc.nc.SetDeadline(time.Now().Add(t.cfg.DataTimeout))
	_, err = pc.wire.Write(pc.body(raw))
	if err == nil {
		_, err = pc.wire.Write([]byte("\r\n.\r\n"))
	}
	if err != nil {
		te, _ := classify(stageData, err)
		return transport.Result{}, false, te
	}
	_, text, err := pc.readReply(250, t.cfg.DataTimeout)
	return finalReply(pc, text, err, rejected)
}

// skipReplies reads n replies whose content no longer matters. A 354 among them (DATA accepted
// after all) is answered by endEmpty. It reports whether the connection is still in step.
func (pc *conn) skipReplies(n int, timeout time.Duration) bool {
	for ; n > 0; n-- {
		code, _, err := pc.readReply(0, timeout)
		if err != nil && isConnErr(err) || code == 421 || code == 354 && !pc.endEmpty(timeout) {
			return false
		}
	}
	return true
}

// endEmpty answers a 354 that came although no recipient was accepted with a lone "." (RFC 2920
// §3.1), which ends the transaction with nothing in it, and reads the reply. It reports whether
// the connection is still in step.
func (pc *conn) endEmpty(timeout time.Duration) bool {
	if _, err := pc.wire.Write([]byte(".\r\n")); err != nil {
		return false
	}
	code, _, err := pc.readReply(0, timeout)
	return !(err != nil && isConnErr(err) || code == 421)
}

// reader returns the connection's reply reader for pipelined transactions, made on first use.
func (pc *conn) reader() *textproto.Reader {
	if pc.r == nil {
		pc.r = textproto.NewReader(bufio.NewReader(pc.wire))
	}
	return pc.r
}

// readReply reads one reply, multi-line or not, within timeout. A reply whose code does not
// match expect (a prefix, as textproto reads it: 25 matches 250 and 251; 0 matches anything) is
// returned as a *gosmtp.SMTPError, the form go-smtp gives refusals in.
func (pc *conn) readReply(expect int, timeout time.Duration) (int, string, error) {
	_ = pc.nc.SetReadDeadline(time.Now().Add(timeout))
	code, msg, err := pc.reader().ReadResponse(expect)
	var re *textproto.Error
	if errors.As(err, &re) {
		return code, msg, replyError(re)
	}
	return code, msg, err
}

// allRefused is the error of a message none of whose recipients was accepted: the first refusal,
// Temporary when any refusal was 4xx and Permanent otherwise.
func allRefused(rejected []transport.RecipientError) *transport.Error {
	te := *rejected[0].Err
	te.Class = transport.Permanent
	for _, r := range rejected {
		if r.Err.Class == transport.Temporary {
			te.Class = transport.Temporary
		}
	}
	if len(rejected) > 1 {
		te.Text += fmt.Sprintf(" (all %d recipients refused)", len(rejected))
	}
	te.Rejected = rejected
	return &te
}

// inOrder sorts rejected by the position of each recipient in to (pipelined refusals and local
// refusals are collected apart).
func inOrder(to []string, rejected []transport.RecipientError) []transport.RecipientError {
	if len(rejected) < 2 {
		return rejected
	}
	out := make([]transport.RecipientError, 0, len(rejected))
	for _, rcpt := range to {
		for _, r := range rejected {
			if r.Recipient == rcpt {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// mailCommand is the MAIL command go-smtp's Client.Mail sends for these options: BODY=8BITMIME
// and SIZE when the relay offers them, SMTPUTF8 when an address needs it (refused locally when
// the relay does not offer it).
func mailCommand(c *gosmtp.Client, from string, size int64, utf8 bool) (string, error) {
	if err := validateLine(from); err != nil {
		return "", err
	}
	cmd := "MAIL FROM:<" + from + ">"
	if ok, _ := c.Extension("8BITMIME"); ok {
		cmd += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SIZE"); ok && size != 0 {
		cmd += " SIZE=" + strconv.FormatInt(size, 10)
	}
	if utf8 {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return "", errors.New("smtp: server does not support SMTPUTF8")
		}
		cmd += " SMTPUTF8"
	}
	return cmd, nil
}

// validateLine refuses a CR or LF in a command argument, as go-smtp does.
func validateLine(line string) error {
	if strings.ContainsAny(line, "\n\r") {
		return errors.New("smtp: A line must not contain CR or LF")
	}
	return nil
}
