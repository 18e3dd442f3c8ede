package mail

// Quoted-printable (RFC 2045 §6.7) for the text and HTML parts.
//
// appendQuotedPrintable writes exactly the bytes mime/quotedprintable.Writer (text mode) writes for
// one Write of the whole body followed by Close; qp_test.go holds it to that. The standard writer
// handles every byte on its own, through a 78-byte line buffer flushed to an io.Writer, which
// weighs on the accept path. Here a run of bytes that are written as they are is found first and
// copied at once, up to the end of the line.

// qpLineMax is the longest encoded line, the soft line break "=" included (RFC 2045 §6.7 rule 5).
const qpLineMax = 76

const upperHex = "0123456789ABCDEF"

// qpLiteral tells the bytes written as they are: printable ASCII except "=" (rule 2), and space
// and tab (rule 3: they are encoded only at the end of a line, see qpEncodeLastSpace).
var qpLiteral = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = c != '='
	}
	t[' '], t['\t'] = true, true
	return t
}()

// appendQuotedPrintable appends s encoded as quoted-printable to dst and returns the extended
// slice. Line breaks in s (CRLF, bare LF or bare CR) become CRLF; other controls, "=" and bytes
// ≥ 0x7F are written =XX; a line longer than 76 characters is broken with soft line breaks ("="
// CRLF); a space or tab ending a line or the body is written =20 or =09. The output ends without
// a line break unless s ends with one.
//
// As in mime/quotedprintable, a CR followed by LF makes one break, and so does CR, then bytes
// that are encoded (not written as they are), then LF: the LF is dropped.
func appendQuotedPrintable(dst []byte, s string) []byte {
	col := 0    // characters on the output line so far
	cr := false // a CR ended the last line and no literal byte followed: an LF now belongs to it
	for i := 0; i < len(s); {
		c := s[i]
		if qpLiteral[c] {
			j := i + 1
			for j < len(s) && qpLiteral[s[j]] {
				j++
			}
			run := s[i:j]
			for {
				// A literal byte goes on the line while it leaves room for a soft break.
				n := min(len(run), qpLineMax-1-col)
				dst = append(dst, run[:n]...)
				col += n
				run = run[n:]
				if len(run) == 0 {
					break
				}
				dst = append(dst, "=\r\n"...)
				col = 0
			}
			cr = false
			i = j
			continue
		}
		switch {
		case c == '\n' && cr:
			cr = false
		case c == '\r' || c == '\n':
			cr = c == '\r'
			dst, _ = qpEncodeLastSpace(dst, col)
			dst = append(dst, "\r\n"...)
			col = 0
		default:
			dst, col = qpEncode(dst, col, c)
		}
		i++
	}
	dst, _ = qpEncodeLastSpace(dst, col)
	return dst
}

// qpEncode appends c as =XX, after a soft line break if the line has no room for it.
func qpEncode(dst []byte, col int, c byte) ([]byte, int) {
	if col > qpLineMax-1-3 {
		dst = append(dst, "=\r\n"...)
		col = 0
	}
	return append(dst, '=', upperHex[c>>4], upperHex[c&0x0f]), col + 3
}

// qpEncodeLastSpace rewrites a space or tab that ends the current line (of col characters) as
// =20 or =09, before a hard line break or the end of the body (RFC 2045 §6.7 rule 3).
func qpEncodeLastSpace(dst []byte, col int) ([]byte, int) {
	if col == 0 {
		return dst, col
	}
	if c := dst[len(dst)-1]; c == ' ' || c == '\t' {
		return qpEncode(dst[:len(dst)-1], col-1, c)
	}
	return dst, col
}
