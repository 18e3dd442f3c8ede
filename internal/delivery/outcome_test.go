package delivery

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/transport"
	"github.com/postie/postie/internal/transport/capture"
)

// TestOutcomePerRecipient: each recipient refused at RCPT is judged on its own (RFC 5321 §3.3);
// an outcome all recipients share stays on the message row alone.
func TestOutcomePerRecipient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(capture.New(), "n")
	now := b.clock.Now()
	rcpt := func(addr string, class transport.Class, code int, enhanced, text string) transport.RecipientError {
		return transport.RecipientError{Recipient: addr, Err: &transport.Error{Class: class, Code: code, Enhanced: enhanced, Text: text, Stage: "rcpt"}}
	}
	r452 := rcpt("T452@x.example", transport.Temporary, 452, "4.2.2", "Mailbox full")
	r550 := rcpt("t550@x.example", transport.Permanent, 550, "5.1.1", "User unknown")
	r550b := rcpt("u550@x.example", transport.Permanent, 550, "5.1.1", "User unknown")
	data451 := &transport.Error{Class: transport.Temporary, Code: 451, Enhanced: "4.3.0", Text: "later", Stage: "data"}
	allRefused := func(rs ...transport.RecipientError) error {
		te := *rs[0].Err
		te.Class = transport.Temporary
		te.Rejected = rs
		return &te
	}

	for _, tc := range []struct {
		name       string
		attempts   int  // made before this one
		split      bool // the claimed message was split
		to         []string
		suppressed []string
		res        transport.Result
		err        error
		// want: the message's status, whether split, its last error's code, the recipients'
		// "email=state" and the pending ones, the suppressions.
		status     store.Status
		wantSplit  bool
		errCode    int
		recipients string
		pending    string
		suppress   string
	}{
		{name: "one sent", to: []string{"ok@x.example"},
			status: store.StatusSent},
		{name: "all sent", to: []string{"ok@x.example", "ok2@x.example"},
			status: store.StatusSent},
		{name: "452 for one", to: []string{"ok@x.example", "T452@x.example"}, res: transport.Result{Rejected: []transport.RecipientError{r452}},
			status: store.StatusDeferred, wantSplit: true, errCode: 452,
			recipients: "ok@x.example=sent t452@x.example=deferred", pending: "T452@x.example"},
		{name: "452 for one on the last attempt", attempts: 2, to: []string{"ok@x.example", "T452@x.example"},
			res:    transport.Result{Rejected: []transport.RecipientError{r452}},
			status: store.StatusPartiallyFailed, wantSplit: true, errCode: 452,
			recipients: "ok@x.example=sent t452@x.example=failed"},
		{name: "550 for one", to: []string{"ok@x.example", "t550@x.example"}, res: transport.Result{Rejected: []transport.RecipientError{r550}},
			status: store.StatusPartiallyFailed, wantSplit: true, errCode: 550,
			recipients: "ok@x.example=sent t550@x.example=failed", suppress: "t550@x.example"},
		{name: "RCPT refuses all, 452 and 550", to: []string{"T452@x.example", "t550@x.example"}, err: allRefused(r452, r550),
			status: store.StatusDeferred, wantSplit: true, errCode: 452,
			recipients: "t452@x.example=deferred t550@x.example=failed", pending: "T452@x.example", suppress: "t550@x.example"},
		{name: "RCPT refuses all alike", to: []string{"t550@x.example", "u550@x.example"}, err: func() error {
			te := *r550.Err
			te.Rejected = []transport.RecipientError{r550, r550b}
			return &te
		}(),
			status: store.StatusFailed, errCode: 550, suppress: "t550@x.example u550@x.example"},
		{name: "DATA 451 for all", to: []string{"a@x.example", "b@x.example"}, err: data451,
			status: store.StatusDeferred, errCode: 451},
		{name: "the pending one of a split message sent", attempts: 1, split: true, to: []string{"T452@x.example"},
			status: store.StatusSent, wantSplit: true, recipients: "t452@x.example=sent"},
		{name: "the pending one of a split message deferred", attempts: 1, split: true, to: []string{"T452@x.example"}, err: data451,
			status: store.StatusDeferred, wantSplit: true, errCode: 451, recipients: "t452@x.example=deferred", pending: "T452@x.example"},
		{name: "one suppressed, one sent", to: []string{"ok@x.example"}, suppressed: []string{"Gone@x.example"},
			status: store.StatusSent, wantSplit: true, recipients: "gone@x.example=suppressed ok@x.example=sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := store.ClaimedMessage{ID: "msg_1", Attempts: tc.attempts, MaxAttempts: 3, ExpiresAt: now.Add(time.Hour),
				Split: tc.split, Recipients: append(append([]string{}, tc.to...), tc.suppressed...)}
			f := e.outcome(m, tc.to, tc.suppressed, tc.res, tc.err, now)
			if f.Status != tc.status || f.Split != tc.wantSplit || f.Attempts != tc.attempts+1 {
				t.Errorf("status %s, split %v, attempts %d; want %s, %v, %d", f.Status, f.Split, f.Attempts, tc.status, tc.wantSplit, tc.attempts+1)
			}
			if code := 0; f.LastError != nil && f.LastError.Code != tc.errCode || f.LastError == nil && tc.errCode != code {
				t.Errorf("last error %+v, want code %d", f.LastError, tc.errCode)
			}
			var rs []string
			for _, r := range f.Recipients {
				rs = append(rs, r.Email+"="+string(r.Status))
				if r.Status == store.RecipientSent && !r.SentAt.Equal(now) || r.Status == store.RecipientSuppressed && r.Attempts != tc.attempts {
					t.Errorf("recipient %+v", r)
				}
			}
			sortJoin := func(s []string) string {
				slices.Sort(s)
				return strings.Join(s, " ")
			}
			if got := sortJoin(rs); got != tc.recipients {
				t.Errorf("recipients %q, want %q", got, tc.recipients)
			}
			if got := strings.Join(f.Pending, " "); got != tc.pending {
				t.Errorf("pending %q, want %q", got, tc.pending)
			}
			var sup []string
			for _, s := range f.Suppress {
				sup = append(sup, s.Email)
			}
			if got := sortJoin(sup); got != tc.suppress {
				t.Errorf("suppressions %q, want %q", got, tc.suppress)
			}
			if f.Status == store.StatusDeferred && !f.NextAttemptAt.Equal(now.Add(time.Minute*time.Duration(1+9*tc.attempts))) {
				t.Errorf("next attempt %v", f.NextAttemptAt)
			}
			for _, ev := range f.Events {
				if !strings.Contains(string(ev.Detail), `"recipients"`) {
					t.Errorf("%s event does not name its recipients: %s", ev.Type, ev.Detail)
				}
			}
		})
	}
}
