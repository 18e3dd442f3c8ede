package store

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseErrorCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want ErrorCodeFilter
	}{
		{"", ErrorCodeFilter{}},
		{" \t", ErrorCodeFilter{}},
		{"550", ErrorCodeFilter{Form: ErrorCodeReply, Reply: 550}}, // RFC 5321 §4.2: three digits
		{" 451 ", ErrorCodeFilter{Form: ErrorCodeReply, Reply: 451}},
		{"5.1.1", ErrorCodeFilter{Form: ErrorCodeEnhanced, Enhanced: "5.1.1"}}, // RFC 3463 §2: class.subject.detail
		{"5.1", ErrorCodeFilter{Form: ErrorCodeEnhanced, Enhanced: "5.1"}},     // no final dot: exact
		{"5.1.", ErrorCodeFilter{Form: ErrorCodePrefix, Enhanced: "5.1.", Below: "5.1/"}},
		{"5.", ErrorCodeFilter{Form: ErrorCodePrefix, Enhanced: "5.", Below: "5/"}},
		{"user unknown", ErrorCodeFilter{Form: ErrorCodeEnhanced, Enhanced: "user unknown"}},
	} {
		if diff := cmp.Diff(tc.want, ParseErrorCode(tc.in)); diff != "" {
			t.Errorf("ParseErrorCode(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	// The range of a prefix holds exactly the codes that start with it.
	f := ParseErrorCode("5.1.")
	for _, code := range []string{"5.1.0", "5.1.1", "5.1.10", "5.1.9", "5.0.0", "5.10.1", "5.2.1", "5.1", "4.1.1"} {
		in := code >= f.Enhanced && code < f.Below
		if in != strings.HasPrefix(code, "5.1.") {
			t.Errorf("%s in [%s, %s) = %v", code, f.Enhanced, f.Below, in)
		}
	}
}

func TestPrepareFinish(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	earlier := now.Add(-time.Minute)
	p := MessageFinishParams{ID: "msg_1", Owner: "w", Status: StatusFailed, Attempts: 1,
		Events: []Event{{Type: EventFailed}, {Type: EventSuppressed, At: earlier}},
		Suppress: []Suppression{
			{Email: " Ann@Example.COM ", Reason: ReasonHardBounce},
			{Email: "bob@example.com", Reason: ReasonHardBounce, CreatedAt: earlier},
		}}
	callers := MessageFinishParams{ID: p.ID, Owner: p.Owner, Status: p.Status, Attempts: p.Attempts,
		Events: append([]Event(nil), p.Events...), Suppress: append([]Suppression(nil), p.Suppress...)}

	got, err := PrepareFinish(p, now)
	if err != nil {
		t.Fatal(err)
	}
	want := callers
	want.Events = []Event{{Type: EventFailed, At: now}, {Type: EventSuppressed, At: earlier}}
	want.Suppress = []Suppression{
		{Email: "ann@example.com", Reason: ReasonHardBounce, CreatedAt: now},
		{Email: "bob@example.com", Reason: ReasonHardBounce, CreatedAt: earlier},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PrepareFinish (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(callers, p); diff != "" {
		t.Errorf("PrepareFinish changed the caller's outcome (-before +after):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		p    MessageFinishParams
		want string
	}{
		{"still sending", MessageFinishParams{ID: "msg_1", Status: StatusSending}, `message msg_1: cannot finish with status "sending"`},
		{"no status", MessageFinishParams{ID: "msg_1"}, `message msg_1: cannot finish with status ""`},
		{"unknown status", MessageFinishParams{ID: "msg_1", Status: "lost"}, `message msg_1: cannot finish with status "lost"`},
		{"suppression without a reason", MessageFinishParams{ID: "msg_1", Status: StatusFailed,
			Suppress: []Suppression{{Email: "a@example.com"}}}, "message msg_1: suppression of a@example.com: no reason"},
		{"suppression without an email", MessageFinishParams{ID: "msg_1", Status: StatusFailed,
			Suppress: []Suppression{{Email: " ", Reason: ReasonManual}}}, "message msg_1: suppression without an email"},
	} {
		if _, err := PrepareFinish(tc.p, now); err == nil || err.Error() != tc.want {
			t.Errorf("%s: PrepareFinish = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestDeriveStatus is the table of docs/api.md: a message's status from its recipients' states.
func TestDeriveStatus(t *testing.T) {
	t.Parallel()
	const (
		q, d, s, f = RecipientQueued, RecipientDeferred, RecipientSent, RecipientFailed
		sup, c     = RecipientSuppressed, RecipientCancelled
		b, co      = RecipientBounced, RecipientComplained
	)
	for _, tc := range []struct {
		job    Status
		states []RecipientStatus
		want   Status
	}{
		{StatusQueued, nil, StatusQueued},
		{StatusScheduled, []RecipientStatus{q, q}, StatusScheduled},
		{StatusDeferred, []RecipientStatus{s, d}, StatusDeferred},
		{StatusSending, []RecipientStatus{f, q}, StatusSending},
		{StatusSending, []RecipientStatus{s}, StatusSent},
		{StatusSending, []RecipientStatus{s, s}, StatusSent},
		{StatusSending, []RecipientStatus{f, f}, StatusFailed},
		{StatusSending, []RecipientStatus{sup}, StatusSuppressed},
		{StatusSending, []RecipientStatus{c, c}, StatusCancelled},
		{StatusSending, []RecipientStatus{b, b}, StatusBounced},
		{StatusSending, []RecipientStatus{co}, StatusComplained},
		{StatusSending, []RecipientStatus{s, f}, StatusPartiallyFailed},
		{StatusSending, []RecipientStatus{b, f, sup}, StatusPartiallyFailed},
		{StatusSending, []RecipientStatus{f, sup}, StatusFailed},
		{StatusSending, []RecipientStatus{f, c}, StatusFailed},
		{StatusSending, []RecipientStatus{s, sup}, StatusSent},
		{StatusSending, []RecipientStatus{s, c}, StatusSent},
		{StatusSending, []RecipientStatus{s, b, co}, StatusSent},
		{StatusSending, []RecipientStatus{sup, c}, StatusSuppressed},
	} {
		if got := DeriveStatus(tc.job, tc.states); got != tc.want {
			t.Errorf("DeriveStatus(%s, %v) = %s, want %s", tc.job, tc.states, got, tc.want)
		}
	}
}

func TestRecipientState(t *testing.T) {
	t.Parallel()
	for st, want := range map[Status]RecipientStatus{
		StatusScheduled: RecipientQueued, StatusQueued: RecipientQueued, StatusSending: RecipientQueued,
		StatusDeferred: RecipientDeferred, StatusSent: RecipientSent, StatusFailed: RecipientFailed,
		StatusSuppressed: RecipientSuppressed, StatusCancelled: RecipientCancelled,
		StatusBounced: RecipientBounced, StatusComplained: RecipientComplained, StatusPartiallyFailed: "",
	} {
		if got := st.RecipientState(); got != want {
			t.Errorf("%s.RecipientState() = %q, want %q", st, got, want)
		}
	}
	if len(Statuses) != 11 {
		t.Errorf("a status without a RecipientState case: %v", Statuses)
	}
}
