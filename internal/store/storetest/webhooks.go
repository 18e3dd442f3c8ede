package storetest

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// webhookCases are the webhooks area's conformance cases (store/webhooks.go).
var webhookCases = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"WebhookEndpoints", testWebhookEndpoints},
	{"WebhookDisable", testWebhookDisable},
	{"WebhookMessageFinish", testWebhookMessageFinish},
	{"WebhookCancel", testWebhookCancel},
	{"WebhookRun", testWebhookRun},
	{"WebhookSubscriptions", testWebhookSubscriptions},
	{"WebhookDeliveryCycle", testWebhookDeliveryCycle},
	{"WebhookPausedEndpoint", testWebhookPausedEndpoint},
	{"WebhookClaimExcept", testWebhookClaimExcept},
	{"WebhookErase", testWebhookErase},
}

// endpoint creates an enabled endpoint receiving types and returns it.
func endpoint(t *testing.T, s store.Store, types ...string) store.WebhookEndpoint {
	t.Helper()
	e := store.WebhookEndpoint{ID: id.New(id.Webhook), URL: "https://hooks.example/" + types[0],
		Types: types, Secret: "whsec_c2VjcmV0", Enabled: true, CreatedAt: t0, UpdatedAt: t0}
	if err := s.WebhookCreate(t.Context(), e); err != nil {
		t.Fatalf("WebhookCreate: %v", err)
	}
	return e
}

// deliveries returns every delivery of endpoint e, oldest first.
func deliveries(t *testing.T, s store.Store, e string) []store.WebhookDelivery {
	t.Helper()
	var out []store.WebhookDelivery
	p := store.WebhookDeliveryListParams{EndpointID: e, Limit: 1000}
	for {
		page, next, err := s.WebhookDeliveries(t.Context(), p)
		if err != nil {
			t.Fatalf("WebhookDeliveries: %v", err)
		}
		out = append(out, page...)
		if next == "" {
			break
		}
		p.Cursor = next
	}
	slices.Reverse(out)
	return out
}

// reported is what a test checks of a delivery: the report, not the job.
type reported struct {
	Type, Subject, Recipient, CampaignID, RunID string
	At                                          time.Time
	Detail                                      string
}

func reports(t *testing.T, s store.Store, e string) []reported {
	t.Helper()
	var out []reported
	for _, d := range deliveries(t, s, e) {
		out = append(out, reported{d.Type, d.Subject, d.Recipient, d.CampaignID, d.RunID, d.At, compactJSON(t, d.Detail)})
	}
	return out
}

// compactJSON is a JSON document without insignificant space and with sorted keys, "" for none.
func compactJSON(t *testing.T, b json.RawMessage) string {
	t.Helper()
	if len(b) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("detail %s: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func testWebhookEndpoints(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := endpoint(t, s, store.WebhookMessageSent, store.WebhookMessageFailed)
	b := store.WebhookEndpoint{ID: id.New(id.Webhook), URL: "https://b.example/hook", Description: "b",
		Types: []string{store.WebhookContactUnsubscribed}, Secret: "whsec_Yg==", PreviousSecret: "whsec_YQ==",
		PreviousUntil: t0.Add(24 * time.Hour), Enabled: false, DisabledReason: "by hand",
		CreatedAt: t0.Add(time.Second), UpdatedAt: t0.Add(time.Second)}
	if err := s.WebhookCreate(ctx, b); err != nil {
		t.Fatalf("WebhookCreate: %v", err)
	}
	got, err := s.WebhookGet(ctx, b.ID)
	if err != nil {
		t.Fatalf("WebhookGet: %v", err)
	}
	if diff := gocmp.Diff(b, got); diff != "" {
		t.Errorf("endpoint read back (-want +got):\n%s", diff)
	}
	list, err := s.WebhookList(ctx)
	if err != nil || len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Fatalf("WebhookList = %+v, %v; want a then b", list, err)
	}

	for _, bad := range []store.WebhookEndpoint{
		{ID: id.New(id.Webhook), URL: "https://x.example", Secret: "whsec_eA==", Enabled: true},
		{ID: id.New(id.Webhook), URL: "https://x.example", Secret: "whsec_eA==", Types: []string{"message.opened"}},
		{ID: id.New(id.Webhook), URL: "https://x.example", Types: []string{store.WebhookMessageSent}},
	} {
		if err := s.WebhookCreate(ctx, bad); err == nil {
			t.Errorf("WebhookCreate(%+v) = nil, want an error", bad)
		}
		if _, err := s.WebhookGet(ctx, bad.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused endpoint stored: %v", err)
		}
	}

	// Enabling clears the reason and the failing time; the creation time stays.
	b.Enabled, b.Types, b.URL, b.UpdatedAt = true, []string{store.WebhookMessageSent}, "https://b.example/v2", t0.Add(time.Minute)
	b.CreatedAt = t0.Add(time.Hour) // ignored
	if err := s.WebhookUpdate(ctx, b); err != nil {
		t.Fatalf("WebhookUpdate: %v", err)
	}
	got, _ = s.WebhookGet(ctx, b.ID)
	want := b
	want.CreatedAt, want.DisabledReason = t0.Add(time.Second), ""
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("endpoint updated (-want +got):\n%s", diff)
	}
	missing := b
	missing.ID = id.New(id.Webhook)
	if err := s.WebhookUpdate(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("WebhookUpdate of no endpoint = %v, want ErrNotFound", err)
	}
	if err := s.WebhookDisable(ctx, missing.ID, "x", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("WebhookDisable of no endpoint = %v, want ErrNotFound", err)
	}

	if err := s.WebhookDelete(ctx, a.ID); err != nil {
		t.Fatalf("WebhookDelete: %v", err)
	}
	if _, err := s.WebhookGet(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("WebhookGet after delete = %v, want ErrNotFound", err)
	}
	if err := s.WebhookDelete(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second WebhookDelete = %v, want ErrNotFound", err)
	}
	if _, _, err := s.WebhookDeliveries(ctx, store.WebhookDeliveryListParams{EndpointID: b.ID, Cursor: "!"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("WebhookDeliveries with a bad cursor = %v, want ErrBadCursor", err)
	}
	if _, _, err := s.WebhookDeliveryGet(ctx, 12345); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("WebhookDeliveryGet of none = %v, want ErrNotFound", err)
	}
}

// testWebhookDisable: disabling reports webhook.disabled to the other enabled endpoints
// subscribed to it, once.
func testWebhookDisable(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := endpoint(t, s, store.WebhookMessageSent)
	watcher := endpoint(t, s, store.WebhookEndpointDisabled, store.WebhookMessageSent)
	other := endpoint(t, s, store.WebhookMessageFailed) // not subscribed
	off := endpoint(t, s, store.WebhookEndpointDisabled)
	now := t0.Add(time.Hour)
	if err := s.WebhookDisable(ctx, off.ID, "paused", now); err != nil {
		t.Fatalf("WebhookDisable: %v", err)
	}
	if err := s.WebhookDisable(ctx, a.ID, "failing since yesterday", now); err != nil {
		t.Fatalf("WebhookDisable: %v", err)
	}
	got, _ := s.WebhookGet(ctx, a.ID)
	if got.Enabled || got.DisabledReason != "failing since yesterday" || !got.UpdatedAt.Equal(now) {
		t.Errorf("disabled endpoint = %+v", got)
	}
	// Again: nothing changes, nothing is reported.
	if err := s.WebhookDisable(ctx, a.ID, "again", now.Add(time.Minute)); err != nil {
		t.Fatalf("second WebhookDisable: %v", err)
	}
	want := []reported{
		{Type: store.WebhookEndpointDisabled, Subject: off.ID, At: now,
			Detail: `{"reason":"paused","url":"` + store.WebhookOrigin(off.URL) + `"}`},
		{Type: store.WebhookEndpointDisabled, Subject: a.ID, At: now,
			Detail: `{"reason":"failing since yesterday","url":"` + store.WebhookOrigin(a.URL) + `"}`},
	}
	if diff := gocmp.Diff(want, reports(t, s, watcher.ID)); diff != "" {
		t.Errorf("reports to the watcher (-want +got):\n%s", diff)
	}
	for _, e := range []string{a.ID, other.ID, off.ID} {
		if got := reports(t, s, e); len(got) != 0 {
			t.Errorf("reports to %s = %+v, want none", e, got)
		}
	}
	d := deliveries(t, s, watcher.ID)[1]
	if d.Status != store.DeliveryPending || d.Attempts != 0 || !d.NextAttemptAt.Equal(now) ||
		!d.CreatedAt.Equal(now) || d.EndpointID != watcher.ID || d.LeaseOwner != "" {
		t.Errorf("new delivery = %+v, want pending, due at once", d)
	}
}

// sortedReports is reports sorted by subject, recipient and type (the order of the reports of
// one call is not part of the contract).
func sortedReports(t *testing.T, s store.Store, e string) []reported {
	t.Helper()
	out := reports(t, s, e)
	slices.SortFunc(out, func(a, b reported) int {
		return cmp.Compare(a.Subject+" "+a.Recipient+" "+a.Type, b.Subject+" "+b.Recipient+" "+b.Type)
	})
	return out
}

// testWebhookMessageFinish: MessageFinish reports each recipient's new state to the enabled
// endpoints subscribed to it, with the outcome's event, only for outcomes that applied.
func testWebhookMessageFinish(t *testing.T, s store.Store) {
	ctx := t.Context()
	all := endpoint(t, s, store.WebhookMessageSent, store.WebhookMessageDeferred, store.WebhookMessageFailed,
		store.WebhookMessageSuppressed)
	failed := endpoint(t, s, store.WebhookMessageFailed)
	off := endpoint(t, s, store.WebhookMessageSent, store.WebhookMessageFailed)
	none := endpoint(t, s, store.WebhookMessageCancelled, store.WebhookContactSubscribed)
	if err := s.WebhookDisable(ctx, off.ID, "paused", t0); err != nil {
		t.Fatal(err)
	}

	two := Message(t0, func(m *store.Message) {
		m.To = []string{"Ann <ann@example.com>", "Bob <BOB@example.com>"}
		m.Recipients = []string{"ann@example.com", "BOB@example.com"}
		m.CampaignID, m.RunID = "cmp_1", "run_1"
	})
	deferred, lost, handedBack, split, suppressed := Message(t0), Message(t0), Message(t0), Message(t0, func(m *store.Message) {
		m.To = []string{"ok@example.com", "bad@example.com"}
		m.Recipients = []string{"ok@example.com", "bad@example.com"}
	}), Message(t0)
	accept(t, s, t0, two, deferred, lost, handedBack, split, suppressed)
	claim(t, s, store.MessageClaimParams{Owner: "w1", Stream: store.StreamTransactional, Limit: 10,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})

	now := t0.Add(time.Second)
	at := now.Add(-time.Millisecond)
	e550 := &store.DeliveryError{Code: 550, Enhanced: "5.1.1", Text: "no such user", Stage: "rcpt", Attempt: 1, At: at}
	sentDetail := json.RawMessage(`{"provider_id": "Q1", "attempt": 1}`)
	deferDetail := json.RawMessage(`{"attempt": 1, "error": {"code": 451, "text": "busy", "at": "2026-03-01T12:00:01Z"}}`)
	splitSent := json.RawMessage(`{"recipients": [{"recipient": "ok@example.com"}]}`)
	splitFailed := json.RawMessage(`{"recipients": [{"recipient": "bad@example.com", "error": {"code": 550, "text": "no such user", "at": "2026-03-01T12:00:01Z"}}]}`)
	n, err := s.MessageFinish(ctx, now, []store.MessageFinishParams{
		{ID: two.Message.ID, Owner: "w1", Status: store.StatusSent, Attempts: 1, SentAt: at,
			Events: []store.Event{{Type: store.EventSent, At: at, Detail: sentDetail}}},
		{ID: deferred.Message.ID, Owner: "w1", Status: store.StatusDeferred, Attempts: 1, NextAttemptAt: t0.Add(time.Hour),
			Events: []store.Event{{Type: store.EventDeferred, Detail: deferDetail}}}, // At: now
		{ID: lost.Message.ID, Owner: "w2", Status: store.StatusSent, Attempts: 1, SentAt: now,
			Events: []store.Event{{Type: store.EventSent, At: now}}}, // not w2's lease
		{ID: handedBack.Message.ID, Owner: "w1", Status: store.StatusQueued, NextAttemptAt: now},
		{ID: split.Message.ID, Owner: "w1", Status: store.StatusPartiallyFailed, Attempts: 1, SentAt: at,
			LastError: e550, Split: true, Recipients: []store.Recipient{
				{Email: "ok@example.com", Status: store.RecipientSent, Attempts: 1, SentAt: at},
				{Email: "bad@example.com", Status: store.RecipientFailed, Attempts: 1, LastError: e550}},
			Events: []store.Event{{Type: store.EventSent, At: at, Detail: splitSent},
				{Type: store.EventFailed, At: at, Detail: splitFailed}}},
		{ID: suppressed.Message.ID, Owner: "w1", Status: store.StatusSuppressed,
			Events: []store.Event{{Type: store.EventSuppressed, At: at}}},
	})
	if err != nil || n != 5 {
		t.Fatalf("MessageFinish = %d, %v; want 5 applied", n, err)
	}
	detail := func(b json.RawMessage) string { return compactJSON(t, b) }
	want := []reported{
		{Type: store.WebhookMessageSent, Subject: two.Message.ID, Recipient: "ann@example.com", CampaignID: "cmp_1",
			RunID: "run_1", At: at, Detail: detail(sentDetail)},
		{Type: store.WebhookMessageSent, Subject: two.Message.ID, Recipient: "bob@example.com", CampaignID: "cmp_1",
			RunID: "run_1", At: at, Detail: detail(sentDetail)},
		{Type: store.WebhookMessageDeferred, Subject: deferred.Message.ID, Recipient: "ann@example.com", At: now,
			Detail: detail(deferDetail)},
		{Type: store.WebhookMessageFailed, Subject: split.Message.ID, Recipient: "bad@example.com", At: at,
			Detail: detail(splitFailed)},
		{Type: store.WebhookMessageSent, Subject: split.Message.ID, Recipient: "ok@example.com", At: at,
			Detail: detail(splitSent)},
		{Type: store.WebhookMessageSuppressed, Subject: suppressed.Message.ID, Recipient: "ann@example.com", At: at},
	}
	slices.SortFunc(want, func(a, b reported) int {
		return cmp.Compare(a.Subject+" "+a.Recipient+" "+a.Type, b.Subject+" "+b.Recipient+" "+b.Type)
	})
	if diff := gocmp.Diff(want, sortedReports(t, s, all.ID)); diff != "" {
		t.Errorf("reports to the endpoint of every type (-want +got):\n%s", diff)
	}
	wantFailed := []reported{{Type: store.WebhookMessageFailed, Subject: split.Message.ID, Recipient: "bad@example.com",
		At: at, Detail: detail(splitFailed)}}
	if diff := gocmp.Diff(wantFailed, sortedReports(t, s, failed.ID)); diff != "" {
		t.Errorf("reports to the endpoint of failures (-want +got):\n%s", diff)
	}
	for _, e := range []string{off.ID, none.ID} {
		if got := reports(t, s, e); len(got) != 0 {
			t.Errorf("reports to %s = %+v, want none", e, got)
		}
	}

	// Ids grow with commit order for one subject; an endpoint created now gets none of the past.
	later := endpoint(t, s, store.WebhookMessageSent)
	claim(t, s, store.MessageClaimParams{Owner: "w1", Stream: store.StreamTransactional, Limit: 10,
		Now: t0.Add(time.Hour), LeaseUntil: t0.Add(2 * time.Hour)})
	if n, err := s.MessageFinish(ctx, t0.Add(time.Hour), []store.MessageFinishParams{
		{ID: deferred.Message.ID, Owner: "w1", Status: store.StatusSent, Attempts: 2, SentAt: t0.Add(time.Hour),
			Events: []store.Event{{Type: store.EventSent, At: t0.Add(time.Hour)}}},
	}); err != nil || n != 1 {
		t.Fatalf("second MessageFinish = %d, %v", n, err)
	}
	var ofDeferred []store.WebhookDelivery
	for _, d := range deliveries(t, s, all.ID) {
		if d.Subject == deferred.Message.ID {
			ofDeferred = append(ofDeferred, d)
		}
	}
	if len(ofDeferred) != 2 || ofDeferred[0].Type != store.WebhookMessageDeferred ||
		ofDeferred[1].Type != store.WebhookMessageSent || ofDeferred[1].ID <= ofDeferred[0].ID || ofDeferred[1].Detail != nil {
		t.Errorf("reports of the message deferred then sent = %+v", ofDeferred)
	}
	if got := reports(t, s, later.ID); len(got) != 1 || got[0].Subject != deferred.Message.ID {
		t.Errorf("reports to the endpoint created later = %+v, want the one sent after it", got)
	}
}

// testWebhookCancel: MessageCancel reports message.cancelled for each recipient it cancels.
func testWebhookCancel(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := endpoint(t, s, store.WebhookMessageCancelled)
	other := endpoint(t, s, store.WebhookMessageSent, store.WebhookMessageFailed, store.WebhookMessageDeferred)
	two := Message(t0, func(m *store.Message) {
		m.To = []string{"ann@example.com", "Bob@example.com"}
		m.Recipients = m.To
	})
	split, _ := splitMessage(t, s) // ok sent, t452 deferred, t550 failed
	accept(t, s, t0, two)
	now := t0.Add(time.Minute)
	if _, err := s.MessageCancel(ctx, two.Message.ID, now); err != nil {
		t.Fatalf("MessageCancel: %v", err)
	}
	if _, err := s.MessageCancel(ctx, split.Message.ID, now); err != nil {
		t.Fatalf("MessageCancel of the split message: %v", err)
	}
	// Not cancellable: nothing reported.
	if _, err := s.MessageCancel(ctx, two.Message.ID, now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second MessageCancel = %v, want ErrConflict", err)
	}
	evs, err := s.MessageEvents(ctx, split.Message.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []reported{
		{Type: store.WebhookMessageCancelled, Subject: two.Message.ID, Recipient: "ann@example.com", At: now},
		{Type: store.WebhookMessageCancelled, Subject: two.Message.ID, Recipient: "bob@example.com", At: now},
		{Type: store.WebhookMessageCancelled, Subject: split.Message.ID, Recipient: "t452@example.com", At: now,
			Detail: compactJSON(t, evs[len(evs)-1].Detail)},
	}
	if diff := gocmp.Diff(want, sortedReports(t, s, e.ID)); diff != "" {
		t.Errorf("reports of the cancellations (-want +got):\n%s", diff)
	}
	// The split message's first attempt was reported to the other endpoint; the cancel was not.
	for _, r := range reports(t, s, other.ID) {
		if r.Type == store.WebhookMessageCancelled {
			t.Errorf("cancel reported to an endpoint not subscribed to it: %+v", r)
		}
	}
}

// testWebhookRun: cancelling a run reports its messages cancelled; finishing it reports
// campaign.run_finished once, with its counts.
func testWebhookRun(t *testing.T, s store.Store) {
	ctx := t.Context()
	c, run, _, msgs := progressRun(t, s, "ann@example.com", "bob@example.com")
	e := endpoint(t, s, store.WebhookMessageCancelled, store.WebhookCampaignRunFinished)
	subs := endpoint(t, s, store.WebhookContactSubscribed) // nothing of runs
	t1 := t0.Add(time.Minute)
	if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run.ID, From: []string{store.RunRunning},
		To: store.RunCancelled, Now: t1}); err != nil {
		t.Fatalf("RunSetState(cancelled): %v", err)
	}
	var want []reported
	for _, m := range msgs {
		want = append(want, reported{Type: store.WebhookMessageCancelled, Subject: m.Message.ID,
			Recipient: m.Message.Recipients[0], CampaignID: c.ID, RunID: run.ID, At: t1})
	}
	slices.SortFunc(want, func(a, b reported) int { return cmp.Compare(a.Subject, b.Subject) })
	if diff := gocmp.Diff(want, sortedReports(t, s, e.ID)); diff != "" {
		t.Errorf("reports of the cancelled run (-want +got):\n%s", diff)
	}

	c2, run2, _, _ := progressRun(t, s, "cat@example.com")
	progress, err := s.RunProgress(ctx, run2.ID)
	if err != nil {
		t.Fatal(err)
	}
	counts, _ := json.Marshal(map[string]any{"counts": progress.Counts})
	t2 := t0.Add(time.Hour)
	for range 2 { // the second change (finished to finished) reports nothing
		if _, err := s.RunSetState(ctx, store.RunSetStateParams{ID: run2.ID,
			From: []string{store.RunRunning, store.RunFinished}, To: store.RunFinished, Now: t2}); err != nil {
			t.Fatalf("RunSetState(finished): %v", err)
		}
	}
	got := reports(t, s, e.ID)[len(msgs):]
	wantFinished := []reported{{Type: store.WebhookCampaignRunFinished, Subject: run2.ID, CampaignID: c2.ID,
		RunID: run2.ID, At: t2, Detail: compactJSON(t, counts)}}
	if diff := gocmp.Diff(wantFinished, got); diff != "" {
		t.Errorf("reports of the finished run (-want +got):\n%s", diff)
	}
	if got := reports(t, s, subs.ID); len(got) != 1 || got[0].Recipient != "cat@example.com" {
		t.Errorf("reports to an endpoint of contacts = %+v, want cat's subscription alone (made after it)", got)
	}
}

// testWebhookSubscriptions: every subscription change to subscribed or unsubscribed is reported
// (a pending one is not), whichever method makes it.
func testWebhookSubscriptions(t *testing.T, s store.Store) {
	ctx := t.Context()
	single, double := newList(t, s, "news", false), newList(t, s, "offers", true)
	both := endpoint(t, s, store.WebhookContactSubscribed, store.WebhookContactUnsubscribed)
	unsub := endpoint(t, s, store.WebhookContactUnsubscribed)
	sent := endpoint(t, s, store.WebhookMessageSent)

	t1, t2, t3, t4 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute), t0.Add(4*time.Minute)
	ann := upsertOK(t, s, t1, item("Ann@Example.com", func(it *store.ContactUpsert) {
		it.Lists = []string{single.ID, double.ID}
	}))[0].ID
	bob := upsertOK(t, s, t1, item("bob@example.com", func(it *store.ContactUpsert) {
		it.Unsubscribe = []string{single.ID}
	}))[0].ID
	if _, err := s.SubscriptionConfirm(ctx, double.ID, ann, store.Consent{Source: "confirmation"}, t2); err != nil {
		t.Fatalf("SubscriptionConfirm: %v", err)
	}
	for range 2 { // the second changes nothing
		if _, err := s.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: single.ID, Contact: store.ContactRef{ID: ann},
			Status: store.SubscriptionUnsubscribed, Consent: store.Consent{Source: "one_click"}, Now: t3}); err != nil {
			t.Fatalf("SubscriptionSet: %v", err)
		}
	}
	// Kept unsubscribed: nothing changes, nothing is reported.
	upsertOK(t, s, t4, item("Ann@Example.com", func(it *store.ContactUpsert) { it.Lists = []string{single.ID} }))
	if _, err := s.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: single.ID, Contact: store.ContactRef{ID: bob},
		Status: store.SubscriptionSubscribed, Resubscribe: true, Consent: store.Consent{Source: "form"}, Now: t4}); err != nil {
		t.Fatalf("SubscriptionSet(resubscribe): %v", err)
	}

	detail := func(list, source string) string {
		return `{"list_id":"` + list + `","source":"` + source + `"}`
	}
	subscribed := func(contact, email, list, source string, at time.Time) reported {
		return reported{Type: store.WebhookContactSubscribed, Subject: contact, Recipient: email, At: at, Detail: detail(list, source)}
	}
	unsubscribed := func(contact, email, list, source string, at time.Time) reported {
		return reported{Type: store.WebhookContactUnsubscribed, Subject: contact, Recipient: email, At: at, Detail: detail(list, source)}
	}
	want := []reported{
		subscribed(ann, "Ann@Example.com", single.ID, "api", t1),
		unsubscribed(bob, "bob@example.com", single.ID, "api", t1),
		subscribed(ann, "Ann@Example.com", double.ID, "confirmation", t2),
		unsubscribed(ann, "Ann@Example.com", single.ID, "one_click", t3),
		subscribed(bob, "bob@example.com", single.ID, "form", t4),
	}
	if diff := gocmp.Diff(want, reports(t, s, both.ID)); diff != "" {
		t.Errorf("reports of subscription changes (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]reported{want[1], want[3]}, reports(t, s, unsub.ID)); diff != "" {
		t.Errorf("reports of unsubscriptions (-want +got):\n%s", diff)
	}
	if got := reports(t, s, sent.ID); len(got) != 0 {
		t.Errorf("reports to an endpoint of messages = %+v, want none", got)
	}
}

// sendMessages accepts, claims and finishes as sent n messages at now, and returns their ids.
func sendMessages(t *testing.T, s store.Store, n int, now time.Time) []string {
	t.Helper()
	var (
		msgs []store.NewMessage
		ps   []store.MessageFinishParams
		ids  []string
	)
	for range n {
		m := Message(now)
		msgs = append(msgs, m)
		ids = append(ids, m.Message.ID)
		ps = append(ps, store.MessageFinishParams{ID: m.Message.ID, Owner: "sender", Status: store.StatusSent,
			Attempts: 1, SentAt: now, Events: []store.Event{{Type: store.EventSent, At: now}}})
	}
	accept(t, s, now, msgs...)
	claim(t, s, store.MessageClaimParams{Owner: "sender", Stream: store.StreamTransactional, Limit: n,
		Now: now, LeaseUntil: now.Add(time.Minute)})
	if got, err := s.MessageFinish(t.Context(), now, ps); err != nil || got != n {
		t.Fatalf("MessageFinish = %d, %v; want %d", got, err, n)
	}
	return ids
}

func deliveryIDs(ds []store.WebhookDelivery) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func webhookClaim(t *testing.T, s store.Store, owner string, limit int, now, until time.Time) []store.WebhookDelivery {
	t.Helper()
	got, err := s.WebhookClaim(t.Context(), store.WebhookClaimParams{Owner: owner, Limit: limit, Now: now, LeaseUntil: until})
	if err != nil {
		t.Fatalf("WebhookClaim: %v", err)
	}
	return got
}

func nextDue(t *testing.T, s store.Store) time.Time {
	t.Helper()
	at, ok, err := s.WebhookNextDue(t.Context())
	if err != nil {
		t.Fatalf("WebhookNextDue: %v", err)
	}
	if !ok {
		return time.Time{}
	}
	return at
}

func getDelivery(t *testing.T, s store.Store, id int64) (store.WebhookDelivery, []store.WebhookAttempt) {
	t.Helper()
	d, attempts, err := s.WebhookDeliveryGet(t.Context(), id)
	if err != nil {
		t.Fatalf("WebhookDeliveryGet(%d): %v", id, err)
	}
	return d, attempts
}

// testWebhookDeliveryCycle: deliveries are claimed by lease, oldest due first, finished only
// by their lease's owner, retried, replayed (keeping their id), released and purged; the
// endpoint's FailingSince follows its attempts.
func testWebhookDeliveryCycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := endpoint(t, s, store.WebhookMessageSent)
	if _, ok, err := s.WebhookNextDue(ctx); err != nil || ok {
		t.Fatalf("WebhookNextDue with no delivery = %v, %v; want none", ok, err)
	}
	select { // drain
	case <-s.WebhookWakeups():
	default:
	}
	now := t0.Add(time.Second)
	sendMessages(t, s, 3, now)
	select {
	case <-s.WebhookWakeups():
	default:
		t.Error("no webhook wake-up after reports were written")
	}
	all := deliveries(t, s, e.ID)
	if len(all) != 3 {
		t.Fatalf("deliveries = %+v, want 3", all)
	}
	d1, d2, d3 := all[0].ID, all[1].ID, all[2].ID
	if got := nextDue(t, s); !got.Equal(now) {
		t.Errorf("WebhookNextDue = %v, want %v", got, now)
	}

	lease := now.Add(time.Minute)
	got := webhookClaim(t, s, "a", 2, now, lease)
	if !slices.Equal(deliveryIDs(got), []int64{d1, d2}) {
		t.Fatalf("claim = %v, want %d %d", deliveryIDs(got), d1, d2)
	}
	if g := got[0]; g.LeaseOwner != "a" || !g.LeaseUntil.Equal(lease) || !g.NextAttemptAt.Equal(lease) ||
		g.Status != store.DeliveryPending || g.Type != store.WebhookMessageSent || g.EndpointID != e.ID {
		t.Errorf("claimed delivery = %+v", g)
	}
	if got := webhookClaim(t, s, "b", 10, now, now.Add(2*time.Minute)); !slices.Equal(deliveryIDs(got), []int64{d3}) {
		t.Fatalf("second claim = %v, want %d", deliveryIDs(got), d3)
	}
	if got := webhookClaim(t, s, "c", 10, now, lease); len(got) != 0 {
		t.Fatalf("claim of leased deliveries = %v, want none", deliveryIDs(got))
	}
	if got := nextDue(t, s); !got.Equal(lease) {
		t.Errorf("WebhookNextDue while leased = %v, want the lease's end %v", got, lease)
	}

	// Not b's lease: skipped.
	if n, err := s.WebhookFinish(ctx, now, []store.WebhookFinishParams{{ID: d1, Owner: "b", Status: store.DeliveryDelivered,
		Attempt: store.WebhookAttempt{Code: 200}}}); err != nil || n != 0 {
		t.Fatalf("WebhookFinish by another owner = %d, %v; want 0", n, err)
	}
	ok := store.WebhookAttempt{At: now.Add(2 * time.Second), Code: 204, Response: "", Duration: 150 * time.Millisecond}
	fail := store.WebhookAttempt{At: now.Add(3 * time.Second), Code: 500, Response: "oops", Error: "HTTP 500",
		Duration: time.Second}
	retryAt := now.Add(5 * time.Minute)
	if n, err := s.WebhookFinish(ctx, now.Add(3*time.Second), []store.WebhookFinishParams{
		{ID: d1, Owner: "a", Status: store.DeliveryDelivered, Attempt: ok},
		{ID: d2, Owner: "a", Status: store.DeliveryPending, NextAttemptAt: retryAt, Attempt: fail},
	}); err != nil || n != 2 {
		t.Fatalf("WebhookFinish = %d, %v; want 2", n, err)
	}
	if ep, _ := s.WebhookGet(ctx, e.ID); !ep.FailingSince.Equal(fail.At) {
		t.Errorf("FailingSince = %v, want the failure after the success, %v", ep.FailingSince, fail.At)
	}
	got1, att1 := getDelivery(t, s, d1)
	if got1.Status != store.DeliveryDelivered || got1.Attempts != 1 || got1.LastCode != 204 || got1.LastError != "" ||
		!got1.DeliveredAt.Equal(ok.At) || got1.LeaseOwner != "" || !got1.LeaseUntil.IsZero() {
		t.Errorf("delivered = %+v", got1)
	}
	wantAtt := []store.WebhookAttempt{{DeliveryID: d1, At: ok.At, Code: 204, Duration: 150 * time.Millisecond}}
	if diff := gocmp.Diff(wantAtt, att1); diff != "" {
		t.Errorf("attempts of the delivered one (-want +got):\n%s", diff)
	}
	got2, att2 := getDelivery(t, s, d2)
	if got2.Status != store.DeliveryPending || got2.Attempts != 1 || got2.LastCode != 500 || got2.LastError != "HTTP 500" ||
		!got2.NextAttemptAt.Equal(retryAt) || got2.LeaseOwner != "" || len(att2) != 1 || att2[0].Response != "oops" {
		t.Errorf("retried = %+v, attempts %+v", got2, att2)
	}
	if got := nextDue(t, s); !got.Equal(now.Add(2 * time.Minute)) {
		t.Errorf("WebhookNextDue = %v, want d3's lease end", got)
	}

	// b's lease handed back: due at once.
	released := now.Add(10 * time.Second)
	if n, err := s.WebhookReleaseLeases(ctx, "b", released); err != nil || n != 1 {
		t.Fatalf("WebhookReleaseLeases = %d, %v; want 1", n, err)
	}
	if got := nextDue(t, s); !got.Equal(released) {
		t.Errorf("WebhookNextDue after the release = %v, want %v", got, released)
	}
	later := now.Add(5 * time.Minute)
	if got := webhookClaim(t, s, "c", 1, later, later.Add(time.Minute)); !slices.Equal(deliveryIDs(got), []int64{d3}) {
		t.Fatalf("claim = %v, want the earliest due, %d", deliveryIDs(got), d3)
	}
	if got := webhookClaim(t, s, "c", 5, later, later.Add(time.Minute)); !slices.Equal(deliveryIDs(got), []int64{d2}) {
		t.Fatalf("claim = %v, want %d", deliveryIDs(got), d2)
	}
	failedAt := later.Add(time.Second)
	if n, err := s.WebhookFinish(ctx, failedAt, []store.WebhookFinishParams{{ID: d2, Owner: "c", Status: store.DeliveryFailed,
		Attempt: store.WebhookAttempt{Error: "timeout"}}}); err != nil || n != 1 {
		t.Fatalf("WebhookFinish(failed) = %d, %v", n, err)
	}
	if ep, _ := s.WebhookGet(ctx, e.ID); !ep.FailingSince.Equal(fail.At) {
		t.Errorf("FailingSince after another failure = %v, want the first, %v", ep.FailingSince, fail.At)
	}
	if n, err := s.WebhookFinish(ctx, failedAt, []store.WebhookFinishParams{{ID: d3, Owner: "c", Status: store.DeliveryDelivered,
		Attempt: store.WebhookAttempt{Code: 200}}}); err != nil || n != 1 {
		t.Fatalf("WebhookFinish(delivered) = %d, %v", n, err)
	}
	if ep, _ := s.WebhookGet(ctx, e.ID); !ep.FailingSince.IsZero() {
		t.Errorf("FailingSince after a success = %v, want zero", ep.FailingSince)
	}
	if got, att := getDelivery(t, s, d2); got.Status != store.DeliveryFailed || got.Attempts != 2 || len(att) != 2 ||
		!att[1].At.Equal(failedAt) || att[1].Error != "timeout" {
		t.Errorf("failed = %+v, attempts %+v", got, att)
	}

	// Retry: the same id, pending again with fresh attempts; its attempts stay recorded.
	retried := later.Add(time.Hour)
	r, err := s.WebhookRetry(ctx, d2, retried)
	if err != nil || r.ID != d2 || r.Status != store.DeliveryPending || r.Attempts != 0 || !r.NextAttemptAt.Equal(retried) {
		t.Fatalf("WebhookRetry = %+v, %v", r, err)
	}
	if _, att := getDelivery(t, s, d2); len(att) != 2 {
		t.Errorf("attempts after a retry = %+v, want both kept", att)
	}
	webhookClaim(t, s, "x", 1, retried, retried.Add(time.Minute))
	if _, err := s.WebhookRetry(ctx, d2, retried); !errors.Is(err, store.ErrConflict) {
		t.Errorf("WebhookRetry of a delivery being sent = %v, want ErrConflict", err)
	}
	if _, err := s.WebhookRetry(ctx, d3+1000, retried); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("WebhookRetry of none = %v, want ErrNotFound", err)
	}
	if n, err := s.WebhookReleaseLeases(ctx, "", retried); err != nil || n != 1 {
		t.Fatalf("WebhookReleaseLeases(all) = %d, %v; want 1", n, err)
	}

	// Replay: the delivered ones created in the range, the same ids; failed alone by default.
	if n, err := s.WebhookReplay(ctx, store.WebhookReplayParams{EndpointID: e.ID, From: t0, To: retried, Now: retried}); err != nil || n != 0 {
		t.Errorf("WebhookReplay of failed ones = %d, %v; want 0 (none failed)", n, err)
	}
	if n, err := s.WebhookReplay(ctx, store.WebhookReplayParams{EndpointID: e.ID, From: now.Add(time.Second), To: retried,
		Statuses: []string{store.DeliveryDelivered}, Now: retried}); err != nil || n != 0 {
		t.Errorf("WebhookReplay of a range created after them = %d, %v; want 0", n, err)
	}
	if n, err := s.WebhookReplay(ctx, store.WebhookReplayParams{EndpointID: e.ID, From: now, To: now.Add(time.Second),
		Statuses: []string{store.DeliveryDelivered}, Now: retried}); err != nil || n != 2 {
		t.Fatalf("WebhookReplay of delivered ones = %d, %v; want 2", n, err)
	}
	page, next, err := s.WebhookDeliveries(ctx, store.WebhookDeliveryListParams{EndpointID: e.ID, Status: store.DeliveryPending, Limit: 2})
	if err != nil || !slices.Equal(deliveryIDs(page), []int64{d3, d2}) || next == "" {
		t.Fatalf("first page of pending = %v, %q, %v; want %d %d and a cursor", deliveryIDs(page), next, err, d3, d2)
	}
	page, next, err = s.WebhookDeliveries(ctx, store.WebhookDeliveryListParams{EndpointID: e.ID, Status: store.DeliveryPending,
		Limit: 2, Cursor: next})
	if err != nil || !slices.Equal(deliveryIDs(page), []int64{d1}) || next != "" {
		t.Fatalf("second page of pending = %v, %q, %v; want %d and no cursor", deliveryIDs(page), next, err, d1)
	}
	if page, _, err := s.WebhookDeliveries(ctx, store.WebhookDeliveryListParams{EndpointID: e.ID,
		Type: store.WebhookMessageFailed}); err != nil || len(page) != 0 {
		t.Errorf("deliveries of another type = %v, %v; want none", deliveryIDs(page), err)
	}

	// Purge: finished ones created before the time, at most limit per call.
	done := retried.Add(time.Minute)
	var fin []store.WebhookFinishParams
	for _, d := range webhookClaim(t, s, "p", 10, retried, done) {
		if d.ID != d2 {
			fin = append(fin, store.WebhookFinishParams{ID: d.ID, Owner: "p", Status: store.DeliveryDelivered})
		} else {
			fin = append(fin, store.WebhookFinishParams{ID: d.ID, Owner: "p", Status: store.DeliveryPending, NextAttemptAt: done})
		}
	}
	if n, err := s.WebhookFinish(ctx, retried, fin); err != nil || n != 3 {
		t.Fatalf("WebhookFinish = %d, %v; want 3", n, err)
	}
	if n, err := s.WebhookPurge(ctx, now, 10); err != nil || n != 0 {
		t.Errorf("WebhookPurge before their creation = %d, %v; want 0", n, err)
	}
	if n, err := s.WebhookPurge(ctx, now.Add(time.Second), 1); err != nil || n != 1 {
		t.Errorf("WebhookPurge(limit 1) = %d, %v; want 1", n, err)
	}
	if n, err := s.WebhookPurge(ctx, now.Add(time.Second), 10); err != nil || n != 1 {
		t.Errorf("WebhookPurge = %d, %v; want 1 (the pending one stays)", n, err)
	}
	if got := deliveryIDs(deliveries(t, s, e.ID)); !slices.Equal(got, []int64{d2}) {
		t.Errorf("deliveries after the purge = %v, want %d", got, d2)
	}
	if _, _, err := s.WebhookDeliveryGet(ctx, d1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("purged delivery: %v, want ErrNotFound", err)
	}
	// Deleting the endpoint deletes its deliveries.
	if err := s.WebhookDelete(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.WebhookDeliveryGet(ctx, d2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delivery of a deleted endpoint: %v, want ErrNotFound", err)
	}
}

// testWebhookPausedEndpoint: the deliveries of an endpoint disabled by hand wait (not claimed,
// not due) and go again once it is enabled; WebhookDisable fails them, and a replay brings them
// back.
func testWebhookPausedEndpoint(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := endpoint(t, s, store.WebhookMessageSent)
	now := t0.Add(time.Second)
	sendMessages(t, s, 2, now)
	paused := e
	paused.Enabled, paused.UpdatedAt = false, now
	if err := s.WebhookUpdate(ctx, paused); err != nil {
		t.Fatal(err)
	}
	if got := webhookClaim(t, s, "a", 10, now, now.Add(time.Minute)); len(got) != 0 {
		t.Errorf("claim while paused = %v, want none", deliveryIDs(got))
	}
	if _, ok, err := s.WebhookNextDue(ctx); err != nil || ok {
		t.Errorf("WebhookNextDue while paused = %v, %v; want none", ok, err)
	}
	sendMessages(t, s, 1, now) // not reported: no route while disabled
	if got := deliveries(t, s, e.ID); len(got) != 2 {
		t.Errorf("deliveries = %d, want the 2 made before the pause", len(got))
	}
	paused.Enabled, paused.FailingSince = true, time.Time{}
	if err := s.WebhookUpdate(ctx, paused); err != nil {
		t.Fatal(err)
	}
	got := webhookClaim(t, s, "a", 1, now, now.Add(time.Minute))
	if len(got) != 1 {
		t.Fatalf("claim after enabling = %v, want 1", deliveryIDs(got))
	}
	if err := s.WebhookDisable(ctx, e.ID, "failing since yesterday", now); err != nil {
		t.Fatal(err)
	}
	var failed, pending int
	for _, d := range deliveries(t, s, e.ID) {
		switch {
		case d.Status == store.DeliveryFailed && d.LastError == "endpoint disabled: failing since yesterday":
			failed++
		case d.Status == store.DeliveryPending && d.LeaseOwner == "a":
			pending++ // being sent: left to its sender
		}
	}
	if failed != 1 || pending != 1 {
		t.Errorf("after WebhookDisable: %d failed, %d being sent; want 1 and 1", failed, pending)
	}
	if n, err := s.WebhookFinish(ctx, now, []store.WebhookFinishParams{{ID: got[0].ID, Owner: "a",
		Status: store.DeliveryFailed, Attempt: store.WebhookAttempt{Error: "refused"}}}); err != nil || n != 1 {
		t.Fatalf("WebhookFinish = %d, %v", n, err)
	}
	paused.Enabled = true
	if err := s.WebhookUpdate(ctx, paused); err != nil {
		t.Fatal(err)
	}
	if ep, _ := s.WebhookGet(ctx, e.ID); !ep.Enabled || ep.DisabledReason != "" || !ep.FailingSince.IsZero() {
		t.Errorf("enabled again: %+v, want no reason nor failing time", ep)
	}
	if n, err := s.WebhookReplay(ctx, store.WebhookReplayParams{EndpointID: e.ID, From: t0, To: now.Add(time.Hour),
		Now: now.Add(time.Minute)}); err != nil || n != 2 {
		t.Fatalf("WebhookReplay = %d, %v; want 2", n, err)
	}
	if got := webhookClaim(t, s, "a", 10, now.Add(time.Minute), now.Add(2*time.Minute)); len(got) != 2 {
		t.Errorf("claim after the replay = %v, want 2", deliveryIDs(got))
	}
}

// testWebhookErase: erasing a contact deletes the deliveries about it.
func testWebhookErase(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := newList(t, s, "news", false)
	e := endpoint(t, s, store.WebhookContactSubscribed, store.WebhookMessageSent)
	res := upsertOK(t, s, t0, item("Ann@example.com", func(it *store.ContactUpsert) { it.Lists = []string{l.ID} }),
		item("bob@example.com", func(it *store.ContactUpsert) { it.Lists = []string{l.ID} }))
	sendMessages(t, s, 1, t0) // to ann@example.com
	if got := reports(t, s, e.ID); len(got) != 3 {
		t.Fatalf("reports = %+v, want 3", got)
	}
	if err := s.ContactDelete(ctx, store.ContactDeleteParams{Ref: store.ContactRef{ID: res[0].ID}, Erase: true,
		ErasedKey: "erased-key", Now: t0.Add(time.Hour)}); err != nil {
		t.Fatalf("ContactDelete(erase): %v", err)
	}
	if got := reports(t, s, e.ID); len(got) != 1 || got[0].Subject != res[1].ID {
		t.Errorf("reports after the erasure = %+v, want bob's alone", got)
	}
}

// testWebhookClaimExcept: a claim leaves out the deliveries of the endpoints it excepts, and
// takes them when they are not.
func testWebhookClaimExcept(t *testing.T, s store.Store) {
	ctx := t.Context()
	slow, fast, other := endpoint(t, s, store.WebhookMessageSent), endpoint(t, s, store.WebhookMessageSent),
		endpoint(t, s, store.WebhookMessageSent)
	now := t0.Add(time.Second)
	sendMessages(t, s, 2, now)
	byEndpoint := func(ds []store.WebhookDelivery) map[string]int {
		m := map[string]int{}
		for _, d := range ds {
			m[d.EndpointID]++
		}
		return m
	}
	got, err := s.WebhookClaim(ctx, store.WebhookClaimParams{Owner: "a", Limit: 10, Now: now, LeaseUntil: now.Add(time.Minute),
		ExceptEndpoints: []string{slow.ID, other.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if m := byEndpoint(got); len(got) != 2 || m[fast.ID] != 2 {
		t.Errorf("claim except slow and other = %v, want fast's 2", m)
	}
	got = webhookClaim(t, s, "a", 10, now, now.Add(time.Minute))
	if m := byEndpoint(got); len(got) != 4 || m[slow.ID] != 2 || m[other.ID] != 2 {
		t.Errorf("claim except none = %v, want slow's and other's 2", m)
	}
}
