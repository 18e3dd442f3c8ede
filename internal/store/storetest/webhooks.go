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
			Detail: `{"reason":"paused","url":"` + off.URL + `"}`},
		{Type: store.WebhookEndpointDisabled, Subject: a.ID, At: now,
			Detail: `{"reason":"failing since yesterday","url":"` + a.URL + `"}`},
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
