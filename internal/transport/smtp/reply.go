package smtp

import (
	"bytes"
	"fmt"
	"net"
	"net/textproto"
)

// Bounds on one reply from the relay. RFC 5321 §4.5.3.1.5 allows 512 octets per reply line,
// CRLF included; real relays go past it (a refusal that quotes a blocklist entry and a URL), so
// a line may have up to 2,000, as go-smtp's client and server accept. An EHLO reply has some
// fifteen lines and a refusal a few, so 300 lines or 64 KiB is generous for any reply.
const (
	maxReplyLine  = 2000     // octets per reply line, CRLF included
	maxReplyLines = 300      // lines per reply
	maxReplyBytes = 64 << 10 // octets per reply
)

// replyLimit is a connection read through the bounds above. It follows where each reply ends as
// net/textproto's ReadResponse does (a line ends a multi-line reply when it has the code of the
// reply's first line followed by a space; any other line continues it) and fails the read that
// takes a line or a reply past a bound with a textproto.ProtocolError, as it fails every read
// after. Every reader of replies reads through one (go-smtp's client, readResponse, the plaintext
// part of STARTTLS), so a relay that sends an endless reply ("220-" forever, or a line without
// end) costs at most one reply's bounds and ends the connection at once, instead of filling
// memory until the command timeout. Writes pass through.
type replyLimit struct {
	net.Conn
	err   error
	line  int     // octets of the current line so far
	head  [4]byte // the current line's first four octets
	code  int     // the code of the current multi-line reply; 0 between replies
	lines int     // lines of the current reply, the current line excluded
	bytes int     // octets of the current reply so far
}

func (r *replyLimit) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.Conn.Read(p)
	if r.err = r.scan(p[:n]); r.err != nil {
		return 0, r.err
	}
	return n, err
}

// scan moves the reply state over b, which was just read, and returns the error of a bound
// exceeded.
func (r *replyLimit) scan(b []byte) error {
	for len(b) > 0 {
		seg, ended := b, false
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			seg, ended = b[:i+1], true
		}
		b = b[len(seg):]
		if r.line < len(r.head) {
			copy(r.head[r.line:], seg)
		}
		r.line += len(seg)
		r.bytes += len(seg)
		// An unfinished line counts its LF to come, so the line is refused as soon as it
		// cannot end within the bound.
		if r.line > maxReplyLine || !ended && r.line >= maxReplyLine {
			return textproto.ProtocolError(fmt.Sprintf("reply line longer than %d octets", maxReplyLine))
		}
		if r.bytes > maxReplyBytes {
			return textproto.ProtocolError(fmt.Sprintf("reply longer than %d octets", maxReplyBytes))
		}
		if !ended {
			return nil
		}
		r.endLine()
		if r.lines >= maxReplyLines {
			return textproto.ProtocolError(fmt.Sprintf("reply of more than %d lines", maxReplyLines))
		}
	}
	return nil
}

// endLine decides, at the end of a line, whether the current reply goes on.
func (r *replyLimit) endLine() {
	h := r.head[:min(r.line, len(r.head))]
	code, sep := 0, byte(0)
	if len(h) == 4 && '1' <= h[0] && h[0] <= '9' && isDigit(h[1]) && isDigit(h[2]) {
		code, sep = int(h[0]-'0')*100+int(h[1]-'0')*10+int(h[2]-'0'), h[3]
	}
	r.line = 0
	switch {
	case r.code == 0 && code != 0 && sep == '-':
		r.code, r.lines = code, 1 // the first line of a multi-line reply
	case r.code == 0 || code == r.code && sep == ' ':
		r.code, r.lines, r.bytes = 0, 0, 0 // the reply ends (textproto refuses a bad first line)
	default:
		r.lines++
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
