package inbound

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/store/storetest"
)

const testBounceDomain = "bounce.shop.example"

// procBundle is a Processor over a real store with a fixed clock.
type procBundle struct {
	st   store.Store
	verp *mail.VERP
	proc *Processor
	now  time.Time
}

// drivers are the store drivers the Processor's tests run on.
var drivers = []string{"sqlite", "postgres"}

// onDrivers runs test on each driver, in parallel.
func onDrivers(t *testing.T, test func(t *testing.T, driver string)) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			test(t, driver)
		})
	}
}

// openStore opens a fresh migrated store of driver, closed when the test ends.
func openStore(t *testing.T, driver string) store.Store {
	t.Helper()
	switch driver {
	case "sqlite":
		return sqlitetest.Open(t)
	case "postgres":
		pg, err := postgres.Open(t.Context(), postgres.Options{URL: pgtest.URL(t), Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pg.Close() })
		return pg
	}
	t.Fatalf("no driver %q", driver)
	return nil
}

func setupProcessorOn(t *testing.T, driver string) *procBundle {
	t.Helper()
	st := openStore(t, driver)
	verp, err := mail.NewVERP(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	b := &procBundle{st: st, verp: verp, now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	b.proc = NewProcessor(ProcessorConfig{Store: st, VERP: verp, BounceDomains: []string{"Bounce.Shop.Example", "bounce.other.example"},
		Policy: store.ReportPolicy{SoftLimit: 3, SoftWindow: 7 * 24 * time.Hour, SoftSuppressFor: 30 * 24 * time.Hour, UndeterminedLimit: 2},
		Now:    func() time.Time { return b.now }})
	return b
}

// sent stores a message to rcpts and records it sent, as delivery does; it returns the message.
func (b *procBundle) sent(t *testing.T, stream string, rcpts ...string) store.Message {
	t.Helper()
	_, finish := b.sending(t, stream, rcpts...)
	return finish()
}

// sending stores a message to rcpts and claims it, as delivery does before a send: it is being
// delivered. finish records it sent and returns it.
func (b *procBundle) sending(t *testing.T, stream string, rcpts ...string) (store.Message, func() store.Message) {
	t.Helper()
	ctx := context.Background()
	nm := storetest.Message(b.now.Add(-time.Hour), func(m *store.Message) {
		m.Stream = stream
		m.To = rcpts
		m.Recipients = rcpts
		m.MessageID = strings.TrimPrefix(m.ID, "msg_") + ".abcd2345@shop.example"
	})
	if _, err := b.st.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{nm}, Now: nm.Message.CreatedAt}); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.st.MessageClaim(ctx, store.MessageClaimParams{Owner: "test", Stream: stream, Limit: 100,
		Now: b.now.Add(-time.Hour), LeaseUntil: b.now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].ID != nm.Message.ID {
		t.Fatalf("claimed %d messages, want %s", len(claimed), nm.Message.ID)
	}
	return nm.Message, func() store.Message {
		t.Helper()
		if _, err := b.st.MessageFinish(ctx, b.now.Add(-time.Hour), []store.MessageFinishParams{{ID: nm.Message.ID, Owner: "test",
			Status: store.StatusSent, Attempts: 1, SentAt: b.now.Add(-time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		got, err := b.st.MessageGet(ctx, nm.Message.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.StatusSent {
			t.Fatalf("message %s is %s, want sent", got.ID, got.Status)
		}
		return got
	}
}

func (b *procBundle) state(t *testing.T, msgID, rcpt string) store.RecipientStatus {
	t.Helper()
	rs, err := b.st.MessageRecipients(context.Background(), msgID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if strings.EqualFold(r.Email, rcpt) {
			return r.Status
		}
	}
	t.Fatalf("%s is not a recipient of %s", rcpt, msgID)
	return ""
}

// suppressed returns the scopes rcpt is suppressed in.
func (b *procBundle) suppressed(t *testing.T, rcpt string) []string {
	t.Helper()
	got, err := b.st.SuppressionMatch(context.Background(), []string{rcpt}, []string{store.ScopeGlobal, store.ScopeBroadcast}, b.now)
	if err != nil {
		t.Fatal(err)
	}
	var scopes []string
	for _, s := range got[strings.ToLower(rcpt)] {
		scopes = append(scopes, s.Scope)
	}
	return scopes
}

func TestResolve(t *testing.T) {
	t.Parallel()
	onDrivers(t, func(t *testing.T, driver string) { testResolve(t, setupProcessorOn(t, driver)) })
}

func testResolve(t *testing.T, b *procBundle) {
	ctx := context.Background()
	one := b.sent(t, store.StreamTransactional, "ann@example.com")
	two := b.sent(t, store.StreamTransactional, "bob@example.com", "Cat@Example.com")
	other, _ := mail.NewVERP(bytes.Repeat([]byte{8}, 32))
	missing := "msg_" + strings.Repeat("0", 26)

	for _, tc := range []struct {
		name     string
		ref      Ref
		msg      string
		rcpt     string
		whyMatch string
	}{
		{"bounce address", Ref{BounceAddress: b.verp.Address(two.ID, "cat@example.com", testBounceDomain)}, two.ID, "Cat@Example.com", ""},
		{"bounce address in upper case at the second domain",
			Ref{BounceAddress: strings.ToUpper(b.verp.Address(two.ID, "bob@example.com", "bounce.other.example"))}, two.ID, "bob@example.com", ""},
		{"bounce address wins over the Message-ID",
			Ref{BounceAddress: b.verp.Address(one.ID, "ann@example.com", testBounceDomain), MessageIDHeader: "<" + two.MessageID + ">"}, one.ID, "ann@example.com", ""},
		{"forged bounce address (another key)", Ref{BounceAddress: other.Address(one.ID, "ann@example.com", testBounceDomain),
			MessageIDHeader: one.MessageID}, "", "", "does not verify"},
		{"bounce address of a message that does not exist", Ref{BounceAddress: b.verp.Address(missing, "ann@example.com", testBounceDomain)}, "", "", "not found"},
		{"bounce address of another recipient", Ref{BounceAddress: b.verp.Address(one.ID, "zed@example.com", testBounceDomain)}, "", "", "names no recipient"},
		{"bounce address at a domain that is not a bounce domain: the Message-ID decides",
			Ref{BounceAddress: b.verp.Address(two.ID, "bob@example.com", "shop.example"), MessageIDHeader: "<" + one.MessageID + ">"}, one.ID, "ann@example.com", ""},
		{"Message-ID, the only recipient", Ref{MessageIDHeader: "<" + one.MessageID + ">"}, one.ID, "ann@example.com", ""},
		{"Message-ID, the only recipient despite another address", Ref{MessageIDHeader: one.MessageID, Recipient: "forwarded@example.net"}, one.ID, "ann@example.com", ""},
		{"Message-ID with the recipient, trusted", Ref{MessageIDHeader: strings.ToUpper(two.MessageID), Recipient: "cat@example.com", Trusted: true}, two.ID, "Cat@Example.com", ""},
		{"Message-ID with the recipient, untrusted: one recipient could report another",
			Ref{MessageIDHeader: two.MessageID, Recipient: "cat@example.com", Kind: store.ReportComplaint}, "", "", "several recipients"},
		{"Message-ID of a bounce, untrusted", Ref{MessageIDHeader: one.MessageID, Kind: store.ReportBounce}, "", "", "must come back to its bounce address"},
		{"Message-ID of a delivery report, untrusted", Ref{MessageIDHeader: one.MessageID, Kind: store.ReportDelivered}, "", "", "must come back to its bounce address"},
		{"Message-ID of a bounce, trusted", Ref{MessageIDHeader: one.MessageID, Kind: store.ReportBounce, Trusted: true}, one.ID, "ann@example.com", ""},
		{"Message-ID of a complaint, untrusted, one recipient", Ref{MessageIDHeader: one.MessageID, Kind: store.ReportComplaint}, one.ID, "ann@example.com", ""},
		{"Message-ID of several recipients, none named", Ref{MessageIDHeader: two.MessageID, Trusted: true}, "", "", "several recipients"},
		{"Message-ID of several recipients, another named", Ref{MessageIDHeader: two.MessageID, Recipient: "zed@example.com", Trusted: true}, "", "", "not a recipient"},
		{"Message-ID with another random part", Ref{MessageIDHeader: strings.TrimPrefix(one.ID, "msg_") + ".zzzz2345@shop.example"}, "", "", "not the one"},
		{"Message-ID of a message that does not exist", Ref{MessageIDHeader: "00000000000000000000000000.abcd2345@shop.example"}, "", "", "not found"},
		{"Message-ID postie did not make", Ref{MessageIDHeader: "<CAF=abc@mail.gmail.com>"}, "", "", "not one postie made"},
		{"nothing", Ref{Recipient: "ann@example.com"}, "", "", "no bounce address and no Message-ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, rcpt, ok, why := b.proc.Resolve(ctx, tc.ref)
			if msg != tc.msg || rcpt != tc.rcpt || ok != (tc.msg != "") {
				t.Fatalf("Resolve = %q, %q, %v (%s); want %q, %q", msg, rcpt, ok, why, tc.msg, tc.rcpt)
			}
			if !strings.Contains(why, tc.whyMatch) {
				t.Errorf("why = %q, want it to say %q", why, tc.whyMatch)
			}
		})
	}

	// Without VERP (no bounce domain), only Message-IDs match, and "b-…" addresses are no forgery.
	noVERP := NewProcessor(ProcessorConfig{Store: b.st})
	if msg, _, ok, why := noVERP.Resolve(ctx, Ref{BounceAddress: b.verp.Address(two.ID, "bob@example.com", testBounceDomain),
		MessageIDHeader: one.MessageID}); !ok || msg != one.ID {
		t.Errorf("without VERP: Resolve = %q, %v (%s); want %s by its Message-ID", msg, ok, why, one.ID)
	}
}

// TestReport applies parsed reports and checks what they did; the DSNs and ARF reports
// themselves are parsed by mail.ParseReport (its corpus test covers the formats).
func TestReport(t *testing.T) {
	t.Parallel()
	onDrivers(t, func(t *testing.T, driver string) { testReport(t, setupProcessorOn(t, driver)) })
}

func testReport(t *testing.T, b *procBundle) {
	ctx := context.Background()

	hard := b.sent(t, store.StreamTransactional, "ann@example.com")
	env := Envelope{RcptTo: b.verp.Address(hard.ID, "ann@example.com", testBounceDomain), ReportID: "message-id:<r1@mx.example.net>"}
	r := &mail.Report{Kind: mail.ReportDSN, ReportingMTA: "mx.example.net", Recipients: []mail.DSNRecipient{{
		FinalRecipient: "ann@example.com", Action: "failed", Status: "5.1.1", DiagnosticCode: "550 5.1.1 User unknown",
		RemoteMTA: "mx2.example.net", Class: mail.ClassHard}}}
	e, out, err := b.proc.Report(ctx, env, r, 1234)
	if err != nil {
		t.Fatal(err)
	}
	if e.Outcome != store.InboundApplied || len(out) != 1 || !out[0].Applied || out[0].Suppressed != store.ScopeGlobal {
		t.Fatalf("hard bounce: entry %+v, outcomes %+v", e, out)
	}
	if got := b.state(t, hard.ID, "ann@example.com"); got != store.RecipientBounced {
		t.Errorf("recipient is %s, want bounced", got)
	}
	if got := b.suppressed(t, "ann@example.com"); len(got) != 1 || got[0] != store.ScopeGlobal {
		t.Errorf("suppressions %v, want global", got)
	}
	events, err := b.st.MessageEvents(ctx, hard.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	d, err := last.DecodeDetail()
	if err != nil {
		t.Fatal(err)
	}
	if last.Type != store.EventBounced || d.Report == nil || d.Report.Status != "5.1.1" || d.Report.Class != store.BounceHard ||
		d.Report.Source != "dsn" || d.Report.RemoteMTA != "mx2.example.net" || d.Report.Suppressed != store.ScopeGlobal {
		t.Errorf("last event %s %s, want bounced 5.1.1 hard from the dsn", last.Type, last.Detail)
	}
	// The same report again (an MTA retrying after a lost reply) is a duplicate.
	if e, _, err := b.proc.Report(ctx, env, r, 1234); err != nil || e.Outcome != store.InboundDuplicate {
		t.Errorf("the same report again: %+v, %v; want duplicate", e, err)
	}

	// A complaint through the feedback address, matched by the original Message-ID.
	compl := b.sent(t, store.StreamBroadcast, "bob@example.com")
	arf := &mail.Report{Kind: mail.ReportARF, OriginalMessageID: compl.MessageID,
		Feedback: &mail.Feedback{FeedbackType: "abuse", UserAgent: "Yahoo!-Mail-Feedback/2.0"}}
	e, out, err = b.proc.Report(ctx, Envelope{RcptTo: "fbl@" + testBounceDomain, ReportID: "x"}, arf, 10)
	if err != nil || e.Outcome != store.InboundApplied || out[0].Suppressed != store.ScopeBroadcast {
		t.Fatalf("complaint: %+v %+v %v", e, out, err)
	}
	if got := b.state(t, compl.ID, "bob@example.com"); got != store.RecipientComplained {
		t.Errorf("complained recipient is %s", got)
	}

	// Not-spam feedback and auto-replies change no state.
	info := b.sent(t, store.StreamBroadcast, "cat@example.com")
	for _, r := range []*mail.Report{
		{Kind: mail.ReportARF, OriginalMessageID: info.MessageID, Feedback: &mail.Feedback{FeedbackType: "not-spam"}},
		{Kind: mail.ReportAutoReply, From: "Cat <cat@example.com>", Subject: "Out of office"},
		{Kind: mail.ReportDSN, Recipients: []mail.DSNRecipient{{FinalRecipient: "cat@example.com", Action: "delayed", Status: "4.4.1"}}},
	} {
		env := Envelope{RcptTo: b.verp.Address(info.ID, "cat@example.com", testBounceDomain), ReportID: r.Kind + r.Subject}
		if e, out, err := b.proc.Report(ctx, env, r, 10); err != nil || e.Outcome != store.InboundApplied || out[0].Suppressed != "" {
			t.Errorf("%s: %+v %+v %v", r.Kind, e, out, err)
		}
	}
	if got := b.state(t, info.ID, "cat@example.com"); got != store.RecipientSent {
		t.Errorf("after feedback, an auto-reply and a delay the recipient is %s, want sent", got)
	}
	if got := b.suppressed(t, "cat@example.com"); len(got) != 0 {
		t.Errorf("suppressed in %v", got)
	}

	// One bounce of a message to two recipients: that one bounces, the other stays sent.
	pair := b.sent(t, store.StreamTransactional, "dan@example.com", "eve@example.com")
	r = &mail.Report{Kind: mail.ReportText, Recipients: []mail.DSNRecipient{{FinalRecipient: "eve@example.com", Action: "failed", Status: "5.1.1", Class: mail.ClassHard}}}
	if _, _, err := b.proc.Report(ctx, Envelope{RcptTo: b.verp.Address(pair.ID, "eve@example.com", testBounceDomain)}, r, 10); err != nil {
		t.Fatal(err)
	}
	if a, e := b.state(t, pair.ID, "dan@example.com"), b.state(t, pair.ID, "eve@example.com"); a != store.RecipientSent ||
		e != store.RecipientBounced {
		t.Errorf("dan %s, eve %s; want sent, bounced", a, e)
	}
}

// TestReportRecordsOnly checks what is recorded and not acted on: nothing changes state or
// suppresses, and each is an inbound entry saying why.
func TestReportRecordsOnly(t *testing.T) {
	t.Parallel()
	onDrivers(t, func(t *testing.T, driver string) { testReportRecordsOnly(t, setupProcessorOn(t, driver)) })
}

func testReportRecordsOnly(t *testing.T, b *procBundle) {
	ctx := context.Background()
	m := b.sent(t, store.StreamTransactional, "ann@example.com")
	other, _ := mail.NewVERP(bytes.Repeat([]byte{8}, 32))
	bounce := func(rcpt string) *mail.Report {
		return &mail.Report{Kind: mail.ReportDSN, Recipients: []mail.DSNRecipient{{FinalRecipient: rcpt, Action: "failed", Status: "5.1.1", Class: mail.ClassHard}}}
	}
	for _, tc := range []struct {
		name    string
		env     Envelope
		r       *mail.Report
		kind    string
		outcome string
		detail  string
	}{
		{"forged bounce address", Envelope{RcptTo: other.Address(m.ID, "ann@example.com", testBounceDomain)}, bounce("ann@example.com"),
			"forged", store.InboundUnmatched, "does not verify"},
		{"forged bounce address quoted in an ARF report", Envelope{RcptTo: "fbl@" + testBounceDomain},
			&mail.Report{Kind: mail.ReportARF, OriginalMessageID: m.MessageID, Feedback: &mail.Feedback{FeedbackType: "abuse",
				OriginalMailFrom: other.Address(m.ID, "ann@example.com", testBounceDomain)}}, "forged", store.InboundUnmatched, "does not verify"},
		{"unknown message id", Envelope{RcptTo: "fbl@" + testBounceDomain},
			&mail.Report{Kind: mail.ReportARF, OriginalMessageID: "00000000000000000000000000.abcd2345@shop.example",
				Feedback: &mail.Feedback{FeedbackType: "abuse"}}, mail.ReportARF, store.InboundUnmatched, "not found"},
		{"a DSN to another address quoting the Message-ID", Envelope{RcptTo: "postmaster@" + testBounceDomain},
			&mail.Report{Kind: mail.ReportDSN, OriginalMessageID: m.MessageID,
				Recipients: bounce("ann@example.com").Recipients}, mail.ReportDSN, store.InboundUnmatched, "must come back to its bounce address"},
		{"a DSN block without an Action", Envelope{RcptTo: b.verp.Address(m.ID, "ann@example.com", testBounceDomain)},
			&mail.Report{Kind: mail.ReportDSN, Recipients: []mail.DSNRecipient{{FinalRecipient: "ann@example.com", Status: "5.0.0"}}},
			mail.ReportDSN, store.InboundIgnored, "say nothing about a mailbox"},
		{"unknown bounce address", Envelope{RcptTo: b.verp.Address("msg_"+strings.Repeat("1", 26), "ann@example.com", testBounceDomain)},
			bounce("ann@example.com"), mail.ReportDSN, store.InboundUnmatched, "not found"},
		{"a DSN naming no recipient", Envelope{RcptTo: b.verp.Address(m.ID, "ann@example.com", testBounceDomain)},
			&mail.Report{Kind: mail.ReportDSN}, "unparseable", store.InboundIgnored, "naming no recipient"},
		{"unparseable", Envelope{RcptTo: b.verp.Address(m.ID, "ann@example.com", testBounceDomain)},
			&mail.Report{Kind: mail.ReportUnknown, Subject: "Hello"}, "unparseable", store.InboundIgnored, "Hello"},
		{"a message to the feedback address naming nothing", Envelope{RcptTo: "fbl@" + testBounceDomain},
			&mail.Report{Kind: mail.ReportARF, Feedback: &mail.Feedback{FeedbackType: "abuse"}}, mail.ReportARF, store.InboundUnmatched, "no bounce address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, out, err := b.proc.Report(ctx, tc.env, tc.r, 100)
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != tc.kind || e.Outcome != tc.outcome || len(out) != 0 || !strings.Contains(e.Detail, tc.detail) {
				t.Errorf("entry %+v, outcomes %+v; want kind %s, outcome %s, detail with %q", e, out, tc.kind, tc.outcome, tc.detail)
			}
		})
	}
	if got := b.state(t, m.ID, "ann@example.com"); got != store.RecipientSent {
		t.Errorf("recipient is %s, want sent", got)
	}
	if got := b.suppressed(t, "ann@example.com"); len(got) != 0 {
		t.Errorf("suppressed in %v", got)
	}
	entries, _, err := b.st.InboundList(ctx, store.InboundListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 9 {
		t.Errorf("%d entries recorded, want 9: %s", len(entries), fmt.Sprint(entries))
	}
}
