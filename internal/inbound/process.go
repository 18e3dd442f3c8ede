package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/metrics"
	"github.com/postie/postie/internal/store"
)

// ProcessorStore is the slice of the store a Processor uses.
type ProcessorStore interface {
	store.Inbound
	MessageGet(ctx context.Context, id string) (store.Message, error)
}

// ProcessorConfig configures a Processor.
type ProcessorConfig struct {
	Store ProcessorStore
	// VERP checks bounce addresses; nil when no bounce domain is set (then only Message-IDs match).
	VERP *mail.VERP
	// BounceDomains are the domains a bounce address may be at (Config.BounceDomainMap).
	BounceDomains []string
	Policy        store.ReportPolicy
	Now           func() time.Time
	Logger        *slog.Logger
	// Metrics counts the bounces and complaints applied; nil counts nothing.
	Metrics *metrics.Metrics
}

// Processor turns what comes back about sent mail (a parsed bounce or feedback report, an SES
// notification) into recipient reports and records them. It only acts on reports that point at
// mail postie sent: a bounce address that verifies, or a postie Message-ID that matches the
// stored one; anything else is recorded as an inbound entry and changes nothing. Safe for
// concurrent use.
type Processor struct {
	store   ProcessorStore
	verp    *mail.VERP
	domains []string
	policy  store.ReportPolicy
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics.Metrics
}

// NewProcessor returns a Processor.
func NewProcessor(cfg ProcessorConfig) *Processor {
	p := &Processor{store: cfg.Store, verp: cfg.VERP, policy: cfg.Policy, now: cfg.Now, log: cfg.Logger, metrics: cfg.Metrics}
	for _, d := range cfg.BounceDomains {
		p.domains = append(p.domains, strings.ToLower(d))
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p
}

// Ref is how a report points at what postie sent.
type Ref struct {
	BounceAddress   string // the envelope sender postie used (a VERP address), as the report names it
	MessageIDHeader string // the original Message-ID header, brackets optional
	Recipient       string // the recipient the report is about, when it names one
	// Kind is the report kind (store.Report…) the reference is resolved for, "" for any.
	Kind string
	// Trusted: the channel authenticated the report (an SNS notification signed for an allowed
	// topic). An untrusted report matched by its Message-ID alone (anyone who saw the message
	// knows it) may only be a complaint, feedback or automatic reply about a message with one
	// recipient: never a bounce or a delivery report, which must come back to their bounce
	// address, and never about the other recipients of a message.
	Trusted bool
}

// Envelope is how a report arrived over SMTP.
type Envelope struct {
	MailFrom string // "" for the null sender
	RcptTo   string
	// ReportID identifies the report itself (its Message-ID, else a hash of its content), so
	// the same report received twice is applied once. "" disables deduplication.
	ReportID string
}

// resolution is what resolve found out about a Ref.
type resolution int

const (
	resolved  resolution = iota
	forged               // a bounce address at a bounce domain that postie did not make
	unmatched            // names nothing postie sent
)

// Resolve finds the message and recipient a report is about. A bounce address at one of the
// bounce domains must verify (mail.VERP) and name a recipient of an existing message; one that
// does not is a forgery and nothing else is tried. Otherwise a postie Message-ID
// (mail.MessageIDOf), checked against the stored one, with Recipient when it is one of the
// message's recipients, else the message's only recipient; for an untrusted report only as
// Ref.Trusted allows. why says what failed.
func (p *Processor) Resolve(ctx context.Context, ref Ref) (msgID, rcpt string, ok bool, why string) {
	msgID, rcpt, res, why := p.resolve(ctx, ref)
	return msgID, rcpt, res == resolved, why
}

func (p *Processor) resolve(ctx context.Context, ref Ref) (msgID, rcpt string, res resolution, why string) {
	if p.ourBounceAddress(ref.BounceAddress) {
		b, ok := p.verp.Parse(ref.BounceAddress)
		if !ok {
			return "", "", forged, fmt.Sprintf("bounce address %s does not verify", ref.BounceAddress)
		}
		m, err := p.store.MessageGet(ctx, b.MessageID)
		if err != nil {
			return "", "", unmatched, fmt.Sprintf("bounce address %s: message %s: %v", ref.BounceAddress, b.MessageID, err)
		}
		r, ok := p.verp.Recipient(b, m.Recipients)
		if !ok {
			return "", "", unmatched, fmt.Sprintf("bounce address %s names no recipient of %s", ref.BounceAddress, m.ID)
		}
		return m.ID, r, resolved, ""
	}
	if ref.MessageIDHeader == "" {
		return "", "", unmatched, "names no bounce address and no Message-ID"
	}
	if !ref.Trusted && (ref.Kind == store.ReportBounce || ref.Kind == store.ReportDelivered || ref.Kind == store.ReportDelayed) {
		return "", "", unmatched, "a " + ref.Kind + " report must come back to its bounce address; a Message-ID alone does not prove where it came from"
	}
	id, ok := mail.MessageIDOf(ref.MessageIDHeader)
	if !ok {
		return "", "", unmatched, fmt.Sprintf("Message-ID %s is not one postie made", clip(ref.MessageIDHeader))
	}
	m, err := p.store.MessageGet(ctx, id)
	if err != nil {
		return "", "", unmatched, fmt.Sprintf("Message-ID %s: message %s: %v", clip(ref.MessageIDHeader), id, err)
	}
	header := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(ref.MessageIDHeader), "<"), ">")
	if !strings.EqualFold(header, m.MessageID) {
		return "", "", unmatched, fmt.Sprintf("Message-ID %s is not the one %s was sent with", clip(ref.MessageIDHeader), m.ID)
	}
	if !ref.Trusted && len(m.Recipients) != 1 {
		// One recipient could report another with the Message-ID they both saw.
		return "", "", unmatched, fmt.Sprintf("%s has several recipients: a report matched by its Message-ID alone is not taken for any of them", m.ID)
	}
	if i := slices.IndexFunc(m.Recipients, func(r string) bool { return strings.EqualFold(r, ref.Recipient) }); i >= 0 {
		return m.ID, m.Recipients[i], resolved, ""
	}
	if len(m.Recipients) == 1 {
		return m.ID, m.Recipients[0], resolved, ""
	}
	if ref.Recipient == "" {
		return "", "", unmatched, fmt.Sprintf("%s has several recipients and the report names none", m.ID)
	}
	return "", "", unmatched, fmt.Sprintf("%s is not a recipient of %s", clip(ref.Recipient), m.ID)
}

// ourBounceAddress reports whether addr has the shape of a bounce address at one of the bounce
// domains, so it must verify.
func (p *Processor) ourBounceAddress(addr string) bool {
	if p.verp == nil {
		return false
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || !strings.HasPrefix(strings.ToLower(addr), "b-") {
		return false
	}
	return slices.Contains(p.domains, strings.ToLower(addr[at+1:]))
}

// Apply records the entry and the reports in one transaction (store.Inbound.InboundApply with
// the policy) and returns each report's outcome. e.At defaults to now.
func (p *Processor) Apply(ctx context.Context, e store.InboundEntry, reports []store.RecipientReport) ([]store.ReportOutcome, error) {
	now := p.now()
	if e.At.IsZero() {
		e.At = now
	}
	out, err := p.store.InboundApply(ctx, store.InboundApplyParams{Entry: e, Reports: reports, Policy: p.policy, Now: now})
	if err != nil {
		return nil, err
	}
	for i, o := range out {
		if o.Applied {
			r := reports[i]
			p.log.Info("inbound report applied", "channel", e.Channel, "message_id", r.MessageID,
				"recipient", r.Recipient, "kind", r.Kind, "class", r.Detail.Class, "state", o.State, "suppressed", o.Suppressed)
			p.count(ctx, r.MessageID, o.State)
		}
	}
	return out, nil
}

// count counts a recipient of message msgID that a report left bounced or complained, by the
// message's stream (read back: reports are few). Other states are not counted.
func (p *Processor) count(ctx context.Context, msgID string, state store.RecipientStatus) {
	if p.metrics == nil || state != store.RecipientBounced && state != store.RecipientComplained {
		return
	}
	stream := ""
	if m, err := p.store.MessageGet(ctx, msgID); err == nil {
		stream = m.Stream
	}
	outcome := metrics.Bounced
	if state == store.RecipientComplained {
		outcome = metrics.Complained
	}
	p.metrics.Messages(stream, "", outcome, 1)
}

// ErrNoReport is returned by Report for a nil report.
var ErrNoReport = errors.New("inbound: no report")

// Report turns r, a report received over SMTP for env, into recipient reports and applies
// them with the entry that records it (size octets). The bounce address is env.RcptTo, else
// the original Return-Path or envelope sender the report quotes; then the original Message-ID.
// A report that is unparseable, forged or names nothing postie sent is recorded only. It
// returns the entry as recorded (its Outcome derived as the store derives it) and the outcomes;
// an error only when the store failed, and then nothing was recorded.
func (p *Processor) Report(ctx context.Context, env Envelope, r *mail.Report, size int) (store.InboundEntry, []store.ReportOutcome, error) {
	if r == nil {
		return store.InboundEntry{}, nil, ErrNoReport
	}
	e := store.InboundEntry{At: p.now(), Channel: store.InboundSMTP, MailFrom: env.MailFrom, RcptTo: env.RcptTo, Kind: r.Kind, Size: size}
	ref := Ref{MessageIDHeader: r.OriginalMessageID}
	candidates := []string{env.RcptTo, r.OriginalReturnPath, r.OriginalMailFrom}
	if r.Feedback != nil {
		candidates = append(candidates, r.Feedback.OriginalMailFrom)
	}
	for _, c := range candidates {
		if p.ourBounceAddress(c) {
			ref.BounceAddress = c
			break
		}
	}

	var items []item
	switch r.Kind {
	case mail.ReportDSN, mail.ReportText:
		for _, b := range r.Recipients {
			kind := ""
			switch b.Action {
			case "failed":
				kind = store.ReportBounce
			case "delayed":
				kind = store.ReportDelayed
			case "delivered", "relayed":
				kind = store.ReportDelivered
			default: // expanded, or none at all: says nothing about the mailbox
				continue
			}
			d := store.ReportDetail{Source: r.Kind, Status: b.Status, Diagnostic: clip(b.DiagnosticCode), Action: b.Action,
				ReportingMTA: r.ReportingMTA, RemoteMTA: b.RemoteMTA}
			if kind == store.ReportBounce {
				d.Class = b.Class
				if d.Class == "" {
					d.Class = store.BounceUndetermined
				}
			}
			rcpt := b.OriginalRecipient
			if rcpt == "" {
				rcpt = b.FinalRecipient
			}
			items = append(items, item{rcpt: rcpt, kind: kind, detail: d})
		}
		if len(items) == 0 && len(r.Recipients) > 0 {
			e.Outcome, e.Detail = store.InboundIgnored, "its recipient blocks say nothing about a mailbox (no failed, delayed or delivered Action)"
		}
		if len(items) == 0 && len(r.Recipients) == 0 {
			e.Kind, e.Outcome, e.Detail = "unparseable", store.InboundIgnored, "a "+r.Kind+" report naming no recipient"
			if r.Kind == mail.ReportText && ref.BounceAddress != "" {
				// A text bounce to a bounce address: the address names the recipient.
				items = append(items, item{kind: store.ReportBounce, detail: store.ReportDetail{Source: r.Kind, Class: store.BounceUndetermined}})
				e.Kind, e.Outcome, e.Detail = r.Kind, "", ""
			}
		}
	case mail.ReportARF:
		f := r.Feedback
		if f == nil {
			f = &mail.Feedback{}
		}
		kind := store.ReportFeedback
		switch f.FeedbackType {
		case "abuse", "fraud", "virus", "other":
			kind = store.ReportComplaint
		}
		rcpt := ""
		if len(f.OriginalRcptTo) == 1 {
			rcpt = f.OriginalRcptTo[0]
		} else if len(r.OriginalTo) == 1 {
			rcpt = r.OriginalTo[0]
		}
		items = append(items, item{rcpt: rcpt, kind: kind, detail: store.ReportDetail{Source: "arf", FeedbackType: f.FeedbackType, UserAgent: clip(f.UserAgent)}})
	case mail.ReportAutoReply:
		rcpt := ""
		if a, err := mail.ParseAddress(r.From); err == nil {
			rcpt = a.Email
		}
		items = append(items, item{rcpt: rcpt, kind: store.ReportAutoReply, detail: store.ReportDetail{Source: "auto_reply"}})
	default:
		e.Kind, e.Outcome, e.Detail = "unparseable", store.InboundIgnored, "not a bounce, feedback report or automatic reply"
		if r.Subject != "" {
			e.Detail += ": " + clip(r.Subject)
		}
	}

	return p.applyItems(ctx, e, ref, env.ReportID, items)
}

// item is what a report says about one recipient, before it is resolved.
type item struct {
	rcpt, kind string // the recipient the report names ("" for none) and the report kind (store.Report…)
	detail     store.ReportDetail
}

// applyItems resolves each item (ref with the item's recipient), applies those that resolve with
// entry e, and returns e as recorded: MessageIDs, Detail (what the reports said, why the others
// were not applied), Kind forged when a bounce address did not verify, Outcome unmatched when
// nothing resolved (ignored when there was nothing to resolve and e has no Outcome), else as
// the store derives it. reportID keys deduplication ("" for none).
func (p *Processor) applyItems(ctx context.Context, e store.InboundEntry, ref Ref, reportID string, items []item) (store.InboundEntry, []store.ReportOutcome, error) {
	var reports []store.RecipientReport
	var whys []string
	for _, it := range items {
		ref := ref
		ref.Recipient, ref.Kind = it.rcpt, it.kind
		msgID, rcpt, res, why := p.resolve(ctx, ref)
		if res != resolved {
			whys = append(whys, why)
			if res == forged {
				e.Kind = "forged"
			}
			continue
		}
		reports = append(reports, store.RecipientReport{MessageID: msgID, Recipient: rcpt, Kind: it.kind, Detail: it.detail,
			Key: reportKey(reportID, msgID, rcpt, it.kind)})
		if !slices.Contains(e.MessageIDs, msgID) {
			e.MessageIDs = append(e.MessageIDs, msgID)
		}
	}
	if len(items) > 0 {
		e.Detail = describe(reports, whys)
		if len(reports) == 0 {
			e.Outcome = store.InboundUnmatched
		}
	}
	if e.Outcome == "" && len(reports) == 0 {
		e.Outcome = store.InboundIgnored
	}
	out, err := p.Apply(ctx, e, reports)
	if err != nil {
		return store.InboundEntry{}, nil, err
	}
	if len(reports) > 0 {
		e.Outcome = deriveOutcome(out)
		if e.Outcome == store.InboundIgnored {
			e.Detail += "; delivery in progress; the sender will retry"
		}
	} else if e.Outcome != store.InboundIgnored {
		p.log.Info("inbound report not applied", "channel", e.Channel, "kind", e.Kind, "rcpt_to", e.RcptTo, "why", e.Detail)
	}
	return e, out, nil
}

// reportKey deduplicates one report about one recipient: the same report received twice (an
// MTA retrying after a lost reply) is applied once.
func reportKey(reportID, msgID, rcpt, kind string) string {
	if reportID == "" {
		return ""
	}
	h := sha256.New()
	for _, s := range []string{reportID, msgID, strings.ToLower(rcpt), kind} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// deriveOutcome is the entry's outcome as InboundApply derives it: applied when any report
// was, else duplicate when some were duplicates, else ignored when some came while their
// message was being delivered, else unmatched.
func deriveOutcome(out []store.ReportOutcome) string {
	dup, busy := false, false
	for _, o := range out {
		switch {
		case o.Applied:
			return store.InboundApplied
		case o.Busy:
			busy = true
		case !o.Missing:
			dup = true
		}
	}
	switch {
	case dup:
		return store.InboundDuplicate
	case busy:
		return store.InboundIgnored
	}
	return store.InboundUnmatched
}

// Busy reports whether any of out came while its message was being delivered: the report may
// have overtaken the send's outcome and was not applied, so its sender should send it again.
func Busy(out []store.ReportOutcome) bool {
	return slices.ContainsFunc(out, func(o store.ReportOutcome) bool { return o.Busy })
}

// describe is the entry's Detail: what the reports said, and why the others were not applied.
func describe(reports []store.RecipientReport, whys []string) string {
	var parts []string
	for _, r := range reports {
		s := r.Kind + " " + r.Recipient + " (" + r.MessageID
		if r.Detail.Status != "" {
			s += " " + r.Detail.Status
		}
		if r.Detail.Class != "" {
			s += " " + r.Detail.Class
		}
		if r.Detail.FeedbackType != "" {
			s += " " + r.Detail.FeedbackType
		}
		parts = append(parts, s+")")
	}
	parts = append(parts, whys...)
	return clip(strings.Join(parts, "; "))
}

// clip bounds a value taken from a report before it is stored or logged.
func clip(s string) string {
	const max = 500
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}
