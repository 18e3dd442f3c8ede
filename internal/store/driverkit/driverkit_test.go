package driverkit

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
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
	p := store.MessageFinishParams{ID: "msg_1", Owner: "w", Status: store.StatusFailed, Attempts: 1,
		Events: []store.Event{{Type: store.EventFailed}, {Type: store.EventSuppressed, At: earlier}},
		Suppress: []store.Suppression{
			{Email: " Ann@Example.COM ", Reason: store.ReasonHardBounce},
			{Email: "bob@example.com", Reason: store.ReasonHardBounce, CreatedAt: earlier},
		}}
	callers := store.MessageFinishParams{ID: p.ID, Owner: p.Owner, Status: p.Status, Attempts: p.Attempts,
		Events: append([]store.Event(nil), p.Events...), Suppress: append([]store.Suppression(nil), p.Suppress...)}

	got, err := PrepareFinish(p, now)
	if err != nil {
		t.Fatal(err)
	}
	want := callers
	want.Events = []store.Event{{Type: store.EventFailed, At: now}, {Type: store.EventSuppressed, At: earlier}}
	want.Suppress = []store.Suppression{
		{Email: "ann@example.com", Scope: store.ScopeGlobal, Reason: store.ReasonHardBounce, CreatedAt: now},
		{Email: "bob@example.com", Scope: store.ScopeGlobal, Reason: store.ReasonHardBounce, CreatedAt: earlier},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PrepareFinish (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(callers, p); diff != "" {
		t.Errorf("PrepareFinish changed the caller's outcome (-before +after):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		p    store.MessageFinishParams
		want string
	}{
		{"still sending", store.MessageFinishParams{ID: "msg_1", Status: store.StatusSending}, `message msg_1: cannot finish with status "sending"`},
		{"no status", store.MessageFinishParams{ID: "msg_1"}, `message msg_1: cannot finish with status ""`},
		{"unknown status", store.MessageFinishParams{ID: "msg_1", Status: "lost"}, `message msg_1: cannot finish with status "lost"`},
		{"suppression without a reason", store.MessageFinishParams{ID: "msg_1", Status: store.StatusFailed,
			Suppress: []store.Suppression{{Email: "a@example.com"}}}, "message msg_1: suppression of a@example.com: no reason"},
		{"suppression without an email", store.MessageFinishParams{ID: "msg_1", Status: store.StatusFailed,
			Suppress: []store.Suppression{{Email: " ", Reason: store.ReasonManual}}}, "message msg_1: suppression without an email"},
	} {
		if _, err := PrepareFinish(tc.p, now); err == nil || err.Error() != tc.want {
			t.Errorf("%s: PrepareFinish = %v, want %q", tc.name, err, tc.want)
		}
	}
}
