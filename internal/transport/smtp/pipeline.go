package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
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
	// Refusals by position in env.To (a list may name an address twice). An address go-smtp's
	// Rcpt would refuse locally is a refused recipient, as in lockstep.
	refused := make([]*transport.Error, len(env.To))
	sent := make([]int, 0, len(env.To)) // positions of the recipients given a RCPT
	cmds := append(append(pc.cmds[:0], mail...), "\r\n"...)
	for i, rcpt := range env.To {
		if err := validateLine(rcpt); err != nil {
			refused[i], _ = classify(stageRcpt, err)
			continue
		}
		sent = append(sent, i)
		cmds = append(append(append(cmds, "RCPT TO:<"...), rcpt...), ">\r\n"...)
	}
	cmds = append(cmds, "DATA\r\n"...)
	pc.cmds = cmds
	if len(sent) == 0 {
		return transport.Result{}, true, allRefused(refusals(env.To, refused))
	}

	// Socket deadlines are wall-clock time, never the injected Config.Now. A relay may hold its
	// replies until it has read the whole group (RFC 2920 §3.2), so each reply may take a
	// CommandTimeout (RFC 5321 §4.5.3.2) for itself and for every command still unanswered.
	cmdTimeout := t.cfg.CommandTimeout
	left := len(sent) + 2 // replies to come: MAIL, each RCPT, DATA
	wait := func() time.Duration { left--; return time.Duration(left+1) * cmdTimeout }
	_ = pc.nc.SetDeadline(time.Now().Add(time.Duration(left) * cmdTimeout))
	defer pc.nc.SetDeadline(time.Time{})
	if _, err := pc.wire.Write(cmds); err != nil {
		te, _ := classify(stageMail, err)
		return transport.Result{}, false, te
	}

	// MAIL. Refused, the RCPT and DATA replies that follow are refusals too ("503 bad sequence"),
	// read to keep the dialogue in step; the connection stays usable.
	if _, _, err := pc.readReply(250, wait()); err != nil {
		te, keep := classify(stageMail, err)
		if keep {
			keep = pc.skipReplies(left, time.Duration(left)*cmdTimeout)
		}
		return transport.Result{}, keep, te
	}
	// From here until the reply to the final "." the relay holds an open transaction.
	pc.open = true

	for _, i := range sent {
		_, _, err := pc.readReply(25, wait())
		if err == nil {
			continue
		}
		te, keep := classify(stageRcpt, err)
		if !keep {
			// 421 or a broken connection: nothing more can be said on this connection.
			return transport.Result{}, false, te
		}
		refused[i] = te
	}
	rejected := refusals(env.To, refused)

	code, _, err := pc.readReply(354, wait())
	if len(rejected) == len(env.To) {
		// Every recipient was refused, so DATA should have been too. A relay that still answered
		// 354 gets a lone "." (RFC 2920 §3.1), which ends the transaction with nothing in it.
		switch {
		case err == nil:
			if !pc.endEmpty(cmdTimeout) {
				return transport.Result{}, false, allRefused(rejected)
			}
			pc.open = false
			return transport.Result{}, true, allRefused(rejected)
		case isConnErr(err) || code == 421:
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

// refusals lists the refused recipients of to, in its order: refused[i] is to[i]'s refusal.
func refusals(to []string, refused []*transport.Error) []transport.RecipientError {
	var out []transport.RecipientError
	for i, te := range refused {
		if te != nil {
			out = append(out, transport.RecipientError{Recipient: to[i], Err: te})
		}
	}
	return out
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
	_ = pc.nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := pc.wire.Write([]byte(".\r\n")); err != nil {
		return false
	}
	code, _, err := pc.readReply(0, timeout)
	return !(err != nil && isConnErr(err) || code == 421)
}

// maxPipelined is the most recipients a pipelined group names. The group is written before any
// reply is read; RFC 2920 §3.1 asks that it fit the TCP window, so that neither side blocks
// writing while the other does too. A message to more goes one command at a time.
const maxPipelined = 100

// reader returns the connection's reply reader for pipelined transactions, made on first use.
// Its buffer holds the longest reply line accepted (see replyLimit).
func (pc *conn) reader() *bufio.Reader {
	if pc.r == nil {
		pc.r = bufio.NewReaderSize(pc.wire, maxReplyLine)
	}
	return pc.r
}

// readResponse reads one reply as textproto.Reader.ReadResponse does, but refuses a line that
// does not fit br's buffer, so a relay that never ends its line is cut off instead of buffered
// (the connection's replyLimit refuses it first; see reply.go): the same parsing (net/textproto's parseCodeLine, continuation lines with another code kept as
// text), multi-line replies joined by LF, and a code not matching expect (1–9: its first digit,
// 10–99: its first two, 100–999: all three; 0: any) returned as a *textproto.Error.
func readResponse(br *bufio.Reader, expect int) (int, string, error) {
	readLine := func() (string, error) {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return "", textproto.ProtocolError(fmt.Sprintf("reply line longer than %d octets", br.Size()))
		}
		if err != nil && (err != io.EOF || len(line) == 0) { // a last line without its end counts
			return "", err
		}
		return string(bytes.TrimRight(line, "\r\n")), nil
	}
	parse := func(line string) (code int, continued bool, msg string, ok bool) {
		if len(line) < 4 || line[3] != ' ' && line[3] != '-' {
			return 0, false, "", false
		}
		code, err := strconv.Atoi(line[:3])
		return code, line[3] == '-', line[4:], err == nil && code >= 100
	}
	line, err := readLine()
	if err != nil {
		return 0, "", err
	}
	code, continued, msg, ok := parse(line)
	if !ok {
		return 0, "", textproto.ProtocolError("invalid or short response: " + line)
	}
	for continued {
		if line, err = readLine(); err != nil {
			return 0, "", err
		}
		code2, more, text, ok := parse(line)
		if !ok || code2 != code {
			msg, continued = msg+"\n"+line, true
			continue
		}
		msg, continued = msg+"\n"+text, more
	}
	if expect > 0 && (expect < 10 && code/100 != expect || expect >= 10 && expect < 100 && code/10 != expect ||
		expect >= 100 && code != expect) {
		return code, msg, &textproto.Error{Code: code, Msg: msg}
	}
	return code, msg, nil
}

// readReply reads one reply, multi-line or not, within timeout. A reply whose code does not
// match expect (a prefix, as textproto reads it: 25 matches 250 and 251; 0 matches anything) is
// returned as a *gosmtp.SMTPError, the form go-smtp gives refusals in.
func (pc *conn) readReply(expect int, timeout time.Duration) (int, string, error) {
	_ = pc.nc.SetReadDeadline(time.Now().Add(timeout))
	code, msg, err := readResponse(pc.reader(), expect)
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
