package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/inbound/snstest"
	"github.com/postie/postie/internal/store"
)

// sesBundle is an SES receiver on a Processor over a real store (procBundle), with a local SNS
// as POSTIE_SNS_ENDPOINT.
type sesBundle struct {
	*procBundle
	t   *testing.T
	sns *snstest.SNS
	ses *SES
}

const sesBounceDomain = "bounce.shop.example"

func setupSES(t *testing.T, driver string) *sesBundle {
	t.Helper()
	pb := setupProcessorOn(t, driver)
	s := snstest.New(t, pb.now)
	return &sesBundle{procBundle: pb, t: t, sns: s,
		ses: NewSES(SESConfig{Processor: pb.proc, TopicARNs: []string{testTopic}, Endpoint: s.URL, Now: func() time.Time { return pb.now }})}
}

// sent stores a transactional message to rcpts, with a Message-ID postie makes, recorded sent.
func (b *sesBundle) sent(rcpts ...string) store.Message {
	b.t.Helper()
	return b.procBundle.sent(b.t, store.StreamTransactional, rcpts...)
}

// post signs an SNS notification carrying the SES event ev and has SES receive it.
func (b *sesBundle) post(ev map[string]any, version string) (store.InboundEntry, error) {
	b.t.Helper()
	msg, err := json.Marshal(ev)
	if err != nil {
		b.t.Fatal(err)
	}
	e := notificationEnvelope(string(msg))
	b.sns.Sign(b.t, e, version)
	return b.ses.Receive(context.Background(), snstest.Body(b.t, e))
}

func (b *sesBundle) status(id string) store.Status {
	b.t.Helper()
	m, err := b.st.MessageGet(context.Background(), id)
	if err != nil {
		b.t.Fatal(err)
	}
	return m.Status
}

// suppressed is the reason addr is suppressed in scope, "" when it is not.
func (b *sesBundle) suppressed(addr, scope string) string {
	b.t.Helper()
	s, err := b.st.SuppressionGet(context.Background(), addr, scope, snsNow)
	if errors.Is(err, store.ErrNotFound) {
		return ""
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return s.Reason
}

func (b *sesBundle) entries() []store.InboundEntry {
	b.t.Helper()
	es, _, err := b.st.InboundList(context.Background(), store.InboundListParams{})
	if err != nil {
		b.t.Fatal(err)
	}
	return es
}

// sesMail is the mail object of an SES event about m (email-rules §4.6), naming it by its
// Message-ID header.
func sesMail(m store.Message, source string) map[string]any {
	return map[string]any{"timestamp": "2026-06-01T11:59:00.000Z", "messageId": "0100018c-ses-" + m.ID, "source": source,
		"destination": m.Recipients, "headersTruncated": false,
		"headers":       []map[string]string{{"name": "Message-ID", "value": "<" + m.MessageID + ">"}},
		"commonHeaders": map[string]any{"messageId": "<" + m.MessageID + ">", "subject": m.Subject}}
}

func sesBounce(m store.Message, source, typ, sub, feedbackID string, rcpts ...string) map[string]any {
	var br []map[string]any
	for _, r := range rcpts {
		br = append(br, map[string]any{"emailAddress": r, "action": "failed", "status": "5.1.1",
			"diagnosticCode": "smtp; 550 5.1.1 user unknown"})
	}
	return map[string]any{"notificationType": "Bounce", "mail": sesMail(m, source), "bounce": map[string]any{
		"bounceType": typ, "bounceSubType": sub, "bouncedRecipients": br, "timestamp": "2026-06-01T12:00:00.000Z",
		"feedbackId": feedbackID, "remoteMtaIp": "192.0.2.1", "reportingMTA": "dsn; a1-2.smtp-out.eu-west-1.amazonses.com"}}
}

func sesComplaint(m store.Message, feedbackType, feedbackID string, rcpts ...string) map[string]any {
	var cr []map[string]any
	for _, r := range rcpts {
		cr = append(cr, map[string]any{"emailAddress": r})
	}
	c := map[string]any{"complainedRecipients": cr, "timestamp": "2026-06-01T12:00:00.000Z", "feedbackId": feedbackID,
		"userAgent": "Yahoo!-Mail-Feedback/2.0"}
	if feedbackType != "" {
		c["complaintFeedbackType"] = feedbackType
	}
	return map[string]any{"notificationType": "Complaint", "mail": sesMail(m, "orders@shop.example"), "complaint": c}
}

// Each kind of SES notification (email-rules §4.6) changes what it should, and only that.
func TestSESNotifications(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		for _, version := range []string{"1", "2"} {
			t.Run(driver+"/SignatureVersion "+version, func(t *testing.T) {
				t.Parallel()
				b := setupSES(t, driver)

				// A permanent bounce matched by the Message-ID: bounced, suppressed everywhere.
				m := b.sent("ann@example.com")
				e, err := b.post(sesBounce(m, "orders@shop.example", "Permanent", "General", "fb-1", "ann@example.com"), version)
				if err != nil || e.Outcome != store.InboundApplied || e.Channel != store.InboundSES || e.RcptTo != testTopic {
					t.Fatalf("permanent bounce: %+v, %v", e, err)
				}
				if st := b.status(m.ID); st != store.StatusBounced {
					t.Errorf("status %s, want bounced", st)
				}
				if r := b.suppressed("ann@example.com", store.ScopeGlobal); r != store.ReasonHardBounce {
					t.Errorf("ann suppressed for %q, want hard_bounce", r)
				}
				// SNS delivers it again: nothing changes.
				if e, err := b.post(sesBounce(m, "orders@shop.example", "Permanent", "General", "fb-1", "ann@example.com"), version); err != nil || e.Outcome != store.InboundDuplicate {
					t.Errorf("the same notification again: %+v, %v", e, err)
				}

				// A bounce whose source is postie's bounce address names the recipient by it.
				m2 := b.sent("bob@example.com", "cy@example.com")
				verp := b.verp.Address(m2.ID, "cy@example.com", sesBounceDomain)
				if e, err := b.post(sesBounce(m2, verp, "Permanent", "NoEmail", "fb-2", "cy@example.com"), version); err != nil || e.Outcome != store.InboundApplied {
					t.Fatalf("bounce to the bounce address: %+v, %v", e, err)
				}
				if r := b.suppressed("cy@example.com", store.ScopeGlobal); r != store.ReasonHardBounce {
					t.Errorf("cy suppressed for %q, want hard_bounce", r)
				}
				if r := b.suppressed("bob@example.com", store.ScopeGlobal); r != "" {
					t.Errorf("bob suppressed for %q: the bounce was about cy", r)
				}

				// Transient bounces suppress nothing at once.
				m3 := b.sent("dee@example.com")
				for i, sub := range []string{"MailboxFull", "MessageTooLarge", "ContentRejected"} {
					e, err := b.post(sesBounce(m3, "orders@shop.example", "Transient", sub, "fb-3-"+sub, "dee@example.com"), version)
					if err != nil || e.Outcome != store.InboundApplied {
						t.Errorf("transient %s: %+v, %v", sub, e, err)
					}
					if r := b.suppressed("dee@example.com", store.ScopeGlobal); r != "" {
						t.Errorf("after transient bounce %d (%s) dee is suppressed for %q", i, sub, r)
					}
				}

				// A complaint: complained, suppressed for broadcast mail.
				m4 := b.sent("eve@example.com")
				if e, err := b.post(sesComplaint(m4, "abuse", "fb-4", "eve@example.com"), version); err != nil || e.Outcome != store.InboundApplied {
					t.Fatalf("complaint: %+v, %v", e, err)
				}
				if st := b.status(m4.ID); st != store.StatusComplained {
					t.Errorf("status %s, want complained", st)
				}
				if r := b.suppressed("eve@example.com", store.ScopeBroadcast); r != store.ReasonComplaint {
					t.Errorf("eve suppressed for %q in broadcast, want complaint", r)
				}
				// not-spam is feedback: recorded on the timeline, nothing else.
				m5 := b.sent("fay@example.com")
				if e, err := b.post(sesComplaint(m5, "not-spam", "fb-5", "fay@example.com"), version); err != nil || e.Outcome != store.InboundApplied {
					t.Fatalf("not-spam: %+v, %v", e, err)
				}
				if st, r := b.status(m5.ID), b.suppressed("fay@example.com", store.ScopeBroadcast); st != store.StatusSent || r != "" {
					t.Errorf("not-spam: status %s, suppressed %q", st, r)
				}

				// A complaint SES makes up for an address on its account suppression list is
				// no complaint: on the timeline as feedback, nothing else.
				m7 := b.sent("hal@example.com")
				sup := sesComplaint(m7, "", "fb-7", "hal@example.com")
				sup["complaint"].(map[string]any)["complaintSubType"] = "OnAccountSuppressionList"
				if e, err := b.post(sup, version); err != nil || e.Outcome != store.InboundApplied {
					t.Fatalf("OnAccountSuppressionList: %+v, %v", e, err)
				}
				if st, r := b.status(m7.ID), b.suppressed("hal@example.com", store.ScopeBroadcast); st != store.StatusSent || r != "" {
					t.Errorf("OnAccountSuppressionList: status %s, suppressed %q", st, r)
				}
				if evs, err := b.st.MessageEvents(context.Background(), m7.ID); err != nil || evs[len(evs)-1].Type != store.EventFeedback {
					t.Errorf("OnAccountSuppressionList: last event %s (%v), want feedback", evs[len(evs)-1].Type, err)
				}

				// A delivery: on the timeline, the message stays sent.
				m6 := b.sent("gus@example.com")
				del := map[string]any{"notificationType": "Delivery", "mail": sesMail(m6, "orders@shop.example"), "delivery": map[string]any{
					"timestamp": "2026-06-01T12:00:01.000Z", "recipients": []string{"gus@example.com"}, "smtpResponse": "250 2.6.0 Message received",
					"reportingMTA": "a8-70.smtp-out.amazonses.com", "processingTimeMillis": 546, "remoteMtaIp": "192.0.2.2"}}
				if e, err := b.post(del, version); err != nil || e.Outcome != store.InboundApplied {
					t.Fatalf("delivery: %+v, %v", e, err)
				}
				evs, err := b.st.MessageEvents(context.Background(), m6.ID)
				if err != nil {
					t.Fatal(err)
				}
				last := evs[len(evs)-1]
				if d, err := last.DecodeDetail(); err != nil || last.Type != store.EventDelivered || d.Report == nil || d.Report.Source != "ses" {
					t.Errorf("the delivery's event: %s %s (%v)", last.Type, last.Detail, err)
				}
				if st := b.status(m6.ID); st != store.StatusSent {
					t.Errorf("status %s after a delivery, want sent", st)
				}
			})
		}
	}
}

// What does not name mail postie sent, or says nothing postie acts on, is recorded and changes
// nothing.
func TestSESNotificationsRecordedOnly(t *testing.T) {
	t.Parallel()
	b := setupSES(t, "sqlite")
	m := b.sent("ann@example.com")
	other := m
	other.MessageID = "not-ours@elsewhere.example"
	forged := "b-" + strings.Repeat("a", 30) + "-" + strings.Repeat("b", 16) + "@" + sesBounceDomain

	for _, tc := range []struct {
		name    string
		ev      map[string]any
		outcome string
		kind    string
	}{
		{"a Message-ID postie did not make", sesBounce(other, "orders@shop.example", "Permanent", "General", "x-1", "ann@example.com"),
			store.InboundUnmatched, "ses"},
		{"a bounce address that does not verify", sesBounce(other, forged, "Permanent", "General", "x-2", "ann@example.com"),
			store.InboundUnmatched, "forged"},
		{"a recipient the message does not have (forwarded): its only recipient", sesBounce(m, "orders@shop.example", "Permanent", "General", "x-3", "zed@example.com"),
			store.InboundApplied, "ses"}, // the message's only recipient is the one it is about
		{"a Send event", map[string]any{"eventType": "Send", "mail": sesMail(m, "orders@shop.example"), "send": map[string]any{}},
			store.InboundIgnored, "ses"},
		{"a Bounce without its bounce object", map[string]any{"notificationType": "Bounce", "mail": sesMail(m, "orders@shop.example")},
			store.InboundIgnored, "ses"},
	} {
		e, err := b.post(tc.ev, "2")
		if err != nil || e.Outcome != tc.outcome || e.Kind != tc.kind {
			t.Errorf("%s: %+v, %v; want outcome %s, kind %s", tc.name, e, err, tc.outcome, tc.kind)
		}
	}

	// A Message that is not JSON.
	e := notificationEnvelope("not json")
	b.sns.Sign(t, e, "2")
	if got, err := b.ses.Receive(context.Background(), snstest.Body(t, e)); err != nil || got.Outcome != store.InboundIgnored || got.Kind != "unparseable" {
		t.Errorf("a Message that is not JSON: %+v, %v", got, err)
	}
	if n := len(b.entries()); n != 6 {
		t.Errorf("%d inbound entries, want 6", n)
	}
}

// Refused requests record nothing and change nothing: another topic (checked before anything
// else: its certificate is not even fetched), a forged signature, a certificate or a
// subscription URL elsewhere or behind a redirect.
func TestSESRefused(t *testing.T) {
	t.Parallel()
	b := setupSES(t, "sqlite")
	other := snstest.New(t, snsNow)
	m := b.sent("ann@example.com")
	bounce, _ := json.Marshal(sesBounce(m, "orders@shop.example", "Permanent", "General", "fb-1", "ann@example.com"))
	subscription := func(u string) *snstest.Message {
		return &snstest.Message{Type: snsSubscription, MessageID: "m-sub", Token: "tok", TopicArn: testTopic, Message: "You have chosen to subscribe",
			SubscribeURL: u, Timestamp: "2026-06-01T12:00:00.000Z"}
	}
	for _, tc := range []struct {
		name string
		make func() *snstest.Message
		want error
	}{
		{"another topic", func() *snstest.Message {
			e := notificationEnvelope(string(bounce))
			e.TopicArn = "arn:aws:sns:eu-west-1:123456789012:someone-else"
			b.sns.Sign(t, e, "2")
			return e
		}, ErrSNSTopic},
		{"no topic", func() *snstest.Message {
			e := notificationEnvelope(string(bounce))
			e.TopicArn = ""
			b.sns.Sign(t, e, "2")
			return e
		}, ErrSNSTopic},
		{"a forged signature", func() *snstest.Message {
			e := notificationEnvelope(`{"notificationType":"Delivery"}`)
			b.sns.Sign(t, e, "2")
			e.Message = string(bounce)
			return e
		}, ErrSNSSignature},
		{"signed by another key", func() *snstest.Message {
			e := notificationEnvelope(string(bounce))
			e.SigningCertURL = b.sns.CertURL
			other.Sign(t, e, "1")
			return e
		}, ErrSNSSignature},
		{"a certificate on another host", func() *snstest.Message {
			e := notificationEnvelope(string(bounce))
			e.SigningCertURL = other.CertURL
			other.Sign(t, e, "2")
			return e
		}, ErrSNSSignature},
		{"a certificate URL that redirects", func() *snstest.Message {
			e := notificationEnvelope(string(bounce))
			e.SigningCertURL = b.sns.MovedCertURL
			b.sns.Sign(t, e, "2")
			return e
		}, ErrSNSSignature},
		{"a subscription URL on another host", func() *snstest.Message {
			e := subscription(other.URL + "confirm")
			b.sns.Sign(t, e, "2")
			return e
		}, ErrSNSSubscribeURL},
		{"a subscription URL that redirects", func() *snstest.Message {
			e := subscription(b.sns.URL + "moved-confirm")
			b.sns.Sign(t, e, "2")
			return e
		}, nil}, // not refused as such: the confirmation fails, and SNS retries
	} {
		_, err := b.ses.Receive(context.Background(), snstest.Body(t, tc.make()))
		switch {
		case tc.want == nil && (err == nil || errors.Is(err, ErrSNSSignature) || errors.Is(err, ErrSNSTopic)):
			t.Errorf("%s: %v, want a failed confirmation", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := b.ses.Receive(context.Background(), []byte("{")); !errors.Is(err, ErrSNSMalformed) {
		t.Errorf("a body that is not JSON: %v", err)
	}
	if es := b.entries(); len(es) != 0 {
		t.Errorf("refused requests recorded %+v", es)
	}
	if st, r := b.status(m.ID), b.suppressed("ann@example.com", store.ScopeGlobal); st != store.StatusSent || r != "" {
		t.Errorf("after refused requests: status %s, suppressed %q", st, r)
	}
	if n := other.Fetches.Load() + other.Confirms.Load() + b.sns.Confirms.Load(); n != 0 {
		t.Errorf("%d requests to URLs that should not have been fetched", n)
	}
}

// A subscription is confirmed by fetching its SubscribeURL from the topic's SNS host.
func TestSESSubscription(t *testing.T) {
	t.Parallel()
	b := setupSES(t, "sqlite")
	e := &snstest.Message{Type: snsSubscription, MessageID: "m-sub", Token: "tok", TopicArn: testTopic, Message: "You have chosen to subscribe",
		SubscribeURL: b.sns.URL + "confirm?Action=ConfirmSubscription&Token=tok", Timestamp: "2026-06-01T12:00:00.000Z"}
	b.sns.Sign(t, e, "1")
	got, err := b.ses.Receive(context.Background(), snstest.Body(t, e))
	if err != nil || got.Kind != "subscription" || got.Outcome != store.InboundApplied {
		t.Fatalf("subscription: %+v, %v", got, err)
	}
	if n := b.sns.Confirms.Load(); n != 1 {
		t.Errorf("confirmed %d times, want once", n)
	}
	if es := b.entries(); len(es) != 1 || es[0].Kind != "subscription" || !strings.Contains(es[0].Detail, testTopic) {
		t.Errorf("entries %+v", es)
	}
}

// A notification about a message whose send is not recorded yet (SES bounced it before postie
// recorded its reply) is refused with ErrSESBusy, which SNS retries, and applied when it comes
// again after the send is recorded.
func TestSESDeliveryInProgress(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			b := setupSES(t, driver)
			m, finish := b.sending(t, store.StreamTransactional, "ann@example.com")
			bounce := sesBounce(m, "orders@shop.example", "Permanent", "General", "fb-busy", "ann@example.com")
			if _, err := b.post(bounce, "2"); !errors.Is(err, ErrSESBusy) {
				t.Fatalf("while the message is being delivered: %v, want ErrSESBusy", err)
			}
			if r := b.suppressed("ann@example.com", store.ScopeGlobal); r != "" {
				t.Errorf("suppressed for %q while the message was being delivered", r)
			}
			finish()
			if e, err := b.post(bounce, "2"); err != nil || e.Outcome != store.InboundApplied {
				t.Fatalf("once sent: %+v, %v", e, err)
			}
			if st, r := b.status(m.ID), b.suppressed("ann@example.com", store.ScopeGlobal); st != store.StatusBounced || r != store.ReasonHardBounce {
				t.Errorf("once sent: status %s, suppressed for %q", st, r)
			}
		})
	}
}
