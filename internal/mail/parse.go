package mail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	message "github.com/emersion/go-message"
)

// Bounds of what ParseReport keeps from one report. The caller bounds the message's size; these
// bound the work and the size of what a report can put into a row or a webhook.
const (
	maxReportDepth      = 8       // nesting of multipart and message parts
	maxReportParts      = 64      // parts visited in all
	maxReportPartBytes  = 1 << 20 // read from one machine-readable part
	maxReportTextBytes  = 1 << 18 // human-readable text kept for the text-bounce patterns
	maxReportRecipients = 1000    // DSN recipient blocks
	maxReportField      = 1000    // bytes of one field value
)

// ErrNotMessage is returned by ParseReport for input that is not an RFC 5322 message at all.
var ErrNotMessage = errors.New("mail: not a message")

// ParseReport reads one RFC 5322 message received at a bounce address and says what it
// reports. The caller bounds its size (ParseReport reads it whole).
//
// The kind is decided in this order:
//
//  1. A delivery-status part (message/delivery-status, or RFC 6533's
//     message/global-delivery-status), anywhere in the MIME tree, makes a ReportDSN with every
//     recipient block (RFC 3464); a message/feedback-report part makes a ReportARF (RFC 5965).
//     Structure wins over headers because MTAs mark their DSNs "Auto-Submitted: auto-replied"
//     (Postfix and Exim do). A report part from which no recipient (DSN) or no Feedback-Type
//     (ARF) can be read is malformed: ReportUnknown with what could be read. So is a
//     multipart/report of one of those report-types in which no report part can be read: it is
//     never taken for a text bounce.
//  2. An automatic reply (RFC 3834 Auto-Submitted other than "no", X-Autoreply, X-Autorespond,
//     Precedence: auto_reply, or a vacation subject such as "Out of Office" or
//     "Automatic reply") makes a ReportAutoReply, unless the mail system wrote it (a
//     MAILER-DAEMON or postmaster sender, an X-Failed-Recipients header, or a bounce text
//     signature): an auto-reply is never a bounce.
//  3. A non-standard bounce: a known bounce signature in the text (qmail, Exim, Postfix,
//     Sendmail, Exchange, Gmail, Yahoo), or a bounce-like sender or subject together with a
//     status code or a failure text, makes a ReportText with one recipient: the address the
//     text names (X-Failed-Recipients, qmail's "<address>:" line, else the first address of the
//     text that is neither the report's sender nor a mail-system mailbox). Its status is the
//     first enhanced status code of the text ([45].d.d; a success code counts for nothing),
//     its diagnostic the line holding the reply, its Action "delayed" when the text says the
//     sender keeps trying (and the code is not 5.x.x), else "failed". The recipient is "" when
//     the text names none.
//  4. Anything else is ReportUnknown.
//
// The original message's Message-ID, Return-Path and To come from the first message/rfc822,
// message/global, text/rfc822-headers or message/global-headers part, else (text bounces) from
// the header block quoted in the text; ARF's Original-Mail-From and Original-Rcpt-To and
// Microsoft's X-HmXmrOriginalRecipient (in the returned headers or the report's own) fill
// Feedback, which may be set, partly, on a report of another kind: check Kind.
//
// Every recipient whose Action is "failed" has its Class (BounceClass); others have none.
//
// ParseReport returns an error only when reading fails or the input is not a message at all
// (empty, or no header field before the first blank line; header lines that are not fields are
// skipped); it never panics on malformed input. Values are
// valid UTF-8 without control characters, each at most 1000 bytes; at most 1000 DSN recipients
// are kept.
func ParseReport(r io.Reader) (*Report, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("mail: reading the report: %w", err)
	}
	return parseReport(data)
}

func parseReport(data []byte) (*Report, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrNotMessage)
	}
	ent, err := message.Read(bytes.NewReader(data))
	if ent == nil {
		// A header line go-message refuses (no colon, a space in the name): drop such lines
		// and read again, so one broken line does not hide the report.
		repaired, ok := repairHeader(data)
		if !ok {
			return nil, fmt.Errorf("%w: %v", ErrNotMessage, err)
		}
		if ent, _ = message.Read(bytes.NewReader(repaired)); ent == nil {
			return nil, fmt.Errorf("%w: %v", ErrNotMessage, err)
		}
	}
	if ent.Header.Len() == 0 {
		return nil, fmt.Errorf("%w: no header fields", ErrNotMessage)
	}
	p := &reportParser{rep: &Report{Kind: ReportUnknown}, top: ent.Header}
	p.rep.Subject = headerText(ent.Header, "Subject")
	p.rep.From = headerText(ent.Header, "From")
	if mediaType, params, err := ent.Header.ContentType(); err == nil && mediaType == "multipart/report" {
		switch strings.ToLower(params["report-type"]) {
		case "delivery-status", "global-delivery-status", "feedback-report":
			p.claimsReport = true
		}
	}
	if v := ent.Header.Get("X-HmXmrOriginalRecipient"); v != "" {
		p.feedback().addRcpt(bareAddress(v))
	}
	p.walk(ent, 0)
	p.decide()
	return p.rep, nil
}

// repairHeader returns data with the lines of its header section that are neither fields nor
// continuations dropped; false when no field is left.
func repairHeader(data []byte) ([]byte, bool) {
	var out []byte
	fields := 0
	rest := data
	for len(rest) > 0 {
		line, after, found := bytes.Cut(rest, []byte("\n"))
		trimmed := bytes.TrimRight(line, "\r")
		if len(trimmed) == 0 {
			break // the end of the header section
		}
		rest = after
		if !found {
			rest = nil
		}
		if trimmed[0] == ' ' || trimmed[0] == '\t' {
			if fields > 0 {
				out = append(append(out, trimmed...), '\r', '\n')
			}
			continue
		}
		if name, _, ok := bytes.Cut(trimmed, []byte(":")); ok && isFieldName(string(name)) {
			out = append(append(out, trimmed...), '\r', '\n')
			fields++
		}
	}
	if fields == 0 {
		return nil, false
	}
	return append(out, rest...), true
}

// reportParser collects what the parts of one report say.
type reportParser struct {
	rep   *Report
	top   message.Header
	parts int

	claimsReport bool // the top Content-Type is a multipart/report of a known report-type
	dsn          bool // a delivery-status part was seen
	arf          bool // a feedback-report part was seen
	original     bool // the original headers were read from a part

	text []byte // human-readable text/plain, in order
	html []byte // text/html, used when there is no plain text
}

func (p *reportParser) walk(ent *message.Entity, depth int) {
	p.parts++
	mediaType, params, err := ent.Header.ContentType()
	if err != nil {
		mediaType = "text/plain"
	}
	if mr := ent.MultipartReader(); mr != nil {
		if params["boundary"] == "" {
			p.collect(ent.Body, "text/plain")
			return
		}
		for depth < maxReportDepth && p.parts < maxReportParts {
			part, _ := mr.NextPart() // an unknown charset or encoding still gives a part
			if part == nil {
				return // the end, or a part that cannot be read: keep what was read
			}
			p.walk(part, depth+1)
		}
		return
	}
	switch mediaType {
	case "message/delivery-status", "message/global-delivery-status":
		p.dsn = true
		p.deliveryStatus(readPart(ent.Body))
	case "message/feedback-report":
		p.arf = true
		p.feedbackReport(readPart(ent.Body))
	case "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers":
		if fields := lenientFields(readPart(ent.Body), true); !p.original && len(fields) > 0 {
			p.original = true
			p.originalHeaders(fields)
		}
	case "text/plain", "text/html":
		body := ent.Body // go-message decodes UTF-8 and US-ASCII, and leaves other charsets as they are
		if d := charsetDecoder(params["charset"]); d != nil {
			body = d.Reader(body)
		}
		p.collect(body, mediaType)
	}
}

// collect keeps human-readable text for the text-bounce patterns, bounded.
func (p *reportParser) collect(body io.Reader, mediaType string) {
	dst := &p.text
	if mediaType == "text/html" {
		dst = &p.html
	}
	room := maxReportTextBytes - len(*dst)
	if room <= 0 {
		return
	}
	b, _ := io.ReadAll(io.LimitReader(body, int64(room)))
	if len(*dst) > 0 {
		*dst = append(*dst, '\n')
	}
	*dst = append(*dst, b...)
}

func readPart(body io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(body, maxReportPartBytes))
	return b
}

// deliveryStatus reads the fields of an RFC 3464 delivery-status body: the per-message fields,
// then one block per recipient. Blocks are separated by blank lines; for MTAs that leave the
// blank line out, a second Final-Recipient, or an Original-Recipient after a recipient's other
// fields, also starts a new block.
func (p *reportParser) deliveryStatus(body []byte) {
	var cur *DSNRecipient
	hasBody := false // cur has a field other than its addresses
	flush := func() {
		hasBody = false
		if cur == nil {
			return
		}
		if cur.FinalRecipient == "" {
			cur.FinalRecipient = cur.OriginalRecipient
		}
		if cur.FinalRecipient != "" && len(p.rep.Recipients) < maxReportRecipients {
			p.rep.Recipients = append(p.rep.Recipients, finishRecipient(*cur))
		}
		cur = nil
	}
	for _, f := range dsnFields(body) {
		if f.name == "" { // end of a block
			flush()
			continue
		}
		switch f.name {
		case "reporting-mta":
			if p.rep.ReportingMTA == "" {
				p.rep.ReportingMTA = typedValue(f.value)
			}
			continue
		case "original-envelope-id":
			if p.rep.OriginalEnvelopeID == "" {
				p.rep.OriginalEnvelopeID = clean(f.value)
			}
			continue
		case "final-recipient":
			if cur != nil && cur.FinalRecipient != "" {
				flush()
			}
		case "original-recipient":
			if cur != nil && (cur.OriginalRecipient != "" || (cur.FinalRecipient != "" && hasBody)) {
				flush()
			}
		case "action", "status", "diagnostic-code", "remote-mta":
			hasBody = true
		default:
			continue
		}
		if cur == nil {
			cur = &DSNRecipient{}
		}
		switch f.name {
		case "original-recipient":
			cur.OriginalRecipient = bareAddress(typedValue(f.value))
		case "final-recipient":
			cur.FinalRecipient = bareAddress(typedValue(f.value))
		case "action":
			cur.Action = strings.ToLower(leadingWord(clean(f.value)))
		case "status":
			cur.Status = enhancedStatus(f.value)
		case "diagnostic-code":
			cur.DiagnosticCode = typedValue(f.value)
		case "remote-mta":
			cur.RemoteMTA = typedValue(f.value)
		}
	}
	flush()
}

// finishRecipient fills what a recipient block left out and classifies a failure.
func finishRecipient(r DSNRecipient) DSNRecipient {
	if r.Status == "" {
		r.Status = statusInText(r.DiagnosticCode)
	}
	if r.Action == "" {
		switch {
		case strings.HasPrefix(r.Status, "5."):
			r.Action = "failed"
		case strings.HasPrefix(r.Status, "4."):
			r.Action = "delayed"
		case strings.HasPrefix(r.Status, "2."):
			r.Action = "delivered"
		}
	}
	if r.Action == "failed" {
		r.Class = BounceClass(r.Action, r.Status, r.DiagnosticCode)
	}
	return r
}

// feedbackReport reads the fields of an RFC 5965 feedback-report body.
func (p *reportParser) feedbackReport(body []byte) {
	fb := p.feedback()
	for _, f := range dsnFields(body) {
		switch f.name {
		case "feedback-type":
			if fb.FeedbackType == "" {
				fb.FeedbackType = strings.ToLower(leadingWord(clean(f.value)))
			}
		case "user-agent":
			setOnce(&fb.UserAgent, clean(f.value))
		case "version":
			setOnce(&fb.Version, clean(f.value))
		case "original-mail-from":
			setOnce(&fb.OriginalMailFrom, bareAddress(f.value))
		case "original-rcpt-to":
			fb.addRcpt(bareAddress(f.value))
		case "arrival-date", "received-date":
			setOnce(&fb.ArrivalDate, clean(f.value))
		case "source-ip":
			setOnce(&fb.SourceIP, clean(f.value))
		case "reported-domain":
			setOnce(&fb.ReportedDomain, clean(f.value))
		case "reporting-mta":
			setOnce(&p.rep.ReportingMTA, typedValue(f.value))
		case "original-envelope-id":
			setOnce(&p.rep.OriginalEnvelopeID, clean(f.value))
		}
	}
	setOnce(&p.rep.OriginalMailFrom, fb.OriginalMailFrom)
}

func (p *reportParser) feedback() *Feedback {
	if p.rep.Feedback == nil {
		p.rep.Feedback = &Feedback{}
	}
	return p.rep.Feedback
}

func (fb *Feedback) addRcpt(addr string) {
	if addr == "" || len(fb.OriginalRcptTo) >= maxReportRecipients {
		return
	}
	for _, a := range fb.OriginalRcptTo {
		if strings.EqualFold(a, addr) {
			return
		}
	}
	fb.OriginalRcptTo = append(fb.OriginalRcptTo, addr)
}

// originalHeaders takes what the report returned of the original message's header.
func (p *reportParser) originalHeaders(fields []field) {
	for _, f := range fields {
		switch f.name {
		case "message-id":
			setOnce(&p.rep.OriginalMessageID, messageIDValue(f.value))
		case "return-path":
			setOnce(&p.rep.OriginalReturnPath, bareAddress(f.value))
		case "to":
			if p.rep.OriginalTo == nil {
				p.rep.OriginalTo = addressList(f.value)
			}
		case "x-hmxmroriginalrecipient":
			if a := bareAddress(f.value); a != "" {
				p.feedback().addRcpt(a)
			}
		}
	}
}

// decide sets the kind from what the parts said (ParseReport's order).
func (p *reportParser) decide() {
	switch {
	case p.dsn:
		if len(p.rep.Recipients) > 0 {
			p.rep.Kind = ReportDSN
		}
		return
	case p.arf:
		if p.rep.Feedback != nil && p.rep.Feedback.FeedbackType != "" {
			p.rep.Kind = ReportARF
		}
		return
	case p.claimsReport:
		return // a report whose report part could not be read is malformed, not a text bounce
	}
	p.textReport()
}

// field is one header-like field: name lowercased, value unfolded. A zero field marks a blank
// line in dsnFields.
type field struct{ name, value string }

// dsnFields splits an RFC 3464 / RFC 5965 body into fields, with a zero field for each run of
// blank lines. It is lenient: lines that are not fields are skipped, continuation lines (leading
// white space) are appended to the field before them.
func dsnFields(body []byte) []field {
	var out []field
	blank := true
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), maxReportPartBytes+1)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			if !blank {
				out = append(out, field{})
			}
			blank = true
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !blank && len(out) > 0 && out[len(out)-1].name != "" {
				last := &out[len(out)-1]
				if len(last.value) < maxReportField {
					last.value += " " + strings.TrimSpace(line)
				}
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isFieldName(name) {
			continue
		}
		blank = false
		out = append(out, field{name: strings.ToLower(name), value: strings.TrimSpace(value)})
	}
	return out
}

// lenientFields reads a header section: the fields up to the first blank line. With skipLead,
// blank lines before the first field are skipped.
func lenientFields(b []byte, skipLead bool) []field {
	var out []field
	for _, f := range dsnFields(b) {
		if f.name == "" {
			if len(out) == 0 && skipLead {
				continue
			}
			break
		}
		out = append(out, f)
	}
	return out
}

func isFieldName(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// typedValue removes the type of a typed DSN field ("rfc822; a@b", "dns; mx.example",
// "smtp; 550 …") and cleans the rest.
func typedValue(v string) string {
	if typ, rest, ok := strings.Cut(v, ";"); ok && isAtomToken(strings.TrimSpace(typ)) {
		v = rest
	}
	return clean(v)
}

func isAtomToken(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// bareAddress returns the address of "<a@b>", "a@b", "Name <a@b>" or "a@b (comment)", cleaned;
// "" when the value holds none.
func bareAddress(v string) string {
	v = clean(v)
	if inner, ok := angleBracketed(v); ok {
		return inner
	}
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
	}
	return strings.Trim(leadingWord(v), "<>\"',;")
}

// angleBracketed returns what the first <…> of v holds.
func angleBracketed(v string) (string, bool) {
	i := strings.IndexByte(v, '<')
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(v[i:], '>')
	if j < 0 {
		return "", false
	}
	return strings.TrimSpace(v[i+1 : i+j]), true
}

// addressList returns the bare addresses of an address-list header value.
func addressList(v string) []string {
	var out []string
	if list, err := mail.ParseAddressList(v); err == nil {
		for _, a := range list {
			out = append(out, clean(a.Address))
		}
		return out
	}
	for _, part := range strings.Split(v, ",") {
		if a := bareAddress(part); strings.Contains(a, "@") {
			out = append(out, a)
		}
	}
	return out
}

// messageIDValue returns a Message-ID without its angle brackets (some MTAs leave them out).
func messageIDValue(v string) string {
	v = clean(v)
	if inner, ok := angleBracketed(v); ok {
		return inner
	}
	return strings.Trim(leadingWord(v), "<>")
}

func leadingWord(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t("); i >= 0 {
		s = s[:i]
	}
	return s
}

func setOnce(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// clean makes a value safe to store and show: valid UTF-8, control characters as spaces,
// white space collapsed, at most maxReportField bytes.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxReportField {
		cut := maxReportField
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// headerText is a header field of the report itself, RFC 2047 words decoded where the charset
// is known (headerWords).
func headerText(h message.Header, name string) string {
	v, err := headerWords.DecodeHeader(h.Get(name))
	if err != nil {
		v = h.Get(name)
	}
	return clean(v)
}

var (
	enhancedRe     = regexp.MustCompile(`^\s*([245]\.\d{1,3}\.\d{1,3})(?:[^\d.]|$)`)
	enhancedTextRe = regexp.MustCompile(`(?:^|[^\d.])([245]\.\d{1,3}\.\d{1,3})(?:[^\d.]|\.(?:\s|$)|$)`)
)

// enhancedStatus returns the enhanced status code a Status field starts with, "" if none.
func enhancedStatus(v string) string {
	if m := enhancedRe.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return ""
}

// statusInText returns the first enhanced status code in a text, "" if none. Dotted numbers
// that are part of longer ones (IP addresses, versions) do not count.
func statusInText(s string) string {
	if m := enhancedTextRe.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}
