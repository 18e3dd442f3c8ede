package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// outcome is how finishAll ends one message's first attempt.
type outcome struct {
	m      store.NewMessage
	status store.Status
	err    *store.DeliveryError
}

// finishAll accepts the messages, claims them (every stream; nothing else may be due) and finishes
// each with its outcome at now.
func finishAll(t *testing.T, s store.Store, now time.Time, outs ...outcome) {
	t.Helper()
	msgs := make([]store.NewMessage, len(outs))
	for i, o := range outs {
		msgs[i] = o.m
	}
	accept(t, s, now, msgs...)
	claimed := 0
	for _, stream := range store.Streams {
		claimed += len(claim(t, s, store.MessageClaimParams{Owner: "w", Stream: stream, Limit: len(outs),
			Now: now, LeaseUntil: now.Add(time.Minute)}))
	}
	if claimed != len(outs) {
		t.Fatalf("claimed %d messages, want %d", claimed, len(outs))
	}
	ps := make([]store.MessageFinishParams, len(outs))
	for i, o := range outs {
		ps[i] = store.MessageFinishParams{ID: o.m.Message.ID, Owner: "w", Status: o.status, Attempts: 1,
			LastError: o.err, Events: []store.Event{{Type: string(o.status)}}}
		switch o.status {
		case store.StatusDeferred:
			ps[i].NextAttemptAt = now.Add(time.Hour)
		case store.StatusSent:
			ps[i].SentAt = now
		}
	}
	if n, err := s.MessageFinish(t.Context(), now, ps); err != nil || n != len(ps) {
		t.Fatalf("MessageFinish = %d, %v; want %d", n, err, len(ps))
	}
}

func deliveryErr(code int, enhanced string, at time.Time) *store.DeliveryError {
	return &store.DeliveryError{Code: code, Enhanced: enhanced, Text: "relay said no", Stage: "rcpt", Attempt: 1, At: at}
}

func testRenewLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b, c := Message(t0), Message(t0), Message(t0)
	accept(t, s, t0, a, b, c)
	mine := claim(t, s, store.MessageClaimParams{Owner: "w1", Stream: store.StreamTransactional, Limit: 2,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})
	theirs := claim(t, s, store.MessageClaimParams{Owner: "w2", Stream: store.StreamTransactional, Limit: 1,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})
	if len(mine) != 2 || len(theirs) != 1 {
		t.Fatalf("claims: w1 %v, w2 %v", claimedIDs(mine), claimedIDs(theirs))
	}

	until := t0.Add(5 * time.Minute)
	ids := append(claimedIDs(mine), theirs[0].ID, id.New(id.Message))
	n, err := s.MessageRenewLeases(ctx, store.MessageRenewParams{Owner: "w1", IDs: ids, Until: until})
	if err != nil || n != 2 {
		t.Fatalf("MessageRenewLeases = %d, %v; want 2 (only w1's leases)", n, err)
	}
	for _, c := range mine {
		if m := get(t, s, c.ID); m.Status != store.StatusSending || m.LeaseOwner != "w1" || !m.LeaseUntil.Equal(until) {
			t.Errorf("renewed message: %s leased by %q until %v; want sending, w1, %v", m.Status, m.LeaseOwner, m.LeaseUntil, until)
		}
	}
	if m := get(t, s, theirs[0].ID); m.LeaseOwner != "w2" || !m.LeaseUntil.Equal(t0.Add(time.Minute)) {
		t.Errorf("w1 renewed w2's lease: %q until %v", m.LeaseOwner, m.LeaseUntil)
	}

	// The rescue loop takes the lease that ran out, not the renewed ones.
	rescued, err := s.MessageRescue(ctx, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatalf("MessageRescue: %v", err)
	}
	if diff := cmp.Diff([]string{theirs[0].ID}, rescued); diff != "" {
		t.Errorf("MessageRescue after renewal (-want +got):\n%s", diff)
	}

	// A finished message's lease is gone: renewing it does nothing.
	if n, err := s.MessageFinish(ctx, t0.Add(3*time.Minute), []store.MessageFinishParams{{ID: mine[0].ID,
		Owner: "w1", Status: store.StatusSent, Attempts: 1, SentAt: t0.Add(3 * time.Minute)}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	if n, err := s.MessageRenewLeases(ctx, store.MessageRenewParams{Owner: "w1", IDs: ids, Until: until.Add(time.Minute)}); err != nil || n != 1 {
		t.Errorf("MessageRenewLeases after finish = %d, %v; want 1", n, err)
	}
	if n, err := s.MessageRenewLeases(ctx, store.MessageRenewParams{Owner: "w1", Until: until}); err != nil || n != 0 {
		t.Errorf("MessageRenewLeases of no ids = %d, %v", n, err)
	}
}

func testRetry(t *testing.T, s store.Store) {
	ctx := t.Context()
	failed := Message(t0)
	sent := Message(t0, func(m *store.Message) { m.Stream = store.StreamBroadcast })
	hard := deliveryErr(550, "5.1.1", t0)
	finishAll(t, s, t0, outcome{failed, store.StatusFailed, hard}, outcome{sent, store.StatusSent, nil})

	wake := s.Wakeups(store.StreamTransactional)
	select { // drop the signal of the accept
	case <-wake:
	default:
	}
	now := t0.Add(2 * time.Hour)
	expires := now.Add(24 * time.Hour)
	ids, err := s.MessageRetry(ctx, store.MessageRetryParams{ID: failed.Message.ID, Now: now, ExpiresAt: expires})
	if err != nil {
		t.Fatalf("MessageRetry: %v", err)
	}
	if diff := cmp.Diff([]string{failed.Message.ID}, ids); diff != "" {
		t.Fatalf("MessageRetry ids (-want +got):\n%s", diff)
	}
	select {
	case <-wake:
	case <-time.After(10 * time.Second): // a failure guard, not a wait for time to pass
		t.Error("no wake-up after MessageRetry")
	}

	want := failed.Message
	want.Status, want.Attempts, want.NextAttemptAt, want.ExpiresAt, want.UpdatedAt = store.StatusQueued, 0, now, expires, now
	want.LastError = hard // kept for the record
	if diff := cmp.Diff(want, get(t, s, failed.Message.ID), cmpOpts); diff != "" {
		t.Errorf("retried message (-want +got):\n%s", diff)
	}
	evs, err := s.MessageEvents(ctx, failed.Message.ID)
	if err != nil || len(evs) != 3 {
		t.Fatalf("events = %+v, %v; want queued, failed, retried", evs, err)
	}
	wantEv := store.Event{ID: evs[2].ID, MessageID: failed.Message.ID, Type: store.EventRetried, At: now,
		Detail: json.RawMessage(`{"attempts": 1}`)}
	if diff := cmp.Diff(wantEv, evs[2], cmpOpts); diff != "" || evs[2].ID <= evs[1].ID {
		t.Errorf("retried event (-want +got):\n%s", diff)
	}

	// Only failed messages: the retried one is queued now, the sent one stays sent.
	for _, msgID := range []string{failed.Message.ID, sent.Message.ID} {
		_, err = s.MessageRetry(ctx, store.MessageRetryParams{ID: msgID, Now: now, ExpiresAt: expires})
		wantErr(t, "MessageRetry of a message that is not failed", err, store.ErrConflict)
	}
	if m := get(t, s, sent.Message.ID); m.Status != store.StatusSent || m.Attempts != 1 {
		t.Errorf("MessageRetry changed a sent message: %s, %d attempts", m.Status, m.Attempts)
	}
	_, err = s.MessageRetry(ctx, store.MessageRetryParams{ID: id.New(id.Message), Now: now, ExpiresAt: expires})
	wantErr(t, "MessageRetry(unknown)", err, store.ErrNotFound)

	// The retried message is claimable at once, with fresh attempts.
	got := claim(t, s, store.MessageClaimParams{Owner: "w2", Stream: store.StreamTransactional, Limit: 5,
		Now: now, LeaseUntil: now.Add(time.Minute)})
	if len(got) != 1 || got[0].ID != failed.Message.ID || got[0].Attempts != 0 {
		t.Errorf("claim after retry = %+v", got)
	}
}

func testRetryFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	at := func(min int) func(*store.Message) {
		return func(m *store.Message) { m.CreatedAt = t0.Add(time.Duration(min) * time.Minute) }
	}
	a := Message(t0, at(0))
	b := Message(t0, at(1), func(m *store.Message) { m.Stream = store.StreamBroadcast; m.Tags = []string{"news"} })
	c := Message(t0, at(2))
	d := Message(t0, at(3))
	e := Message(t0, at(4))
	f := Message(t0, at(5))
	finishAll(t, s, t0.Add(10*time.Minute),
		outcome{a, store.StatusFailed, deliveryErr(550, "5.1.1", t0)},
		outcome{b, store.StatusFailed, deliveryErr(550, "5.1.10", t0)},
		outcome{c, store.StatusFailed, deliveryErr(554, "5.7.1", t0)},
		outcome{d, store.StatusFailed, deliveryErr(451, "4.4.1", t0)}, // attempts exhausted
		outcome{e, store.StatusSent, nil},
		outcome{f, store.StatusDeferred, deliveryErr(451, "4.3.0", t0)},
	)
	A, B, C, D, F := a.Message.ID, b.Message.ID, c.Message.ID, d.Message.ID, f.Message.ID

	// MessageList's ErrorCode: the reply code, the enhanced code, or a prefix ending in a dot.
	for _, tc := range []struct {
		p    store.MessageListParams
		want []string
	}{
		{store.MessageListParams{ErrorCode: "550"}, []string{B, A}},
		{store.MessageListParams{ErrorCode: "451"}, []string{F, D}},
		{store.MessageListParams{ErrorCode: "5.1.1"}, []string{A}},
		{store.MessageListParams{ErrorCode: "5.1."}, []string{B, A}},
		{store.MessageListParams{ErrorCode: "5."}, []string{C, B, A}},
		{store.MessageListParams{ErrorCode: "4.3.0"}, []string{F}},
		{store.MessageListParams{ErrorCode: "5.1"}, nil}, // no dot at the end: exact
		{store.MessageListParams{ErrorCode: "999"}, nil},
		{store.MessageListParams{ErrorCode: "451", Statuses: []store.Status{store.StatusFailed}}, []string{D}},
		{store.MessageListParams{ErrorCode: "5.", Cursor: B}, []string{A}},
	} {
		got, err := s.MessageList(ctx, tc.p)
		if err != nil {
			t.Fatalf("MessageList(%+v): %v", tc.p, err)
		}
		if diff := cmp.Diff(tc.want, messageIDs(got), cmpOpts); diff != "" {
			t.Errorf("MessageList(ErrorCode %q, %v) (-want +got):\n%s", tc.p.ErrorCode, tc.p.Statuses, diff)
		}
	}

	now := t0.Add(time.Hour)
	retry := func(f store.MessageListParams) []string {
		t.Helper()
		ids, err := s.MessageRetry(ctx, store.MessageRetryParams{Filter: f, Now: now, ExpiresAt: now.Add(24 * time.Hour)})
		if err != nil {
			t.Fatalf("MessageRetry(%+v): %v", f, err)
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	for _, tc := range []struct {
		name string
		f    store.MessageListParams
		want []string
	}{
		{"prefix and time", store.MessageListParams{ErrorCode: "5.1.", CreatedAfter: t0.Add(time.Minute)}, []string{B}},
		{"reply code: failed only, not the deferred one", store.MessageListParams{ErrorCode: "451"}, []string{D}},
		{"created before", store.MessageListParams{CreatedBefore: t0.Add(time.Minute)}, []string{A}},
		{"stream, none left", store.MessageListParams{Stream: store.StreamBroadcast}, nil},
		// Statuses are ignored: only failed messages are retried.
		{"everything failed", store.MessageListParams{Statuses: []store.Status{store.StatusSent}}, []string{C}},
		{"nothing left", store.MessageListParams{}, nil},
	} {
		if diff := cmp.Diff(sorted(tc.want...), retry(tc.f), cmpOpts); diff != "" {
			t.Errorf("%s: MessageRetry ids (-want +got):\n%s", tc.name, diff)
		}
	}
	for _, msgID := range []string{A, B, C, D} {
		m := get(t, s, msgID)
		if m.Status != store.StatusQueued || m.Attempts != 0 || !m.NextAttemptAt.Equal(now) || m.LastError == nil {
			t.Errorf("retried %s: %s, %d attempts, due %v, last error %+v", msgID, m.Status, m.Attempts, m.NextAttemptAt, m.LastError)
		}
		if evs := eventTypes(t, s, msgID); evs[len(evs)-1] != store.EventRetried {
			t.Errorf("events of %s = %v, want retried last", msgID, evs)
		}
	}
	if m := get(t, s, e.Message.ID); m.Status != store.StatusSent {
		t.Errorf("sent message is %s after retries", m.Status)
	}
	if m := get(t, s, F); m.Status != store.StatusDeferred || m.Attempts != 1 {
		t.Errorf("deferred message is %s with %d attempts after retries", m.Status, m.Attempts)
	}
}

// testRetryMany retries more failed messages in one call than any one write may hold.
func testRetryMany(t *testing.T, s store.Store) {
	const n = 1200 // more than one batch of the SQLite driver (1000)
	outs := make([]outcome, n)
	for i := range outs {
		outs[i] = outcome{Message(t0), store.StatusFailed, deliveryErr(554, "5.7.1", t0)}
	}
	finishAll(t, s, t0, outs...)
	now := t0.Add(time.Hour)
	ids, err := s.MessageRetry(t.Context(), store.MessageRetryParams{Filter: store.MessageListParams{ErrorCode: "554"},
		Now: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatalf("MessageRetry: %v", err)
	}
	want := make([]string, n)
	for i := range outs {
		want[i] = outs[i].m.Message.ID
	}
	slices.Sort(want)
	slices.Sort(ids)
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Fatalf("MessageRetry ids (-want +got):\n%s", diff)
	}
	left, err := s.MessageList(t.Context(), store.MessageListParams{Statuses: []store.Status{store.StatusFailed}})
	if err != nil || len(left) != 0 {
		t.Errorf("failed messages left after the retry: %d, %v", len(left), err)
	}
	evs, err := s.MessageEvents(t.Context(), want[0])
	if err != nil || len(evs) != 3 || evs[2].Type != store.EventRetried {
		t.Errorf("events = %+v, %v; want queued, failed, retried", evs, err)
	}
}
