package message

import (
	"bytes"
	"cmp"
	"fmt"
	"mime"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/store"
)

// Raw is a message whose MIME is already built, as SMTP submission hands it in: the envelope
// (MAIL FROM, RCPT TO) says who sends and who receives, the header what is shown.
type Raw struct {
	MailFrom string   // the envelope sender
	RcptTo   []string // the envelope recipients, Bcc included
	Data     []byte   // the message (RFC 5322 header and body, CRLF line ends)
}

// composeRaw is Compose for a request with Raw: it checks the envelope, the labels, the stream
// and the send time, reads From, To, Cc and Subject from the header for the record, and adds a
// Message-ID and Date when the header has none (RFC 6409 §8.3, §8.1).
func (s *Service) composeRaw(req *Request, p ComposeParams) (Composed, error) {
	var pr problems
	r := req.Raw
	if req.From != "" || req.To != nil || req.Cc != nil || req.Bcc != nil || req.ReplyTo != "" || req.Subject != "" ||
		req.HTML != "" || req.Text != "" || req.Template != "" || req.Renderer != nil || req.Data != nil ||
		req.Headers != nil || req.Attachments != nil {
		pr.add("raw", "give either a built message or its fields, not both", nil)
	}
	from, err := mail.ParseAddress(r.MailFrom)
	if err != nil {
		pr.add("mail_from", err.Error(), r.MailFrom)
	}
	rcpts := parseList(&pr, "rcpt_to", r.RcptTo)
	if n := len(r.RcptTo); n == 0 {
		pr.add("rcpt_to", "at least one recipient is required", nil)
	} else if n > s.cfg.MaxRecipients {
		pr.add("rcpt_to", fmt.Sprintf("too many recipients: %d, at most %d", n, s.cfg.MaxRecipients), n)
	}
	hdr, err := netmail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		pr.add("raw", "not an RFC 5322 message: "+err.Error(), nil)
	}
	checkLabels(&pr, req.Tags, req.Metadata)
	stream := checkStream(&pr, req.Stream)
	status, due, sendAt := s.schedule(&pr, req.SendAt, p.Now)
	if err := pr.err(); err != nil {
		return Composed{}, err
	}

	h := hdr.Header
	row := store.Message{
		ID: id.New(id.Message), Stream: stream, Status: status,
		From: cmp.Or(h.Get("From"), from.String()), To: headerList(h, "To"), Cc: headerList(h, "Cc"),
		ReplyTo: h.Get("Reply-To"), Subject: decodeHeader(h.Get("Subject")),
		Tags: req.Tags, Metadata: req.Metadata, EnvelopeFrom: from.Email,
		MaxAttempts: s.cfg.MaxAttempts, NextAttemptAt: due, CreatedAt: p.Now, SendAt: sendAt,
		ExpiresAt: due.Add(s.cfg.MessageTTL), UpdatedAt: p.Now,
	}
	row.Recipients = mail.Message{To: rcpts}.Recipients()
	var prefix []byte
	if row.MessageID = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>"); row.MessageID == "" {
		row.MessageID = mail.NewMessageID(row.ID, domainOf(from.Email))
		prefix = fmt.Appendf(prefix, "Message-ID: <%s>\r\n", row.MessageID)
	}
	if h.Get("Date") == "" {
		prefix = fmt.Appendf(prefix, "Date: %s\r\n", due.Format(time.RFC1123Z))
	}
	if fid := s.feedbackID(stream, ""); fid != "" && h.Get("Feedback-Id") == "" {
		prefix = fmt.Appendf(prefix, "Feedback-ID: %s\r\n", fid)
	}
	data := r.Data
	if prefix != nil {
		data = append(prefix, r.Data...)
	}
	req.Raw = nil // the caller's copy may go
	if int64(len(data)) > s.cfg.MaxMessageSize {
		pr.kind = KindTooLarge
		pr.add("raw", fmt.Sprintf("the message is %d bytes, over the limit of %d", len(data), s.cfg.MaxMessageSize), len(data))
		return Composed{}, pr.err()
	}
	row.Size = len(data)
	return Composed{NewMessage: store.NewMessage{Message: row, Raw: data}}, nil
}

// headerList is the addresses of a header field as written, or nil.
func headerList(h netmail.Header, name string) []string {
	as, err := h.AddressList(name)
	if err != nil || len(as) == 0 {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// decodeHeader decodes RFC 2047 encoded words, or returns v as it is.
func decodeHeader(v string) string {
	if d, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
		return d
	}
	return v
}
