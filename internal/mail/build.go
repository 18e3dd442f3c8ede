package mail

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"mime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/htmltext"
)

const (
	maxFilename  = 255 // characters: the common file-system limit
	maxMessageID = 500
	maxContentID = 250
	b64LineIn    = 57 // octets per base64 line: 57 → 76 characters (RFC 2045 §6.8)
)

// Build renders m as an RFC 5322 message with MIME (RFC 2045–2049), ready for SMTP DATA: CRLF
// line ends only, every line within 998 octets, 7-bit clean. See the package documentation for
// the MIME tree.
//
// The header section is From, To, Cc, Reply-To, Subject (RFC 2047-encoded when not ASCII),
// Date, Message-ID, the custom headers in order (non-ASCII values RFC 2047-encoded as
// unstructured text), and MIME-Version. Bcc is never written. An empty Subject is omitted.
//
// Build validates everything it writes again: addresses (converting domains to A-labels),
// display names, Subject, custom header names and values (forbidden names, controls, length,
// duplicate In-Reply-To or References), Message-ID, Date, attachment names, types and
// Content-IDs, and that the bodies are UTF-8. Any problem returns an error and no bytes.
// It uses crypto/rand for the multipart boundaries and is safe for concurrent use.
func Build(m Message) ([]byte, error) {
	var seed [15]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	return build(m, idEncoding.EncodeToString(seed[:]))
}

// build is Build with the boundary seed given, so that tests get deterministic output.
func build(m Message, seed string) ([]byte, error) {
	p, err := prepare(m)
	if err != nil {
		return nil, err
	}
	w := writer{seed: seed}
	w.buf = make([]byte, 0, p.sizeHint())

	w.field("From", p.from.String())
	if len(p.to) > 0 {
		w.field("To", joinAddresses(p.to))
	}
	if len(p.cc) > 0 {
		w.field("Cc", joinAddresses(p.cc))
	}
	if p.replyTo != nil {
		w.field("Reply-To", p.replyTo.String())
	}
	if m.Subject != "" {
		w.field("Subject", encodeUnstructured("Subject", m.Subject, needsEncoding(m.Subject)))
	}
	w.field("Date", m.Date.Format(time.RFC1123Z))
	w.field("Message-ID", "<"+m.MessageID+">")
	if l := m.List; l != nil {
		if l.ID != "" {
			w.field("List-Id", "<"+l.ID+">")
		}
		if len(l.Unsubscribe) > 0 {
			w.field("List-Unsubscribe", "<"+strings.Join(l.Unsubscribe, ">, <")+">")
		}
		if l.OneClick {
			w.field("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
		}
	}
	if m.FeedbackID != "" {
		w.field("Feedback-ID", m.FeedbackID)
	}
	for _, h := range m.Headers {
		w.field(h.Name, encodeUnstructured(h.Name, h.Value, !isASCII(h.Value)))
	}
	w.field("MIME-Version", "1.0")

	w.root(p)
	if w.err != nil {
		return nil, w.err
	}
	if n := len(w.buf); w.buf[n-2] != '\r' || w.buf[n-1] != '\n' {
		// A single text part may end without a line break; DATA must end with CRLF (RFC 5321
		// §4.1.1.4), and adding it here keeps DKIM's body hash independent of the SMTP client.
		w.str("\r\n")
	}
	return w.buf, nil
}

// prepared is a validated Message with normalised addresses and the generated text.
type prepared struct {
	from            Address
	to, cc          []Address
	replyTo         *Address
	text, html      string
	inline, attachs []part
}

// part is a checked attachment with its Content-Type value.
type part struct {
	Attachment
	contentType string
}

func prepare(m Message) (prepared, error) {
	var p prepared
	var err error
	if p.from, err = checkAddress("From", m.From); err != nil {
		return p, err
	}
	if p.to, err = checkAddresses("To", m.To); err != nil {
		return p, err
	}
	if p.cc, err = checkAddresses("Cc", m.Cc); err != nil {
		return p, err
	}
	if _, err = checkAddresses("Bcc", m.Bcc); err != nil {
		return p, err
	}
	if m.ReplyTo != nil {
		r, err := checkAddress("Reply-To", *m.ReplyTo)
		if err != nil {
			return p, err
		}
		p.replyTo = &r
	}
	if err := CheckHeaderValue(m.Subject); err != nil {
		return p, fmt.Errorf("subject: %w", err)
	}
	if strings.IndexFunc(m.FeedbackID, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return p, fmt.Errorf("feedback id %q: want printable ASCII without spaces", m.FeedbackID)
	}
	if err := checkMessageID(m.MessageID); err != nil {
		return p, err
	}
	if m.Date.IsZero() {
		return p, fmt.Errorf("message has no Date")
	}
	if err := checkCustomHeaders(m.Headers); err != nil {
		return p, err
	}
	if err := checkList(m.List); err != nil {
		return p, err
	}

	if m.HTML == "" && m.Text == "" {
		return p, fmt.Errorf("message has neither an HTML nor a text body")
	}
	if !utf8.ValidString(m.HTML) {
		return p, fmt.Errorf("HTML body is not valid UTF-8")
	}
	if !utf8.ValidString(m.Text) {
		return p, fmt.Errorf("text body is not valid UTF-8")
	}
	p.text, p.html = m.Text, m.HTML
	if p.text == "" {
		p.text = htmltext.Convert(m.HTML)
	}

	cids := make(map[string]bool)
	for i, a := range m.Attachments {
		ct, err := checkAttachment(a)
		if err != nil {
			return p, fmt.Errorf("attachment %d: %w", i, err)
		}
		if a.ContentID == "" {
			p.attachs = append(p.attachs, part{a, ct})
			continue
		}
		if m.HTML == "" {
			return p, fmt.Errorf("attachment %d: inline attachment (Content-ID %q) needs an HTML body", i, a.ContentID)
		}
		if cids[a.ContentID] {
			return p, fmt.Errorf("attachment %d: duplicate Content-ID %q", i, a.ContentID)
		}
		cids[a.ContentID] = true
		p.inline = append(p.inline, part{a, ct})
	}
	return p, nil
}

// sizeHint estimates the encoded size, so that the output is allocated once in the common case.
func (p *prepared) sizeHint() int {
	n := 1024 + (len(p.text)+len(p.html))*11/10
	for _, list := range [...][]part{p.inline, p.attachs} {
		for _, a := range list {
			n += 512 + (len(a.Content)+2)/3*4*78/76
		}
	}
	return n
}

func checkAddress(field string, a Address) (Address, error) {
	email, err := normalizeMailbox(a.Email)
	if err != nil {
		return a, fmt.Errorf("%s: %w", field, addrError(a.Email, err.Error()))
	}
	if err := checkDisplayName(a.Name); err != nil {
		return a, fmt.Errorf("%s: %w", field, addrError(a.Email, err.Error()))
	}
	return Address{Name: a.Name, Email: email}, nil
}

func checkAddresses(field string, list []Address) ([]Address, error) {
	out := make([]Address, len(list))
	for i, a := range list {
		var err error
		if out[i], err = checkAddress(field, a); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkMessageID enforces RFC 5322 §3.6.4 msg-id without brackets: id-left "@" id-right, both
// dot-atom-text (the no-fold-literal form of id-right is not accepted).
func checkMessageID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("message has no Message-ID")
	case len(id) > maxMessageID:
		return fmt.Errorf("Message-ID is longer than %d octets", maxMessageID)
	case strings.ContainsAny(id, "<>"):
		return fmt.Errorf("Message-ID %q must be given without angle brackets", id)
	}
	left, right, ok := strings.Cut(id, "@")
	if !ok || !isDotAtomText(left) || !isDotAtomText(right) {
		return fmt.Errorf("Message-ID %q is not of the form id-left@id-right (RFC 5322 §3.6.4)", id)
	}
	return nil
}

func isDotAtomText(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !isAtext(s[i]) {
			return false
		}
	}
	return true
}

// singleInstance are the RFC 5322 §3.6 fields that callers may set but only once.
var singleInstance = [...]string{"in-reply-to", "references"}

func checkCustomHeaders(hs []Header) error {
	for i, h := range hs {
		if err := CheckHeaderName(h.Name); err != nil {
			return fmt.Errorf("header %d: %w", i, err)
		}
		if err := CheckHeaderValue(h.Value); err != nil {
			return fmt.Errorf("header %s: %w", h.Name, err)
		}
		for _, s := range singleInstance {
			if !strings.EqualFold(h.Name, s) {
				continue
			}
			for _, prev := range hs[:i] {
				if strings.EqualFold(prev.Name, s) {
					return fmt.Errorf("header %s: set more than once", h.Name)
				}
			}
		}
	}
	return nil
}

// checkAttachment validates a and returns its Content-Type value.
func checkAttachment(a Attachment) (string, error) {
	switch {
	case a.Filename == "" && a.ContentID == "":
		return "", fmt.Errorf("missing filename")
	case !utf8.ValidString(a.Filename):
		return "", fmt.Errorf("filename is not valid UTF-8")
	case utf8.RuneCountInString(a.Filename) > maxFilename:
		return "", fmt.Errorf("filename is longer than %d characters", maxFilename)
	}
	for i := 0; i < len(a.Filename); i++ {
		if c := a.Filename[i]; c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("filename %q contains control character %#02x", a.Filename, c)
		}
	}
	ct, err := attachmentType(a)
	if err != nil {
		return "", err
	}
	if a.ContentID != "" {
		if len(a.ContentID) > maxContentID {
			return "", fmt.Errorf("Content-ID is longer than %d octets", maxContentID)
		}
		if strings.ContainsAny(a.ContentID, "<>") {
			return "", fmt.Errorf("Content-ID %q must be given without angle brackets", a.ContentID)
		}
		for i := 0; i < len(a.ContentID); i++ {
			if c := a.ContentID[i]; c != '.' && c != '@' && !isAtext(c) {
				return "", fmt.Errorf("Content-ID %q contains invalid character %q", a.ContentID, c)
			}
		}
	}
	return ct, nil
}

// attachmentType returns the Content-Type value of an attachment: its media type and parameters
// as given, plus name= with the filename (appendNameParam).
func attachmentType(a Attachment) (string, error) {
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	if err := CheckHeaderValue(ct); err != nil {
		return "", fmt.Errorf("content type: %w", err)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("invalid content type %q: %v", ct, strings.TrimPrefix(err.Error(), "mime: "))
	}
	if !strings.Contains(mt, "/") {
		return "", fmt.Errorf("invalid content type %q: missing subtype", ct)
	}
	if strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
		// Both need their own structure or encoding rules (RFC 2046 §5); base64 of them is invalid.
		return "", fmt.Errorf("content type %q cannot be attached", mt)
	}
	out := []byte(mt)
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "name" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = appendParam(out, k, params[k])
	}
	if a.Filename != "" {
		out = appendNameParam(out, a.Filename)
	}
	return string(out), nil
}

// appendParam appends the parameter key=value: `; key="value"` when value is ASCII, else in the
// RFC 2231 extended form alone (charset utf-8, empty language, percent-encoded octets), in one
// piece or, when that does not fit a line, in numbered sections (§3, §4.1) that each do, split
// between whole characters:
//
//	; filename*=utf-8''r%C3%A9sum%C3%A9.txt
//	; filename*0*=utf-8''%EA%B0%80…; filename*1*=%EB%82%98…
//
// There is no ASCII
// fallback beside it: a reader that knows RFC 2231 would not need one, and one that finds both
// may take the fallback (Python's email does). A value holding "=?" takes the extended form too,
// since readers decode encoded-words in quoted parameters.
func appendParam(dst []byte, key, value string) []byte {
	dst = append(dst, "; "...)
	if !needsEncoding(value) {
		dst = append(dst, key...)
		dst = append(dst, '=')
		return appendQuoted(dst, value)
	}
	const hex = "0123456789ABCDEF"
	const charset = "utf-8''"
	// A section's line: a space, key, "*NN*=", the octets and ";".
	limit := foldAt - len(" ") - len(key) - len("*00*=") - len(";")
	sections := [][]byte{[]byte(charset)}
	for i := 0; i < len(value); {
		_, size := utf8.DecodeRuneInString(value[i:])
		var enc []byte
		for _, c := range []byte(value[i : i+size]) {
			if isAlnum(c) || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
				enc = append(enc, c)
			} else {
				enc = append(enc, '%', hex[c>>4], hex[c&0x0f])
			}
		}
		last := &sections[len(sections)-1]
		if len(*last)+len(enc) > limit && len(*last) > len(charset) {
			sections = append(sections, nil)
			last = &sections[len(sections)-1]
		}
		*last = append(*last, enc...)
		i += size
	}
	if len(sections) == 1 {
		dst = append(dst, key...)
		dst = append(dst, "*="...)
		return append(dst, sections[0]...)
	}
	for i, sec := range sections {
		if i > 0 {
			dst = append(dst, "; "...)
		}
		dst = fmt.Appendf(dst, "%s*%d*=", key, i)
		dst = append(dst, sec...)
	}
	return dst
}

// appendNameParam appends the name parameter of an attachment's Content-Type (RFC 2046
// §4.5.1; RFC 2183 moved the file name to Content-Disposition, but old clients such as Outlook
// still read this one): `; name="…"`, with RFC 2047 encoded-words inside the quotes when the
// name is not ASCII. RFC 2047 §5 forbids encoded-words in a quoted-string, but that is what
// Thunderbird, Gmail and Apple Mail write and what Outlook and Python's email read; a reader that
// knows RFC 2231 takes the name from Content-Disposition first. The words are sized so that
// each line of the folded field stays within 76 characters.
func appendNameParam(dst []byte, name string) []byte {
	dst = append(dst, `; name=`...)
	if !needsEncoding(name) {
		return appendQuoted(dst, name)
	}
	dst = append(dst, '"')
	dst = appendEncodedWords(dst, name, foldAt-len(` name="`), foldAt-len(` "`))
	return append(dst, '"')
}

// appendQuoted appends an RFC 5322 §3.2.4 quoted-string.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

func joinAddresses(list []Address) string {
	var sb strings.Builder
	for i, a := range list {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(a.String())
	}
	return sb.String()
}

// encodeUnstructured returns v as it goes into the unstructured field name: as is, or as RFC
// 2047 encoded-words when encode is set, the first of them on the field's first line.
func encodeUnstructured(name, v string, encode bool) string {
	if !encode {
		return v
	}
	return string(appendEncodedWords(nil, v, firstWord(name), maxEncodedWord))
}

// writer accumulates the message. The first error sticks and stops further output.
type writer struct {
	buf  []byte
	seed string
	err  error
}

func (w *writer) field(name, value string) {
	if w.err != nil {
		return
	}
	w.buf, w.err = appendField(w.buf, name, value)
}

// mimeField is field for Content-Type and Content-Disposition (appendMIMEField).
func (w *writer) mimeField(name, value string) {
	if w.err != nil {
		return
	}
	w.buf, w.err = appendMIMEField(w.buf, name, value)
}

func (w *writer) str(s string) { w.buf = append(w.buf, s...) }

// root writes the top-level entity: from its Content-Type header to the end of the message.
func (w *writer) root(p prepared) {
	if len(p.attachs) == 0 {
		w.content(p)
		return
	}
	b := w.openMultipart("mixed", "")
	w.delimiter(b, true)
	w.content(p)
	for _, a := range p.attachs {
		w.delimiter(b, false)
		w.attachment(a, "attachment")
	}
	w.closeMultipart(b)
}

// content writes the readable part: text/plain alone, or multipart/alternative with the HTML
// (wrapped in multipart/related when there are inline parts) last, as RFC 2046 §5.1.4 asks.
func (w *writer) content(p prepared) {
	if p.html == "" {
		w.textPart("text/plain", p.text)
		return
	}
	alt := w.openMultipart("alternative", "")
	w.delimiter(alt, true)
	w.textPart("text/plain", p.text)
	w.delimiter(alt, false)
	if len(p.inline) == 0 {
		w.textPart("text/html", p.html)
	} else {
		// RFC 2387 §3.1: type names the root part's type.
		rel := w.openMultipart("related", `; type="text/html"`)
		w.delimiter(rel, true)
		w.textPart("text/html", p.html)
		for _, a := range p.inline {
			w.delimiter(rel, false)
			w.attachment(a, "inline")
		}
		w.closeMultipart(rel)
	}
	w.closeMultipart(alt)
}

// openMultipart writes the Content-Type of a multipart entity and the blank line after its
// headers, and returns its boundary. "=_" cannot occur in quoted-printable or base64 output,
// so the boundary cannot occur in any part (RFC 2046 §5.1.1).
func (w *writer) openMultipart(subtype, params string) string {
	boundary := "=_" + subtype[:1] + "_" + w.seed
	w.field("Content-Type", "multipart/"+subtype+params+`; boundary="`+boundary+`"`)
	w.str("\r\n")
	return boundary
}

// delimiter starts a body part. The CRLF before "--" belongs to the delimiter (RFC 2046 §5.1.1).
func (w *writer) delimiter(boundary string, first bool) {
	if !first {
		w.str("\r\n")
	}
	w.str("--")
	w.str(boundary)
	w.str("\r\n")
}

func (w *writer) closeMultipart(boundary string) {
	w.str("\r\n--")
	w.str(boundary)
	w.str("--\r\n")
}

// textPart writes a text/* entity in quoted-printable (appendQuotedPrintable), which turns
// CRLF, bare LF and bare CR into CRLF, soft-breaks lines at 76 characters and encodes trailing
// whitespace.
func (w *writer) textPart(mediaType, body string) {
	w.field("Content-Type", mediaType+"; charset=utf-8")
	w.field("Content-Transfer-Encoding", "quoted-printable")
	w.str("\r\n")
	w.buf = appendQuotedPrintable(w.buf, body)
}

// attachment writes a base64 entity with 76-character lines (RFC 2045 §6.8).
func (w *writer) attachment(a part, disposition string) {
	w.mimeField("Content-Type", a.contentType)
	w.field("Content-Transfer-Encoding", "base64")
	d := []byte(disposition)
	if a.Filename != "" {
		d = appendParam(d, "filename", a.Filename)
	}
	w.mimeField("Content-Disposition", string(d))
	if a.ContentID != "" {
		w.field("Content-ID", "<"+a.ContentID+">")
	}
	w.str("\r\n")
	if len(a.Content) > 0 {
		w.buf = appendBase64Lines(w.buf, a.Content)
		w.str("\r\n")
	}
}

// appendBase64Lines appends src in base64 in lines of 76 characters (RFC 2045 §6.8) separated
// by CRLF, the last without its line end.
func appendBase64Lines(dst, src []byte) []byte {
	for first := true; len(src) > 0; first = false {
		if !first {
			dst = append(dst, "\r\n"...)
		}
		n := min(len(src), b64LineIn)
		dst = base64.StdEncoding.AppendEncode(dst, src[:n])
		src = src[n:]
	}
	return dst
}

// CheckAttachment reports whether Build would accept a: its filename, content type and
// Content-ID. The error names the offending part.
func CheckAttachment(a Attachment) error {
	_, err := checkAttachment(a)
	return err
}

// checkList checks the list fields Build writes: a dot-atom List-Id, and URIs of printable ASCII
// without the characters that delimit them in List-Unsubscribe; one-click needs an https URI
// (RFC 8058 §3.1).
func checkList(l *List) error {
	if l == nil {
		return nil
	}
	if l.ID != "" && (!isDotAtomText(l.ID) || !strings.Contains(l.ID, ".") || len(l.ID) > 500) {
		return fmt.Errorf("List-Id %q is not a dot-atom like label.example.com", l.ID)
	}
	https := false
	for _, u := range l.Unsubscribe {
		if u == "" || len(u) > 900 || strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '<' || r == '>' || r == ',' }) {
			return fmt.Errorf("List-Unsubscribe URI %q: want printable ASCII without spaces, '<', '>' or ','", u)
		}
		https = https || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")
	}
	if l.OneClick && !https {
		return fmt.Errorf("List-Unsubscribe-Post needs an http(s) List-Unsubscribe URI")
	}
	return nil
}
