package mail

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/htmltext"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenSeed replaces the random boundary seed, so that golden files are stable.
const goldenSeed = "golden"

var testDate = time.Date(2026, 3, 14, 15, 9, 26, 0, time.FixedZone("CET", 3600))

// fakePNG stands in for image data: every byte value, so base64 and line wrapping are exercised.
func fakePNG() []byte {
	b := make([]byte, 300)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// baseMessage returns a small valid message that each case modifies.
func baseMessage() Message {
	return Message{
		From:      Address{Name: "Shop", Email: "news@shop.example"},
		To:        []Address{{Name: "Ann Example", Email: "ann@example.com"}},
		Bcc:       []Address{{Email: "audit@shop.example"}},
		Subject:   "Your order",
		MessageID: "b2kfxqtq3wdeknr7qzv4wqcyky@shop.example",
		Date:      testDate,
	}
}

type buildCase struct {
	name string
	msg  Message
	tree string // expected MIME tree, see mimeTree
}

// buildCases are the shapes of email-rules §5.8; each has a golden file testdata/<name>.golden.
func buildCases() []buildCase {
	text := baseMessage()
	text.Text = "Hello Ann,\n\nyour order A-1 has shipped.\r\nA long line follows, longer than the 76 characters that quoted-printable allows per line.\n" +
		"Trailing space here \nand an = sign, a bare CR\rand a final line without a break"

	htmlOnly := baseMessage()
	htmlOnly.HTML = `<html><head><style>p{color:red}</style></head><body><h1>Order shipped</h1>` +
		`<p>Hello Ann, your order <b>A-1</b> is on its way.</p>` +
		`<p><a href="https://shop.example/orders/A-1">Track it</a></p><ul><li>Book</li><li>Pen</li></ul></body></html>`

	both := baseMessage()
	both.Text = "Hello Ann,\nyour order A-1 has shipped.\n"
	both.HTML = "<p>Hello Ann,<br>your order <b>A-1</b> has shipped.</p>\n"
	both.Cc = []Address{{Email: "bo@example.com"}}
	both.ReplyTo = &Address{Name: "Help", Email: "help@shop.example"}
	both.Headers = []Header{{"X-Order", "A-1"}, {"X-Campaign", "spring"}, {"X-Order", "A-2"}}
	both.FeedbackID = "cmp_01jd8x:broadcast:postie"

	inline := baseMessage()
	inline.Text = "Our logo is in the HTML version."
	inline.HTML = `<p><img src="cid:logo.7f3a@shop.example" alt="Shop"></p>`
	inline.Attachments = []Attachment{{Filename: "logo.png", ContentType: "image/png", ContentID: "logo.7f3a@shop.example", Content: fakePNG()}}

	attach := baseMessage()
	attach.Text = "Invoices attached."
	attach.Attachments = []Attachment{
		{Filename: "invoice.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.4 fake")},
		{Filename: "Rechnung €.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.4 gefälscht")},
		{Filename: `odd "name".csv`, ContentType: "text/csv; charset=utf-8", Content: []byte("a,b\n1,2\n")},
		{Filename: "data.bin", Content: []byte{0, 1, 2, 3}},
	}

	full := baseMessage()
	full.Text = "See the HTML version for the logo."
	full.HTML = `<p>Logo: <img src="cid:logo@shop.example"></p>`
	full.Attachments = []Attachment{
		{Filename: "Übersicht.pdf", ContentType: "application/pdf", Content: []byte("%PDF")},
		{Filename: "logo.png", ContentType: "image/png", ContentID: "logo@shop.example", Content: fakePNG()},
		{ContentType: "image/gif", ContentID: "spacer@shop.example", Content: []byte("GIF89a")},
	}

	intl := baseMessage()
	intl.From = Address{Name: "Jürgen Müller, Bücher & Co", Email: "jm@bücher.de"}
	intl.To = []Address{{Name: "Иван Петров", Email: "ivan@example.com"}, {Name: "山田太郎", Email: "taro@例え.jp"}}
	intl.Cc = []Address{{Name: "Doe, J", Email: "doe@example.com"}}
	intl.Subject = "Grüße aus Köln 👋 – Ihre Bestellung"
	intl.Text = "Grüße!\n"
	intl.HTML = "<p>Grüße! 👋</p>"
	intl.Headers = []Header{{"X-Greeting", "Grüße"}}

	long := baseMessage()
	long.Subject = "This is a rather long subject line that goes on and on, well past the seventy-eight characters a line should have, so it must be folded"
	long.To = nil
	for i := range 6 {
		long.To = append(long.To, Address{Name: fmt.Sprintf("Recipient Number %d", i), Email: fmt.Sprintf("recipient%d@example.com", i)})
	}
	long.Text = "Hi all."
	long.Headers = []Header{{"X-Tags", strings.Repeat("tag ", 30)}}

	longIntl := baseMessage()
	longIntl.Subject = "Ваш заказ отправлен: спасибо за покупку в нашем магазине, ждём вас снова! Ελληνικά κείμενα και 日本語の件名"
	longIntl.Text = "Спасибо!"

	return []buildCase{
		{"text_only", text, "text/plain"},
		{"html_only", htmlOnly, "multipart/alternative(text/plain,text/html)"},
		{"text_html", both, "multipart/alternative(text/plain,text/html)"},
		{"html_inline_image", inline, "multipart/alternative(text/plain,multipart/related(text/html,image/png))"},
		{"attachments", attach, "multipart/mixed(text/plain,application/pdf,application/pdf,text/csv,application/octet-stream)"},
		{"full_tree", full, "multipart/mixed(multipart/alternative(text/plain,multipart/related(text/html,image/png,image/gif)),application/pdf)"},
		{"non_ascii", intl, "multipart/alternative(text/plain,text/html)"},
		{"long_subject", long, "text/plain"},
		{"long_subject_non_ascii", longIntl, "text/plain"},
	}
}

func TestBuildGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range buildCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := build(tc.msg, goldenSeed)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Build output differs from %s (run go test -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestBuildStructure parses every built message back with net/mail and mime/multipart and checks
// what email-rules §5 requires, independently of the golden files.
func TestBuildStructure(t *testing.T) {
	t.Parallel()
	for _, tc := range buildCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := Build(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			checkLines(t, raw)
			msg, err := netmail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			checkHeaders(t, tc.msg, raw, msg.Header)

			root := parseEntity(t, textproto.MIMEHeader(msg.Header), msg.Body)
			if got := root.tree(); got != tc.tree {
				t.Errorf("MIME tree = %s, want %s", got, tc.tree)
			}
			root.walk(func(e *entity) {
				if e.mediaType == "multipart/related" && e.typeParam != "text/html" {
					t.Errorf("multipart/related type = %q, want text/html (RFC 2387 §3.1)", e.typeParam)
				}
			})
			leaves := root.leaves()
			want := wantLeaves(t, tc.msg)
			if len(leaves) != len(want) {
				t.Fatalf("got %d leaf parts, want %d", len(leaves), len(want))
			}
			for i, w := range want {
				g := leaves[i]
				if g.mediaType != w.mediaType {
					t.Errorf("part %d: type %s, want %s", i, g.mediaType, w.mediaType)
				}
				body := g.body
				if root.mediaType == "text/plain" {
					// The only part is the whole body, which Build ends with CRLF.
					body = bytes.TrimSuffix(body, []byte("\r\n"))
					w.body = bytes.TrimSuffix(w.body, []byte("\r\n"))
				}
				if !bytes.Equal(body, w.body) {
					t.Errorf("part %d (%s): decoded body = %q, want %q", i, g.mediaType, body, w.body)
				}
				if g.filename != w.filename || g.disposition != w.disposition || g.contentID != w.contentID {
					t.Errorf("part %d: filename %q disposition %q Content-ID %q, want %q %q %q",
						i, g.filename, g.disposition, g.contentID, w.filename, w.disposition, w.contentID)
				}
				if strings.HasPrefix(g.mediaType, "text/") && g.charset != "utf-8" {
					t.Errorf("part %d: charset %q, want utf-8", i, g.charset)
				}
			}
		})
	}
}

// checkLines enforces RFC 5322 §2.1.1 and §2.3 on the raw message: CRLF only, 7-bit, no line
// over 998 octets; and, since every test case can be folded, none over 78 either.
func checkLines(t *testing.T, raw []byte) {
	t.Helper()
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Error("message does not end with CRLF")
	}
	for i, c := range raw {
		switch {
		case c == '\n' && (i == 0 || raw[i-1] != '\r'):
			t.Fatalf("bare LF at offset %d", i)
		case c == '\r' && (i+1 == len(raw) || raw[i+1] != '\n'):
			t.Fatalf("bare CR at offset %d", i)
		case c >= 0x80:
			t.Fatalf("8-bit octet %#x at offset %d", c, i)
		}
	}
	for n, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line %d is %d octets (> 78): %q", n+1, len(line), line)
		}
	}
}

func checkHeaders(t *testing.T, m Message, raw []byte, h netmail.Header) {
	t.Helper()
	// RFC 5322 §3.6: one of each; Bcc never written (email-rules §5.1); no mailer advertising.
	for _, name := range []string{"From", "Date", "Message-Id", "Mime-Version", "Subject", "To"} {
		if n := len(h[name]); n != 1 {
			t.Errorf("%d %s fields, want 1", n, name)
		}
	}
	for _, name := range []string{"Bcc", "Sender", "X-Mailer", "User-Agent", "Resent-Bcc"} {
		if _, ok := h[name]; ok {
			t.Errorf("%s field written", name)
		}
	}
	for _, b := range m.Bcc {
		if bytes.Contains(raw, []byte(b.Email)) {
			t.Errorf("Bcc address %s appears in the message", b.Email)
		}
	}
	if got := h.Get("Mime-Version"); got != "1.0" {
		t.Errorf("MIME-Version = %q", got)
	}
	if got, want := h.Get("Message-Id"), "<"+m.MessageID+">"; got != want {
		t.Errorf("Message-ID = %q, want %q", got, want)
	}
	if got := h.Get("Date"); got != m.Date.Format(time.RFC1123Z) {
		t.Errorf("Date = %q, want RFC1123Z %q", got, m.Date.Format(time.RFC1123Z))
	}
	dec := new(mime.WordDecoder)
	if got, err := dec.DecodeHeader(h.Get("Subject")); err != nil || got != m.Subject {
		t.Errorf("Subject decodes to %q, %v; want %q", got, err, m.Subject)
	}
	checkAddressField(t, h, "From", []Address{m.From})
	checkAddressField(t, h, "To", m.To)
	checkAddressField(t, h, "Cc", m.Cc)
	if m.ReplyTo != nil {
		checkAddressField(t, h, "Reply-To", []Address{*m.ReplyTo})
	}

	// Custom headers come in the given order, duplicates included.
	var got []Header
	for _, f := range headerFields(t, raw) {
		if strings.HasPrefix(strings.ToLower(f.Name), "x-") {
			v, err := dec.DecodeHeader(strings.TrimLeft(f.Value, " "))
			if err != nil {
				t.Errorf("%s: %v", f.Name, err)
			}
			got = append(got, Header{f.Name, v})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(m.Headers) && !(len(got) == 0 && len(m.Headers) == 0) {
		t.Errorf("custom headers = %q, want %q", got, m.Headers)
	}
}

// checkAddressField parses an address field back and compares it with the A-label form of want.
func checkAddressField(t *testing.T, h netmail.Header, field string, want []Address) {
	t.Helper()
	list, err := h.AddressList(field)
	if len(want) == 0 {
		if err != netmail.ErrHeaderNotPresent {
			t.Errorf("%s: %v %v, want no field", field, list, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	if len(list) != len(want) {
		t.Fatalf("%s has %d addresses, want %d", field, len(list), len(want))
	}
	for i, w := range want {
		email, err := normalizeMailbox(w.Email)
		if err != nil {
			t.Fatal(err)
		}
		if list[i].Name != w.Name || list[i].Address != email {
			t.Errorf("%s[%d] = %q <%s>, want %q <%s>", field, i, list[i].Name, list[i].Address, w.Name, email)
		}
	}
}

// headerFields returns the unfolded header fields in order (net/mail's map loses the order).
func headerFields(t *testing.T, raw []byte) []Header {
	t.Helper()
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	var out []Header
	for _, line := range strings.Split(string(head), "\r\n") {
		if line[0] == ' ' || line[0] == '\t' {
			out[len(out)-1].Value += line
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("header line without colon: %q", line)
		}
		out = append(out, Header{name, value})
	}
	return out
}

// entity is a parsed MIME entity.
type entity struct {
	mediaType, charset, typeParam, disposition, filename, contentID string
	body                                                            []byte // decoded, leaves only
	children                                                        []*entity
}

func parseEntity(t *testing.T, h textproto.MIMEHeader, body io.Reader) *entity {
	t.Helper()
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	e := &entity{mediaType: mt, charset: params["charset"], typeParam: params["type"], contentID: h.Get("Content-Id")}
	if d := h.Get("Content-Disposition"); d != "" {
		disp, dparams, err := mime.ParseMediaType(d)
		if err != nil {
			t.Fatalf("Content-Disposition %q: %v", d, err)
		}
		e.disposition, e.filename = disp, dparams["filename"]
		// name= holds RFC 2047 encoded-words for a name that is not ASCII (appendNameParam);
		// go-mail puts them in filename= too.
		dec := new(mime.WordDecoder)
		name, err := dec.DecodeHeader(params["name"])
		if fn, _ := dec.DecodeHeader(e.filename); err != nil || name != fn {
			t.Errorf("Content-Type name %q (%v) differs from filename %q", params["name"], err, e.filename)
		}
	}
	if strings.HasPrefix(mt, "multipart/") {
		r := multipart.NewReader(body, params["boundary"])
		for {
			p, err := r.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", mt, err)
			}
			e.children = append(e.children, parseEntity(t, p.Header, p))
		}
		return e
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(raw), "\r\n") {
		if len(line) > 76 {
			t.Errorf("%s body line of %d characters (RFC 2045 §6.7, §6.8 allow 76)", mt, len(line))
		}
	}
	switch cte := h.Get("Content-Transfer-Encoding"); cte {
	case "quoted-printable":
		e.body, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
	case "base64":
		e.body, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(raw)))
	default:
		t.Fatalf("%s: Content-Transfer-Encoding %q, want quoted-printable or base64", mt, cte)
	}
	if err != nil {
		t.Fatalf("%s: decoding: %v", mt, err)
	}
	return e
}

// tree renders the structure as "multipart/x(child,child)".
func (e *entity) tree() string {
	if len(e.children) == 0 {
		return e.mediaType
	}
	parts := make([]string, len(e.children))
	for i, c := range e.children {
		parts[i] = c.tree()
	}
	return e.mediaType + "(" + strings.Join(parts, ",") + ")"
}

func (e *entity) walk(fn func(*entity)) {
	fn(e)
	for _, c := range e.children {
		c.walk(fn)
	}
}

func (e *entity) leaves() []*entity {
	if len(e.children) == 0 {
		return []*entity{e}
	}
	var out []*entity
	for _, c := range e.children {
		out = append(out, c.leaves()...)
	}
	return out
}

// wantLeaves lists the leaf parts m should produce, in tree order: text, HTML, inline parts,
// attachments. Text bodies are expected with every line end as CRLF.
func wantLeaves(t *testing.T, m Message) []*entity {
	t.Helper()
	text := m.Text
	if text == "" {
		text = htmltext.Convert(m.HTML)
	}
	out := []*entity{{mediaType: "text/plain", body: crlf(text)}}
	if m.HTML != "" {
		out = append(out, &entity{mediaType: "text/html", body: crlf(m.HTML)})
	}
	var attachments []*entity
	for _, a := range m.Attachments {
		mt := "application/octet-stream"
		if a.ContentType != "" {
			mt, _, _ = mime.ParseMediaType(a.ContentType)
		}
		e := &entity{mediaType: mt, body: a.Content, filename: a.Filename, disposition: "attachment"}
		if a.ContentID != "" {
			e.disposition, e.contentID = "inline", "<"+a.ContentID+">"
			out = append(out, e)
		} else {
			attachments = append(attachments, e)
		}
	}
	return append(out, attachments...)
}

func crlf(s string) []byte {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

func TestBuildRandomBoundaries(t *testing.T) {
	t.Parallel()
	m := buildCases()[5].msg // full_tree: three levels of multipart
	a, err := Build(m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(m)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("two Builds produced identical bytes; boundaries should be random")
	}
	boundaries := map[string]bool{}
	for line := range strings.SplitSeq(string(a), "\r\n") {
		if _, bnd, ok := strings.Cut(line, `boundary="`); ok {
			bnd = strings.TrimSuffix(bnd, `"`)
			if len(bnd) > 70 || !strings.HasPrefix(bnd, "=_") {
				t.Errorf("boundary %q: want ≤ 70 characters starting with =_ (RFC 2046 §5.1.1)", bnd)
			}
			boundaries[bnd] = true
		}
	}
	if len(boundaries) != 3 {
		t.Errorf("found %d distinct boundaries, want 3: %v", len(boundaries), boundaries)
	}
}

// TestBuildContentCannotForgeBoundary puts the delimiter lines Build would use into the bodies:
// quoted-printable encodes "=" so they cannot appear as lines.
func TestBuildContentCannotForgeBoundary(t *testing.T) {
	t.Parallel()
	m := baseMessage()
	m.Text = "--=_a_" + goldenSeed + "\r\n--=_a_" + goldenSeed + "--\r\n"
	m.HTML = "<p>\n--=_a_" + goldenSeed + "--\n</p>"
	raw, err := build(m, goldenSeed)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	root := parseEntity(t, textproto.MIMEHeader(msg.Header), msg.Body)
	if got := root.tree(); got != "multipart/alternative(text/plain,text/html)" {
		t.Fatalf("tree = %s", got)
	}
	if got := string(root.children[0].body); got != m.Text {
		t.Errorf("text = %q, want %q", got, m.Text)
	}
}

func TestBuildRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Message)
		want   string
	}{
		{"no From", func(m *Message) { m.From = Address{} }, "From: invalid address"},
		{"bad To", func(m *Message) { m.To = []Address{{Email: "a b@x.com"}} }, "To: invalid address"},
		{"bad Cc", func(m *Message) { m.Cc = []Address{{Email: "a@-x.com"}} }, "Cc: invalid address"},
		{"bad Bcc", func(m *Message) { m.Bcc = []Address{{Email: "a@"}} }, "Bcc: invalid address"},
		{"bad Reply-To", func(m *Message) { m.ReplyTo = &Address{Email: "nope"} }, "Reply-To: invalid address"},
		// RFC 5322 §2.2 / email-rules §5.3: header injection through any user-supplied value.
		{"CRLF in From name", func(m *Message) { m.From.Name = "Shop\r\nBcc: x@y.com" }, "display name contains a line break"},
		{"LF in To name", func(m *Message) { m.To[0].Name = "Ann\nX: y" }, "line break"},
		{"CRLF in subject", func(m *Message) { m.Subject = "Hi\r\nBcc: x@y.com" }, "subject: header value contains a line break"},
		{"NUL in subject", func(m *Message) { m.Subject = "Hi\x00" }, "NUL"},
		{"long subject", func(m *Message) { m.Subject = strings.Repeat("s", 999) }, "longer than 998"},
		{"forbidden header", func(m *Message) { m.Headers = []Header{{"Bcc", "x@y.com"}} }, `header "Bcc" cannot be set`},
		{"forbidden List-Unsubscribe", func(m *Message) { m.Headers = []Header{{"List-Unsubscribe", "<https://x>"}} }, "cannot be set"},
		{"header name with colon", func(m *Message) { m.Headers = []Header{{"X-A: b\r\nBcc", "v"}} }, "invalid character"},
		{"header value with LF", func(m *Message) { m.Headers = []Header{{"X-A", "v\nBcc: x@y.com"}} }, "line break"},
		{"unfoldable header", func(m *Message) { m.Headers = []Header{{"X-Long", strings.Repeat("v", 995)}} }, "longer than 998"},
		{"duplicate In-Reply-To", func(m *Message) { m.Headers = []Header{{"In-Reply-To", "<a@b>"}, {"in-reply-to", "<c@d>"}} }, "set more than once"},
		{"Feedback-ID with space", func(m *Message) { m.FeedbackID = "a b:broadcast" }, "feedback id"},
		{"Feedback-ID with CRLF", func(m *Message) { m.FeedbackID = "a\r\nBcc: x@y.com" }, "feedback id"},
		{"no Message-ID", func(m *Message) { m.MessageID = "" }, "no Message-ID"},
		{"bracketed Message-ID", func(m *Message) { m.MessageID = "<a@b.c>" }, "without angle brackets"},
		{"Message-ID without @", func(m *Message) { m.MessageID = "abc" }, "id-left@id-right"},
		{"Message-ID with space", func(m *Message) { m.MessageID = "a b@c" }, "id-left@id-right"},
		{"no Date", func(m *Message) { m.Date = time.Time{} }, "no Date"},
		{"no body", func(m *Message) {}, "neither an HTML nor a text body"},
		{"invalid UTF-8 text", func(m *Message) { m.Text = "a\xffb" }, "not valid UTF-8"},
		{"inline without HTML", func(m *Message) {
			m.Text = "x"
			m.Attachments = []Attachment{{Filename: "a.png", ContentType: "image/png", ContentID: "a@b"}}
		}, "needs an HTML body"},
		{"duplicate Content-ID", func(m *Message) {
			m.HTML = "<p>x</p>"
			m.Attachments = []Attachment{{ContentID: "a@b", ContentType: "image/png"}, {ContentID: "a@b", ContentType: "image/png"}}
		}, "duplicate Content-ID"},
		{"Content-ID with brackets", func(m *Message) {
			m.HTML = "<p>x</p>"
			m.Attachments = []Attachment{{ContentID: "<a@b>"}}
		}, "without angle brackets"},
		{"Content-ID with space", func(m *Message) {
			m.HTML = "<p>x</p>"
			m.Attachments = []Attachment{{ContentID: "a b"}}
		}, "invalid character"},
		{"attachment without name", func(m *Message) { m.Text = "x"; m.Attachments = []Attachment{{Content: []byte("x")}} }, "missing filename"},
		{"filename with CR", func(m *Message) { m.Text = "x"; m.Attachments = []Attachment{{Filename: "a\r.txt"}} }, "control character"},
		{"filename too long", func(m *Message) { m.Text = "x"; m.Attachments = []Attachment{{Filename: strings.Repeat("ü", 256)}} }, "longer than 255 characters"},
		{"bad content type", func(m *Message) {
			m.Text = "x"
			m.Attachments = []Attachment{{Filename: "a", ContentType: "not a type"}}
		}, "invalid content type"},
		{"multipart attachment", func(m *Message) {
			m.Text = "x"
			m.Attachments = []Attachment{{Filename: "a", ContentType: "multipart/mixed; boundary=x"}}
		}, "cannot be attached"},
		{"message attachment", func(m *Message) {
			m.Text = "x"
			m.Attachments = []Attachment{{Filename: "a.eml", ContentType: "message/rfc822"}}
		}, "cannot be attached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := baseMessage()
			tt.modify(&m)
			if tt.name != "no body" && m.Text == "" && m.HTML == "" {
				m.Text = "body"
			}
			got, err := Build(m)
			if err == nil {
				t.Fatalf("Build succeeded, want error containing %q:\n%s", tt.want, got)
			}
			if got != nil {
				t.Errorf("Build returned %d bytes with the error", len(got))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestBuildNormalisesAddresses checks that a hand-made Address gets A-labels (email-rules §5.5).
func TestBuildNormalisesAddresses(t *testing.T) {
	t.Parallel()
	m := baseMessage()
	m.From = Address{Email: "news@bücher.de"}
	m.To = []Address{{Email: "ann@例え.jp"}}
	m.Text = "x"
	raw, err := Build(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"From: <news@xn--bcher-kva.de>\r\n", "To: <ann@xn--r8jz45g.jp>\r\n"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("missing %q in\n%s", want, raw)
		}
	}
}

func TestBuildOmitsEmptySubject(t *testing.T) {
	t.Parallel()
	m := baseMessage()
	m.Subject = ""
	m.Text = "x"
	raw, err := Build(m)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("Subject:")) {
		t.Errorf("empty Subject written:\n%s", raw)
	}
}

func TestRecipients(t *testing.T) {
	t.Parallel()
	m := Message{
		To:  []Address{{Email: "a@x.com"}, {Email: "B@x.com"}, {Email: "a@x.com"}},
		Cc:  []Address{{Email: "b@X.com"}, {Email: "c@x.com"}, {Email: ""}},
		Bcc: []Address{{Email: "A@X.COM"}, {Email: "d@x.com"}},
	}
	got := m.Recipients()
	want := []string{"a@x.com", "B@x.com", "c@x.com", "d@x.com"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Recipients() = %q, want %q", got, want)
	}
	if got := (Message{}).Recipients(); len(got) != 0 {
		t.Errorf("Recipients() of an empty message = %q", got)
	}
}

// FuzzBuildHeaders feeds arbitrary Subject, display name and custom header value to Build: when
// Build accepts them, the header section must have exactly the fields Build writes (no
// injection) and must decode back to the input.
func FuzzBuildHeaders(f *testing.F) {
	f.Add("Your order", "Shop", "A-1")
	f.Add("Grüße 👋", "Müller, Hans", "wert")
	f.Add("a\r\nBcc: x@y.com", "n\nX: y", "v\rw")
	f.Add("=?utf-8?q?x?=", `"q" \`, strings.Repeat("x ", 300))
	f.Fuzz(func(t *testing.T, subject, name, value string) {
		m := baseMessage()
		m.Subject, m.From.Name, m.Text = subject, name, "x"
		m.Headers = []Header{{"X-Fuzz", value}}
		raw, err := Build(m)
		if err != nil {
			return
		}
		var names []string
		for _, h := range headerFields(t, raw) {
			names = append(names, h.Name)
		}
		want := "[From To Subject Date Message-ID X-Fuzz MIME-Version Content-Type Content-Transfer-Encoding]"
		if subject == "" {
			want = strings.Replace(want, "Subject ", "", 1)
		}
		if fmt.Sprint(names) != want {
			t.Fatalf("fields %v, want %s", names, want)
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		// net/textproto collapses the whitespace around folds, so compare words.
		words := func(s string) string { return strings.Join(strings.Fields(s), " ") }
		dec := new(mime.WordDecoder)
		if got, err := dec.DecodeHeader(msg.Header.Get("Subject")); err != nil || words(got) != words(subject) {
			t.Fatalf("Subject %q decodes to %q, %v", subject, got, err)
		}
		from, err := msg.Header.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Address != m.From.Email || words(from[0].Name) != words(name) {
			t.Fatalf("From with name %q parses to %v, %v", name, from, err)
		}
	})
}

func benchMessage() Message {
	m := baseMessage()
	m.Text = "Hello Ann,\n\nyour order A-1 has shipped and will arrive on Tuesday.\nTrack it at https://shop.example/orders/A-1\n\nThanks for shopping with us!\n"
	m.HTML = `<!doctype html><html><body><p>Hello Ann,</p><p>your order <b>A-1</b> has shipped and will arrive on Tuesday.</p>` +
		`<p><a href="https://shop.example/orders/A-1">Track it</a></p><p>Thanks for shopping with us!</p>` +
		`<p style="font-size:12px;color:#888">Shop Inc, 1 Main St, Springfield</p></body></html>`
	m.Headers = []Header{{"X-Order", "A-1"}}
	return m
}

// BenchmarkBuild measures Build for a small text+HTML message, as on the HTTP accept path.
func BenchmarkBuild(b *testing.B) {
	m := benchMessage()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildHTMLOnly adds the cost of generating the text part from HTML.
func BenchmarkBuildHTMLOnly(b *testing.B) {
	m := benchMessage()
	m.Text = ""
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAddress(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAddress(`"Ann Example" <ann@example.com>`); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAttachmentNameForms checks the forms an attachment's name is written in: in
// Content-Disposition, filename="…" for ASCII and the RFC 2231 extended form alone otherwise
// (numbered sections when long, each line within 76 characters, split between characters); in
// Content-Type, name="…" with RFC 2047 encoded-words when not ASCII. Go's mime package reads
// both back exactly.
func TestAttachmentNameForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		sections bool // filename*0*=…
	}{
		{"résumé 2026.txt", false},
		{"invoice.pdf", false},
		{`odd "name".csv`, false},
		{"=?utf-8?q?looks_encoded?=.txt", false},
		{strings.Repeat("가나다라마바사아자차", 12) + ".txt", true},
		{strings.Repeat("ü", 255), true},
		{strings.Repeat("👋", 255), true},
		{"Übersicht der Bestellungen für das Geschäftsjahr 2026 – endgültige Fassung.pdf", true},
		// ASCII, quoted: longer than a line, and not folded inside the quotes.
		{"Quarterly report for the board of directors meeting in March 2026, final version.pdf", false},
	} {
		t.Run(tc.name[:min(len(tc.name), 20)], func(t *testing.T) {
			t.Parallel()
			m := baseMessage()
			m.Text = "x"
			m.Attachments = []Attachment{{Filename: tc.name, ContentType: "text/plain", Content: []byte("x")}}
			raw, err := build(m, goldenSeed)
			if err != nil {
				t.Fatal(err)
			}
			part := raw[bytes.LastIndex(raw, []byte("--=_m_golden\r\n")):]
			head := string(part[:bytes.Index(part, []byte("\r\n\r\n"))])
			ascii := !needsEncoding(tc.name)
			for _, line := range strings.Split(head, "\r\n") {
				if len(line) > 76 && !ascii {
					t.Errorf("header line of %d characters: %q", len(line), line)
				}
			}
			h, err := textproto.NewReader(bufio.NewReader(strings.NewReader(head[strings.Index(head, "\n")+1:] + "\r\n\r\n"))).ReadMIMEHeader()
			if err != nil {
				t.Fatal(err)
			}
			cd, ct := h.Get("Content-Disposition"), h.Get("Content-Type")
			_, dparams, err := mime.ParseMediaType(cd)
			if err != nil || dparams["filename"] != tc.name {
				t.Errorf("Content-Disposition %q: filename %q (%v), want %q", cd, dparams["filename"], err, tc.name)
			}
			if ascii && (!strings.Contains(head, string(appendQuoted(nil, tc.name))) || strings.Contains(head, "name*")) {
				t.Errorf("header %q: want the name quoted on one line", head)
			}
			if strings.Contains(cd, `filename="`) != ascii || strings.Contains(cd, "filename*0*=") != tc.sections {
				t.Errorf("Content-Disposition %q: want filename=\"…\" %v, sections %v", cd, ascii, tc.sections)
			}
			_, params, err := mime.ParseMediaType(ct)
			name, derr := new(mime.WordDecoder).DecodeHeader(params["name"])
			if err != nil || derr != nil || name != tc.name || strings.Contains(ct, "name*") {
				t.Errorf("Content-Type %q: name %q (%v, %v), want %q as encoded-words", ct, name, err, derr, tc.name)
			}
		})
	}
}
