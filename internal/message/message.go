package message

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/metrics"
	"github.com/postie/postie/internal/render"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// Store is the part of the store a Service writes through.
type Store interface {
	MessagesAccept(ctx context.Context, p store.MessagesAcceptParams) (store.MessagesAcceptResult, error)
}

// Renderer renders a message's content from a template. The catalog (*templates.Catalog) is
// one, looking the template up by name; a campaign run's compiled template is another, which
// ignores the name and version and renders the data it is given.
type Renderer interface {
	Render(ctx context.Context, p templates.RenderParams) (templates.Rendered, error)
}

// Config configures a Service.
type Config struct {
	Store     Store
	Templates Renderer // renders requests that name a template

	DefaultFrom      string        // used when a request has no From
	MaxRecipients    int           // to+cc+bcc per message
	MaxMessageSize   int64         // encoded MIME octets
	MaxScheduleAhead time.Duration // how far SendAt may be in the future
	MessageTTL       time.Duration // expires_at = due time + TTL
	MaxAttempts      int           // attempts per message (first try + retries)
	// Broadcast makes broadcast messages list mail (list.go).
	Broadcast BroadcastConfig
	// Metrics counts the messages accepted; nil counts nothing.
	Metrics *metrics.Metrics
}

// Service turns requests into stored messages. It is safe for concurrent use.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) *Service { return &Service{cfg: cfg} }

// Request is one message to create: either a Template (with Data) or Subject and HTML and/or
// Text, or Raw, a message whose MIME is already built.
type Request struct {
	From            string // "" for Config.DefaultFrom
	To, Cc, Bcc     []string
	ReplyTo         string
	Subject         string
	HTML, Text      string
	Template        string // the stored template to render (and the name recorded with the message)
	TemplateVersion int    // 0: the latest
	Data            json.RawMessage
	Locale          string
	// Renderer, when set, renders the template instead of Config.Templates: a caller that has
	// already resolved the template (a campaign run) renders each recipient without a look-up.
	Renderer    Renderer
	Headers     map[string]string
	Attachments []Attachment // released (set to nil) once built into the MIME
	Tags        []string
	Metadata    map[string]string
	Stream      string     // "" for transactional
	SendAt      *time.Time // nil: now
	// ListID is the list a broadcast message is sent for (lst_…): its unsubscribe link leaves
	// that list. Only for the broadcast stream.
	ListID string
	// CampaignID is the campaign a broadcast message is sent for (cmp_…), named by its
	// Feedback-ID; "" for none.
	CampaignID string
	// Contact is what the template sees as .contact (nil: the recipient is not a known contact).
	Contact map[string]any
	// Campaign is what the template sees as .campaign (nil: not a campaign's message).
	Campaign map[string]any
	// Event and Events are what the template sees as .event and .events (a trigger's message).
	Event  map[string]any
	Events []any

	// Raw, when set, is the message already built: the fields above other than Tags, Metadata,
	// Stream and SendAt must be empty.
	Raw *Raw
}

// Attachment is one file of a Request.
type Attachment struct {
	Filename    string
	ContentType string // "" to guess it from Filename
	ContentID   string // makes the attachment inline (cid:ContentID)
	Content     []byte
	// ContentProblem is why the caller could not read Content (e.g. bad base64); it is
	// reported at the attachment's content field, in its place among the request's problems.
	ContentProblem string
}

// ComposeParams are the circumstances of a composition.
type ComposeParams struct {
	Now      time.Time // the acceptance time
	APIKeyID string    // the key the request came with, recorded with the message
	// SenderDomains are the From domains the key may send from (none: any); a From elsewhere
	// is a KindForbidden Error. Raw requests are checked by their way in.
	SenderDomains []string
}

// Composed is a message ready to be stored, with what its render noticed without refusing it
// (e.g. HTML that Gmail would clip).
type Composed struct {
	store.NewMessage
	Warnings []string
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
	maxSendAtSlack = time.Minute // SendAt this far in the past is "now"
)

// Compose validates req, renders it and builds its MIME, deciding status, due time, expiry and
// attempts: the message to store. It stores nothing. Failures are an *Error naming every bad
// field (or a store failure of the template look-up). It releases req.Attachments once they are
// built into the MIME.
func (s *Service) Compose(ctx context.Context, req *Request, p ComposeParams) (Composed, error) {
	if req.Raw != nil {
		return s.composeRaw(req, p)
	}
	var pr problems
	var m mail.Message

	fromStr := req.From
	if fromStr == "" {
		fromStr = s.cfg.DefaultFrom
	}
	if fromStr == "" {
		pr.add("from", "required: no default sender is configured (POSTIE_FROM)", nil)
	} else if a, err := mail.ParseAddress(fromStr); err != nil {
		pr.add("from", err.Error(), req.From)
	} else if err := apikey.SenderAllowed(p.SenderDomains, domainOf(a.Email)); err != nil {
		return Composed{}, &Error{Kind: KindForbidden, Problems: []Problem{{Field: "from", Message: err.Error(), Value: fromStr}}}
	} else {
		m.From = a
	}

	m.To = parseList(&pr, "to", req.To)
	m.Cc = parseList(&pr, "cc", req.Cc)
	m.Bcc = parseList(&pr, "bcc", req.Bcc)
	s.checkCount(&pr, len(req.To)+len(req.Cc)+len(req.Bcc))
	if req.ReplyTo != "" {
		if a, err := mail.ParseAddress(req.ReplyTo); err != nil {
			pr.add("reply_to", err.Error(), req.ReplyTo)
		} else {
			m.ReplyTo = &a
		}
	}

	usesTemplate := req.Template != "" || req.Renderer != nil
	if usesTemplate {
		for _, f := range []struct{ name, v string }{{"subject", req.Subject}, {"html", req.HTML}, {"text", req.Text}} {
			if f.v != "" {
				pr.add(f.name, "give either a template (with data) or subject and html/text, not both", nil)
			}
		}
	} else {
		if req.Subject == "" {
			pr.add("subject", "required: give subject and html or text, or a template", nil)
		}
		if req.HTML == "" && req.Text == "" {
			pr.add("html", "required: give html or text (or both), or a template", nil)
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"data", req.Data != nil}, {"locale", req.Locale != ""}, {"template_version", req.TemplateVersion != 0}} {
			if f.set {
				pr.add(f.name, "only with a template", nil)
			}
		}
	}
	if req.Subject != "" {
		if err := mail.CheckHeaderValue(req.Subject); err != nil {
			pr.add("subject", err.Error(), req.Subject)
		}
	}
	for _, f := range []struct{ name, v string }{{"html", req.HTML}, {"text", req.Text}} {
		if !utf8.ValidString(f.v) {
			pr.add(f.name, "must be valid UTF-8", nil)
		}
		if strings.IndexByte(f.v, 0) >= 0 {
			pr.add(f.name, "must not contain NUL", nil)
		}
	}
	m.Subject, m.HTML, m.Text = req.Subject, req.HTML, req.Text

	if len(req.Headers) > maxHeaders {
		pr.add("headers", fmt.Sprintf("too many headers: at most %d", maxHeaders), len(req.Headers))
	}
	headerNames := make(map[string]string, len(req.Headers)) // lowercased → as given
	for _, name := range slices.Sorted(maps.Keys(req.Headers)) {
		v := req.Headers[name]
		field := "headers." + name
		if err := mail.CheckHeaderName(name); err != nil {
			pr.add(field, err.Error(), name)
			continue
		}
		if first, dup := headerNames[strings.ToLower(name)]; dup {
			pr.add(field, fmt.Sprintf("the same header as %q (header names are case-insensitive)", first), name)
			continue
		}
		headerNames[strings.ToLower(name)] = name
		if err := mail.CheckHeaderValue(v); err != nil {
			pr.add(field, err.Error(), v)
			continue
		}
		m.Headers = append(m.Headers, mail.Header{Name: name, Value: v})
	}

	var infos []store.AttachmentInfo
	cids := map[string]bool{}
	if len(req.Attachments) > maxAttachments {
		pr.add("attachments", fmt.Sprintf("too many attachments: %d, at most %d", len(req.Attachments), maxAttachments), len(req.Attachments))
		req.Attachments = nil // not worth looking at
	}
	for i, a := range req.Attachments {
		field := fmt.Sprintf("attachments[%d]", i)
		ok := true
		if a.Filename == "" {
			pr.add(field+".filename", "required", nil)
			ok = false
		} else if err := mail.CheckHeaderValue(a.Filename); err != nil || strings.ContainsAny(a.Filename, `/\`) {
			pr.add(field+".filename", "must be a plain file name without control characters or slashes", a.Filename)
			ok = false
		}
		ct := a.ContentType
		if ct == "" {
			ct = mime.TypeByExtension(path.Ext(a.Filename))
			if ct == "" {
				ct = "application/octet-stream"
			}
		} else if mt, _, err := mime.ParseMediaType(ct); err != nil || !strings.Contains(mt, "/") {
			pr.add(field+".content_type", "not a MIME type like application/pdf", a.ContentType)
			ok = false
		}
		if a.ContentProblem != "" {
			pr.add(field+".content", a.ContentProblem, nil)
			ok = false
		}
		if a.ContentID != "" {
			if err := mail.CheckHeaderValue(a.ContentID); err != nil || strings.ContainsAny(a.ContentID, "<> \t\"") {
				pr.add(field+".content_id", "must not contain spaces, quotes, angle brackets or control characters", a.ContentID)
				ok = false
			} else if cids[a.ContentID] {
				pr.add(field+".content_id", "duplicate content_id", a.ContentID)
				ok = false
			}
			cids[a.ContentID] = true
		}
		ma := mail.Attachment{Filename: a.Filename, ContentType: ct, ContentID: a.ContentID, Content: a.Content}
		if ok {
			// The builder's own rules (e.g. no multipart/* bodies, Content-ID characters).
			if err := mail.CheckAttachment(ma); err != nil {
				pr.add(field, err.Error(), nil)
				ok = false
			}
		}
		if ok {
			m.Attachments = append(m.Attachments, ma)
			infos = append(infos, store.AttachmentInfo{Filename: a.Filename, ContentType: ct, ContentID: a.ContentID, Size: len(a.Content)})
		}
	}

	checkLabels(&pr, req.Tags, req.Metadata)
	stream := checkStream(&pr, req.Stream)
	checkListID(&pr, req.ListID, stream)

	msgID := id.New(id.Message)
	links := s.broadcastLinks(&pr, stream, &m, req.ListID, msgID)
	var rendered templates.Rendered
	if usesTemplate {
		r := req.Renderer
		if r == nil {
			r = s.cfg.Templates
		}
		var err error
		rendered, err = r.Render(ctx, templates.RenderParams{Name: req.Template,
			Version: req.TemplateVersion, Locale: req.Locale, Data: req.Data, MessageID: msgID, Stream: stream,
			Links: links, Contact: req.Contact, Campaign: req.Campaign,
			Event: req.Event, Events: req.Events})
		var ie *templates.InvalidError
		switch {
		case errors.As(err, &ie):
			for _, tp := range ie.Problems {
				pr.add(templateField(tp.Field), tp.Text(), nil)
			}
		case err != nil:
			return Composed{}, failure(err, "template "+req.Template)
		case rendered.Subject == "":
			pr.add("template", fmt.Sprintf("template %s renders an empty subject (a layout is not sent on its own)", req.Template), req.Template)
		default:
			m.Subject, m.HTML, m.Text = rendered.Subject, rendered.HTML, rendered.Text
		}
	}

	status, due, sendAt := s.schedule(&pr, req.SendAt, p.Now)
	if err := pr.err(); err != nil {
		return Composed{}, err
	}

	m.Date = due
	m.MessageID = mail.NewMessageID(msgID, domainOf(m.From.Email))
	s.listMail(&m, links, req.ListID)
	m.FeedbackID = s.feedbackID(stream, req.CampaignID)
	raw, err := mail.Build(m)
	// The attachments are in raw now (or refused): their octets may go before raw is stored.
	m.Attachments, req.Attachments = nil, nil
	if err != nil {
		pr.add("", "cannot build the message: "+err.Error(), nil)
		return Composed{}, pr.err()
	}
	if int64(len(raw)) > s.cfg.MaxMessageSize {
		pr.kind = KindTooLarge
		pr.add(largestPart(usesTemplate, m, infos), fmt.Sprintf("the encoded message is %d bytes, over the limit of %d", len(raw), s.cfg.MaxMessageSize), len(raw))
		return Composed{}, pr.err()
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
		APIKeyID:        p.APIKeyID,
		ListID:          req.ListID,
		CreatedAt:       p.Now,
		SendAt:          sendAt,
		ExpiresAt:       due.Add(s.cfg.MessageTTL),
		UpdatedAt:       p.Now,
	}
	if m.ReplyTo != nil {
		row.ReplyTo = m.ReplyTo.String()
	}
	warnings := rendered.Warnings
	if !usesTemplate {
		if w, ok := render.ClipWarning(len(m.HTML)); ok {
			warnings = append(warnings, w)
		}
	}
	return Composed{NewMessage: store.NewMessage{Message: row, Raw: raw}, Warnings: warnings}, nil
}

// parseList parses the addresses of field, adding a problem for each bad one.
func parseList(pr *problems, field string, in []string) []mail.Address {
	out := make([]mail.Address, 0, len(in))
	for i, v := range in {
		a, err := mail.ParseAddress(v)
		if err != nil {
			pr.add(fmt.Sprintf("%s[%d]", field, i), err.Error(), v)
			continue
		}
		out = append(out, a)
	}
	return out
}

// checkCount checks the number of recipients, n.
func (s *Service) checkCount(pr *problems, n int) {
	switch {
	case n == 0:
		pr.add("to", "at least one recipient is required in to, cc or bcc", nil)
	case n > s.cfg.MaxRecipients:
		pr.add("to", fmt.Sprintf("too many recipients: %d in to+cc+bcc, at most %d", n, s.cfg.MaxRecipients), n)
	}
}

// CheckTags returns the problems of tags as a request's tags field has them ("tags",
// "tags[1]"): for a caller that keeps tags to put on messages later (a campaign).
func CheckTags(tags []string) []Problem {
	var pr problems
	checkLabels(&pr, tags, nil)
	return pr.list
}

// checkLabels checks tags and metadata.
func checkLabels(pr *problems, tags []string, metadata map[string]string) {
	if len(tags) > maxTags {
		pr.add("tags", fmt.Sprintf("too many tags: at most %d", maxTags), len(tags))
	}
	for i, t := range tags {
		if t == "" || len(t) > maxTagLen || mail.CheckHeaderValue(t) != nil || !utf8.ValidString(t) {
			pr.add(fmt.Sprintf("tags[%d]", i), fmt.Sprintf("a tag is 1–%d characters without control characters", maxTagLen), t)
		}
	}
	if len(metadata) > maxMetadata {
		pr.add("metadata", fmt.Sprintf("too many keys: at most %d", maxMetadata), len(metadata))
	}
	for _, k := range slices.Sorted(maps.Keys(metadata)) {
		v := metadata[k]
		switch {
		case k == "" || len(k) > maxMetaKeyLen || len(v) > maxMetaValLen:
			pr.add("metadata."+k, fmt.Sprintf("keys are 1–%d characters, values at most %d", maxMetaKeyLen, maxMetaValLen), k)
		case strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0:
			// PostgreSQL cannot store U+0000 in text or jsonb; refused on both databases alike.
			pr.add("metadata."+k, "keys and values must not contain NUL", k)
		}
	}
}

// checkStream returns the stream of a request ("" is transactional), adding a problem when it
// is unknown.
func checkStream(pr *problems, given string) string {
	stream := cmp.Or(given, store.StreamTransactional)
	if !slices.Contains(store.Streams, stream) {
		pr.add("stream", fmt.Sprintf("unknown stream %q: use %s", stream, strings.Join(store.Streams, " or ")), given)
	}
	return stream
}

// checkListID adds a problem when a list id is given for a message that is not broadcast, or is
// not shaped like one.
func checkListID(pr *problems, listID, stream string) {
	switch {
	case listID == "":
	case stream != store.StreamBroadcast:
		pr.add("list_id", "only broadcast messages belong to a list: a transactional message gets no unsubscribe link", listID)
	case !strings.HasPrefix(listID, "lst_") || len(listID) > 64 || strings.ContainsFunc(listID, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-')
	}):
		pr.add("list_id", "not a list id (lst_…)", listID)
	}
}

// schedule decides a message's status and due time from its requested send time, and returns
// the send time as recorded (zero for "now").
func (s *Service) schedule(pr *problems, at *time.Time, now time.Time) (status store.Status, due, sendAt time.Time) {
	status, due = store.StatusQueued, now
	if at == nil {
		return status, due, sendAt
	}
	sendAt = at.UTC()
	switch {
	case sendAt.Before(now.Add(-maxSendAtSlack)):
		pr.add("send_at", "is in the past", at.Format(time.RFC3339))
	case sendAt.After(now.Add(s.cfg.MaxScheduleAhead)):
		pr.add("send_at", fmt.Sprintf("is more than %s ahead", humanDuration(s.cfg.MaxScheduleAhead)), at.Format(time.RFC3339))
	case sendAt.After(now):
		status, due = store.StatusScheduled, sendAt
	}
	return status, due, sendAt
}

// largestPart names the field that contributes most to the size of m: template (what it
// rendered), html, text or attachments (by their sizes in atts, as their octets are gone once
// the message is built).
func largestPart(usesTemplate bool, m mail.Message, atts []store.AttachmentInfo) string {
	if usesTemplate {
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

// templateField names a field of the template catalog's render (templates.Problem.Field; "" is
// the template as a whole) as a request names it.
func templateField(field string) string {
	switch field {
	case "", "name":
		return "template"
	case "version":
		return "template_version"
	}
	return field
}
