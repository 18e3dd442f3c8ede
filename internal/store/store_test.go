package store

import "testing"

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
	for _, st := range Statuses {
		if got := st.RecipientState(); got == "" && st != StatusPartiallyFailed || got != "" && !got.Valid() {
			t.Errorf("%s.RecipientState() = %q: a status without a RecipientState case", st, got)
		}
	}
}
