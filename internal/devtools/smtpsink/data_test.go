package smtpsink

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	gosmtp "github.com/emersion/go-smtp"
)

// byteByByte is go-smtp v0.25.1's dataReader.Read (data.go) over a whole input, one byte at a
// time: the reference unstuff must agree with. It returns the message and how many bytes of src
// it took (len(src) when src holds no end-of-data line).
func byteByByte(src []byte) ([]byte, int, bool) {
	var out []byte
	st := stateBeginLine
	for i, c := range src {
		switch st {
		case stateBeginLine:
			if c == '.' {
				st = stateDot
				continue
			}
			if c == '\r' {
				st = stateCR
				break
			}
			st = stateData
		case stateDot:
			if c == '\r' {
				st = stateDotCR
				continue
			}
			st = stateData
		case stateDotCR:
			if c == '\n' {
				return out, i + 1, true
			}
			st = stateData
		case stateCR:
			if c == '\n' {
				st = stateBeginLine
				break
			}
			st = stateData
		case stateData:
			if c == '\r' {
				st = stateCR
			}
		}
		out = append(out, c)
	}
	return out, len(src), false
}

// unstuffChunks runs unstuff over src cut at the given lengths (the rest in one piece), as
// readData does over reads that end anywhere.
func unstuffChunks(src []byte, cuts []int) ([]byte, int, bool) {
	var out []byte
	st, used := stateBeginLine, 0
	for k := 0; used < len(src); k++ {
		end := len(src)
		if k < len(cuts) {
			end = min(used+cuts[k], len(src))
		}
		var n int
		out, n, st = unstuff(out, src[used:end], st)
		used += n
		if st == stateEOF {
			return out, used, true
		}
	}
	return out, used, false
}

// dataPieces are what DATA is made of around the cases of RFC 5321 §4.5.2 (dot-stuffing) and
// §4.1.1.4 (the end of data), with bare CR and LF for go-smtp's quirks.
var dataPieces = []string{"a", "line", "\r\n", "\r", "\n", ".", "..", "\r\n.", "\r\n..", "\r\n.\r\n",
	".\r", "\r\r\n", "x\r\n.\r\n", strings.Repeat("q", 70), "é"}

func randomData(rng *rand.Rand) []byte {
	var b []byte
	for n := rng.IntN(40); n > 0; n-- {
		b = append(b, dataPieces[rng.IntN(len(dataPieces))]...)
	}
	return b
}

// TestUnstuffMatchesGoSMTP compares unstuff with go-smtp's byte-by-byte reading on random data,
// whole and cut into random pieces (a dot, a CR or the end-of-data line split across reads).
func TestUnstuffMatchesGoSMTP(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		src := randomData(rng)
		want, wantN, wantEnd := byteByByte(src)
		var cuts []int
		for n := rng.IntN(8); n > 0; n-- {
			cuts = append(cuts, 1+rng.IntN(6))
		}
		for _, cs := range [][]int{nil, cuts, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}} {
			got, n, end := unstuffChunks(src, cs)
			if !bytes.Equal(got, want) || n != wantN || end != wantEnd {
				t.Fatalf("%q cut at %v: got %q, %d bytes used, end %v; go-smtp gives %q, %d, %v",
					src, cs, got, n, end, want, wantN, wantEnd)
			}
		}
	}
}

// testConn is a tcpConn reading src through r's reads, as the sink's connections do.
func testConn(r io.Reader) *tcpConn {
	return &tcpConn{r: bufio.NewReaderSize(r, 16), lines: true}
}

// TestReadData reads dot-stuffed messages that arrive a byte at a time, then checks what go-smtp
// is handed afterwards: the end-of-data line, then the next command, a line at a time.
func TestReadData(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		data, want string
		tooLong    bool
	}{
		{data: ".\r\n", want: ""},
		{data: "\r\n.\r\n", want: "\r\n"},
		{data: "a\r\n.\r\n", want: "a\r\n"},
		{data: "..\r\n.\r\n", want: ".\r\n"},
		{data: "...x\r\n..\r\n.\r\n", want: "..x\r\n.\r\n"},
		{data: "a\r\n.b\r\n..c\r\n.\r\n", want: "a\r\nb\r\n.c\r\n"},
		{data: "bare\n.\nlf\r\n.\r\n", want: "bare\n.\nlf\r\n"}, // only CRLF ends a line
		{data: "cr\r.\r\n\r\n.\r\n", want: "cr\r.\r\n\r\n"},     // likewise a bare CR
		{data: ".\rx\r\n.\r\n", want: "x\r\n"},                  // go-smtp drops ".\r"
		{data: "Subject: s\r\n\r\n" + strings.Repeat("=3D.\r\n", 300) + ".\r\n",
			want: "Subject: s\r\n\r\n" + strings.Repeat("=3D.\r\n", 300)},
		{data: strings.Repeat("x", 5000) + "\r\n.\r\n", tooLong: true},
	} {
		for _, r := range []io.Reader{strings.NewReader(tc.data + "QUIT\r\nNOOP\r\n"),
			iotest.OneByteReader(strings.NewReader(tc.data + "QUIT\r\nNOOP\r\n"))} {
			c := testConn(r)
			got, err := c.readData(nil, 2000, 0)
			if tc.tooLong {
				if !errors.Is(err, gosmtp.ErrTooLongLine) {
					t.Errorf("readData(%.20q…) error %v, want ErrTooLongLine", tc.data, err)
				}
				if _, err := c.Read(make([]byte, 10)); !errors.Is(err, gosmtp.ErrTooLongLine) {
					t.Errorf("Read after a too long line: %v, want ErrTooLongLine", err)
				}
				continue
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("readData(%q) = %q, %v; want %q", tc.data, got, err, tc.want)
				continue
			}
			// Then go-smtp reads the end-of-data line, then the rest, never past a LF at once.
			var next []string
			for {
				buf := make([]byte, 100)
				n, err := c.Read(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Read after readData(%q): %v", tc.data, err)
				}
				if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 && i != n-1 {
					t.Errorf("Read handed out %q, past a LF", buf[:n])
				}
				next = append(next, string(buf[:n]))
			}
			if len(next) == 0 || next[0] != endOfData || strings.Join(next, "") != endOfData+"QUIT\r\nNOOP\r\n" {
				t.Errorf("after readData(%q), go-smtp reads %q, want %q then the commands", tc.data, next, endOfData)
			}
		}
	}
}

func TestReadDataUnexpectedEOF(t *testing.T) {
	t.Parallel()
	c := testConn(strings.NewReader("a\r\n.b\r\n"))
	got, err := c.readData(nil, 2000, 0)
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(got) != "a\r\nb\r\n" {
		t.Errorf("readData of a cut message = %q, %v; want %q, %v", got, err, "a\r\nb\r\n", io.ErrUnexpectedEOF)
	}
}

// TestLongLine checks the limit against go-smtp's lineLimitReader: with a limit of 2000 it
// refuses a line of 2000 octets before its LF and takes one of 1999.
func TestLongLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src  string
		n    int
		want bool
	}{
		{strings.Repeat("x", 1999) + "\n", 0, false},
		{strings.Repeat("x", 2000) + "\n", 0, true},
		{strings.Repeat("x", 1999), 0, false},
		{strings.Repeat("x", 2000), 0, true},
		{strings.Repeat("x", 1000), 999, false},
		{strings.Repeat("x", 1000), 1000, true},
		{"\n" + strings.Repeat("x", 1999) + "\n", 1500, false},
		{strings.Repeat(strings.Repeat("x", 1998)+"\r\n", 3), 0, false},
	} {
		if _, got := longLine([]byte(tc.src), tc.n, 2000); got != tc.want {
			t.Errorf("longLine(%d octets, after %d) = %v, want %v", len(tc.src), tc.n, got, tc.want)
		}
		if _, got := longLine([]byte(tc.src), tc.n, 0); got {
			t.Errorf("longLine without a limit refused %d octets", len(tc.src))
		}
	}
}
