package inbound

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
)

// SESConfig configures SES.
type SESConfig struct {
	// Processor resolves and records the reports.
	Processor *Processor
	// TopicARNs are the SNS topics whose notifications are accepted (POSTIE_SES_TOPIC_ARNS);
	// empty refuses everything.
	TopicARNs []string
	// Endpoint replaces https://sns.{region}.amazonaws.com as the only place signing
	// certificates and subscription confirmations may come from (POSTIE_SNS_ENDPOINT, for tests).
	Endpoint string
	// Timeout bounds each request to SNS (a certificate, a subscription confirmation); 0 is 10 s.
	Timeout time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
}

// SES receives Amazon SES notifications (bounce, complaint, delivery; email-rules §4.6) that SNS
// posts to POST /v1/inbound/ses. In order: the topic must be allowed, the SNS signature must
// verify with a certificate from the topic region's SNS host, then a subscription is confirmed
// (its SubscribeURL on that same host) or a notification is turned into recipient reports and
// applied through the Processor, recorded as an inbound entry of channel ses. Safe for
// concurrent use.
type SES struct {
	proc   *Processor
	topics []string
	sns    *snsVerifier
	log    *slog.Logger
}

// NewSES returns an SES receiver.
func NewSES(cfg SESConfig) *SES {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &SES{
		proc:   cfg.Processor,
		topics: slices.Clone(cfg.TopicARNs),
		sns: &snsVerifier{client: snsClient(cfg.Timeout), endpoint: cfg.Endpoint, now: cfg.Now,
			certs: map[string]*x509.Certificate{}},
		log: cfg.Logger.With("component", "inbound.ses"),
	}
}

// MaxSESBody bounds the body of one SNS request (an SNS message is at most 256 KiB, and its
// JSON envelope escapes it).
const MaxSESBody = 1 << 20

// Errors of Receive besides ErrSNSTopic and ErrSNSSignature.
var (
	// ErrSNSMalformed: the body is not an SNS message (answered 400).
	ErrSNSMalformed = errors.New("not an SNS message")
	// ErrSNSSubscribeURL: a subscription confirmation's SubscribeURL is not on the topic's SNS
	// host (answered 403).
	ErrSNSSubscribeURL = errors.New("the SubscribeURL is not on the topic's SNS host")
	// ErrSESBusy: the notification is about a message being delivered right now, whose
	// outcome is not recorded yet; it was recorded as ignored, and must be sent again
	// (answered 503, which SNS retries).
	ErrSESBusy = errors.New("the message is being delivered: send the notification again")
)

// Receive handles one SNS request body. It returns the inbound entry recorded, or an error:
// ErrSNSMalformed, ErrSNSTopic, ErrSNSSignature or ErrSNSSubscribeURL (nothing recorded; SNS
// should not retry), ErrSESBusy (SNS should retry), or another error when confirming a
// subscription or the store failed (nothing recorded; SNS retries).
func (s *SES) Receive(ctx context.Context, body []byte) (store.InboundEntry, error) {
	var env snsEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return store.InboundEntry{}, fmt.Errorf("%w: %v", ErrSNSMalformed, err)
	}
	// The topic first: a valid signature only proves that some topic sent it.
	if env.TopicArn == "" || !slices.Contains(s.topics, env.TopicArn) {
		s.log.Warn("SNS message from a topic not allowed refused", "topic", clip(env.TopicArn))
		return store.InboundEntry{}, ErrSNSTopic
	}
	if err := s.sns.verify(ctx, &env); err != nil {
		s.log.Warn("SNS message refused", "topic", env.TopicArn, "err", err)
		return store.InboundEntry{}, err
	}
	e := store.InboundEntry{Channel: store.InboundSES, RcptTo: env.TopicArn, Kind: "ses", Size: len(body)}
	switch env.Type {
	case snsSubscription:
		if !snsURLAllowed(env.SubscribeURL, env.TopicArn, s.sns.endpoint) {
			s.log.Warn("SNS subscription refused", "topic", env.TopicArn, "subscribe_url", clip(env.SubscribeURL))
			return store.InboundEntry{}, ErrSNSSubscribeURL
		}
		if _, err := snsGet(ctx, s.sns.client, env.SubscribeURL, 64<<10); err != nil {
			return store.InboundEntry{}, fmt.Errorf("confirming the SNS subscription: %w", err)
		}
		e.Kind, e.Outcome, e.Detail = "subscription", store.InboundApplied, "confirmed the subscription to "+env.TopicArn
		s.log.Info("SNS subscription confirmed", "topic", env.TopicArn)
		return s.record(ctx, e)
	case snsUnsubscribeConfirmed:
		e.Kind, e.Outcome, e.Detail = "subscription", store.InboundIgnored, "the subscription to "+env.TopicArn+" was ended"
		return s.record(ctx, e)
	}
	return s.notification(ctx, e, env.Message)
}

func (s *SES) record(ctx context.Context, e store.InboundEntry) (store.InboundEntry, error) {
	if _, err := s.proc.Apply(ctx, e, nil); err != nil {
		return store.InboundEntry{}, err
	}
	return e, nil
}

// sesNotification is the SES event an SNS Notification carries (its Message), in the fields
// postie reads; unknown fields are ignored, as SES asks.
type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"` // configuration-set event publishing
	Mail             struct {
		MessageID     string `json:"messageId"`
		Source        string `json:"source"`
		Headers       []struct{ Name, Value string }
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		} `json:"commonHeaders"`
	} `json:"mail"`
	Bounce *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Action         string `json:"action"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
		FeedbackID   string `json:"feedbackId"`
		ReportingMTA string `json:"reportingMTA"`
		RemoteMtaIP  string `json:"remoteMtaIp"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
		FeedbackID            string `json:"feedbackId"`
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
		ComplaintSubType      string `json:"complaintSubType"`
		UserAgent             string `json:"userAgent"`
	} `json:"complaint"`
	Delivery *struct {
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		ReportingMTA string   `json:"reportingMTA"`
		RemoteMtaIP  string   `json:"remoteMtaIp"`
	} `json:"delivery"`
	DeliveryDelay *struct {
		DelayType         string `json:"delayType"`
		DelayedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"delayedRecipients"`
		ReportingMTA string `json:"reportingMTA"`
	} `json:"deliveryDelay"`
}

// sesBounceClass maps an SES bounce type and subtype to a bounce class (email-rules §4.6).
func sesBounceClass(bounceType, subType string) string {
	switch bounceType {
	case "Permanent":
		// General, NoEmail, Suppressed, OnAccountSuppressionList: the address is bad, or SES
		// already knows it is.
		return store.BounceHard
	case "Transient":
		switch subType {
		case "MessageTooLarge", "AttachmentRejected":
			return store.BounceMessage
		case "ContentRejected":
			return store.BounceBlock
		}
		return store.BounceSoft // General (often an automatic reply), MailboxFull
	}
	return store.BounceUndetermined
}

// notification turns an SES notification into recipient reports and applies them.
func (s *SES) notification(ctx context.Context, e store.InboundEntry, message string) (store.InboundEntry, error) {
	var n sesNotification
	if err := json.Unmarshal([]byte(message), &n); err != nil {
		e.Kind, e.Outcome, e.Detail = "unparseable", store.InboundIgnored, "the SNS message is not an SES notification: "+clip(err.Error())
		return s.record(ctx, e)
	}
	e.MailFrom = clip(n.Mail.Source)
	typ := n.NotificationType
	if typ == "" {
		typ = n.EventType
	}
	var items []item
	keyID := "" // what deduplicates the notification: SES's feedbackId, or its message id
	switch {
	case typ == "Bounce" && n.Bounce != nil:
		b := n.Bounce
		class := sesBounceClass(b.BounceType, b.BounceSubType)
		keyID = b.FeedbackID
		for _, r := range b.BouncedRecipients {
			items = append(items, item{rcpt: r.EmailAddress, kind: store.ReportBounce,
				detail: store.ReportDetail{Source: "ses", Class: class, Status: r.Status, Diagnostic: clip(r.DiagnosticCode),
					Action: r.Action, ReportingMTA: clip(strings.TrimPrefix(b.ReportingMTA, "dsn; ")), RemoteMTA: clip(b.RemoteMtaIP)}})
		}
	case typ == "Complaint" && n.Complaint != nil:
		c := n.Complaint
		kind := store.ReportComplaint
		// OnAccountSuppressionList is SES refusing to send to an address already on the
		// account's suppression list: no one complained about this message, and the address is
		// suppressed at SES already, so it is recorded, not counted as a complaint.
		if c.ComplaintFeedbackType == "not-spam" || c.ComplaintFeedbackType == "auth-failure" ||
			c.ComplaintSubType == "OnAccountSuppressionList" {
			kind = store.ReportFeedback
		}
		keyID = c.FeedbackID
		for _, r := range c.ComplainedRecipients {
			items = append(items, item{rcpt: r.EmailAddress, kind: kind,
				detail: store.ReportDetail{Source: "ses", FeedbackType: clip(c.ComplaintFeedbackType), UserAgent: clip(c.UserAgent)}})
		}
	case typ == "Delivery" && n.Delivery != nil:
		d := n.Delivery
		keyID = n.Mail.MessageID
		for _, r := range d.Recipients {
			items = append(items, item{rcpt: r, kind: store.ReportDelivered,
				detail: store.ReportDetail{Source: "ses", Diagnostic: clip(d.SMTPResponse), ReportingMTA: clip(d.ReportingMTA), RemoteMTA: clip(d.RemoteMtaIP)}})
		}
	case typ == "DeliveryDelay" && n.DeliveryDelay != nil:
		d := n.DeliveryDelay
		for _, r := range d.DelayedRecipients {
			items = append(items, item{rcpt: r.EmailAddress, kind: store.ReportDelayed,
				detail: store.ReportDetail{Source: "ses", Status: r.Status, Diagnostic: clip(r.DiagnosticCode), Action: "delayed",
					ReportingMTA: clip(d.ReportingMTA)}})
		}
	default:
		// Send, Reject, Open, Click, Rendering Failure, Subscription, or a type without its
		// object: nothing postie acts on.
		e.Outcome, e.Detail = store.InboundIgnored, "SES notification of type "+clip(typ)+": nothing to act on"
		return s.record(ctx, e)
	}

	// Signed for an allowed topic: SES itself says which mail and recipient it means.
	ref := Ref{BounceAddress: n.Mail.Source, MessageIDHeader: n.Mail.CommonHeaders.MessageID, Trusted: true}
	if ref.MessageIDHeader == "" {
		for _, h := range n.Mail.Headers {
			if strings.EqualFold(h.Name, "Message-ID") {
				ref.MessageIDHeader = h.Value
				break
			}
		}
	}
	if !s.proc.ourBounceAddress(ref.BounceAddress) {
		ref.BounceAddress = "" // the sender's own address: only the Message-ID can say more
	}
	if len(items) == 0 {
		e.Outcome, e.Detail = store.InboundIgnored, "SES "+clip(typ)+" notification naming no recipient"
	}
	e, out, err := s.proc.applyItems(ctx, e, ref, sesKey(keyID), items)
	if err == nil && Busy(out) {
		// It overtook the send's outcome: SNS retries a failed delivery, and what was applied
		// now is deduplicated then.
		return store.InboundEntry{}, ErrSESBusy
	}
	return e, err
}

// sesKey is the deduplication id of an SES notification: its feedbackId (bounces, complaints)
// or the SES message id (deliveries), so a notification SNS delivers twice is applied once.
func sesKey(id string) string {
	if id == "" {
		return ""
	}
	return "ses:" + id
}
