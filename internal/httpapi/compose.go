package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/render"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// SendMessage is the body of POST /v1/messages and one item of a batch.
type SendMessage struct {
	From            string            `json:"from,omitempty" doc:"Sender mailbox, e.g. \"Shop <news@shop.example>\". Defaults to the configured POSTIE_FROM." example:"Shop <news@shop.example>"`
	To              []string          `json:"to,omitempty" doc:"Recipients. to+cc+bcc: at least 1, at most 50 (configurable)." example:"[\"a@example.com\"]"`
	Cc              []string          `json:"cc,omitempty" doc:"Carbon-copy recipients."`
	Bcc             []string          `json:"bcc,omitempty" doc:"Blind-copy recipients: in the envelope, never written into the message."`
	ReplyTo         string            `json:"reply_to,omitempty" doc:"Reply-To mailbox."`
	Subject         string            `json:"subject,omitempty" doc:"Subject line (no CR, LF or NUL). Required unless template is given." maxLength:"998"`
	HTML            string            `json:"html,omitempty" doc:"HTML body. A text part is generated from it when text is empty."`
	Text            string            `json:"text,omitempty" doc:"Plain-text body."`
	Template        string            `json:"template,omitempty" doc:"Name of a stored template to render instead of subject/html/text (give one or the other)." example:"order-shipped"`
	TemplateVersion int               `json:"template_version,omitempty" minimum:"0" doc:"Render this version of the template instead of the latest."`
	Data            json.RawMessage   `json:"data,omitempty" doc:"Template data: a JSON object (at most 1 MB), validated against the template's schema; templates read it as .data."`
	Locale          string            `json:"locale,omitempty" doc:"Render the template's variant for this language tag (\"ko\", \"pt-BR\"), falling back to the language without region, then to the default content." example:"ko"`
	Headers         map[string]string `json:"headers,omitempty" doc:"Custom headers, each name once (case-insensitively). From, To, Cc, Bcc, Date, Message-ID, Sender, Return-Path, MIME-Version, Content-*, DKIM-Signature and List-Unsubscribe* are refused, and so are trace and authentication headers (Received, Received-SPF, Authentication-Results, ARC-*, Delivered-To, X-Original-To, Resent-*), Return-Receipt-To and TLS-Required."`
	Attachments     []Attachment      `json:"attachments,omitempty" maxItems:"100" doc:"Files, base64-encoded, at most 100. With content_id they are inline parts referenced from the HTML as cid:<content_id>."`
	Tags            []string          `json:"tags,omitempty" doc:"Labels for filtering (at most 20, each 1–64 characters)."`
	Metadata        map[string]string `json:"metadata,omitempty" doc:"Your own key/value pairs, returned with the message (at most 50 keys)."`
	Stream          string            `json:"stream,omitempty" enum:"transactional,broadcast" doc:"Delivery stream: transactional (default) is always delivered before broadcast."`
	SendAt          *time.Time        `json:"send_at,omitempty" doc:"Deliver at this time (RFC 3339), at most 30 days ahead. Omit to send now."`
}

// Attachment is one file of a message.
type Attachment struct {
	Filename    string `json:"filename,omitempty" doc:"File name shown to the recipient (required; non-ASCII allowed)."`
	ContentType string `json:"content_type,omitempty" doc:"MIME type; guessed from the file name when empty."`
	Content     Base64 `json:"content,omitzero" doc:"The file, standard base64 (required)."`
	ContentID   string `json:"content_id,omitempty" doc:"Makes the attachment inline: the HTML refers to it as cid:<content_id>."`
}

// Limits that are not configurable.
const (
	maxTags        = 20
	maxTagLen      = 64
	maxMetadata    = 50
	maxMetaKeyLen  = 64
	maxMetaValLen  = 1024
	maxHeaders     = 50
	maxAttachments = 100
	maxSendAtSlack = time.Minute // send_at this far in the past is "now"
)

// problem collects field errors of one request.
type problem struct {
	prefix string // "body" or "body.messages[3]"
	errs   []error
	status int // 422 unless something raises it
}

func (p *problem) add(field, msg string, value any) {
	loc := p.prefix
	if field != "" {
		loc += "." + field
	}
	p.errs = append(p.errs, &huma.ErrorDetail{Location: loc, Message: msg, Value: value})
}

// addInvalid adds the problems of a template or of its data, renaming the catalog's fields
// (templates.Problem.Field; "" is the template as a whole) to the request's by fields.
func (p *problem) addInvalid(ie *templates.InvalidError, fields map[string]string) {
	for _, pr := range ie.Problems {
		field := pr.Field
		if f, ok := fields[field]; ok {
			field = f
		}
		p.add(field, pr.Text(), nil)
	}
}

// messageTemplateFields names the catalog's render fields as a message request does.
var messageTemplateFields = map[string]string{"": "template", "name": "template", "version": "template_version"}

func (p *problem) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	status := p.status
	if status == 0 {
		status = http.StatusUnprocessableEntity
	}
	detail := "validation failed"
	if len(p.errs) == 1 {
		d := p.errs[0].(*huma.ErrorDetail)
		detail = d.Location + ": " + d.Message
	}
	return huma.NewError(status, detail, p.errs...)
}

// compose validates a request and turns it into a stored message with its MIME. It returns a
// huma error naming every bad field, or the message to insert and the warnings of its render
// (an HTML part Gmail would clip), which the answer carries. It drops req's attachments once
// they are built into the MIME.
func (s *Server) compose(ctx context.Context, req *SendMessage, prefix string, now time.Time, apiKeyID string) (store.NewMessage, []string, error) {
	p := &problem{prefix: prefix}
	var m mail.Message

	fromStr := req.From
	if fromStr == "" {
		fromStr = s.cfg.DefaultFrom
	}
	if fromStr == "" {
		p.add("from", "required: no default sender is configured (POSTIE_FROM)", nil)
	} else if a, err := mail.ParseAddress(fromStr); err != nil {
		p.add("from", err.Error(), req.From)
	} else {
		m.From = a
	}

	parseList := func(field string, in []string) []mail.Address {
		out := make([]mail.Address, 0, len(in))
		for i, v := range in {
			a, err := mail.ParseAddress(v)
			if err != nil {
				p.add(fmt.Sprintf("%s[%d]", field, i), err.Error(), v)
				continue
			}
			out = append(out, a)
		}
		return out
	}
	m.To = parseList("to", req.To)
	m.Cc = parseList("cc", req.Cc)
	m.Bcc = parseList("bcc", req.Bcc)
	switch n := len(req.To) + len(req.Cc) + len(req.Bcc); {
	case n == 0:
		p.add("to", "at least one recipient is required in to, cc or bcc", nil)
	case n > s.cfg.MaxRecipients:
		p.add("to", fmt.Sprintf("too many recipients: %d in to+cc+bcc, at most %d", n, s.cfg.MaxRecipients), n)
	}
	if req.ReplyTo != "" {
		if a, err := mail.ParseAddress(req.ReplyTo); err != nil {
			p.add("reply_to", err.Error(), req.ReplyTo)
		} else {
			m.ReplyTo = &a
		}
	}

	if req.Template != "" {
		for _, f := range []struct{ name, v string }{{"subject", req.Subject}, {"html", req.HTML}, {"text", req.Text}} {
			if f.v != "" {
				p.add(f.name, "give either a template (with data) or subject and html/text, not both", nil)
			}
		}
	} else {
		if req.Subject == "" {
			p.add("subject", "required: give subject and html or text, or a template", nil)
		}
		if req.HTML == "" && req.Text == "" {
			p.add("html", "required: give html or text (or both), or a template", nil)
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"data", req.Data != nil}, {"locale", req.Locale != ""}, {"template_version", req.TemplateVersion != 0}} {
			if f.set {
				p.add(f.name, "only with a template", nil)
			}
		}
	}
	if req.Subject != "" {
		if err := mail.CheckHeaderValue(req.Subject); err != nil {
			p.add("subject", err.Error(), req.Subject)
		}
	}
	for _, f := range []struct{ name, v string }{{"html", req.HTML}, {"text", req.Text}} {
		if !utf8.ValidString(f.v) {
			p.add(f.name, "must be valid UTF-8", nil)
		}
		if strings.IndexByte(f.v, 0) >= 0 {
			p.add(f.name, "must not contain NUL", nil)
		}
	}
	m.Subject, m.HTML, m.Text = req.Subject, req.HTML, req.Text

	if len(req.Headers) > maxHeaders {
		p.add("headers", fmt.Sprintf("too many headers: at most %d", maxHeaders), len(req.Headers))
	}
	headerNames := make(map[string]string, len(req.Headers)) // lowercased → as given
	for _, name := range slices.Sorted(maps.Keys(req.Headers)) {
		v := req.Headers[name]
		field := "headers." + name
		if err := mail.CheckHeaderName(name); err != nil {
			p.add(field, err.Error(), name)
			continue
		}
		if first, dup := headerNames[strings.ToLower(name)]; dup {
			p.add(field, fmt.Sprintf("the same header as %q (header names are case-insensitive)", first), name)
			continue
		}
		headerNames[strings.ToLower(name)] = name
		if err := mail.CheckHeaderValue(v); err != nil {
			p.add(field, err.Error(), v)
			continue
		}
		m.Headers = append(m.Headers, mail.Header{Name: name, Value: v})
	}

	var infos []store.AttachmentInfo
	cids := map[string]bool{}
	if len(req.Attachments) > maxAttachments {
		p.add("attachments", fmt.Sprintf("too many attachments: %d, at most %d", len(req.Attachments), maxAttachments), len(req.Attachments))
		req.Attachments = nil // not worth decoding
	}
	for i, a := range req.Attachments {
		field := fmt.Sprintf("attachments[%d]", i)
		ok := true
		if a.Filename == "" {
			p.add(field+".filename", "required", nil)
			ok = false
		} else if err := mail.CheckHeaderValue(a.Filename); err != nil || strings.ContainsAny(a.Filename, `/\`) {
			p.add(field+".filename", "must be a plain file name without control characters or slashes", a.Filename)
			ok = false
		}
		ct := a.ContentType
		if ct == "" {
			ct = mime.TypeByExtension(path.Ext(a.Filename))
			if ct == "" {
				ct = "application/octet-stream"
			}
		} else if mt, _, err := mime.ParseMediaType(ct); err != nil || !strings.Contains(mt, "/") {
			p.add(field+".content_type", "not a MIME type like application/pdf", a.ContentType)
			ok = false
		}
		content := a.Content.Bytes()
		if !a.Content.given {
			p.add(field+".content", "required: the file, base64-encoded", nil)
			ok = false
		} else if err := a.Content.err; err != nil {
			p.add(field+".content", "not valid standard base64: "+err.Error(), nil)
			ok = false
		}
		if a.ContentID != "" {
			if err := mail.CheckHeaderValue(a.ContentID); err != nil || strings.ContainsAny(a.ContentID, "<> \t\"") {
				p.add(field+".content_id", "must not contain spaces, quotes, angle brackets or control characters", a.ContentID)
				ok = false
			} else if cids[a.ContentID] {
				p.add(field+".content_id", "duplicate content_id", a.ContentID)
				ok = false
			}
			cids[a.ContentID] = true
		}
		ma := mail.Attachment{Filename: a.Filename, ContentType: ct, ContentID: a.ContentID, Content: content}
		if ok {
			// The builder's own rules (e.g. no multipart/* bodies, Content-ID characters).
			if err := mail.CheckAttachment(ma); err != nil {
				p.add(field, err.Error(), nil)
				ok = false
			}
		}
		if ok {
			m.Attachments = append(m.Attachments, ma)
			infos = append(infos, store.AttachmentInfo{Filename: a.Filename, ContentType: ct, ContentID: a.ContentID, Size: len(content)})
		}
	}

	if len(req.Tags) > maxTags {
		p.add("tags", fmt.Sprintf("too many tags: at most %d", maxTags), len(req.Tags))
	}
	for i, t := range req.Tags {
		if t == "" || len(t) > maxTagLen || mail.CheckHeaderValue(t) != nil || !utf8.ValidString(t) {
			p.add(fmt.Sprintf("tags[%d]", i), fmt.Sprintf("a tag is 1–%d characters without control characters", maxTagLen), t)
		}
	}
	if len(req.Metadata) > maxMetadata {
		p.add("metadata", fmt.Sprintf("too many keys: at most %d", maxMetadata), len(req.Metadata))
	}
	for _, k := range slices.Sorted(maps.Keys(req.Metadata)) {
		v := req.Metadata[k]
		switch {
		case k == "" || len(k) > maxMetaKeyLen || len(v) > maxMetaValLen:
			p.add("metadata."+k, fmt.Sprintf("keys are 1–%d characters, values at most %d", maxMetaKeyLen, maxMetaValLen), k)
		case strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0:
			// PostgreSQL cannot store U+0000 in text or jsonb; refused on both databases alike.
			p.add("metadata."+k, "keys and values must not contain NUL", k)
		}
	}

	stream := req.Stream
	if stream == "" {
		stream = store.StreamTransactional
	}
	known := false
	for _, st := range store.Streams {
		known = known || st == stream
	}
	if !known {
		p.add("stream", fmt.Sprintf("unknown stream %q: use %s", stream, strings.Join(store.Streams, " or ")), req.Stream)
	}

	msgID := id.New(id.Message)
	var rendered templates.Rendered
	if req.Template != "" {
		var err error
		rendered, err = s.cfg.Templates.Render(ctx, templates.RenderParams{Name: req.Template,
			Version: req.TemplateVersion, Locale: req.Locale, Data: req.Data, MessageID: msgID, Stream: stream})
		var ie *templates.InvalidError
		switch {
		case errors.As(err, &ie):
			p.addInvalid(ie, messageTemplateFields)
		case err != nil:
			return store.NewMessage{}, nil, s.storeError(err, "template "+req.Template)
		case rendered.Subject == "":
			p.add("template", fmt.Sprintf("template %s renders an empty subject (a layout is not sent on its own)", req.Template), req.Template)
		default:
			m.Subject, m.HTML, m.Text = rendered.Subject, rendered.HTML, rendered.Text
		}
	}

	status, due := store.StatusQueued, now
	var sendAt time.Time
	if req.SendAt != nil {
		sendAt = req.SendAt.UTC()
		switch {
		case sendAt.Before(now.Add(-maxSendAtSlack)):
			p.add("send_at", "is in the past", req.SendAt.Format(time.RFC3339))
		case sendAt.After(now.Add(s.cfg.MaxScheduleAhead)):
			p.add("send_at", fmt.Sprintf("is more than %s ahead", humanDuration(s.cfg.MaxScheduleAhead)), req.SendAt.Format(time.RFC3339))
		case sendAt.After(now):
			status, due = store.StatusScheduled, sendAt
		}
	}
	if err := p.err(); err != nil {
		return store.NewMessage{}, nil, err
	}

	m.Date = due
	m.MessageID = mail.NewMessageID(domainOf(m.From.Email))
	raw, err := mail.Build(m)
	// The attachments are in raw now (or refused): their octets may go before raw is stored.
	m.Attachments, req.Attachments = nil, nil
	if err != nil {
		p.add("", "cannot build the message: "+err.Error(), nil)
		return store.NewMessage{}, nil, p.err()
	}
	if int64(len(raw)) > s.cfg.MaxMessageSize {
		p.status = http.StatusRequestEntityTooLarge
		p.add(largestPart(req, m, infos), fmt.Sprintf("the encoded message is %d bytes, over the limit of %d", len(raw), s.cfg.MaxMessageSize), len(raw))
		return store.NewMessage{}, nil, p.err()
	}

	row := store.Message{
		ID:              msgID,
		Stream:          stream,
		Status:          status,
		From:            m.From.String(),
		To:              formatAll(m.To),
		Cc:              formatAll(m.Cc),
		Bcc:             formatAll(m.Bcc),
		Subject:         m.Subject,
		Template:        req.Template,
		TemplateVersion: rendered.Version,
		Locale:          rendered.Locale,
		Data:            req.Data,
		Headers:         req.Headers,
		Tags:            req.Tags,
		Metadata:        req.Metadata,
		Attachments:     infos,
		EnvelopeFrom:    m.From.Email,
		Recipients:      m.Recipients(),
		Size:            len(raw),
		MaxAttempts:     s.cfg.MaxAttempts,
		NextAttemptAt:   due,
		MessageID:       m.MessageID,
		APIKeyID:        apiKeyID,
		CreatedAt:       now,
		SendAt:          sendAt,
		ExpiresAt:       due.Add(s.cfg.MessageTTL),
		UpdatedAt:       now,
	}
	if m.ReplyTo != nil {
		row.ReplyTo = m.ReplyTo.String()
	}
	warnings := rendered.Warnings
	if req.Template == "" {
		if w, ok := render.ClipWarning(len(m.HTML)); ok {
			warnings = append(warnings, w)
		}
	}
	return store.NewMessage{Message: row, Raw: raw}, warnings, nil
}

// decodeItem decodes one message object strictly (unknown fields are errors), naming the field.
func decodeItem(raw json.RawMessage, prefix string) (*SendMessage, error) {
	if req, ok := decodeItemFast(raw); ok {
		return checkedItem(req, raw, prefix)
	}
	req, err := decodeStrict(raw)
	if err == nil {
		return checkedItem(req, raw, prefix)
	}
	p := &problem{prefix: prefix}
	var te *json.UnmarshalTypeError
	var pe *time.ParseError // the only time field is send_at
	switch {
	case errors.Is(err, errTrailingData):
		p.add("", err.Error(), nil)
	case errors.As(err, &te):
		p.add(te.Field, fmt.Sprintf("expected %s, got %s", jsonType(te.Type), te.Value), nil)
	case errors.As(err, &pe):
		p.add("send_at", "not an RFC 3339 time like 2026-12-01T09:00:00Z", pe.Value)
	case strings.HasPrefix(err.Error(), "Time.UnmarshalJSON: "):
		// time.Time's own refusal of a value that is not a JSON string, which encoding/json
		// returns as it is, without the field: send_at is the only time field.
		p.add("send_at", "expected an RFC 3339 time string like 2026-12-01T09:00:00Z", nil)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p.add(f, "unknown field", f)
	default: // a syntax error or a truncated body
		p.status = http.StatusBadRequest
		p.add("", "malformed JSON: "+err.Error(), nil)
	}
	return nil, p.err()
}

// errTrailingData is decodeStrict's error for data after the message object.
var errTrailingData = errors.New("unexpected data after the message object")

// decodeStrict decodes one message object with encoding/json, refusing unknown fields and
// anything after the object.
func decodeStrict(raw []byte) (*SendMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var req SendMessage
	if err := dec.Decode(&req); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errTrailingData
	}
	return &req, nil
}

// largestPart names the field of req that contributes most to the size of m, the message built
// from it: template (what it rendered), html, text or attachments (by their sizes in atts, as
// their octets are gone once the message is built).
func largestPart(req *SendMessage, m mail.Message, atts []store.AttachmentInfo) string {
	if req.Template != "" {
		return "template"
	}
	field, size := "html", len(m.HTML)
	if len(m.Text) > size {
		field, size = "text", len(m.Text)
	}
	att := 0
	for _, a := range atts {
		att += a.Size
	}
	if att > size {
		field = "attachments"
	}
	return field
}

func formatAll(as []mail.Address) []string {
	if len(as) == 0 {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func domainOf(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		return email[i+1:]
	}
	return "postie.invalid"
}

func humanDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// jsonType names a Go type the way a JSON client thinks of it.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return jsonType(t.Elem())
	}
	return t.String()
}
