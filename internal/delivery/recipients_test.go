package delivery

// Per-recipient outcomes against a real scripted relay: a recipient refused at RCPT is judged on
// its own (RFC 5321 §3.3: each RCPT has its own reply), the others are done.

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// refuseAtRcpt is a relay script refusing RCPT TO rcpt with code/enhanced while refuse(n) says
// so for its n-th RCPT of that address (1-based), accepting everything else.
func refuseAtRcpt(rcpt string, code int, enhanced, text string, refuse func(n int) bool) func(smtpsink.Step) smtpsink.Action {
	var c counter
	return func(s smtpsink.Step) smtpsink.Action {
		if s.Stage == smtpsink.StageRcpt && strings.EqualFold(s.To, rcpt) && refuse(c.next(rcpt)) {
			return smtpsink.Action{Code: code, Enhanced: enhanced, Text: text}
		}
		return smtpsink.Action{}
	}
}

// envelopes are the recipients of each transaction the relay accepted, in order.
func envelopes(sink *smtpsink.Sink) [][]string {
	var out [][]string
	for _, m := range sink.Messages() {
		out = append(out, m.To)
	}
	return out
}

// recipients are the recipients of a message with their states.
func (r *relayEnv) recipients(t *testing.T, id string) []store.Recipient {
	t.Helper()
	rcpts, err := r.store.MessageRecipients(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rcpts
}

// states is "email=status" of each recipient.
func states(rcpts []store.Recipient) string {
	var s []string
	for _, r := range rcpts {
		s = append(s, r.Email+"="+string(r.Status))
	}
	return strings.Join(s, " ")
}

// listIDs is the ids of the messages in status that recipient ("" for any) is one of.
func (r *relayEnv) listIDs(t *testing.T, status store.Status, recipient string) []string {
	t.Helper()
	ms, err := r.store.MessageList(context.Background(), store.MessageListParams{Statuses: []store.Status{status}, Recipient: recipient, Limit: 50})
	if err != nil {
		t.Fatalf("list %s %s: %v", status, recipient, err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// TestRelay452ForOneRecipientRetriesItAlone: 452 4.2.2 (mailbox full) to one recipient at RCPT,
// 250 to the other: the other is sent once, the refused one deferred on the ladder and sent
// alone on the next attempt; the message ends sent.
func TestRelay452ForOneRecipientRetriesItAlone(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	sink := sinktest.Start(t, smtpsink.Options{Keep: true,
		Script: refuseAtRcpt("t452@example.com", 452, "4.2.2", "Mailbox full", func(n int) bool { return n == 1 })})
	stop := run(t, r.engine(relayTransport(t, sink.URL(), nil), "node-a"))
	defer stop()

	id := r.send(t, to("ok@example.com", "T452@example.com"))
	m := r.waitStatus(t, id, store.StatusDeferred)
	if m.Attempts != 1 || m.LastError == nil || m.LastError.Code != 452 || m.LastError.Enhanced != "4.2.2" || m.LastError.Stage != "rcpt" {
		t.Fatalf("deferred after %d attempts with last error %+v, want the 452 of attempt 1", m.Attempts, m.LastError)
	}
	if !m.NextAttemptAt.Equal(r.clock.Now().Add(time.Minute)) {
		t.Errorf("next attempt at %v, want one minute on (the ladder)", m.NextAttemptAt)
	}
	view := r.recipients(t, id)
	if got := states(view); got != "ok@example.com=sent t452@example.com=deferred" {
		t.Errorf("recipients after attempt 1: %s", got)
	}
	if rc := view[1]; rc.LastError == nil || rc.LastError.Code != 452 || rc.Attempts != 1 || !rc.SentAt.IsZero() {
		t.Errorf("deferred recipient %+v", rc)
	}
	if rc := view[0]; rc.LastError != nil || rc.Attempts != 1 || rc.SentAt.IsZero() {
		t.Errorf("sent recipient %+v", rc)
	}

	r.clock.Add(time.Minute)
	m = r.waitStatus(t, id, store.StatusSent)
	if m.Attempts != 2 || m.LastError != nil {
		t.Errorf("sent after %d attempts with last error %+v, want 2 and none", m.Attempts, m.LastError)
	}
	want := [][]string{{"ok@example.com"}, {"T452@example.com"}}
	if got := envelopes(sink); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("relay transactions %v, want %v (the second to the refused recipient alone)", got, want)
	}
	if got := states(r.recipients(t, id)); got != "ok@example.com=sent t452@example.com=sent" {
		t.Errorf("recipients at the end: %s", got)
	}
	if got := storetest.EventTypes(t, r.store, id); strings.Join(got, " ") != "queued sent deferred sent" {
		t.Errorf("timeline %v", got)
	}
	evs, _ := r.store.MessageEvents(context.Background(), id)
	if d := string(evs[2].Detail); !strings.Contains(d, `"recipient":"T452@example.com"`) || !strings.Contains(d, "Mailbox full") {
		t.Errorf("deferred event does not name the refused recipient: %s", d)
	}
	if d := string(evs[1].Detail); !strings.Contains(d, `"recipients":[{"recipient":"ok@example.com"}]`) {
		t.Errorf("first sent event does not name who got it: %s", d)
	}
}

// TestRelay452UntilTheLadderEnds: a recipient refused with 4xx on every attempt fails when its
// attempts run out; the message, sent to the other, ends partially_failed with that reply.
func TestRelay452UntilTheLadderEnds(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	sink := sinktest.Start(t, smtpsink.Options{Keep: true,
		Script: refuseAtRcpt("t452@example.com", 452, "4.2.2", "Mailbox full", func(int) bool { return true })})
	stop := run(t, r.engine(relayTransport(t, sink.URL(), nil), "node-a"))
	defer stop()

	id := r.send(t, to("ok@example.com", "t452@example.com"))
	r.waitFor(t, id, "attempt 1", func(m store.Message) bool { return m.Attempts == 1 && m.Status == store.StatusDeferred })
	r.clock.Add(time.Minute)
	r.waitFor(t, id, "attempt 2", func(m store.Message) bool { return m.Attempts == 2 && m.Status == store.StatusDeferred })
	r.clock.Add(10 * time.Minute)
	m := r.waitStatus(t, id, store.StatusPartiallyFailed)
	if m.Attempts != 3 || m.LastError == nil || m.LastError.Code != 452 || m.LastError.Attempt != 3 {
		t.Errorf("partially failed after %d attempts with %+v, want the 452 of attempt 3", m.Attempts, m.LastError)
	}
	if m.SentAt.IsZero() {
		t.Error("sent_at of the recipient sent on attempt 1 was lost")
	}
	if got := states(r.recipients(t, id)); got != "ok@example.com=sent t452@example.com=failed" {
		t.Errorf("recipients: %s", got)
	}
	want := [][]string{{"ok@example.com"}}
	if got := envelopes(sink); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("relay transactions %v, want ok@ once and nothing more", got)
	}
	if got := storetest.EventTypes(t, r.store, id); strings.Join(got, " ") != "queued sent deferred deferred failed" {
		t.Errorf("timeline %v", got)
	}
}

// TestRelay550ForOneRecipientIsFound: a recipient refused with 550 fails (and, a hard bounce,
// is suppressed), the other is sent; the failure queue finds the message by that recipient.
func TestRelay550ForOneRecipientIsFound(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	sink := sinktest.Start(t, smtpsink.Options{
		Script: refuseAtRcpt("t550@example.com", 550, "5.1.1", "User unknown", func(int) bool { return true })})
	stop := run(t, r.engine(relayTransport(t, sink.URL(), nil), "node-a"))
	defer stop()

	id := r.send(t, to("ok@example.com", "t550@example.com"))
	m := r.waitStatus(t, id, store.StatusPartiallyFailed)
	if m.LastError == nil || m.LastError.Code != 550 || m.Attempts != 1 {
		t.Errorf("after %d attempts last error %+v", m.Attempts, m.LastError)
	}
	if s, err := r.store.SuppressionGet(context.Background(), "t550@example.com", "", r.clock.Now()); err != nil || s.Reason != store.ReasonHardBounce {
		t.Errorf("hard bounce not suppressed: %+v %v", s, err)
	}
	for _, tc := range []struct {
		status, recipient string
		found             bool
	}{
		{"failed", "t550@example.com", true},
		{"failed", "T550@Example.com", true},
		{"failed", "ok@example.com", false},
		{"sent", "ok@example.com", true},
		{"sent", "t550@example.com", false},
		{"partially_failed", "ok@example.com", true},
		{"partially_failed", "", true},
		{"failed", "", false},
	} {
		if got := slices.Contains(r.listIDs(t, store.Status(tc.status), tc.recipient), id); got != tc.found {
			t.Errorf("listing %s messages to %q found it: %v, want %v", tc.status, tc.recipient, got, tc.found)
		}
	}
}

// TestRetryOfAPartiallyFailedMessage: a retry queues the failed recipient alone again, never the
// one already sent to.
func TestRetryOfAPartiallyFailedMessage(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	// 5.7.1 (policy) is not a hard bounce: the address is not suppressed and can be retried.
	sink := sinktest.Start(t, smtpsink.Options{Keep: true,
		Script: refuseAtRcpt("blocked@example.com", 550, "5.7.1", "Blocked for now", func(n int) bool { return n == 1 })})
	stop := run(t, r.engine(relayTransport(t, sink.URL(), nil), "node-a"))
	defer stop()

	id := r.send(t, to("ok@example.com", "blocked@example.com"))
	r.waitStatus(t, id, store.StatusPartiallyFailed)
	now := r.clock.Now()
	if _, err := r.store.MessageRetry(context.Background(), store.MessageRetryParams{ID: id, Now: now, ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	retried, err := r.store.MessageGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	// The engine may already have taken it up again, or even sent it.
	if got := states(r.recipients(t, id)); retried.Status == store.StatusPartiallyFailed || retried.Status == store.StatusFailed ||
		got != "blocked@example.com=queued ok@example.com=sent" && got != "blocked@example.com=sent ok@example.com=sent" {
		t.Errorf("after retry: %s with %s", retried.Status, got)
	}
	m := r.waitStatus(t, id, store.StatusSent)
	if m.Attempts != 1 {
		t.Errorf("sent with %d attempts after the retry, want 1 (fresh attempts)", m.Attempts)
	}
	want := [][]string{{"ok@example.com"}, {"blocked@example.com"}}
	if got := envelopes(sink); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("relay transactions %v, want %v", got, want)
	}
	if got := storetest.EventTypes(t, r.store, id); strings.Join(got, " ") != "queued sent failed retried sent" {
		t.Errorf("timeline %v", got)
	}
}
