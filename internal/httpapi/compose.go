package httpapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/postie/postie/internal/message"
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
	ListID          string            `json:"list_id,omitempty" doc:"Broadcast only: the list (lst_…) this message is sent for. Its List-Unsubscribe link leaves that list, and the list's suppressions stop it." example:"lst_01jd8x0000000000000000000"`
}

// Attachment is one file of a message.
type Attachment struct {
	Filename    string `json:"filename,omitempty" doc:"File name shown to the recipient (required; non-ASCII allowed)."`
	ContentType string `json:"content_type,omitempty" doc:"MIME type; guessed from the file name when empty."`
	Content     Base64 `json:"content,omitzero" doc:"The file, standard base64 (required)."`
	ContentID   string `json:"content_id,omitempty" doc:"Makes the attachment inline: the HTML refers to it as cid:<content_id>."`
}

// problem collects field errors of one request, where prefix ("body", "body.messages[3]") is
// the request in the HTTP request; err words them as messageError does.
type problem struct {
	prefix string
	list   []message.Problem
	kind   message.Kind // KindInvalid unless something raises it
}

func (p *problem) add(field, msg string, value any) {
	p.list = append(p.list, message.Problem{Field: field, Message: msg, Value: value})
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

func (p *problem) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return problemError(p.prefix, cmp.Or(p.kind, message.KindInvalid), p.list)
}

// request converts a decoded message into the service's request. The strings, maps and data
// are shared, not copied; the attachments' octets move over (m keeps none), so that they are
// released as soon as the message is built.
func (m *SendMessage) request() message.Request {
	r := message.Request{
		From: m.From, To: m.To, Cc: m.Cc, Bcc: m.Bcc, ReplyTo: m.ReplyTo, Subject: m.Subject, HTML: m.HTML,
		Text: m.Text, Template: m.Template, TemplateVersion: m.TemplateVersion, Data: m.Data, Locale: m.Locale,
		Headers: m.Headers, Tags: m.Tags, Metadata: m.Metadata, Stream: m.Stream, SendAt: m.SendAt,
		ListID: m.ListID,
	}
	if len(m.Attachments) > 0 {
		r.Attachments = make([]message.Attachment, len(m.Attachments))
		for i, a := range m.Attachments {
			ma := message.Attachment{Filename: a.Filename, ContentType: a.ContentType, ContentID: a.ContentID, Content: a.Content.data}
			switch {
			case !a.Content.given:
				ma.ContentProblem = "required: the file, base64-encoded"
			case a.Content.err != nil:
				ma.ContentProblem = "not valid standard base64: " + a.Content.err.Error()
			}
			r.Attachments[i] = ma
		}
		m.Attachments = nil
	}
	return r
}

// decodeItem decodes one message object strictly (unknown fields are errors), naming the field.
func decodeItem(raw json.RawMessage, prefix string) (*SendMessage, error) {
	if req, rest, ok := decodeItemFast(raw); ok {
		return checkedItem(req, rest, prefix)
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
		p.kind = message.KindMalformed
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
