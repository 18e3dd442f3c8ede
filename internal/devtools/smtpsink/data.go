package smtpsink

import (
	"bytes"
	"io"

	gosmtp "github.com/emersion/go-smtp"
)

// Reading DATA in blocks.
//
// go-smtp hands Session.Data a reader that takes the message a byte at a time through two
// per-byte loops (its dataReader, a copy of net/textproto's DotReader that keeps CRLF, and its
// lineLimitReader): at benchmark rates that is a large share of the sink's CPU, which
// `postie bench` shares with the server it measures. On a plaintext connection the sink reads the
// message itself instead, from the connection's read-ahead buffer, a run of bytes at a time, with
// the same results:
//
//   - tcpConn.Read hands go-smtp at most one line at a time, so when go-smtp has read the DATA
//     command line it holds nothing beyond it: everything after the 354 is still in the tcpConn's
//     buffer, even from a client that sent its message without waiting for the 354;
//   - readData takes the message from that buffer with unstuff, go-smtp's state machine applied
//     to whole runs of bytes, and refuses a line go-smtp's lineLimitReader would refuse;
//   - it leaves go-smtp an end-of-data line (".\r\n") to read, which go-smtp's own reader consumes
//     after Data returns before it writes the reply.
//
// Over TLS (the tcpConn then carries ciphertext) the sink reads through go-smtp's reader.

// dotState is where unstuff stands in the data, the states of go-smtp's dataReader.
type dotState uint8

const (
	stateBeginLine dotState = iota // at the beginning of a line (where the data begins)
	stateDot                       // after a "." that began a line (dropped)
	stateDotCR                     // after ".\r" at the beginning of a line (both dropped)
	stateCR                        // after a "\r"
	stateData                      // inside a line
	stateEOF                       // after the end-of-data line ".\r\n"
)

// unstuff appends to dst the message bytes in src, dot-unstuffed, and returns the extended
// slice, how many bytes of src it used (all, or those up to the end of the end-of-data line) and
// the state after them. It makes the transitions of go-smtp v0.25's dataReader, quirks included
// (".\rX" at the beginning of a line gives "X"; a CR just after a CR does not count as one that
// may start a CRLF), but takes the bytes inside a line as one run up to the next CR.
func unstuff(dst, src []byte, st dotState) ([]byte, int, dotState) {
	i := 0
	for i < len(src) {
		if st == stateData {
			j := bytes.IndexByte(src[i:], '\r')
			if j < 0 {
				return append(dst, src[i:]...), len(src), stateData
			}
			dst = append(dst, src[i:i+j+1]...)
			i += j + 1
			st = stateCR
			continue
		}
		c := src[i]
		i++
		switch st {
		case stateBeginLine:
			switch c {
			case '.':
				st = stateDot
				continue
			case '\r':
				st = stateCR
			default:
				st = stateData
			}
		case stateDot:
			if c == '\r' {
				st = stateDotCR
				continue
			}
			st = stateData
		case stateDotCR:
			if c == '\n' {
				return dst, i, stateEOF
			}
			st = stateData
		case stateCR:
			if c == '\n' {
				st = stateBeginLine
			} else {
				st = stateData
			}
		}
		dst = append(dst, c)
	}
	return dst, i, st
}

// longLine adds src to a line of n octets so far and returns the length of the line then
// unfinished, and whether a line reached limit octets before its LF (limit > 0). go-smtp's
// lineLimitReader refuses such a line: it counts the LF that ends the previous line as the
// first octet of the next, and fails past limit.
func longLine(src []byte, n, limit int) (int, bool) {
	for {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			n += len(src)
			return n, limit > 0 && n >= limit
		}
		if limit > 0 && n+i >= limit {
			return n + i, true
		}
		n = 0
		src = src[i+1:]
	}
}

// endOfData is what readData leaves go-smtp to read after a message.
const endOfData = ".\r\n"

// readData reads a message's DATA, after go-smtp has read the DATA line (so in Data), appending
// it to dst dot-unstuffed, as go-smtp's reader would give it. A line of maxLine octets or more
// (0: no limit) fails with gosmtp.ErrTooLongLine, and so does every later read of the connection,
// as with go-smtp's lineLimitReader; a connection that ends first fails with
// io.ErrUnexpectedEOF. A message of maxBytes octets or more (0: no limit) is read to its end,
// dropped and fails with gosmtp.ErrDataTooLarge, as go-smtp's reader under
// Server.MaxMessageBytes would make it. Unless the connection failed, go-smtp is left endOfData
// to read.
func (c *tcpConn) readData(dst []byte, maxLine, maxBytes int) ([]byte, error) {
	st, line := stateBeginLine, 0
	start, tooLarge := len(dst), false
	for {
		if c.r.Buffered() == 0 {
			if err := c.flush(); err != nil {
				return dst, err
			}
			if _, err := c.r.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return dst, err
			}
		}
		buf, _ := c.r.Peek(c.r.Buffered())
		var n int
		dst, n, st = unstuff(dst, buf, st)
		var long bool
		if line, long = longLine(buf[:n], line, maxLine); long {
			c.err = gosmtp.ErrTooLongLine
			return dst, c.err
		}
		_, _ = c.r.Discard(n) // n ≤ Buffered: cannot fail
		if tooLarge || maxBytes > 0 && len(dst)-start >= maxBytes {
			tooLarge, dst = true, dst[:start]
		}
		if st == stateEOF {
			c.pending = endOfData
			if tooLarge {
				return dst, gosmtp.ErrDataTooLarge
			}
			return dst, nil
		}
	}
}
