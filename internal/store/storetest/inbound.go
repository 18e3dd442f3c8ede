package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

// inboundCases are the inbound area's conformance cases (store/inbound.go).
var inboundCases = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"InboundBounce", testInboundBounce},
	{"InboundDuplicateMissing", testInboundDuplicateMissing},
	{"InboundSplit", testInboundSplit},
	{"InboundBusy", testInboundBusy},
	{"InboundComplaint", testInboundComplaint},
	{"InboundInformational", testInboundInformational},
	{"InboundSoftLimit", testInboundSoftLimit},
	{"InboundUndetermined", testInboundUndetermined},
	{"InboundList", testInboundList},
	{"DeliveryCounts", testDeliveryCounts},
	{"StreamPause", testStreamPause},
	{"StreamPauseHandoff", testStreamPauseHandoff},
}

// sentMessage accepts a message to rcpts in stream, claims it and finishes it sent at at.
func sentMessage(t *testing.T, s store.Store, stream string, at time.Time, rcpts ...string) string {
	t.Helper()
	m := Message(at, func(m *store.Message) {
		m.Stream, m.To, m.Recipients = stream, rcpts, rcpts
	})
	accept(t, s, at, m)
	got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: stream, Limit: 10, Now: at,
		LeaseUntil: at.Add(time.Minute)})
	if len(got) != 1 {
		t.Fatalf("claimed %d messages, want 1", len(got))
	}
	if n, err := s.MessageFinish(t.Context(), at, []store.MessageFinishParams{{ID: m.Message.ID, Owner: "w",
		Status: store.StatusSent, Attempts: 1, SentAt: at, Events: []store.Event{{Type: store.EventSent, At: at}}}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	return m.Message.ID
}

// apply runs InboundApply of reports received by SMTP at now with policy and returns their outcomes.
func apply(t *testing.T, in store.Inbound, now time.Time, policy store.ReportPolicy, reports ...store.RecipientReport) []store.ReportOutcome {
	t.Helper()
	out, err := in.InboundApply(t.Context(), store.InboundApplyParams{
		Entry:   store.InboundEntry{Channel: store.InboundSMTP, MailFrom: "", RcptTo: "b-x@bounce.example", Kind: "dsn", Size: 100},
		Reports: reports, Policy: policy, Now: now})
	if err != nil {
		t.Fatalf("InboundApply: %v", err)
	}
	if len(out) != len(reports) {
		t.Fatalf("InboundApply returned %d outcomes for %d reports", len(out), len(reports))
	}
	return out
}

func bounce(msgID, rcpt, class, key string) store.RecipientReport {
	return store.RecipientReport{MessageID: msgID, Recipient: rcpt, Kind: store.ReportBounce, Key: key,
		Detail: store.ReportDetail{Source: "dsn", Class: class, Status: "5.1.1", Action: "failed",
			Diagnostic: "smtp; 550 5.1.1 no such user"}}
}

func messageStatus(t *testing.T, s store.Store, msgID string) store.Status {
	t.Helper()
	m, err := s.MessageGet(t.Context(), msgID)
	if err != nil {
		t.Fatalf("MessageGet: %v", err)
	}
	return m.Status
}

// lastEvent is the last event of a message's timeline, with its detail decoded.
func lastEvent(t *testing.T, s store.Store, msgID string) (store.Event, *store.EventDetail) {
	t.Helper()
	evs, err := s.MessageEvents(t.Context(), msgID)
	if err != nil || len(evs) == 0 {
		t.Fatalf("MessageEvents = %d events, %v", len(evs), err)
	}
	e := evs[len(evs)-1]
	d, err := e.DecodeDetail()
	if err != nil {
		t.Fatalf("event detail %s: %v", e.Detail, err)
	}
	return e, d
}

func suppressionOf(t *testing.T, s store.Store, email, scope string, now time.Time) (store.Suppression, bool) {
	t.Helper()
	sup, err := s.SuppressionGet(t.Context(), email, scope, now)
	if errors.Is(err, store.ErrNotFound) {
		return store.Suppression{}, false
	}
	if err != nil {
		t.Fatalf("SuppressionGet: %v", err)
	}
	return sup, true
}

func inboundEntries(t *testing.T, in store.Inbound, p store.InboundListParams) []store.InboundEntry {
	t.Helper()
	var out []store.InboundEntry
	for {
		page, next, err := in.InboundList(t.Context(), p)
		if err != nil {
			t.Fatalf("InboundList: %v", err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		p.Cursor = next
	}
}

// testInboundBounce: a hard bounce of a sent recipient makes it (and the message) bounced,
// records the event with the report, suppresses the address globally, reports
// message.bounced to the endpoints subscribed to it, counts a bounce, and records the entry.
func testInboundBounce(t *testing.T, s store.Store) {
	var in store.Inbound = s
	ctx := t.Context()
	hooked := endpoint(t, s, store.WebhookMessageBounced)
	other := endpoint(t, s, store.WebhookMessageComplained, store.WebhookMessageSent)
	id := sentMessage(t, s, store.StreamTransactional, t0, "ann@example.com")
	now := t0.Add(time.Hour)

	out := apply(t, in, now, store.ReportPolicy{}, bounce(id, "Ann@Example.com", store.BounceHard, "k1"))
	want := store.ReportOutcome{Applied: true, State: store.RecipientBounced, Suppressed: store.ScopeGlobal}
	if out[0] != want {
		t.Errorf("outcome = %+v, want %+v", out[0], want)
	}
	if st := messageStatus(t, s, id); st != store.StatusBounced {
		t.Errorf("message status = %s, want bounced", st)
	}
	e, d := lastEvent(t, s, id)
	wantDetail := &store.EventDetail{Recipients: []store.EventRecipient{{Recipient: "ann@example.com"}},
		Report: &store.ReportDetail{Source: "dsn", Class: store.BounceHard, Status: "5.1.1", Action: "failed",
			Diagnostic: "smtp; 550 5.1.1 no such user", Suppressed: store.ScopeGlobal}}
	if e.Type != store.EventBounced || !e.At.Equal(now) {
		t.Errorf("event = %s at %v, want bounced at %v", e.Type, e.At, now)
	}
	if diff := gocmp.Diff(wantDetail, d); diff != "" {
		t.Errorf("event detail (-want +got):\n%s", diff)
	}
	sup, ok := suppressionOf(t, s, "ann@example.com", store.ScopeGlobal, now)
	if !ok || sup.Reason != store.ReasonHardBounce || sup.MessageID != id || !sup.ExpiresAt.IsZero() {
		t.Errorf("suppression = %+v, %v; want a hard bounce of %s for good", sup, ok, id)
	}
	got := reports(t, s, hooked.ID)
	wantReports := []reported{{Type: store.WebhookMessageBounced, Subject: id, Recipient: "ann@example.com", At: now,
		Detail: compactJSON(t, e.Detail)}}
	if diff := gocmp.Diff(wantReports, got); diff != "" {
		t.Errorf("message.bounced reports (-want +got):\n%s", diff)
	}
	if got := reports(t, s, other.ID); len(got) != 1 || got[0].Type != store.WebhookMessageSent {
		t.Errorf("reports to an endpoint not subscribed to bounces = %+v, want the sent one alone", got)
	}
	c, err := in.DeliveryCounts(ctx, store.StreamTransactional, t0)
	if err != nil || c != (store.DeliveryCounts{Delivered: 1, Bounced: 1}) {
		t.Errorf("DeliveryCounts = %+v, %v; want 1 delivered, 1 bounced", c, err)
	}
	entries := inboundEntries(t, in, store.InboundListParams{})
	if len(entries) != 1 {
		t.Fatalf("entries = %+v, want 1", entries)
	}
	en := entries[0]
	if en.ID == 0 || !en.At.Equal(now) || en.Channel != store.InboundSMTP || en.Kind != "dsn" || en.RcptTo != "b-x@bounce.example" ||
		en.Outcome != store.InboundApplied || !slices.Equal(en.MessageIDs, []string{id}) || en.Size != 100 {
		t.Errorf("entry = %+v", en)
	}
}

// testInboundDuplicateMissing: a report whose key was applied changes nothing (duplicate); one
// naming no message, or an address that is not its recipient, is missing, and writes nothing.
func testInboundDuplicateMissing(t *testing.T, s store.Store) {
	var in store.Inbound = s
	id := sentMessage(t, s, store.StreamTransactional, t0, "ann@example.com")
	now := t0.Add(time.Hour)
	apply(t, in, now, store.ReportPolicy{}, bounce(id, "ann@example.com", store.BounceBlock, "k1"))
	events, _ := s.MessageEvents(t.Context(), id)

	out := apply(t, in, now.Add(time.Minute), store.ReportPolicy{},
		bounce(id, "ann@example.com", store.BounceHard, "k1"),
		bounce("msg_00000000000000000000000000", "ann@example.com", store.BounceHard, "k2"),
		bounce(id, "bob@example.com", store.BounceHard, "k3"))
	want := []store.ReportOutcome{{}, {Missing: true}, {Missing: true}}
	if diff := gocmp.Diff(want, out); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if again, _ := s.MessageEvents(t.Context(), id); len(again) != len(events) {
		t.Errorf("events after a duplicate: %d, want %d", len(again), len(events))
	}
	for _, a := range []string{"ann@example.com", "bob@example.com"} {
		if sup, ok := suppressionOf(t, s, a, store.ScopeGlobal, now); ok {
			t.Errorf("suppression of %s = %+v, want none (block bounce, duplicate, missing)", a, sup)
		}
	}
	// k3 named no recipient, so it was not recorded: a report of a recipient with it applies.
	if out := apply(t, in, now, store.ReportPolicy{}, store.RecipientReport{MessageID: id, Recipient: "ann@example.com",
		Kind: store.ReportDelayed, Key: "k3", Detail: store.ReportDetail{Source: "dsn", Action: "delayed"}}); !out[0].Applied {
		t.Errorf("a key recorded by a missing report: %+v", out[0])
	}
	if out := apply(t, in, now, store.ReportPolicy{}, bounce(id, "bob@example.com", store.BounceHard, "k4")); !out[0].Missing {
		t.Errorf("outcome of another address = %+v, want missing", out[0])
	}
	var outcomes []string
	for _, e := range inboundEntries(t, in, store.InboundListParams{}) {
		outcomes = append(outcomes, e.Outcome)
	}
	wantOutcomes := []string{store.InboundUnmatched, store.InboundApplied, store.InboundDuplicate, store.InboundApplied}
	if diff := gocmp.Diff(wantOutcomes, outcomes); diff != "" {
		t.Errorf("entry outcomes, newest first (-want +got):\n%s", diff)
	}
	if out := apply(t, in, now, store.ReportPolicy{}, bounce("msg_00000000000000000000000000", "a@b", store.BounceHard, "")); !out[0].Missing {
		t.Errorf("outcome = %+v, want missing", out[0])
	}
	if e := inboundEntries(t, in, store.InboundListParams{Limit: 1}); e[0].Outcome != store.InboundUnmatched || len(e[0].MessageIDs) != 0 {
		t.Errorf("entry of a missing report = %+v, want unmatched, no message", e[0])
	}
}

// testInboundSplit: a bounce of one recipient of a message not split splits it: that recipient
// is bounced, the others keep their state, the message's status is derived.
func testInboundSplit(t *testing.T, s store.Store) {
	var in store.Inbound = s
	id := sentMessage(t, s, store.StreamTransactional, t0, "ann@example.com", "bob@example.com", "cat@example.com")
	now := t0.Add(time.Hour)
	out := apply(t, in, now, store.ReportPolicy{}, bounce(id, "bob@example.com", store.BounceMessage, "k1"))
	if out[0] != (store.ReportOutcome{Applied: true, State: store.RecipientBounced}) {
		t.Errorf("outcome = %+v", out[0])
	}
	want := "ann@example.com=sent/1 bob@example.com=bounced/1 cat@example.com=sent/1"
	if diff := gocmp.Diff(want, recipientStates(t, s, id)); diff != "" {
		t.Errorf("recipient states (-want +got):\n%s", diff)
	}
	if st := messageStatus(t, s, id); st != store.StatusSent {
		t.Errorf("status = %s, want sent", st)
	}
	rs, _ := s.MessageRecipients(t.Context(), id)
	for _, r := range rs {
		if !r.SentAt.Equal(t0) {
			t.Errorf("recipient %+v lost its sent time when split", r)
		}
	}
	// Each of the others, then: every recipient bounced, so is the message.
	apply(t, in, now, store.ReportPolicy{}, bounce(id, "ann@example.com", store.BounceHard, "k2"),
		bounce(id, "cat@example.com", store.BounceSoft, "k3"))
	if st := messageStatus(t, s, id); st != store.StatusBounced {
		t.Errorf("status = %s, want bounced", st)
	}
	// A claim does not return it: nothing is pending.
	if got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 10, Now: now,
		LeaseUntil: now.Add(time.Minute)}); len(got) != 0 {
		t.Errorf("claimed %d after the bounces", len(got))
	}
}

// testInboundComplaint: a complaint makes a sent or bounced recipient complained, suppresses
// the address for broadcast mail, reports message.complained and counts a complaint; a second
// complaint of the same recipient (another key) is recorded, not reported nor counted.
func testInboundComplaint(t *testing.T, s store.Store) {
	var in store.Inbound = s
	ctx := t.Context()
	hook := endpoint(t, s, store.WebhookMessageComplained, store.WebhookMessageBounced)
	id := sentMessage(t, s, store.StreamBroadcast, t0, "ann@example.com", "bob@example.com")
	now := t0.Add(time.Hour)
	arf := func(rcpt, key string) store.RecipientReport {
		return store.RecipientReport{MessageID: id, Recipient: rcpt, Kind: store.ReportComplaint, Key: key,
			Detail: store.ReportDetail{Source: "arf", FeedbackType: "abuse", UserAgent: "Yahoo!-Mail-Feedback/2.0"}}
	}
	apply(t, in, now, store.ReportPolicy{}, bounce(id, "bob@example.com", store.BounceSoft, "b1"))
	out := apply(t, in, now, store.ReportPolicy{}, arf("ann@example.com", "c1"), arf("bob@example.com", "c2"),
		arf("ann@example.com", "c3"))
	want := []store.ReportOutcome{
		{Applied: true, State: store.RecipientComplained, Suppressed: store.ScopeBroadcast},
		{Applied: true, State: store.RecipientComplained, Suppressed: store.ScopeBroadcast},
		{Applied: true, State: store.RecipientComplained, Suppressed: store.ScopeBroadcast},
	}
	if diff := gocmp.Diff(want, out); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if st := messageStatus(t, s, id); st != store.StatusComplained {
		t.Errorf("status = %s, want complained", st)
	}
	for _, a := range []string{"ann@example.com", "bob@example.com"} {
		sup, ok := suppressionOf(t, s, a, store.ScopeBroadcast, now)
		if !ok || sup.Reason != store.ReasonComplaint {
			t.Errorf("broadcast suppression of %s = %+v, %v", a, sup, ok)
		}
		if sup, ok := suppressionOf(t, s, a, store.ScopeGlobal, now); ok {
			t.Errorf("global suppression of %s = %+v, want none", a, sup)
		}
	}
	var types []string
	for _, r := range sortedReports(t, s, hook.ID) {
		types = append(types, r.Recipient+" "+r.Type)
	}
	wantTypes := []string{"ann@example.com message.complained", "bob@example.com message.bounced", "bob@example.com message.complained"}
	if diff := gocmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	c, err := in.DeliveryCounts(ctx, store.StreamBroadcast, t0)
	if err != nil || c != (store.DeliveryCounts{Delivered: 2, Bounced: 1, Complained: 2}) {
		t.Errorf("DeliveryCounts = %+v, %v; want 2 delivered, 1 bounced, 2 complained", c, err)
	}
	if evs, _ := s.MessageEvents(ctx, id); len(evs) != 2+4 { // queued, sent, a bounce, three complaints
		t.Errorf("%d events, want 6", len(evs))
	}
}

// testInboundInformational: delayed, auto-reply and feedback reports add their event alone.
func testInboundInformational(t *testing.T, s store.Store) {
	var in store.Inbound = s
	id := sentMessage(t, s, store.StreamTransactional, t0, "ann@example.com")
	now := t0.Add(time.Hour)
	for _, tc := range []struct{ kind, event string }{
		{store.ReportDelayed, store.EventDelayed},
		{store.ReportAutoReply, store.EventAutoReply},
		{store.ReportFeedback, store.EventFeedback},
		{store.ReportDelivered, store.EventDelivered},
	} {
		out := apply(t, in, now, store.ReportPolicy{}, store.RecipientReport{MessageID: id, Recipient: "ann@example.com",
			Kind: tc.kind, Detail: store.ReportDetail{Source: "dsn"}})
		if out[0] != (store.ReportOutcome{Applied: true, State: store.RecipientSent}) {
			t.Errorf("%s: outcome = %+v", tc.kind, out[0])
		}
		if e, d := lastEvent(t, s, id); e.Type != tc.event || d.Report == nil || d.Report.Source != "dsn" {
			t.Errorf("%s: event %s %s", tc.kind, e.Type, e.Detail)
		}
	}
	if st := messageStatus(t, s, id); st != store.StatusSent {
		t.Errorf("status = %s, want sent", st)
	}
	// An entry without reports keeps its outcome.
	if _, err := in.InboundApply(t.Context(), store.InboundApplyParams{Entry: store.InboundEntry{Channel: store.InboundSMTP,
		Kind: "unparseable", Outcome: store.InboundIgnored, Detail: "not a report"}, Now: now}); err != nil {
		t.Fatal(err)
	}
	if e := inboundEntries(t, in, store.InboundListParams{Limit: 1}); e[0].Outcome != store.InboundIgnored || e[0].Detail != "not a report" {
		t.Errorf("entry = %+v", e[0])
	}
	// Bad input is refused, nothing stored.
	for _, p := range []store.InboundApplyParams{
		{Entry: store.InboundEntry{Channel: store.InboundSMTP, Kind: "dsn"}, Now: now},
		{Entry: store.InboundEntry{Channel: store.InboundSMTP, Kind: "dsn"}, Now: now,
			Reports: []store.RecipientReport{{MessageID: id, Recipient: "ann@example.com", Kind: "bogus"}}},
	} {
		if _, err := in.InboundApply(t.Context(), p); err == nil {
			t.Errorf("InboundApply(%+v) succeeded", p)
		}
	}
	if n := len(inboundEntries(t, in, store.InboundListParams{})); n != 5 {
		t.Errorf("%d entries, want 5", n)
	}
}

// testInboundSoftLimit: SoftLimit soft bounces within SoftWindow with no delivery report in
// between suppress the address for SoftSuppressFor; never over a suppression for good.
func testInboundSoftLimit(t *testing.T, s store.Store) {
	var in store.Inbound = s
	pol := store.ReportPolicy{SoftLimit: 3, SoftWindow: 72 * time.Hour, SoftSuppressFor: 24 * time.Hour, UndeterminedLimit: 3}
	ids := make([]string, 6)
	for i := range ids {
		ids[i] = sentMessage(t, s, store.StreamTransactional, t0, "ann@example.com")
	}
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	soft := func(i, h int) store.ReportOutcome {
		return apply(t, in, at(h), pol, bounce(ids[i], "ann@example.com", store.BounceSoft, ""))[0]
	}
	// Two, then one four days later: the first two are out of the window.
	soft(0, 1)
	soft(1, 2)
	if o := soft(2, 100); o.Suppressed != "" {
		t.Fatalf("suppressed after soft bounces outside the window: %+v", o)
	}
	// A delivery report in between forgets them.
	soft(3, 101)
	apply(t, in, at(102), pol, store.RecipientReport{MessageID: ids[3], Recipient: "ann@example.com", Kind: store.ReportDelivered,
		Detail: store.ReportDetail{Source: "dsn", Action: "delivered"}})
	soft(4, 103)
	if o := soft(5, 104); o.Suppressed != "" {
		t.Fatalf("suppressed though a delivery report came in between: %+v", o)
	}
	if o := soft(0, 105); o.Suppressed != store.ScopeGlobal {
		t.Fatalf("third soft bounce in the window: %+v, want suppressed", o)
	}
	sup, ok := suppressionOf(t, s, "ann@example.com", store.ScopeGlobal, at(105))
	if !ok || sup.Reason != store.ReasonSoftBounce || !sup.ExpiresAt.Equal(at(105+24)) {
		t.Errorf("suppression = %+v, %v; want a soft bounce until %v", sup, ok, at(105+24))
	}
	if _, d := lastEvent(t, s, ids[0]); d.Report.Suppressed != store.ScopeGlobal {
		t.Errorf("event's report = %+v, want suppressed global", d.Report)
	}
	// A hard bounce is for good; soft bounces after it do not weaken it.
	apply(t, in, at(106), pol, bounce(ids[1], "ann@example.com", store.BounceHard, ""))
	if o := soft(2, 107); o.Suppressed != "" {
		t.Errorf("a soft bounce over a hard one: %+v, want no suppression added", o)
	}
	if sup, _ := suppressionOf(t, s, "ann@example.com", store.ScopeGlobal, at(107)); sup.Reason != store.ReasonHardBounce || !sup.ExpiresAt.IsZero() {
		t.Errorf("suppression = %+v, want the hard bounce for good", sup)
	}
	// No policy: soft bounces never suppress.
	b := sentMessage(t, s, store.StreamTransactional, t0, "bob@example.com")
	for i := range 5 {
		if o := apply(t, in, at(i), store.ReportPolicy{}, bounce(b, "bob@example.com", store.BounceSoft, ""))[0]; o.Suppressed != "" {
			t.Fatalf("suppressed without a policy: %+v", o)
		}
	}
}

// testInboundUndetermined: UndeterminedLimit undetermined bounces within SoftWindow suppress
// the address for good, only when they came from at least two messages.
func testInboundUndetermined(t *testing.T, s store.Store) {
	var in store.Inbound = s
	pol := store.ReportPolicy{SoftLimit: 5, SoftWindow: 72 * time.Hour, SoftSuppressFor: 24 * time.Hour, UndeterminedLimit: 2}
	a := sentMessage(t, s, store.StreamTransactional, t0, "ann@example.com")
	b := sentMessage(t, s, store.StreamTransactional, t0, "ann@example.com")
	und := func(id string, h int) store.ReportOutcome {
		r := bounce(id, "ann@example.com", store.BounceUndetermined, "")
		r.Detail.Status = ""
		return apply(t, in, t0.Add(time.Duration(h)*time.Hour), pol, r)[0]
	}
	for h := range 3 {
		if o := und(a, h+1); o.Suppressed != "" {
			t.Fatalf("suppressed by undetermined bounces of one message: %+v", o)
		}
	}
	if o := und(b, 4); o.Suppressed != store.ScopeGlobal {
		t.Fatalf("undetermined bounces of two messages: %+v, want suppressed", o)
	}
	sup, ok := suppressionOf(t, s, "ann@example.com", store.ScopeGlobal, t0.Add(1000*time.Hour))
	if !ok || sup.Reason != store.ReasonUndetermined || !sup.ExpiresAt.IsZero() {
		t.Errorf("suppression = %+v, %v; want undetermined for good", sup, ok)
	}
}

// testInboundList: entries newest first, filtered by kind and outcome, in pages.
func testInboundList(t *testing.T, s store.Store) {
	var in store.Inbound = s
	ctx := t.Context()
	for i := range 7 {
		kind, outcome := "dsn", store.InboundIgnored
		if i%2 == 1 {
			kind = "arf"
		}
		if i%3 == 0 {
			outcome = store.InboundUnmatched
		}
		if _, err := in.InboundApply(ctx, store.InboundApplyParams{Entry: store.InboundEntry{Channel: store.InboundSES,
			Kind: kind, Outcome: outcome, MessageIDs: []string{"msg_1", "msg_2"}}, Now: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	all := inboundEntries(t, in, store.InboundListParams{Limit: 2})
	if len(all) != 7 {
		t.Fatalf("%d entries, want 7", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID || !all[i].At.Before(all[i-1].At) {
			t.Errorf("entries not newest first: %+v", all)
		}
	}
	if !slices.Equal(all[0].MessageIDs, []string{"msg_1", "msg_2"}) || all[0].Channel != store.InboundSES {
		t.Errorf("entry = %+v", all[0])
	}
	if got := inboundEntries(t, in, store.InboundListParams{Kind: "arf", Limit: 1}); len(got) != 3 {
		t.Errorf("%d arf entries, want 3", len(got))
	}
	if got := inboundEntries(t, in, store.InboundListParams{Kind: "dsn", Outcome: store.InboundUnmatched}); len(got) != 2 {
		t.Errorf("%d unmatched dsn entries, want 2", len(got))
	}
	if _, _, err := in.InboundList(ctx, store.InboundListParams{Cursor: "!!"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("bad cursor: %v, want ErrBadCursor", err)
	}
	page, next, err := in.InboundList(ctx, store.InboundListParams{})
	if err != nil || len(page) != 7 || next != "" {
		t.Errorf("one page: %d, %q, %v", len(page), next, err)
	}
}

// testDeliveryCounts: MessageFinish counts every recipient it makes sent for the message's
// stream and hour; DeliveryCounts sums from since's hour on.
func testDeliveryCounts(t *testing.T, s store.Store) {
	var in store.Inbound = s
	ctx := t.Context()
	at := t0.Add(30 * time.Minute) // 12:30
	two := Message(at, func(m *store.Message) {
		m.To, m.Recipients = []string{"a@example.com", "b@example.com"}, []string{"a@example.com", "b@example.com"}
	})
	split := Message(at, func(m *store.Message) {
		m.To, m.Recipients = []string{"c@example.com", "d@example.com"}, []string{"c@example.com", "d@example.com"}
	})
	failed, deferred := Message(at), Message(at)
	bulk := Message(at, func(m *store.Message) { m.Stream = store.StreamBroadcast })
	accept(t, s, at, two, split, failed, deferred, bulk)
	for _, stream := range store.Streams {
		claim(t, s, store.MessageClaimParams{Owner: "w", Stream: stream, Limit: 10, Now: at, LeaseUntil: at.Add(time.Minute)})
	}
	e := &store.DeliveryError{Code: 550, Text: "no"}
	if n, err := s.MessageFinish(ctx, at, []store.MessageFinishParams{
		{ID: two.Message.ID, Owner: "w", Status: store.StatusSent, Attempts: 1, SentAt: at},
		{ID: split.Message.ID, Owner: "w", Status: store.StatusQueued, Attempts: 1, Split: true, NextAttemptAt: at,
			Recipients: []store.Recipient{{Email: "c@example.com", Status: store.RecipientSent, Attempts: 1, SentAt: at}},
			Pending:    []string{"d@example.com"}},
		{ID: failed.Message.ID, Owner: "w", Status: store.StatusFailed, Attempts: 1, LastError: e},
		{ID: deferred.Message.ID, Owner: "w", Status: store.StatusDeferred, Attempts: 1, NextAttemptAt: at.Add(time.Hour)},
		{ID: bulk.Message.ID, Owner: "w", Status: store.StatusSent, Attempts: 1, SentAt: at},
		{ID: Message(at).Message.ID, Owner: "w", Status: store.StatusSent, Attempts: 1, SentAt: at}, // no such lease
	}); err != nil || n != 5 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	// The next hour: the split message's other recipient.
	later := t0.Add(90 * time.Minute)
	claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 10, Now: later, LeaseUntil: later.Add(time.Minute)})
	if n, err := s.MessageFinish(ctx, later, []store.MessageFinishParams{
		{ID: split.Message.ID, Owner: "w", Status: store.StatusSent, Attempts: 2, Split: true, SentAt: later,
			Recipients: []store.Recipient{{Email: "d@example.com", Status: store.RecipientSent, Attempts: 2, SentAt: later}}},
	}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	for _, tc := range []struct {
		stream string
		since  time.Time
		want   store.DeliveryCounts
	}{
		{store.StreamTransactional, t0.Add(-time.Hour), store.DeliveryCounts{Delivered: 4}},
		{store.StreamTransactional, t0.Add(59 * time.Minute), store.DeliveryCounts{Delivered: 4}}, // rounded down to 12:00
		{store.StreamTransactional, t0.Add(time.Hour), store.DeliveryCounts{Delivered: 1}},
		{store.StreamTransactional, t0.Add(2 * time.Hour), store.DeliveryCounts{}},
		{store.StreamBroadcast, t0, store.DeliveryCounts{Delivered: 1}},
		{"other", t0, store.DeliveryCounts{}},
	} {
		got, err := in.DeliveryCounts(ctx, tc.stream, tc.since)
		if err != nil || got != tc.want {
			t.Errorf("DeliveryCounts(%s, %v) = %+v, %v; want %+v", tc.stream, tc.since, got, err, tc.want)
		}
	}
	// A second bounce of one recipient (another key) is not counted again.
	out := apply(t, in, later, store.ReportPolicy{}, bounce(two.Message.ID, "a@example.com", store.BounceBlock, "x1"),
		bounce(two.Message.ID, "a@example.com", store.BounceBlock, "x2"))
	if !out[0].Applied || !out[1].Applied {
		t.Errorf("outcomes = %+v", out)
	}
	if got, _ := in.DeliveryCounts(ctx, store.StreamTransactional, t0.Add(time.Hour)); got != (store.DeliveryCounts{Delivered: 1, Bounced: 1}) {
		t.Errorf("counts after two bounces of one recipient = %+v, want 1 bounced", got)
	}
}

// testStreamPause: a paused stream's messages are not claimed nor due; the pause is reported
// (stream.paused) once; a resume wakes the stream's workers; resuming a stream not paused is
// a conflict.
func testStreamPause(t *testing.T, s store.Store) {
	var in store.Inbound = s
	ctx := t.Context()
	hook := endpoint(t, s, store.WebhookStreamPaused)
	other := endpoint(t, s, store.WebhookMessageSent)
	bulk, tx := Message(t0, func(m *store.Message) { m.Stream = store.StreamBroadcast }), Message(t0)
	accept(t, s, t0, bulk, tx)
	wake := s.Wakeups(store.StreamBroadcast)
	p := store.StreamPauseParams{Stream: store.StreamBroadcast, Reason: store.PauseComplaintRate,
		Detail: "complaints 0.25% (10 of 4000) over 24h", Now: t0}
	if ok, err := in.StreamPause(ctx, p); err != nil || !ok {
		t.Fatalf("StreamPause = %v, %v", ok, err)
	}
	again := p
	again.Now, again.Reason = t0.Add(time.Minute), store.PauseBounceRate
	if ok, err := in.StreamPause(ctx, again); err != nil || ok {
		t.Fatalf("StreamPause of a paused stream = %v, %v; want false", ok, err)
	}
	if got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 10, Now: t0,
		LeaseUntil: t0.Add(time.Minute)}); len(got) != 0 {
		t.Errorf("claimed %d of a paused stream", len(got))
	}
	if _, ok, err := s.MessageNextDue(ctx, store.StreamBroadcast); err != nil || ok {
		t.Errorf("MessageNextDue of a paused stream = %v, %v; want none", ok, err)
	}
	if got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 10, Now: t0,
		LeaseUntil: t0.Add(time.Minute)}); len(got) != 1 {
		t.Errorf("claimed %d transactional messages, want 1", len(got))
	}
	states, err := in.StreamStates(ctx)
	want := []store.StreamState{{Stream: store.StreamBroadcast, Paused: true, Reason: store.PauseComplaintRate,
		Detail: p.Detail, PausedAt: t0}}
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(want, states); diff != "" {
		t.Errorf("StreamStates (-want +got):\n%s", diff)
	}
	wantReports := []reported{{Type: store.WebhookStreamPaused, Subject: store.StreamBroadcast, At: t0,
		Detail: `{"detail":"complaints 0.25% (10 of 4000) over 24h","reason":"complaint_rate","stream":"broadcast"}`}}
	if diff := gocmp.Diff(wantReports, reports(t, s, hook.ID)); diff != "" {
		t.Errorf("stream.paused reports (-want +got):\n%s", diff)
	}
	if got := reports(t, s, other.ID); len(got) != 0 {
		t.Errorf("reports to an endpoint not subscribed = %+v", got)
	}

	select { // drain what the accept signalled
	case <-wake:
	default:
	}
	resumed := t0.Add(time.Hour)
	if err := in.StreamResume(ctx, store.StreamBroadcast, resumed); err != nil {
		t.Fatalf("StreamResume: %v", err)
	}
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Error("no wake-up after StreamResume")
	}
	if err := in.StreamResume(ctx, store.StreamBroadcast, resumed); !errors.Is(err, store.ErrConflict) {
		t.Errorf("StreamResume of a stream not paused = %v, want ErrConflict", err)
	}
	if err := in.StreamResume(ctx, "never", resumed); !errors.Is(err, store.ErrConflict) {
		t.Errorf("StreamResume of a stream never paused = %v, want ErrConflict", err)
	}
	if next, ok, err := s.MessageNextDue(ctx, store.StreamBroadcast); err != nil || !ok || !next.Equal(t0) {
		t.Errorf("MessageNextDue after the resume = %v, %v, %v", next, ok, err)
	}
	if got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamBroadcast, Limit: 10, Now: resumed,
		LeaseUntil: resumed.Add(time.Minute)}); len(got) != 1 || got[0].ID != bulk.Message.ID {
		t.Errorf("claimed %+v after the resume, want the broadcast message", got)
	}
	states, _ = in.StreamStates(ctx)
	want[0].Paused, want[0].ResumedAt = false, resumed
	if diff := gocmp.Diff(want, states); diff != "" {
		t.Errorf("StreamStates after the resume (-want +got):\n%s", diff)
	}
	// Paused again: a new pause with its own report.
	if ok, err := in.StreamPause(ctx, again); err != nil || !ok {
		t.Fatalf("StreamPause after a resume = %v, %v", ok, err)
	}
	if got := reports(t, s, hook.ID); len(got) != 2 || !got[1].At.Equal(again.Now) {
		t.Errorf("reports = %+v, want a second one", got)
	}
	if _, err := in.StreamPause(ctx, store.StreamPauseParams{Stream: store.StreamBroadcast, Now: t0}); err == nil {
		t.Error("StreamPause without a reason succeeded")
	}
}

// testStreamPauseHandoff: an accept does not hand a paused stream's messages to its receiver;
// they stay queued for a claim after the resume.
func testStreamPauseHandoff(t *testing.T, s store.Store) {
	var in store.Inbound = s
	ac, ok := s.(store.AcceptClaims)
	if !ok {
		t.Skip("the driver does not claim at accept")
	}
	ctx := t.Context()
	r := &receiver{room: 10, lease: store.AcceptLease{Owner: "node/1", Until: t0.Add(time.Minute)}}
	stop := ac.ClaimAtAccept(store.StreamBroadcast, r)
	defer stop()
	if _, err := in.StreamPause(ctx, store.StreamPauseParams{Stream: store.StreamBroadcast, Reason: store.PauseManual, Now: t0}); err != nil {
		t.Fatal(err)
	}
	m := Message(t0, func(m *store.Message) { m.Stream = store.StreamBroadcast })
	accept(t, s, t0, m)
	if len(r.received) != 0 || r.reserved != 0 || r.room != 10 {
		t.Errorf("a paused stream's message handed over: %d received, %d reserved, room %d", len(r.received), r.reserved, r.room)
	}
	if st := messageStatus(t, s, m.Message.ID); st != store.StatusQueued {
		t.Errorf("status = %s, want queued", st)
	}
	if err := in.StreamResume(ctx, store.StreamBroadcast, t0); err != nil {
		t.Fatal(err)
	}
	n := Message(t0, func(m *store.Message) { m.Stream = store.StreamBroadcast })
	accept(t, s, t0, n)
	if len(r.received) != 1 || r.received[0].ID != n.Message.ID {
		t.Errorf("after the resume: handed over %+v, want the new message", claimedIDs(r.received))
	}
}

// testInboundBusy: a report about a message being delivered (leased) is not applied: nothing is
// written for it, its key included, and the entry says the sender will retry; once the outcome
// is recorded, the same report applies.
func testInboundBusy(t *testing.T, s store.Store) {
	var in store.Inbound = s
	ctx := t.Context()
	m := Message(t0)
	accept(t, s, t0, m)
	claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1, Now: t0,
		LeaseUntil: t0.Add(time.Minute)})
	id := m.Message.ID
	out, err := in.InboundApply(ctx, store.InboundApplyParams{
		Entry:   store.InboundEntry{Channel: store.InboundSMTP, Kind: "dsn", Detail: "Postfix DSN"},
		Reports: []store.RecipientReport{bounce(id, "ann@example.com", store.BounceHard, "k1")}, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != (store.ReportOutcome{Busy: true}) {
		t.Errorf("outcome = %+v, want busy", out[0])
	}
	if evs, _ := s.MessageEvents(ctx, id); len(evs) != 1 {
		t.Errorf("%d events, want the queued one alone", len(evs))
	}
	if sup, ok := suppressionOf(t, s, "ann@example.com", store.ScopeGlobal, t0); ok {
		t.Errorf("suppression = %+v, want none", sup)
	}
	e := inboundEntries(t, in, store.InboundListParams{})
	if len(e) != 1 || e[0].Outcome != store.InboundIgnored || e[0].Detail != "Postfix DSN; delivery in progress; the sender will retry" ||
		!slices.Equal(e[0].MessageIDs, []string{id}) {
		t.Errorf("entries = %+v", e)
	}
	if n, err := s.MessageFinish(ctx, t0, []store.MessageFinishParams{{ID: id, Owner: "w", Status: store.StatusSent,
		Attempts: 1, SentAt: t0}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	if out := apply(t, in, t0.Add(time.Second), store.ReportPolicy{}, bounce(id, "ann@example.com", store.BounceHard, "k1")); !out[0].Applied ||
		out[0].State != store.RecipientBounced {
		t.Errorf("the report again after the finish: %+v, want applied", out[0])
	}
}
