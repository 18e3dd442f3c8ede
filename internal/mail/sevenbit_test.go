package mail

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
)

// decodeBody decodes one leaf entity's body by its Content-Transfer-Encoding.
func decodeBody(t *testing.T, cte string, body io.Reader) string {
	t.Helper()
	var r io.Reader = body
	switch strings.ToLower(cte) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = newBase64Reader(body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSevenBit re-encodes a submitted message's 8-bit parts (RFC 6152: a relay without 8BITMIME
// takes 7-bit bodies only): text as quoted-printable, others as base64; parts already 7-bit,
// the header fields, the preamble and the delimiters are kept byte for byte, and every part
// decodes to what it was.
func TestSevenBit(t *testing.T) {
	t.Parallel()
	raw := crlf(`From: Jürgen <j@shop.example>
To: ann@example.com
Subject: Grüße
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

preamble
--outer
Content-Type: multipart/alternative;
 boundary=inner

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln, a line long enough that quoted-printable must break it somewhere before its end
.leading dot
--inner
Content-Type: text/html; charset=utf-8

<p>Grüße</p>
--inner
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

plain ascii
--inner--
--outer
Content-Type: application/octet-stream
Content-Transfer-Encoding: binary

` + "\x00\xff\xfe binary \x80" + `
--outer
Content-Type: message/rfc822

Subject: inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

inner Grüße
--outer--
epilogue
`)
	out, changed := SevenBit(raw)
	if !changed {
		t.Fatal("SevenBit changed nothing")
	}
	head, body, _ := bytes.Cut(out, []byte("\r\n\r\n"))
	if !bytes.Equal(head, raw[:len(head)]) {
		t.Errorf("the top header changed:\n%s", head)
	}
	if has8bit(body) {
		t.Errorf("8-bit octets left in the body:\n%s", body)
	}
	for _, keep := range []string{"\r\npreamble\r\n--outer\r\n", "\r\n--inner\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\nplain ascii\r\n--inner--\r\n",
		"\r\n--outer--\r\nepilogue\r\n"} {
		if !bytes.Contains(out, []byte(keep)) {
			t.Errorf("output lost %q:\n%s", keep, out)
		}
	}

	// Every part decodes to what it was.
	msg, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func(ctype string, hdr func(string) string, body io.Reader)
	walk = func(ctype string, hdr func(string) string, body io.Reader) {
		media, params, _ := mime.ParseMediaType(ctype)
		switch {
		case strings.HasPrefix(media, "multipart/"):
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get, p)
			}
		case media == "message/rfc822":
			inner, err := mail.ReadMessage(body)
			if err != nil {
				t.Fatal(err)
			}
			walk(inner.Header.Get("Content-Type"), inner.Header.Get, inner.Body)
		default:
			got = append(got, hdr("Content-Transfer-Encoding")+": "+decodeBody(t, hdr("Content-Transfer-Encoding"), body))
		}
	}
	walk(msg.Header.Get("Content-Type"), msg.Header.Get, msg.Body)
	want := []string{
		"quoted-printable: Grüße aus Köln, a line long enough that quoted-printable must break it somewhere before its end\r\n.leading dot",
		"quoted-printable: <p>Grüße</p>",
		"7bit: plain ascii",
		"base64: \x00\xff\xfe binary \x80",
		"quoted-printable: inner Grüße",
	}
	if len(got) != len(want) {
		t.Fatalf("parts %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("part %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestSevenBitLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string][]byte{
		"7-bit":                  crlf("Subject: hi\n\nhello\n"),
		"8-bit header only":      crlf("Subject: Grüße\n\nhello\n"),
		"quoted-printable":       crlf("Subject: hi\nContent-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe\n"),
		"no body":                crlf("Subject: Grüße\n"),
		"bad multipart boundary": crlf("Content-Type: multipart/mixed; boundary=x\n\n--y\n\nplain\n--y--\n"),
	} {
		if out, changed := SevenBit(raw); changed || !bytes.Equal(out, raw) {
			t.Errorf("%s: changed to\n%s", name, out)
		}
	}
	// A single 8-bit text part: its encoding field is replaced, whatever its case.
	out, changed := SevenBit(crlf("Subject: hi\ncontent-transfer-encoding: 8BIT\nContent-Type: text/plain; charset=utf-8\n\nGrüße\n"))
	if want := crlf("Subject: hi\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe\n"); !changed || !bytes.Equal(out, want) {
		t.Errorf("single part:\n%s\nwant\n%s", out, want)
	}
}

func FuzzSevenBit(f *testing.F) {
	f.Add(crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nGrüße\n--b--\n"))
	f.Add(crlf("Content-Type: message/rfc822\n\nContent-Type: application/x\n\n\xff\n"))
	f.Add([]byte("\r\n\xff"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, changed := SevenBit(raw)
		if !changed && !bytes.Equal(out, raw) {
			t.Fatal("unchanged output differs from the input")
		}
	})
}

func newBase64Reader(r io.Reader) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, newlineStripper{r})
}

// newlineStripper drops CR and LF, which base64 lines carry.
type newlineStripper struct{ r io.Reader }

func (s newlineStripper) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	return copy(p, bytes.ReplaceAll(bytes.ReplaceAll(p[:n], []byte("\r"), nil), []byte("\n"), nil)), err
}
