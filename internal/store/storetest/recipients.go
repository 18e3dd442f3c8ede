package storetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// recipientStates is "email=state/attempts" of each recipient of a message, by address.
func recipientStates(t *testing.T, s store.Store, msgID string) string {
	t.Helper()
	rs, err := s.MessageRecipients(t.Context(), msgID)
	if err != nil {
		t.Fatalf("MessageRecipients(%s): %v", msgID, err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Email+"="+string(r.Status)+"/"+string(rune('0'+r.Attempts)))
	}
	return strings.Join(out, " ")
}

// splitMessage accepts a message to ok@, T452@ and t550@example.com and finishes its first
// attempt split at t0+1s: ok sent, T452 deferred (pending), t550 failed. It returns the message
// and the 550 error.
func splitMessage(t *testing.T, s store.Store) (store.NewMessage, *store.DeliveryError) {
	t.Helper()
	m := Message(t0, func(m *store.Message) {
		m.To = []string{"ok@example.com", "T452@example.com", "t550@example.com"}
		m.Recipients = m.To
	})
	accept(t, s, t0, m)
	got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})
	if len(got) != 1 || got[0].Split || !slices.Equal(got[0].Recipients, m.Message.Recipients) {
		t.Fatalf("first claim = %+v, want every recipient, not split", got)
	}
	now := t0.Add(time.Second)
	e452 := &store.DeliveryError{Code: 452, Enhanced: "4.2.2", Text: "Mailbox full", Stage: "rcpt", Attempt: 1, At: now}
	e550 := &store.DeliveryError{Code: 550, Enhanced: "5.7.1", Text: "Blocked", Stage: "rcpt", Attempt: 1, At: now}
	n, err := s.MessageFinish(t.Context(), now, []store.MessageFinishParams{{
		ID: m.Message.ID, Owner: "w", Status: store.StatusDeferred, Attempts: 1, NextAttemptAt: t0.Add(time.Minute),
		LastError: e452, ProviderID: "Q1", SentAt: now, Split: true,
		Recipients: []store.Recipient{
			{Email: "ok@example.com", Status: store.RecipientSent, Attempts: 1, SentAt: now},
			{Email: "t452@example.com", Status: store.RecipientDeferred, Attempts: 1, LastError: e452},
			{Email: "t550@example.com", Status: store.RecipientFailed, Attempts: 1, LastError: e550},
		},
		Pending: []string{"T452@example.com"},
		Events:  []store.Event{{Type: store.EventSent}, {Type: store.EventDeferred}, {Type: store.EventFailed}},
	}})
	if err != nil || n != 1 {
		t.Fatalf("split MessageFinish = %d, %v", n, err)
	}
	return m, e550
}

// testMessageRecipients: a message that is not split gives each recipient its own status; one
// that is split gives each its own row.
func testMessageRecipients(t *testing.T, s store.Store) {
	ctx := t.Context()
	m := Message(t0, func(m *store.Message) {
		m.To = []string{"Ann@Example.com", "bob@example.com"}
		m.Recipients = m.To
	})
	accept(t, s, t0, m)
	if got := recipientStates(t, s, m.Message.ID); got != "ann@example.com=queued/0 bob@example.com=queued/0" {
		t.Errorf("accepted: %s", got)
	}
	finish := func(st store.Status, next time.Time, de *store.DeliveryError, sent time.Time) {
		t.Helper()
		claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
			Now: next, LeaseUntil: next.Add(time.Minute)})
		if n, err := s.MessageFinish(ctx, next, []store.MessageFinishParams{{ID: m.Message.ID, Owner: "w",
			Status: st, Attempts: get(t, s, m.Message.ID).Attempts + 1, NextAttemptAt: next.Add(time.Minute),
			LastError: de, SentAt: sent}}); err != nil || n != 1 {
			t.Fatalf("MessageFinish = %d, %v", n, err)
		}
	}
	de := deliveryErr(451, "4.3.0", t0)
	finish(store.StatusDeferred, t0, de, time.Time{})
	rs, err := s.MessageRecipients(ctx, m.Message.ID)
	if err != nil || len(rs) != 2 {
		t.Fatalf("MessageRecipients = %+v, %v", rs, err)
	}
	for _, r := range rs {
		if r.Status != store.RecipientDeferred || r.Attempts != 1 || r.LastError == nil || r.LastError.Code != 451 {
			t.Errorf("recipient of a deferred message: %+v", r)
		}
	}
	finish(store.StatusSent, t0.Add(time.Minute), nil, t0.Add(time.Minute))
	rs, _ = s.MessageRecipients(ctx, m.Message.ID)
	for _, r := range rs {
		if r.Status != store.RecipientSent || r.Attempts != 2 || r.LastError != nil || !r.SentAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("recipient of a sent message: %+v", r)
		}
	}
	_, err = s.MessageRecipients(ctx, id.New(id.Message))
	wantErr(t, "recipients of no message", err, store.ErrNotFound)
}

// testFinishSplit: a split outcome writes each recipient's state; the next claim returns the
// pending recipients only; with none pending, the status is derived from every recipient and the
// last error is that of the failed one.
func testFinishSplit(t *testing.T, s store.Store) {
	ctx := t.Context()
	m, e550 := splitMessage(t, s)
	msg := get(t, s, m.Message.ID)
	if msg.Status != store.StatusDeferred || msg.LastError == nil || msg.LastError.Code != 452 || msg.ProviderID != "Q1" {
		t.Errorf("after the split attempt: %s, %+v, provider %q", msg.Status, msg.LastError, msg.ProviderID)
	}
	if got := recipientStates(t, s, m.Message.ID); got != "ok@example.com=sent/1 t452@example.com=deferred/1 t550@example.com=failed/1" {
		t.Errorf("recipients: %s", got)
	}

	later := t0.Add(time.Minute)
	got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
		Now: later, LeaseUntil: later.Add(time.Minute)})
	if len(got) != 1 || !got[0].Split || !slices.Equal(got[0].Recipients, []string{"T452@example.com"}) {
		t.Fatalf("second claim = %+v, want T452@example.com alone, split", got)
	}
	// Another owner's finish is skipped and changes no recipient.
	other := store.MessageFinishParams{ID: m.Message.ID, Owner: "x", Status: store.StatusSent, Attempts: 2,
		Split: true, Recipients: []store.Recipient{{Email: "t452@example.com", Status: store.RecipientSent, Attempts: 2}}}
	if n, err := s.MessageFinish(ctx, later, []store.MessageFinishParams{other}); err != nil || n != 0 {
		t.Fatalf("finish by another owner = %d, %v", n, err)
	}
	if got := recipientStates(t, s, m.Message.ID); !strings.Contains(got, "t452@example.com=deferred/1") {
		t.Errorf("a finish without the lease changed a recipient: %s", got)
	}
	// Together with an outcome that is not split, in one call.
	plain := Message(t0)
	accept(t, s, later, plain)
	claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
		Now: later, LeaseUntil: later.Add(time.Minute)})
	n, err := s.MessageFinish(ctx, later, []store.MessageFinishParams{
		{ID: plain.Message.ID, Owner: "w", Status: store.StatusSent, Attempts: 1, SentAt: later},
		{ID: m.Message.ID, Owner: "w", Status: store.StatusSent, Attempts: 2, SentAt: later, Split: true,
			Recipients: []store.Recipient{{Email: "t452@example.com", Status: store.RecipientSent, Attempts: 2, SentAt: later}},
			Events:     []store.Event{{Type: store.EventSent, Detail: json.RawMessage(`{"recipients":[{"recipient":"T452@example.com"}]}`)}}},
	})
	if err != nil || n != 2 {
		t.Fatalf("MessageFinish = %d, %v; want 2", n, err)
	}
	msg = get(t, s, m.Message.ID)
	if msg.Status != store.StatusPartiallyFailed || msg.Attempts != 2 || msg.LeaseOwner != "" {
		t.Errorf("derived status %s after %d attempts (lease %q), want partially_failed after 2", msg.Status, msg.Attempts, msg.LeaseOwner)
	}
	if msg.LastError == nil || *msg.LastError != *e550 {
		t.Errorf("last error %+v, want the failed recipient's %+v", msg.LastError, e550)
	}
	if !msg.SentAt.Equal(later) || msg.ProviderID != "Q1" {
		t.Errorf("sent at %v, provider %q: want the last sending attempt's time and the first's provider id", msg.SentAt, msg.ProviderID)
	}
	if got := recipientStates(t, s, m.Message.ID); got != "ok@example.com=sent/1 t452@example.com=sent/2 t550@example.com=failed/1" {
		t.Errorf("recipients: %s", got)
	}
	if got := get(t, s, plain.Message.ID); got.Status != store.StatusSent {
		t.Errorf("the plain outcome of the same call: %s", got.Status)
	}
	if got := eventTypes(t, s, m.Message.ID); strings.Join(got, " ") != "queued sent deferred failed sent" {
		t.Errorf("timeline %v", got)
	}
	// A split message with nothing pending is not claimed again.
	if got := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 10,
		Now: later.Add(time.Hour), LeaseUntil: later.Add(2 * time.Hour)}); len(got) != 0 {
		t.Errorf("claimed after the end: %v", claimedIDs(got))
	}
}

// testListRecipientState: with a recipient and statuses, a message matches by its own status or
// by that recipient's state.
func testListRecipientState(t *testing.T, s store.Store) {
	m, _ := splitMessage(t, s)
	plain := Message(t0) // ann@example.com, queued
	accept(t, s, t0, plain)
	for _, tc := range []struct {
		statuses  []store.Status
		recipient string
		want      []string
	}{
		{[]store.Status{store.StatusFailed}, "t550@example.com", []string{m.Message.ID}},
		{[]store.Status{store.StatusFailed}, "T550@EXAMPLE.COM", []string{m.Message.ID}},
		{[]store.Status{store.StatusFailed}, "ok@example.com", nil},
		{[]store.Status{store.StatusSent}, "ok@example.com", []string{m.Message.ID}},
		{[]store.Status{store.StatusDeferred}, "ok@example.com", []string{m.Message.ID}}, // the message is deferred
		{[]store.Status{store.StatusSent, store.StatusQueued}, "", []string{plain.Message.ID}},
		{[]store.Status{store.StatusQueued}, "ann@example.com", []string{plain.Message.ID}},
		{[]store.Status{store.StatusScheduled}, "ann@example.com", nil},
	} {
		got, err := s.MessageList(t.Context(), store.MessageListParams{Statuses: tc.statuses, Recipient: tc.recipient})
		if err != nil {
			t.Fatal(err)
		}
		if ids := messageIDs(got); !slices.Equal(ids, tc.want) {
			t.Errorf("statuses %v, recipient %q: %v, want %v", tc.statuses, tc.recipient, ids, tc.want)
		}
	}
}

// finishPending ends the pending recipient of splitMessage's message failed at `at`, so that it
// is partially_failed.
func finishPending(t *testing.T, s store.Store, msgID string, at time.Time) {
	t.Helper()
	claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
		Now: at, LeaseUntil: at.Add(time.Minute)})
	e := &store.DeliveryError{Code: 452, Enhanced: "4.2.2", Text: "Mailbox full", Stage: "rcpt", Attempt: 2, At: at}
	if n, err := s.MessageFinish(t.Context(), at, []store.MessageFinishParams{{ID: msgID, Owner: "w",
		Status: store.StatusFailed, Attempts: 2, LastError: e, Split: true,
		Recipients: []store.Recipient{{Email: "t452@example.com", Status: store.RecipientFailed, Attempts: 2, LastError: e}},
	}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
}

// testRetrySplit: a retry queues the failed recipients of a partially_failed message again,
// never the sent one; by filter with a recipient, only the messages where it failed.
func testRetrySplit(t *testing.T, s store.Store) {
	ctx := t.Context()
	m, _ := splitMessage(t, s)
	later := t0.Add(time.Minute)
	finishPending(t, s, m.Message.ID, later)
	if got := get(t, s, m.Message.ID); got.Status != store.StatusPartiallyFailed || got.LastError.Code != 452 {
		t.Fatalf("after the last attempt: %s, %+v", got.Status, got.LastError)
	}

	for _, f := range []store.MessageListParams{{Recipient: "ok@example.com"}, {Recipient: "nobody@example.com"}} {
		if ids, err := s.MessageRetry(ctx, store.MessageRetryParams{Filter: f, Now: later, ExpiresAt: later.Add(time.Hour)}); err != nil || len(ids) != 0 {
			t.Errorf("retry where %s failed = %v, %v; want none", f.Recipient, ids, err)
		}
	}
	retryAt := later.Add(time.Second)
	ids, err := s.MessageRetry(ctx, store.MessageRetryParams{Filter: store.MessageListParams{Recipient: "T452@example.com"},
		Now: retryAt, ExpiresAt: retryAt.Add(time.Hour)})
	if err != nil || !slices.Equal(ids, []string{m.Message.ID}) {
		t.Fatalf("retry where t452 failed = %v, %v", ids, err)
	}
	got := get(t, s, m.Message.ID)
	if got.Status != store.StatusQueued || got.Attempts != 0 || got.LastError == nil {
		t.Errorf("retried: %s after %d attempts, last error %+v", got.Status, got.Attempts, got.LastError)
	}
	if st := recipientStates(t, s, m.Message.ID); st != "ok@example.com=sent/1 t452@example.com=queued/0 t550@example.com=queued/0" {
		t.Errorf("recipients after retry: %s", st)
	}
	evs, err := s.MessageEvents(ctx, m.Message.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Type != store.EventRetried || !jsonEqual(last.Detail, json.RawMessage(`{"attempts": 2, "recipients": [{"recipient": "t452@example.com"}, {"recipient": "t550@example.com"}]}`)) {
		t.Errorf("retried event %s %s", last.Type, last.Detail)
	}
	c := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
		Now: retryAt, LeaseUntil: retryAt.Add(time.Minute)})
	if len(c) != 1 || !c[0].Split || strings.Join(c[0].Recipients, " ") != "t452@example.com t550@example.com" {
		t.Errorf("claim after retry = %+v, want the failed recipients alone", c)
	}

	// A retry of one message takes a partially_failed one too; a sent one is a conflict.
	m2, _ := splitMessage(t, s)
	finishPending(t, s, m2.Message.ID, later)
	if ids, err := s.MessageRetry(ctx, store.MessageRetryParams{ID: m2.Message.ID, Now: retryAt, ExpiresAt: retryAt.Add(time.Hour)}); err != nil || len(ids) != 1 {
		t.Errorf("retry of one partially_failed message = %v, %v", ids, err)
	}
	sent := Message(t0)
	accept(t, s, t0, sent)
	claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
		Now: later, LeaseUntil: later.Add(time.Minute)})
	if n, err := s.MessageFinish(ctx, later, []store.MessageFinishParams{{ID: sent.Message.ID, Owner: "w",
		Status: store.StatusSent, Attempts: 1, NextAttemptAt: later, SentAt: later}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish sent = %d, %v", n, err)
	}
	_, err = s.MessageRetry(ctx, store.MessageRetryParams{ID: sent.Message.ID, Now: retryAt, ExpiresAt: retryAt.Add(time.Hour)})
	wantErr(t, "retry of a sent message", err, store.ErrConflict)
}

// testCancelSplit: cancelling a split message cancels its pending recipients only and derives
// its status.
func testCancelSplit(t *testing.T, s store.Store) {
	ctx := t.Context()
	m, _ := splitMessage(t, s)
	now := t0.Add(2 * time.Second)
	got, err := s.MessageCancel(ctx, m.Message.ID, now)
	if err != nil {
		t.Fatalf("MessageCancel: %v", err)
	}
	// ok sent, t550 failed, t452 cancelled: partially_failed.
	if got.Status != store.StatusPartiallyFailed || get(t, s, m.Message.ID).Status != store.StatusPartiallyFailed {
		t.Errorf("cancelled split message is %s, want partially_failed", got.Status)
	}
	if st := recipientStates(t, s, m.Message.ID); st != "ok@example.com=sent/1 t452@example.com=cancelled/1 t550@example.com=failed/1" {
		t.Errorf("recipients after cancel: %s", st)
	}
	evs, _ := s.MessageEvents(ctx, m.Message.ID)
	if last := evs[len(evs)-1]; last.Type != store.EventCancelled || !jsonEqual(last.Detail, json.RawMessage(`{"recipients": [{"recipient": "t452@example.com"}]}`)) {
		t.Errorf("cancelled event %s %s", last.Type, last.Detail)
	}
	if c := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 10,
		Now: t0.Add(time.Hour), LeaseUntil: t0.Add(2 * time.Hour)}); len(c) != 0 {
		t.Errorf("claimed after cancel: %v", claimedIDs(c))
	}
	_, err = s.MessageCancel(ctx, m.Message.ID, now)
	wantErr(t, "second cancel", err, store.ErrConflict)
}
